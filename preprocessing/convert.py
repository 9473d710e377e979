"""The per-batch work that Ray runs: file bytes in, one record per file out (converted and cleaned).

A batch has the column "path" and, for remote files, "bytes" (from `ray.data.read_binary_files(...,
include_paths=True)`); local files are read here, or on the driver's node where this node cannot read them
(local_contents). The bytes give the md5 and the cheap checks (empty, not MIDI); midi2abc then reads a local
file by its path (no copy), while the bytes of a remote file, of a file read on another node, or of a file
whose text events were retyped (midi_text.py), go to a scratch file first.
"""

import functools
import hashlib
import tempfile
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from preprocessing.abc_clean import clean_abc
from preprocessing.abc_tools import midi_to_abc
from preprocessing.midi_text import without_text_events
from preprocessing.parallel import claimed_core

# Raised whenever a file converts to other records (2: karaoke words removed; 3: text events retyped;
# 4: bars broken by a directive rejoined; 5: any bar broken across lines rejoined, with its space).
CONVERSION_VERSION = 5
RECORD_FIELDS = ("path", "md5", "status", "reason", "tune_md5", "abc", "notes", "bars", "voices")
MIDI_MAGIC = (b"MThd", b"RIFF")  # RIFF: the RMID wrapper midi2abc also reads


def read_bytes(path):
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None


@ray.remote(num_cpus=0)
def read_files(paths):
    return [read_bytes(path) for path in paths]


def local_contents(paths, home):
    """Each local file's bytes (None where unreadable). A file this node cannot read is read on `home`, the
    driver's node, and its bytes sent: a cluster's other nodes need not see the driver's files."""
    contents = [read_bytes(path) for path in paths]
    missing = [i for i, data in enumerate(contents) if data is None]
    if missing and home and home != ray.get_runtime_context().get_node_id():
        there = read_files.options(scheduling_strategy=NodeAffinitySchedulingStrategy(home, soft=False))
        for i, data in zip(missing, ray.get(there.remote([paths[i] for i in missing]))):
            contents[i] = data
    return contents


@claimed_core()
def convert_batch(batch, flags, timeout, limits, home=None):
    """batch: column path, and bytes for remote files; returns the RECORD_FIELDS columns, one row per input row.
    It runs on a core of its own while one is free (parallel.claimed_core).

    Local files are read here, in the task that converts them: read_binary_files builds an Arrow block per
    file, many times the cost of a plain read. All midi2abc runs come first, then all the cleaning, so each
    runs with its code and data warm in the CPU caches (benchmarks/README.md has both figures)."""
    to_abc = functools.partial(midi_to_abc, flags=flags, timeout=timeout)
    paths = [str(path) for path in batch["path"]]
    if "bytes" in batch:
        contents = [None if data is None else bytes(data) for data in batch["bytes"]]
    else:
        contents = local_contents(paths, home)
    with tempfile.TemporaryDirectory(prefix="midi2abc-") as scratch:
        converted = [convert_bytes(data, path, scratch, to_abc) for data, path in zip(contents, paths)]
    records = {field: [] for field in RECORD_FIELDS}
    for data, path, (raw, reason) in zip(contents, paths, converted):
        md5 = "" if data is None else hashlib.md5(data).hexdigest()
        tune, reason = (None, reason) if raw is None else clean_abc(raw, limits)
        add_record(records, path, md5, tune, reason)
    return records


def convert_bytes(data, path, scratch, to_abc):
    """midi2abc's raw output: (abc_text, None), or (None, reason)."""
    if data is None:
        return None, "unreadable"
    if not data:
        return None, "empty_file"
    if not data.startswith(MIDI_MAGIC):
        return None, "not_midi"
    midi = without_text_events(data)
    local = Path(path)
    if midi is not data or not local.is_file():  # rewritten, or remote (s3://, gs://): a local copy
        local = Path(scratch) / "input.mid"
        local.write_bytes(midi)
    return to_abc(local)


def add_record(records, path, md5, tune, reason):
    records["path"].append(path)
    records["md5"].append(md5)
    records["status"].append("ok" if tune else "rejected")
    records["reason"].append(reason or "")
    records["tune_md5"].append(tune.md5 if tune else "")
    records["abc"].append(tune.abc if tune else "")
    for field in ("notes", "bars", "voices"):
        records[field].append(getattr(tune, field) if tune else 0)
