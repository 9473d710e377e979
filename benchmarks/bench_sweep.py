"""Sweep speed, measured (not asserted).

1. Tokens/s of the one Trainer (sweep/trainer.py), run bare in this process and as a Ray Tune trial, against a
   bare loop of the same model steps on the same batches (no validation schedule, reports or budget), in
   this run: one epoch each (the preset's cap), one thread each, end to end (data, model build, steps, final
   validation). Goal: Tune / bare >= 0.9 on CPU.
2. With --demo: the demo's wall time (`python sweep/run.py` in a fresh folder), split into preparation,
   sweep, best model and report as the command prints them.

    python benchmarks/bench_sweep.py --data data/music21 [--model gpt-cpu-medium] [--tokens 200000] [--demo]
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ray
import torch

from preprocessing.shards import load_meta, read_split
from sweep.config import load_config, trial_points
from sweep.experiment import new_tuner
from sweep.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def bench_config(model, tokens):
    arch, _, size = model.partition("-")
    return load_config("demo", [f"archs=[{arch}]", f"sizes=[{size}]", f"train.max_train_tokens={tokens}",
                                "train.val_points=0", "grid.learning_rates=[3e-3]", "grid.data_fractions=[1.0]",
                                "grid.seeds=[1337]"])


def trainer(config, data_dir):
    t = config.train
    return Trainer(t, trial_points(config)[0], load_meta(data_dir), read_split(data_dir, "train"),
                   read_split(data_dir, "val"), t.time_budget_s)


def bare_loop(config, data_dir):
    """The irreducible work: build, one epoch of steps at a fixed LR, final validation; returns tokens/s."""
    torch.set_num_threads(int(config.resources.cpus_per_trial))
    began = time.perf_counter()
    run = trainer(config, data_dir)
    for step in range(run.windows.steps):
        x, y = run.windows.batch(step)
        loss = run.step_fn(x, y, config.grid.learning_rates[0])
    float(loss)
    run.validate()
    return run.windows.tokens_per_epoch / (time.perf_counter() - began)


def bare_trainer(config, data_dir):
    """The Trainer's own loop in this process; returns tokens/s."""
    torch.set_num_threads(int(config.resources.cpus_per_trial))
    began = time.perf_counter()
    run = trainer(config, data_dir)
    run.run()
    return run.tokens_seen / (time.perf_counter() - began)


def tune_trial(config, data_dir, storage):
    """The same work as one Tune trial; tokens/s over the trial's own wall time, and the fit() wall time."""
    began = time.perf_counter()
    results = new_tuner(config, str(Path(data_dir).resolve()), "bench", storage, use_gpu=False, verbose=0).fit()
    fit_s = time.perf_counter() - began
    final = results[0].metrics
    return final["tokens_seen"] / final["wall_s"], fit_s, final


def bench_tune_vs_bare(data_dir, model, tokens):
    config = bench_config(model, tokens)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as storage:
            bare = bare_loop(config, data_dir)
            plain = bare_trainer(config, data_dir)
            tuned, fit_s, final = tune_trial(config, data_dir, storage)
            bare_again = bare_loop(config, data_dir)  # before and after: the machine's load drifts
    finally:
        ray.shutdown()
    bare = (bare + bare_again) / 2
    print(f"model {model}, {final['tokens_seen']} tokens (one capped epoch), 1 thread each")
    print(f"bare loop          {bare:10.0f} tokens/s (mean of runs before and after)")
    print(f"Trainer, no Tune   {plain:10.0f} tokens/s   ratio {plain / bare:.3f}")
    print(f"Tune trial         {tuned:10.0f} tokens/s over the trial's wall time ({final['wall_s']:.1f} s)")
    print(f"ratio Tune / bare  {tuned / bare:10.3f}   (goal >= 0.9)")
    print(f"Tuner.fit() wall   {fit_s:10.1f} s (trial {final['wall_s']:.1f} s + Ray actor start and bookkeeping)")


def bench_demo():
    """The whole demo in a fresh folder: what a user waits for, broken into its parts."""
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        run = subprocess.run([sys.executable, str(REPO / "sweep" / "run.py"), "--quiet"], cwd=folder,
                             capture_output=True, text=True)
        total = time.perf_counter() - began
    line = next((l for l in run.stdout.splitlines() if l.startswith("Wall time:")), None)
    if run.returncode != 0 or line is None:
        print(run.stdout[-3000:], run.stderr[-3000:])
        raise SystemExit(f"demo failed with exit code {run.returncode}")
    parts = dict(re.findall(r"(preparation|sweep|best model|report) (\d+) s", line))
    print(f"demo: preparation {parts['preparation']} s, sweep {parts['sweep']} s, best model {parts['best model']} s, "
          f"report {parts['report']} s, whole command {total:.0f} s (goal <= 900 s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO / "data" / "music21"))
    parser.add_argument("--model", default="gpt-cpu-medium")
    parser.add_argument("--tokens", type=int, default=200_000, help="the capped epoch's tokens")
    parser.add_argument("--demo", action="store_true", help="also time the whole demo (~10-15 min)")
    args = parser.parse_args()
    bench_tune_vs_bare(args.data, args.model, args.tokens)
    if args.demo:
        bench_demo()


if __name__ == "__main__":
    main()
