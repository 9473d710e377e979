"""Where trials read their shards: a path every node sees as is, or an object-store URI copied once per node.

URIs go through pyarrow's filesystems (s3://, gs://, hdfs://, file://): meta.json and tokens/*.bin are fetched
into a node-local cache keyed by the shards' sha256, then checked against meta.json.
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from preprocessing.shards import SPLITS, verify_shards

CACHE = Path(os.environ.get("MUSIC_SCALING_CACHE", Path(tempfile.gettempdir()) / "music-scaling-data"))


def is_uri(location):
    return "://" in str(location)


def resolve_location(location):
    """What trials get: an absolute path (they may run in another working directory) or the URI."""
    return str(location) if is_uri(location) else str(Path(location).resolve())


def local_data_dir(location):
    """A local folder holding meta.json and tokens/ for `location` (a path or a URI)."""
    if not is_uri(location):
        return Path(location)
    import pyarrow.fs

    filesystem, root = pyarrow.fs.FileSystem.from_uri(str(location))
    with filesystem.open_input_stream(f"{root}/meta.json") as f:
        meta_bytes = f.read()
    meta = json.loads(meta_bytes)
    key = hashlib.sha256("".join(meta["splits"][s]["sha256"] for s in SPLITS).encode()).hexdigest()[:16]
    local = CACHE / key
    if not (local / "meta.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CACHE))
        (staging / "tokens").mkdir()
        for split in SPLITS:
            pyarrow.fs.copy_files(f"{root}/tokens/{split}.bin", str(staging / "tokens" / f"{split}.bin"),
                                  source_filesystem=filesystem)
        (staging / "meta.json").write_bytes(meta_bytes)
        verify_shards(staging)
        try:
            staging.rename(local)
        except OSError:  # another trial on this node finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    return local
