"""Token shards on disk: `tokens/<split>.bin` (uint16 ids) described by `meta.json`.

This is the reader the sweep uses; the pipeline writes through `ShardWriter` and `write_meta`.
"""

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np

from preprocessing import storage
from preprocessing.storage import atomic_path, write_text

SPLITS = ("train", "val", "test")
DTYPE = np.uint16
REPREPARE = "prepare the data again (preprocessing/run.py with --overwrite)"


def shard_path(data_dir, split):
    return Path(data_dir) / "tokens" / f"{split}.bin"


class DataError(ValueError):
    """Prepared data that is missing or damaged; the message names the file and the fix."""


def load_meta(data_dir):
    """meta.json of a prepared data folder, local or on object storage."""
    path = storage.join(data_dir, "meta.json")
    try:
        return json.loads(storage.read_bytes(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: is {data_dir} a prepared data folder?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}): {REPREPARE}") from None


def read_split(data_dir, split):
    """The token ids of one split as a read-only memmap."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return np.memmap(shard_path(data_dir, split), dtype=DTYPE, mode="r")


class ShardWriter:
    """Streams one split's ids to disk in pieces; .entry is its meta.json entry once closed. The shard gets its
    name only once whole (storage.atomic_path)."""

    def __init__(self, data_dir, split):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.closing = contextlib.ExitStack()  # closes the file, then names it, or removes it on any error
        temporary = self.closing.enter_context(atomic_path(shard_path(data_dir, split)))
        self.file = self.closing.enter_context(open(temporary, "wb"))
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
        self.closing.__exit__(*exc)
        self.entry = {"tokens": int(self.tokens), "sha256": self.digest.hexdigest()}


def verify_shards(data_dir):
    """Check prepared data before any training: meta.json with a vocabulary that fits the dtype, and for every
    split a non-empty shard of the size and sha256 meta.json gives, whose ids are all in the vocabulary.
    Raises DataError naming the file; returns meta.json's content. One read of each shard."""
    meta = load_meta(data_dir)
    meta_path = Path(data_dir) / "meta.json"
    vocab_size = meta.get("vocab_size")
    if not isinstance(vocab_size, int) or not 2 <= vocab_size <= np.iinfo(DTYPE).max + 1:
        raise DataError(f"{meta_path}: vocab_size {vocab_size!r} does not fit {np.dtype(DTYPE).name} token ids: "
                        f"{REPREPARE}")
    splits = meta.get("splits")
    missing = [split for split in SPLITS if not isinstance(splits, dict) or split not in splits]
    if missing:
        raise DataError(f"{meta_path} describes no {', '.join(missing)} split: {REPREPARE}")
    for split in SPLITS:
        verify_shard(shard_path(data_dir, split), splits[split], vocab_size)
    return meta


def verify_shard(path, expected, vocab_size):
    if not path.is_file():
        raise DataError(f"{path} is missing: {REPREPARE}")
    size = path.stat().st_size
    itemsize = np.dtype(DTYPE).itemsize
    if size % itemsize or size // itemsize != expected.get("tokens"):
        raise DataError(f"{path} holds {size} bytes, but meta.json gives {expected.get('tokens')} tokens of "
                        f"{itemsize} bytes: the file is cut short or damaged; {REPREPARE}")
    if size == 0:
        raise DataError(f"{path} is empty: its split has no tune (prepare the data with more input files or a "
                        f"--split that gives it a share)")
    digest, largest = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            digest.update(block)
            largest = max(largest, int(np.frombuffer(block, dtype=DTYPE).max()))
    if digest.hexdigest() != expected.get("sha256"):
        raise DataError(f"{path} does not match the sha256 in meta.json: the file is damaged; {REPREPARE}")
    if largest >= vocab_size:
        raise DataError(f"{path} holds token id {largest}, outside the vocabulary of {vocab_size}: {REPREPARE}")


def write_meta(data_dir, meta):
    write_text(Path(data_dir) / "meta.json", json.dumps(meta, indent=1))
