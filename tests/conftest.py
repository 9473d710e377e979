"""Fixtures shared by the whole suite: the real MIDI files beside the repository and one local Ray."""

import os
from pathlib import Path

import pytest
import ray

REPO = Path(__file__).resolve().parents[1]
MIDI_DIR = Path(os.environ.get("MUSIC_SCALING_MIDI", REPO.parent / "shared" / "data" / "midi"))


@pytest.fixture(scope="session")
def midi_dir():
    if not MIDI_DIR.is_dir():
        pytest.fail(f"real MIDI files not found at {MIDI_DIR} (set MUSIC_SCALING_MIDI)")
    return MIDI_DIR


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session; tests that need a cluster of their own start it in a subprocess."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
