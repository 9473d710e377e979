"""The versions that make or could change a result, recorded in run.json, meta.json and sweep.json.

Read from the installed packages' metadata (no torch or Ray import) and from midi2abc itself, whose output is the
corpus: CONVERTER names the two that must match for prepared data to be reused."""

import functools
import subprocess
from importlib import metadata

from preprocessing.abc_tools import midi2abc_path

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
    done = subprocess.run([str(midi2abc_path()), "-ver"], capture_output=True, text=True, timeout=30, env={})
    return done.stdout.split()[0] if done.returncode == 0 and done.stdout.strip() else "unknown"


def versions():
    """{"music-scaling", "symusic", "torch", "ray", "midi2abc"}: version strings of this installation."""
    return {**{name: package_version(name) for name in PACKAGES}, "midi2abc": midi2abc_version()}
