"""The Tune trial: one model, exactly one epoch over train.bin, reported to Tune under the contract's names.

A restarted trial (after a crash or a lost node) loads its last checkpoint and goes on at the saved step of
the same seeded window order, so across restarts every training window is seen exactly once. Tune's
`time_total_s` stopper is only a backstop, set a little later than the trial's own budget.
"""

import logging
import tempfile

import torch
from ray import tune

from preprocessing.shards import load_meta, read_split
from sweep.config import TrainConfig, TrialPoint
from sweep.data import local_data_dir
from sweep.trainer import Trainer


def trial_threads():
    """torch threads = the CPUs Tune reserved for this trial, so concurrent trials do not oversubscribe."""
    resources = tune.get_context().get_trial_resources().required_resources
    return max(1, int(resources.get("CPU", 1)))


def validation_steps(total_steps, val_points):
    """Steps after which to validate for the curves, spread evenly over the epoch; the last one is implied."""
    return {round(total_steps * k / (val_points + 1)) for k in range(1, val_points + 1)} - {0, total_steps}


class TuneTrial(Trainer):
    """Reports to Tune every report_every steps and at each validation; checkpoints at a report once both
    checkpoint_every steps and checkpoint_min_s seconds have passed (GPT-XL's checkpoint is 1.2 GB), and
    at the end."""

    def __init__(self, config):
        train = TrainConfig(**config["train"])
        data_dir = local_data_dir(config["data"])
        super().__init__(train, TrialPoint.of(config), load_meta(data_dir), read_split(data_dir, "train"),
                         read_split(data_dir, "val"), train.time_budget_s)
        self.validation_steps = validation_steps(self.windows.steps, train.val_points)
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                self.restore(directory)
        self.steps_since_checkpoint, self.last_checkpoint_s = 0, self.wall_before

    def progressed(self):
        self.report()

    def validated(self, val):
        self.report(val)

    def finished(self, val, truncated):
        self.report(val, truncated=truncated, final=True)

    def train_one_step(self):
        super().train_one_step()
        self.steps_since_checkpoint += 1

    def checkpoint_due(self, wall_s):
        return (self.steps_since_checkpoint >= self.train.checkpoint_every
                and wall_s - self.last_checkpoint_s >= self.train.checkpoint_min_s)

    def report(self, val=None, truncated=False, final=False):
        """The metrics, and a validation's (val) when one was made."""
        metrics = {**self.metrics(truncated), **(val or {})}
        if not (final or self.checkpoint_due(metrics["wall_s"])):
            tune.report(metrics)
            return
        self.steps_since_checkpoint, self.last_checkpoint_s = 0, metrics["wall_s"]
        with tempfile.TemporaryDirectory() as directory:
            self.save(directory)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))


def train_trial(config):
    """Tune's function trainable."""
    torch.set_num_threads(trial_threads())
    # Ray logs a line at INFO for every checkpoint a trial saves: noise beside Tune's own table of trials.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    TuneTrial(config).run()
