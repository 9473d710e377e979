"""The versions that make or could change a result, recorded in run.json, meta.json and sweep.json.

Read from the installed packages' metadata (no torch or Ray import) and from midi2abc itself, whose output is the
corpus: CONVERTER names the two that must match for prepared data to be reused."""

import functools
from importlib import metadata

from preprocessing.abc_tools import midi2abc_path, run_binary

PACKAGES = ("music-scaling", "symusic", "torch", "ray")
CONVERTER = ("midi2abc", "symusic")


def package_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


@functools.cache
def midi2abc_version():
    """'3.64' from `midi2abc -ver` ('3.64 June 14 2025 midi2abc')."""
    done = run_binary([str(midi2abc_path()), "-ver"], timeout=30)
    output = done[1].decode("latin-1").split() if done and done[0] == 0 else []
    return output[0] if output else "unknown"


def versions():
    """{"music-scaling", "symusic", "torch", "ray", "midi2abc"}: version strings of this installation."""
    return {**{name: package_version(name) for name in PACKAGES}, "midi2abc": midi2abc_version()}
