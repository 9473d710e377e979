"""ABC tunes given as input (tune books, the music21 corpus) become MIDI files before the Ray stage,
so they take exactly the same MIDI -> ABC path as any MIDI file."""

import hashlib
import shutil
import tempfile
from pathlib import Path

from preprocessing.abc_tools import render_tunes

TUNES_PER_CALL = 200  # one abc2midi process renders this many tunes


def render_abc_items(items, rendered_dir, timeout):
    """Returns (MIDI items with location = rendered file, rejected records for tunes that did not render)."""
    rendered_dir = Path(rendered_dir)
    rendered_dir.mkdir(parents=True, exist_ok=True)
    midi_items, rejected = [], []
    abc = [item for item in items if item["kind"] == "abc"]
    for start in range(0, len(abc), TUNES_PER_CALL):
        group = abc[start:start + TUNES_PER_CALL]
        with tempfile.TemporaryDirectory(prefix="abc2midi-") as scratch:
            paths = render_tunes([item["text"] for item in group], scratch, timeout=timeout * 6)
            for number, (item, path) in enumerate(zip(group, paths), start):
                location = rendered_dir / f"{number:07d}.mid"
                if render_to(location, item["text"], path, timeout):
                    midi_items.append({**item, "kind": "midi", "location": str(location)})
                else:
                    rejected.append(rejected_record(item, "render_error"))
    return [item for item in items if item["kind"] == "midi"] + midi_items, rejected


def render_to(location, text, rendered, timeout):
    """Move the group's rendering to location, or render the tune alone: abc2midi stops at a tune it
    crashes on, losing the rest of its group."""
    if rendered is None and text:
        with tempfile.TemporaryDirectory(prefix="abc2midi-") as scratch:
            [alone] = render_tunes([text], scratch, timeout=timeout)
            if alone is not None:
                shutil.move(alone, location)
            return alone is not None
    if rendered is not None:
        shutil.move(rendered, location)
    return rendered is not None


def rejected_record(item, reason):
    md5 = hashlib.md5(item["text"].encode("latin-1", "replace")).hexdigest()
    return {"source": item["source"], "md5": md5, "status": "rejected", "reason": reason,
            "tune_md5": "", "notes": 0, "bars": 0, "voices": 0}
