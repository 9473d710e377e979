"""The trainable: one model, exactly one epoch over train.bin, reported to Tune under the contract's names.

A restarted trial (after a crash or a lost node) loads its last checkpoint and goes on at the saved step of
the same seeded window order, so across restarts every training window is seen exactly once.
The trial watches its own time budget and stops early enough to validate and make its final report
before Tune's `time_total_s` stopper (a backstop, set a little later) would fire.
"""

import math
import os
import signal
import tempfile
import time

import torch
from ray import tune

from models import estimate_mfu
from preprocessing.shards import load_meta, read_split
from sweep.batches import EpochWindows
from sweep.data import local_data_dir
from sweep.training import (evaluate, learning_rate, load_state, make_train_step, peak_memory_mb, pick_device,
                            save_state)


def trial_threads():
    """torch threads = the CPUs Tune reserved for this trial, so concurrent trials do not oversubscribe."""
    resources = tune.get_context().get_trial_resources().required_resources
    return max(1, int(resources.get("CPU", 1)))


def validation_steps(total_steps, val_points):
    """Steps after which to validate for the curves, spread evenly over the epoch; the last one is implied."""
    return {round(total_steps * k / (val_points + 1)) for k in range(1, val_points + 1)} - {0, total_steps}


def epoch_tokens(data_dir, max_train_tokens):
    """train.bin, or its first max_train_tokens tokens when the preset caps the epoch (the CPU demo)."""
    tokens = read_split(data_dir, "train")
    return tokens[:max_train_tokens] if max_train_tokens else tokens


class Trial:
    def __init__(self, config):
        self.started = time.perf_counter()
        self.config = config
        data_dir = local_data_dir(config["data"])
        self.meta = load_meta(data_dir)
        self.val_tokens = read_split(data_dir, "val")
        self.windows = EpochWindows(epoch_tokens(data_dir, config["max_train_tokens"]), config["block_size"],
                                    config["batch_size"], config["seed"])
        self.device = pick_device()
        self.step_fn = make_train_step(config, self.meta["vocab_size"], self.device)
        self.model = self.step_fn.model
        self.progress = {"step": 0, "tokens_seen": 0, "wall_s": 0.0, "since_checkpoint": 0}
        checkpoint = tune.get_checkpoint()
        self.first_attempt = checkpoint is None
        if checkpoint is not None:
            with checkpoint.as_directory() as directory:
                self.progress = load_state(directory, self.step_fn, self.meta["vocab_sha256"])
        self.wall_before = self.progress["wall_s"]
        self.train_s = 0.0
        self.trained_tokens = 0
        self.trained_steps = 0
        self.val_s = None
        self.loss_sum, self.loss_steps = 0.0, 0

    def wall_s(self):
        return self.wall_before + time.perf_counter() - self.started

    def run(self):
        total = self.windows.steps
        curve_steps = validation_steps(total, self.config["val_points"])
        report_every = self.config["report_every"]
        while self.progress["step"] < total:
            if self.out_of_time():
                self.finish(truncated=True)
                return
            self.train_one_step(total)
            step = self.progress["step"]
            if step == self.config["crash_at_step"] and self.first_attempt:
                os.kill(os.getpid(), signal.SIGKILL)  # tests: a worker lost mid-epoch, after its last checkpoint
            if step in curve_steps:
                self.report(val_loss=self.validate())
            elif step % report_every == 0 and step < total:
                self.report()
        self.finish(truncated=False)

    def train_one_step(self, total):
        step = self.progress["step"]
        x, y = self.windows.batch(step)
        began = time.perf_counter()
        # The loss stays a tensor (no device sync per step); it is read at the next report.
        self.loss_sum = self.loss_sum + self.step_fn(x, y, learning_rate(step, total, self.config))
        self.loss_steps += 1
        self.train_s += time.perf_counter() - began
        self.trained_tokens += y.numel()
        self.trained_steps += 1
        self.progress["step"] += 1
        self.progress["tokens_seen"] += y.numel()
        self.progress["since_checkpoint"] += 1

    def out_of_time(self):
        """Would one more step plus the final validation overrun the budget?"""
        if not self.trained_steps:
            return False
        step_s = self.train_s / self.trained_steps
        # Before the first validation, guess it from training speed: a forward pass is ~1/3 of a step.
        val_s = self.val_s if self.val_s is not None else (
            len(self.val_tokens) * self.train_s / self.trained_tokens / 3)
        return self.wall_s() + 2 * step_s + 1.5 * val_s > self.config["time_budget_s"]

    def validate(self):
        began = time.perf_counter()
        loss = evaluate(self.step_fn, self.val_tokens, self.config["block_size"], self.config["val_batch_size"])
        self.val_s = time.perf_counter() - began
        return loss

    def finish(self, truncated):
        self.report(val_loss=self.validate(), truncated=truncated, final=True)

    def metrics(self, truncated):
        wall_s = self.wall_s()
        tokens_per_s = self.trained_tokens / self.train_s if self.train_s else 0.0
        flops_per_token = self.model.flops_per_token()
        return {
            "arch": self.config["arch"],
            "size": self.config["size"],
            "params": self.model.num_params(),
            "params_nonembed": self.model.num_params(non_embedding=True),
            "tokens_seen": self.progress["tokens_seen"],
            "epoch_fraction": self.progress["tokens_seen"] / self.windows.tokens_per_epoch,
            "train_loss": float(self.loss_sum) / self.loss_steps if self.loss_steps else math.nan,
            "wall_s": wall_s,
            "tokens_per_s": tokens_per_s,
            "flops": flops_per_token * self.progress["tokens_seen"],
            "mfu": estimate_mfu(flops_per_token * tokens_per_s, self.device),
            "peak_mem_mb": peak_memory_mb(self.device),
            "truncated_by_budget": truncated,
        }

    def checkpoint_due(self, wall_s):
        """At least checkpoint_every steps and checkpoint_min_s seconds since the last checkpoint (or the start).

        The floor in seconds is for big models on fast GPUs: GPT-XL's checkpoint (model and AdamW state) is
        1.2 GB and took 3.8 s to write on a CPU machine; every 500 steps of 64 x 256 tokens, it would come every
        ~27 s at 300k tokens/s, each then uploaded to the storage."""
        return (self.progress["since_checkpoint"] >= self.config["checkpoint_every"]
                and wall_s - self.progress["wall_s"] >= self.config["checkpoint_min_s"])

    def report(self, val_loss=None, truncated=False, final=False):
        metrics = self.metrics(truncated)
        if val_loss is not None:
            metrics["val_loss"] = val_loss
        self.loss_sum, self.loss_steps = 0.0, 0
        if final or self.checkpoint_due(metrics["wall_s"]):
            self.progress["since_checkpoint"] = 0
            self.progress["wall_s"] = metrics["wall_s"]
            with tempfile.TemporaryDirectory() as directory:
                save_state(directory, self.step_fn, self.progress, self.meta["vocab_sha256"])
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        else:
            tune.report(metrics)


def train_trial(config):
    """Tune's function trainable."""
    torch.set_num_threads(trial_threads())
    Trial(config).run()
