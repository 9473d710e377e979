"""Fixtures for the whole suite: the real MIDI files in tests/data/midi (or the bigger folder that
MUSIC_SCALING_MIDI names, of the same layout), one local Ray, a prepared data folder and a micro sweep."""

import os
from pathlib import Path

import pytest
import ray
import torch

REPO = Path(__file__).resolve().parents[1]
MIDI_DIR = Path(os.environ.get("MUSIC_SCALING_MIDI", REPO / "tests" / "data" / "midi"))


@pytest.fixture(scope="session")
def midi_dir():
    if not MIDI_DIR.is_dir():
        pytest.fail(f"real MIDI files not found at {MIDI_DIR} (set MUSIC_SCALING_MIDI)")
    return MIDI_DIR


@pytest.fixture
def one_thread():
    # Tiny models on a 2-core machine: a second intra-op thread only adds contention.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session; tests that need a cluster of their own start it in a subprocess."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def sweep_data(midi_dir, ray_local, tmp_path_factory):
    """A data folder prepared by the real pipeline from the first 30 real POP909 files (~230k train tokens,
    of which the tiny preset's epoch takes the first 12k)."""
    from preprocessing.pipeline import prepare

    files = sorted(str(p) for p in (midi_dir / "pop909").glob("*.mid"))[:30]
    out = tmp_path_factory.mktemp("sweep-data") / "pop909"
    prepare(files, out, split="0.8,0.1,0.1", quiet=True)
    return out


MICRO_SIZES = ("cpu-tiny", "cpu-small", "cpu-medium", "cpu-large", "cpu-xl")
TRUNCATED_SIZE = "cpu-xl"  # its trials get a budget too small for one epoch


@pytest.fixture(scope="session")
def micro_sweep(sweep_data, ray_local, tmp_path_factory):
    """results/<NAME>/ of a finished real sweep on the tiny preset: GPT and LSTM at the five demo sizes, the
    largest of them cut by its time budget. Read by the sweep's and the analysis' tests."""
    from sweep_support import run_sweep_in_process

    results, path = run_sweep_in_process(sweep_data, tmp_path_factory.mktemp("results"), "micro",
                                         [f"sizes=[{','.join(MICRO_SIZES)}]"], {TRUNCATED_SIZE: 1e-3})
    assert results.num_errors == 0, results.errors
    return path
