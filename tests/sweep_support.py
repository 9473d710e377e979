"""Helpers for the tests that run real sweeps: a tiny-preset sweep in this process, or its command line."""

import sys
from pathlib import Path

from ray import tune

from conftest import REPO
from sweep.config import load_config, trial_space
from sweep.experiment import experiment_path, run_config, trainable, tune_config, write_sweep_file
from sweep.run import data_summary


def run_sweep_in_process(data_dir, storage, name, overrides=(), budget_s_of_size=None):
    """A tiny-preset sweep on the session's local Ray, built as sweep/run.py builds it; returns
    (ResultGrid, path). budget_s_of_size gives chosen sizes a time budget of their own."""
    config = load_config("tiny", list(overrides))
    write_sweep_file(storage, name, {"name": name, "preset": "tiny", "overrides": list(overrides),
                                     "config": config, "data": data_summary(data_dir)})
    space = trial_space(config, str(data_dir))
    if budget_s_of_size:
        budget = config["train"]["time_budget_s"]
        space["time_budget_s"] = tune.sample_from(lambda spec: budget_s_of_size.get(spec.config["size"], budget))
    tuner = tune.Tuner(trainable(config, use_gpu=False), param_space=space, tune_config=tune_config(config),
                       run_config=run_config(config, name, storage, verbose=0))
    return tuner.fit(), Path(experiment_path(storage, name))


def sweep_command(data_dir, storage, name, overrides=()):
    """The sweep/run.py command line of a tiny-preset sweep, for tests that run it as a user does."""
    command = [sys.executable, str(REPO / "sweep" / "run.py"), "--data", str(data_dir), "--preset", "tiny",
               "--storage", str(storage), "--name", name, "--quiet"]
    for override in overrides:
        command += ["--set", override]
    return command
