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
    with ShardWriter(data_dir, split) as writer:
        writer.write(ids)
    return writer.entry


class ShardWriter:
    """Streams one split's ids to disk in pieces; .entry is its meta.json entry once closed."""

    def __init__(self, data_dir, split):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.path = shard_path(data_dir, split)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "wb")
        self.digest = hashlib.sha256()
        self.tokens = 0
        self.entry = None

    def write(self, ids):
        ids = np.asarray(ids)
        if ids.size and (int(ids.max()) > np.iinfo(DTYPE).max or int(ids.min()) < 0):
            raise ValueError(f"token ids must fit {np.dtype(DTYPE).name}, got {int(ids.min())}..{int(ids.max())}")
        data = ids.astype(DTYPE).tobytes()
        self.file.write(data)
        self.digest.update(data)
        self.tokens += ids.size

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()
        self.entry = {"tokens": int(self.tokens), "sha256": self.digest.hexdigest()}


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
