"""Shared sweep fixtures (no tests here): a small real data folder and one finished micro sweep.

`micro_sweep` is a real Tune run (GPT and LSTM at cpu-tiny on the `tiny` preset); its results folder is what
analysis/ tests can read. Both are session-scoped; move them to conftest.py to share them with other packages.
"""

import sys
from pathlib import Path

import pytest

from conftest import REPO
from preprocessing.pipeline import prepare
from sweep.config import load_config
from sweep.experiment import experiment_path, new_tuner, write_sweep_file
from sweep.run import data_summary

TEST_MIDI = 30  # real POP909 songs: ~100k train tokens, of which the tiny preset's epoch takes the first 12k


def run_sweep_in_process(data_dir, storage, name, overrides=()):
    """A tiny-preset sweep on the session's local Ray, as sweep/run.py does it; returns (ResultGrid, path)."""
    config = load_config("tiny", list(overrides))
    write_sweep_file(storage, name, {"name": name, "preset": "tiny", "overrides": list(overrides),
                                     "config": config, "data": data_summary(data_dir)})
    results = new_tuner(config, str(data_dir), name, storage, use_gpu=False, verbose=0).fit()
    return results, Path(experiment_path(storage, name))


def sweep_command(data_dir, storage, name, overrides=()):
    """The sweep/run.py command line of a tiny-preset sweep, for tests that run it as a user does."""
    command = [sys.executable, str(REPO / "sweep" / "run.py"), "--data", str(data_dir), "--preset", "tiny",
               "--storage", str(storage), "--name", name, "--quiet"]
    for override in overrides:
        command += ["--set", override]
    return command


@pytest.fixture(scope="session")
def sweep_data(midi_dir, ray_local, tmp_path_factory):
    """A data folder prepared by the real pipeline from the first real POP909 MIDI files."""
    files = sorted(str(p) for p in (midi_dir / "pop909").glob("*.mid"))[:TEST_MIDI]
    out = tmp_path_factory.mktemp("sweep-data") / "pop909"
    prepare(files, out, split="0.8,0.1,0.1", quiet=True)
    return out


@pytest.fixture(scope="session")
def micro_sweep(sweep_data, ray_local, tmp_path_factory):
    """A finished micro sweep: results/<NAME>/ of Tune with both archs at cpu-tiny."""
    results, path = run_sweep_in_process(sweep_data, tmp_path_factory.mktemp("results"), "micro")
    assert results.num_errors == 0, results.errors
    return path
