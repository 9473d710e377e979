"""ABC tunes given as input (tune books, the music21 corpus) become MIDI files before the Ray stage,
so they take exactly the same MIDI -> ABC path as any MIDI file."""

import hashlib
from pathlib import Path

from preprocessing.abc_tools import render_tunes


def render_abc_items(items, rendered_dir, timeout):
    """Returns (MIDI items with location = rendered file, rejected records for tunes that did not render)."""
    rendered_dir = Path(rendered_dir).resolve()  # a path that means the same in Ray's workers
    rendered_dir.mkdir(parents=True, exist_ok=True)
    abc = [item for item in items if item["kind"] == "abc"]
    locations = [rendered_dir / f"{number:07d}.mid" for number in range(len(abc))]
    rendered = render_tunes([item["text"] for item in abc], locations, timeout)
    midi_items = [{**item, "kind": "midi", "location": str(location)}
                  for item, location, ok in zip(abc, locations, rendered) if ok]
    rejected = [rejected_record(item, "render_error") for item, ok in zip(abc, rendered) if not ok]
    return [item for item in items if item["kind"] == "midi"] + midi_items, rejected


def rejected_record(item, reason):
    md5 = hashlib.md5(item["text"].encode("latin-1", "replace")).hexdigest()
    return {"source": item["source"], "md5": md5, "status": "rejected", "reason": reason,
            "tune_md5": "", "notes": 0, "bars": 0, "voices": 0}
