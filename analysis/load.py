"""Where analysis reads a sweep's results and writes its own: the sweep's folder, local or on object storage.

The trials themselves are read by sweep.results, the one reader of Tune's storage.
"""

import contextlib
import shutil
import tempfile
from pathlib import Path

from preprocessing import storage
from sweep.results import SWEEP_FILE, load_results, read_json

__all__ = ["load_results", "local_folder", "read_sweep_config", "report_location", "staged_output"]


def read_sweep_config(results_dir):
    """results_dir/sweep.json as a dict, or {} when the sweep did not write one."""
    return read_json(storage.join(results_dir, SWEEP_FILE), {})


def local_folder(results_dir, sub, scratch):
    """A local path to results_dir/sub (downloaded into scratch when remote), or None if absent."""
    location = storage.join(results_dir, sub)
    if storage.kind(location) != "dir":
        return None
    return storage.copy_to_local(location, Path(scratch) / sub) if storage.is_uri(location) else Path(location)


@contextlib.contextmanager
def staged_output(results_dir):
    """A local folder to write the analysis into, published as results_dir/analysis only once all of it is
    written: a failed analysis leaves the previous one (or none), never half of a new one."""
    remote = storage.is_uri(results_dir)
    out = Path(tempfile.mkdtemp(prefix=".analysis-", dir=None if remote else results_dir))
    try:
        yield out
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    if remote:
        storage.upload(out, storage.join(results_dir, "analysis"))
        shutil.rmtree(out)
        return
    final = Path(results_dir) / "analysis"
    if final.exists():
        final = final.rename(Path(tempfile.mkdtemp(prefix=".analysis-old-", dir=results_dir)) / "analysis")
        out.rename(Path(results_dir) / "analysis")
        shutil.rmtree(final.parent)
    else:
        out.rename(final)


def report_location(results_dir, name="report.md"):
    location = storage.join(results_dir, "analysis", name)
    return location if storage.is_uri(results_dir) else Path(location)
