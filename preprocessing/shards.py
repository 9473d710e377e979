"""Token shards on disk: `tokens/<split>.bin` (uint16 ids) described by `meta.json`.

This is the reader the sweep uses; the pipeline writes through `write_split` and `write_meta`.
"""

import hashlib
import json
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
DTYPE = np.uint16


def shard_path(data_dir, split):
    return Path(data_dir) / "tokens" / f"{split}.bin"


def load_meta(data_dir):
    path = Path(data_dir) / "meta.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {data_dir} a prepared data folder?")
    return json.loads(path.read_text())


def read_split(data_dir, split):
    """The token ids of one split as a read-only memmap."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.memmap(shard_path(data_dir, split), dtype=DTYPE, mode="r")


def write_split(data_dir, split, ids):
    """Write one split's ids; returns its entry for meta.json (token count and sha256)."""
    ids = np.asarray(ids)
    if ids.size and int(ids.max()) > np.iinfo(DTYPE).max:
        raise ValueError(f"token id {int(ids.max())} does not fit {np.dtype(DTYPE).name}")
    path = shard_path(data_dir, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ids.astype(DTYPE).tobytes()
    path.write_bytes(data)
    return {"tokens": int(ids.size), "sha256": hashlib.sha256(data).hexdigest()}


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_shards(data_dir):
    """Raise if any shard's size or sha256 differs from meta.json."""
    meta = load_meta(data_dir)
    for split in SPLITS:
        expected = meta["splits"][split]
        path = shard_path(data_dir, split)
        count = path.stat().st_size // np.dtype(DTYPE).itemsize
        if count != expected["tokens"] or file_sha256(path) != expected["sha256"]:
            raise ValueError(f"{path} does not match meta.json (re-run preprocessing)")


def write_meta(data_dir, meta):
    path = Path(data_dir) / "meta.json"
    path.write_text(json.dumps(meta, indent=1))
