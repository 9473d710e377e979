"""The sweep's plan, printed before any work: each trial's tokens and FLOPs, and what they cost: GPU-hours on
A100 and H100 at an assumed MFU, and for the CPU sizes the wall time on this machine from a measured throughput.
"""

import os
import time

import pandas as pd
import torch

from models import DEMO_SIZES, TrainStep, build_model
from models.mfu import peak_flops
from sweep.batches import epoch_windows, positions_per_target, window_targets
from sweep.config import trial_points

# Assumed model FLOPs utilisation in bf16: nanoGPT-style GPTs reach ~40% on A100/H100; cuDNN LSTMs far less.
ASSUMED_MFU = {"gpt": 0.40, "lstm": 0.20}
GPUS = ("A100", "H100")
TRIAL_OVERHEAD_S = 1.0  # a CPU trial's data load, model build and checkpoints beyond its steps, in a reused actor (demo)
MEASURED_STEPS = 3
PRINT_EACH_UP_TO = 40  # larger plans are printed per model


def epoch_tokens(train, train_tokens, data_fraction):
    """Tokens one epoch of a trial predicts (sweep.batches.EpochWindows)."""
    windows = epoch_windows(train_tokens, train.block_size, data_fraction, train.max_train_tokens)
    return windows * window_targets(train.block_size)


def make_plan(config, meta):
    """One row per trial: its point, parameters, epoch tokens, FLOPs (training plus validation passes) and
    GPU-hours at ASSUMED_MFU."""
    train, splits = config.train, meta["splits"]
    rows = []
    with torch.device("meta"):
        models = {(a, s): build_model(a, s, meta["vocab_size"], block_size=train.block_size)
                  for a in config.archs for s in config.sizes}
    for point in trial_points(config):
        model = models[point.arch, point.size]
        tokens = epoch_tokens(train, splits["train"]["tokens"], point.data_fraction)
        # FLOPs per token predicted: the model also reads each window's header context
        per_token = model.flops_per_token() * positions_per_target(train.block_size)
        validation = (train.val_points + 1) * splits["val"]["tokens"] * per_token / 3  # forward only
        flops = per_token * tokens + validation
        row = {**vars(point), "params": model.num_params(), "tokens": tokens, "flops": flops}
        for gpu in GPUS:
            row[f"{gpu}_hours"] = flops / (peak_flops(gpu) * ASSUMED_MFU[point.arch]) / 3600
        rows.append(row)
    return pd.DataFrame(rows)


def measured_tokens_per_s(config, vocab_size):
    """{(arch, size): training tokens predicted per second} of a few real steps here, at the preset's batch and
    block size, on the threads a trial gets."""
    train, threads = config.train, torch.get_num_threads()
    torch.set_num_threads(max(1, int(config.resources.cpus_per_trial)))
    speeds = {}
    try:
        for arch in config.archs:
            for size in config.sizes:
                model = build_model(arch, size, vocab_size, block_size=train.block_size)
                step = TrainStep(model, "cpu", 1e-3, train.betas, train.weight_decay, train.grad_clip)
                batch = torch.randint(vocab_size, (train.batch_size, train.block_size + 1))
                step(batch[:, :-1], batch[:, 1:], 1e-3)  # warm-up
                began = time.perf_counter()
                for _ in range(MEASURED_STEPS):
                    float(step(batch[:, :-1], batch[:, 1:], 1e-3))
                positions = MEASURED_STEPS * batch[:, 1:].numel()
                speeds[arch, size] = positions / positions_per_target(train.block_size) / (time.perf_counter() - began)
    finally:
        torch.set_num_threads(threads)
    return speeds


def add_cpu_estimate(plan, config, meta):
    """Adds cpu_s per trial (steps at the measured speed, validation at three times it, plus overhead) and
    returns the wall time of the whole plan on this machine's CPUs, trials packed by cpus_per_trial."""
    speeds = measured_tokens_per_s(config, meta["vocab_size"])
    val_tokens = (config.train.val_points + 1) * meta["splits"]["val"]["tokens"]
    plan["cpu_s"] = [row.tokens / speeds[row.arch, row.size] + val_tokens / (3 * speeds[row.arch, row.size])
                     + TRIAL_OVERHEAD_S for row in plan.itertuples()]
    slots = max(1, int((os.cpu_count() or 1) // config.resources.cpus_per_trial))
    if config.max_concurrent_trials:
        slots = min(slots, config.max_concurrent_trials)
    return plan["cpu_s"].sum() / slots


def plan_table(plan):
    """The rows to print: every trial of a small plan, else one row per model."""
    if len(plan) <= PRINT_EACH_UP_TO:
        return plan
    grouped = plan.groupby(["arch", "size"], sort=False)
    table = grouped[["tokens", "flops", *[c for c in plan if c.endswith(("_hours", "cpu_s"))]]].sum()
    return table.assign(trials=grouped.size(), params=grouped["params"].first()).reset_index()


def format_plan(plan, cpu_wall_s=None):
    lines = [f"Plan: {len(plan)} trials, {plan['tokens'].sum():.3g} training tokens, {plan['flops'].sum():.3g} FLOPs; "
             + ", ".join(f"{plan[f'{gpu}_hours'].sum():.3g} {gpu} GPU-hours" for gpu in GPUS)
             + f" (at an assumed MFU of {ASSUMED_MFU['gpt']:.0%} for GPT, {ASSUMED_MFU['lstm']:.0%} for LSTM)"]
    if cpu_wall_s is not None:
        lines.append(f"On this machine's {os.cpu_count()} CPUs: about {cpu_wall_s / 60:.0f} minutes "
                     f"(from {MEASURED_STEPS} measured steps of each model, {TRIAL_OVERHEAD_S:.0f} s a trial beyond)")
    table = plan_table(plan)
    columns = [c for c in ("arch", "size", "trials", "learning_rate", "data_fraction", "seed", "params", "tokens",
                           "flops", "A100_hours", "H100_hours", "cpu_s") if c in table]
    lines.append(table[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    return "\n".join(lines)


def runs_on_cpu_here(config):
    """True for the demo's sizes on a machine without a GPU: a measured CPU estimate is then worth its seconds."""
    return not torch.cuda.is_available() and all(size in DEMO_SIZES for size in config.sizes)
