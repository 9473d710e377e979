"""Where trials read their shards: a path every node sees as is, or an object-store URI copied once per node.

meta.json and tokens/*.bin of a URI are fetched into a node-local cache keyed by the shards' sha256, then
checked against meta.json.
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from preprocessing import storage
from preprocessing.shards import SPLITS, verify_shards

CACHE = Path(os.environ.get("MUSIC_SCALING_CACHE", Path(tempfile.gettempdir()) / "music-scaling-data"))


def local_data_dir(location):
    """A local folder holding meta.json and tokens/ for `location` (a path or a URI)."""
    if not storage.is_uri(location):
        return Path(storage.as_local(location))
    meta_bytes = storage.read_bytes(storage.join(location, "meta.json"))
    meta = json.loads(meta_bytes)
    key = hashlib.sha256("".join(meta["splits"][s]["sha256"] for s in SPLITS).encode()).hexdigest()[:16]
    local = CACHE / key
    if not (local / "meta.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CACHE))
        for split in SPLITS:
            storage.copy_to_local(storage.join(location, "tokens", f"{split}.bin"), staging / "tokens" / f"{split}.bin")
        (staging / "meta.json").write_bytes(meta_bytes)
        verify_shards(staging)
        try:
            staging.rename(local)
        except OSError:  # another trial on this node finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    return local
