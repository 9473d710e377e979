"""The one training loop, shared by the sweep's trials and the best-model run.

A Trainer trains one model over seeded epochs of windows of the train split: the LR schedule, the data order,
validation over the whole validation split, the time budget, and the state a checkpoint holds. It stops early
enough to validate once more within its budget. Adapters react through three hooks: `progressed` every
report_every steps, `validated` at the validation steps they choose, `finished` after the final validation; the
validation hooks get its metrics (sweep.losses.loss_metrics: val_loss, bits per note and bar, loss per token group).
"""

import math
import resource
import time
from pathlib import Path

import torch

from models import TrainStep, build_model, estimate_mfu, model_from_payload, model_payload, speed_options
from sweep.batches import EpochWindows, TuneHeaders, evaluation_batches, positions_per_target
from sweep.losses import group_ids, loss_metrics
from sweep.results import TOKEN_GROUPS

STATE_FILE = "state.pt"


def pick_device():
    """cuda when this process was given a GPU (Ray sets CUDA_VISIBLE_DEVICES per trial), else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def cosine_learning_rate(step, total_steps, peak, floor, warmup_fraction):
    """Linear warmup over warmup_fraction of the steps, then cosine down to floor."""
    warmup = max(1, round(warmup_fraction * total_steps))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return floor + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - floor)


def peak_memory_mb(device):
    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Trainer:
    def __init__(self, train, point, meta, train_tokens, val_tokens, budget_s, epochs=1, anneal_by_time=False):
        """train: a TrainConfig; point: the TrialPoint (model, peak LR, data fraction, seed). anneal_by_time:
        the LR schedule follows the share of the budget spent when that is ahead of the share of steps done,
        so a run its budget cuts still decays its learning rate."""
        self.started = time.perf_counter()
        self.train, self.point, self.meta = train, point, meta
        self.arch, self.size = point.arch, point.size
        self.val = TuneHeaders(val_tokens, meta["vocab"])
        self.groups = torch.from_numpy(group_ids(meta["vocab"]))
        self.budget_s = budget_s
        self.anneal_by_time = anneal_by_time
        self.windows = EpochWindows(TuneHeaders(train_tokens, meta["vocab"]), train.block_size, train.batch_size,
                                    point.seed, epochs, point.data_fraction, train.max_train_tokens)
        self.validation_steps = set()
        self.device = pick_device()
        torch.manual_seed(point.seed)
        model = build_model(point.arch, point.size, meta["vocab_size"], block_size=train.block_size,
                            dropout=train.dropout)
        self.step_fn = TrainStep(model, self.device, point.learning_rate, train.betas, train.weight_decay,
                                 train.grad_clip, **speed_options(self.device, train.compile))
        self.model = self.step_fn.model
        self.step, self.tokens_seen, self.wall_before = 0, 0, 0.0
        self.train_s, self.trained_tokens, self.trained_steps = 0.0, 0, 0
        self.val_s = None
        self.loss_sum, self.loss_steps = 0.0, 0

    def wall_s(self):
        """Time this model has trained, across restarts."""
        return self.wall_before + time.perf_counter() - self.started

    def run(self):
        total = self.windows.steps
        while self.step < total:
            if self.out_of_time():
                return self.finish(truncated=True)
            self.train_one_step()
            if self.step in self.validation_steps:
                self.validated(self.validate())
            elif self.step % self.train.report_every == 0 and self.step < total:
                self.progressed()
        return self.finish(truncated=False)

    def finish(self, truncated):
        return self.finished(self.validate(), truncated)

    def progressed(self):
        """Every report_every steps, but at validation steps and the last."""

    def validated(self, val):
        """At each of validation_steps, with the validation's metrics."""

    def finished(self, val, truncated):
        """After the final validation; run() returns what this returns."""

    def learning_rate(self):
        total = self.windows.steps
        step = self.step
        if self.anneal_by_time:
            step = max(step, int(total * self.wall_s() / self.budget_s))
        peak = self.point.learning_rate
        return cosine_learning_rate(step, total, peak, peak * self.train.min_lr_ratio, self.train.warmup_fraction)

    def train_one_step(self):
        x, y = self.windows.batch(self.step)
        began = time.perf_counter()
        # The loss stays a tensor (no device sync per step); it is read at the next report.
        self.loss_sum = self.loss_sum + self.step_fn(x, y, self.learning_rate())
        self.loss_steps += 1
        self.train_s += time.perf_counter() - began
        self.trained_tokens += x.numel()  # positions processed, the header context's too: what speed and MFU count
        self.trained_steps += 1
        self.step += 1
        self.tokens_seen += int((y >= 0).sum())  # tokens predicted: what an epoch counts

    def out_of_time(self):
        """Would one more step plus the final validation overrun the budget?"""
        if not self.trained_steps:
            return False
        step_s = self.train_s / self.trained_steps
        # Before the first validation, guess it from training speed: a forward pass is ~1/3 of a step.
        val_s = self.val_s if self.val_s is not None else (
            len(self.val) * self.train_s / self.trained_tokens / 3)
        return self.wall_s() + 2 * step_s + 1.5 * val_s > self.budget_s

    def evaluate(self, headers):
        """(summed loss, tokens) per token group over a whole split (its TuneHeaders), every token predicted once."""
        sums = torch.zeros(len(TOKEN_GROUPS), dtype=torch.float64)
        counts = torch.zeros(len(TOKEN_GROUPS), dtype=torch.int64)
        for x, y in evaluation_batches(headers, self.train.block_size, self.train.val_batch_size):
            kept = y >= 0
            groups = self.groups[y[kept]]
            losses = self.step_fn.token_losses(x, y)[kept.to(self.device)].double().cpu()
            sums += torch.bincount(groups, losses, minlength=len(TOKEN_GROUPS))
            counts += torch.bincount(groups, minlength=len(TOKEN_GROUPS))
        return sums, counts

    def validate(self):
        began = time.perf_counter()
        metrics = loss_metrics("val", *self.evaluate(self.val), self.meta)
        self.val_s = time.perf_counter() - began
        return metrics

    def take_train_loss(self):
        """Mean training loss since the last call (NaN when no step was taken)."""
        loss = float(self.loss_sum) / self.loss_steps if self.loss_steps else math.nan
        self.loss_sum, self.loss_steps = 0.0, 0
        return loss

    def metrics(self, truncated):
        """The contract's metrics (all but the validation's) as they stand."""
        tokens_per_s = self.trained_tokens / self.train_s if self.train_s else 0.0
        flops_per_token = self.model.flops_per_token()
        return {
            "arch": self.arch,
            "size": self.size,
            "learning_rate": self.point.learning_rate,
            "data_fraction": self.point.data_fraction,
            "seed": self.point.seed,
            "epoch_tokens": self.windows.tokens_per_epoch,
            "params": self.model.num_params(),
            "params_nonembed": self.model.num_params(non_embedding=True),
            "tokens_seen": self.tokens_seen,
            "epoch_fraction": self.tokens_seen / self.windows.tokens_per_epoch,
            "train_loss": self.take_train_loss(),
            "wall_s": self.wall_s(),
            "tokens_per_s": tokens_per_s,
            "flops": flops_per_token * self.tokens_seen * positions_per_target(self.train.block_size),
            "mfu": estimate_mfu(flops_per_token * tokens_per_s, self.device),
            "peak_mem_mb": peak_memory_mb(self.device),
            "truncated_by_budget": truncated,
        }

    def save(self, directory):
        """Model, optimizer, progress (step, tokens, clock; the LR schedule and data order are functions of
        the step) and RNG state, in one weights_only-loadable file."""
        state = {
            "model": model_payload(self.model, self.meta["vocab_sha256"]),
            "optimizer": self.step_fn.state_dict(),
            "progress": {"step": self.step, "tokens_seen": self.tokens_seen, "wall_s": self.wall_s()},
            "rng": {"torch": torch.get_rng_state()},
        }
        if torch.cuda.is_available():
            state["rng"]["cuda"] = torch.cuda.get_rng_state()
        torch.save(state, Path(directory) / STATE_FILE)

    def restore(self, directory):
        """Go on from a checkpoint that save() wrote: same model, optimizer, step and clock."""
        state = torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)
        saved = model_from_payload(state["model"], self.meta["vocab_sha256"], source=str(directory))
        self.model.load_state_dict(saved.state_dict())
        self.step_fn.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state(state["rng"]["cuda"])
        progress = state["progress"]
        self.step, self.tokens_seen, self.wall_before = progress["step"], progress["tokens_seen"], progress["wall_s"]
