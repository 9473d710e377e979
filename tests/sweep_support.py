"""Helpers for the tests that run real sweeps: a tiny-preset sweep in this process, or its command line."""

import os
import signal
import sys
from pathlib import Path

import ray.cloudpickle
from ray import tune

from conftest import REPO
from sweep.config import load_config, trial_space
from sweep.experiment import experiment_path, run_config, trainable, tune_config, write_sweep_file
from sweep.run import data_summary
from sweep.trial import TuneTrial, trial_threads

# Tune ships the trainables below to its workers by value: they are not importable there.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def run_sweep_in_process(data_dir, storage, name, overrides=(), budget_s_of_size=None, train_fn=None,
                         tracker=None):
    """A tiny-preset sweep on the session's local Ray, built as sweep/run.py builds it; returns
    (ResultGrid, path). budget_s_of_size gives chosen sizes a time budget of their own; train_fn replaces
    the trainable; tracker is --log's value."""
    config = load_config("tiny", list(overrides))
    path = experiment_path(storage, name)
    write_sweep_file(path, {"name": name, "preset": "tiny", "overrides": list(overrides),
                            "config": config.to_dict(), "data": data_summary(data_dir, config)})
    space = trial_space(config, str(data_dir))
    if budget_s_of_size:
        budget = config.train.time_budget_s
        space["train"]["time_budget_s"] = tune.sample_from(
            lambda spec: budget_s_of_size.get(spec.config["size"], budget))
    tuner = tune.Tuner(trainable(config, use_gpu=False, **({"train_fn": train_fn} if train_fn else {})),
                       param_space=space, tune_config=tune_config(config),
                       run_config=run_config(config, name, storage, verbose=0, tracker=tracker))
    return tuner.fit(), Path(path)


def crashing_trial(crash_at_step):
    """A trainable whose first attempt kills its own process after crash_at_step steps, as a lost worker
    would die mid-epoch."""

    class Crashing(TuneTrial):
        def __init__(self, config):
            self.first_attempt = tune.get_checkpoint() is None
            super().__init__(config)

        def train_one_step(self):
            super().train_one_step()
            if self.step == crash_at_step and self.first_attempt:
                os.kill(os.getpid(), signal.SIGKILL)

    def train(config):
        import torch

        torch.set_num_threads(trial_threads())
        Crashing(config).run()

    return train


def sweep_command(data_dir, storage, name, overrides=()):
    """The sweep/run.py command line of a tiny-preset sweep, for tests that run it as a user does."""
    command = [sys.executable, str(REPO / "sweep" / "run.py"), "--data", str(data_dir), "--preset", "tiny",
               "--storage", str(storage), "--name", name, "--quiet"]
    for override in overrides:
        command += ["--set", override]
    return command
