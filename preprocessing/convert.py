"""The per-batch work that Ray runs: items in, one record per item out (converted, cleaned, split).

Local MIDI files go to midi2abc by path (no copy); remote ones are fetched and written to a scratch
file. The ABC tunes of a batch are rendered to MIDI by one abc2midi call, then take the same
MIDI -> ABC path as any MIDI file.
"""

import hashlib
import tempfile
from pathlib import Path

from preprocessing.abc_clean import clean_abc
from preprocessing.abc_tools import midi_to_abc, render_tunes
from preprocessing.inputs import read_bytes
from preprocessing.tune_split import split_of

RECORD_FIELDS = ("source", "md5", "status", "reason", "tune_md5", "abc", "split",
                 "notes", "bars", "voices", "tokens")
MIDI_MAGIC = (b"MThd", b"RIFF")


def convert_batch(batch, flags, timeout, limits, fractions):
    """batch: columns source, kind, location, text; returns the RECORD_FIELDS columns."""
    records = {field: [] for field in RECORD_FIELDS}
    with tempfile.TemporaryDirectory(prefix="midi2abc-") as scratch:
        rendered = render_abc_items(batch, scratch, timeout)
        for i, source in enumerate(batch["source"]):
            if batch["kind"][i] == "abc":
                md5 = hashlib.md5(batch["text"][i].encode("latin-1", "replace")).hexdigest()
                outcome = convert_rendered(rendered.get(i), flags, timeout, limits)
            else:
                md5, outcome = convert_midi(batch["location"][i], scratch, flags, timeout, limits)
            tune, reason = outcome
            add_record(records, source, md5, tune, reason, fractions)
    return records


def render_abc_items(batch, scratch, timeout):
    """{row index: MIDI path or None} for the ABC tunes of the batch."""
    rows = [i for i, kind in enumerate(batch["kind"]) if kind == "abc" and batch["text"][i]]
    if not rows:
        return {}
    render_dir = Path(scratch) / "abc"
    render_dir.mkdir()
    paths = render_tunes([batch["text"][i] for i in rows], render_dir, timeout=timeout * 6)
    return dict(zip(rows, paths))


def convert_rendered(midi_path, flags, timeout, limits):
    if midi_path is None:
        return None, "render_error"
    return convert_file(midi_path, flags, timeout, limits)


def convert_midi(location, scratch, flags, timeout, limits):
    try:
        data = read_bytes(location)
    except OSError as error:
        return "", (None, f"unreadable: {error}")
    md5 = hashlib.md5(data).hexdigest()
    if not data:
        return md5, (None, "empty_file")
    if not data.startswith(MIDI_MAGIC):
        return md5, (None, "not_midi")
    if "://" in location:
        local = Path(scratch) / f"remote-{md5}.mid"
        local.write_bytes(data)
        location = str(local)
    return md5, convert_file(location, flags, timeout, limits)


def convert_file(midi_path, flags, timeout, limits):
    raw, reason = midi_to_abc(midi_path, flags, timeout)
    if raw is None:
        return None, reason
    return clean_abc(raw, limits)


def add_record(records, source, md5, tune, reason, fractions):
    records["source"].append(source)
    records["md5"].append(md5)
    records["status"].append("ok" if tune else "rejected")
    records["reason"].append(reason or "")
    records["tune_md5"].append(tune.md5 if tune else "")
    records["abc"].append(tune.abc if tune else "")
    records["split"].append(split_of(tune.md5, fractions) if tune else "")
    for field in ("notes", "bars", "voices", "tokens"):
        records[field].append(getattr(tune, field) if tune else 0)
