"""The GPU check, ready for the day a GPU is lent: `bash benchmarks/gpu_check.sh` (at most ~8 minutes on one H100,
no network). Goal: GPT-XL trains at >= 300k tokens/s on one H100.

1. models: benchmarks/bench_models.py at the five study sizes, GPT and LSTM, our step in bf16 with torch.compile:
   tokens/s, MFU, peak memory, warm-up (compile) time.
2. data: the bundled corpus in data/music21, prepared first if it is not there (about a minute on 16 cores).
3. sweep: sweep/run.py on it with the full preset's fractional GPU shares (tiny, small and medium: 0.25, 0.25,
   0.5) and a capped epoch: each trial's tokens/s, MFU and peak memory, and how many trials ran at once against
   what sweep.placement predicts from the shares.

One JSON (--out, written after each stage) and printed tables. `--device cpu` runs the same steps at CPU scale
(one tiny size, a few steps, a fake GPU for Ray to share out) as a dry run:

    bash benchmarks/gpu_check.sh
    bash benchmarks/gpu_check.sh --device cpu --data DIR      # DIR: any prepared data folder
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from sweep.config import load_config
from sweep.placement import max_concurrency, measured_span, schedule, tune_demands, waves
from sweep.results import load_results

REPO = Path(__file__).resolve().parents[1]
GOAL_TOKENS_PER_S = 300_000  # GPT-XL on one H100
STAGE_S = {"models": 240, "data": 90, "sweep": 140}  # caps that keep the whole check within 8 minutes
# XL first: if compiling the five GPTs outlasts the stage's cap, the goal's row is there already.
BENCH = {"cuda": ["--device", "cuda", "--compile", "--dtype", "bf16", "--sizes", "xl,large,medium,small,tiny",
                  "--steps", "10", "--rounds", "2"],
         "cpu": ["--device", "cpu", "--compile", "--dtype", "bf16", "--sizes", "cpu-tiny", "--steps", "2",
                 "--rounds", "1", "--warmup", "1"]}
SWEEP = {"cuda": ("full", ["sizes=[tiny,small,medium]", "train.max_train_tokens=1000000", "train.time_budget_s=60",
                           "train.val_points=1", "resources.cpus_per_trial=2"]),
         "cpu": ("tiny", ["sizes=[cpu-tiny,cpu-medium]", "resources.gpus_per_trial={cpu-tiny: 0.25, cpu-medium: 0.5}"])}
FAKE_GPU = {"GPU": 1}  # the dry run's Ray gets one GPU to share out; the trials train on CPU


def run(stage, command, env=None):
    """Run a stage's command within its cap; returns True when it finished in time and well."""
    print(f"== {stage}: {' '.join(command)}", flush=True)
    try:
        done = subprocess.run(command, cwd=REPO, env=env, timeout=STAGE_S[stage])
    except subprocess.TimeoutExpired:
        print(f"== {stage}: stopped after {STAGE_S[stage]} s", flush=True)
        return False
    return done.returncode == 0


def models_stage(device, out):
    path = out / "models.json"
    run("models", [sys.executable, "benchmarks/bench_models.py", *BENCH[device], "--json", str(path)])
    return json.loads(path.read_text()) if path.exists() else None


def data_stage(data):
    if (data / "meta.json").exists():
        return True
    return run("data", [sys.executable, "preprocessing/run.py", "--input", "music21", "--out", str(data)])


def sweep_stage(device, data, out):
    preset, overrides = SWEEP[device]
    command = [sys.executable, "sweep/run.py", "--data", str(data), "--preset", preset, "--name", "gpu-check",
               "--storage", str(out / "results"), "--quiet"] + [arg for o in overrides for arg in ("--set", o)]
    env = {**os.environ, **({} if device == "cuda" else {"RAY_OVERRIDE_RESOURCES": json.dumps(FAKE_GPU)})}
    if not run("sweep", command, env):
        return None
    trials, curves = load_results(out / "results" / "gpu-check")
    specs, demands = tune_demands(load_config(preset, overrides), use_gpu=True)
    gpus = torch.cuda.device_count() if device == "cuda" else FAKE_GPU["GPU"]
    predicted = schedule(demands, [(os.cpu_count(), gpus)])
    names = [f"{spec['arch']}-{spec['size']}" for spec in specs]
    rows = []
    for spec, (cpus, share) in zip(specs, demands):
        final = trials[(trials.arch == spec["arch"]) & (trials["size"] == spec["size"])].iloc[0]
        reports = curves[curves.trial == final.trial].to_dict("records")
        rows.append({"trial": f"{spec['arch']}-{spec['size']}", "gpu_share": share, "status": final.status,
                     "span_s": measured_span(reports),
                     **{k: clean(final[k]) for k in ("tokens_per_s", "mfu", "peak_mem_mb", "val_loss", "tokens_seen")}})
    first = min(row["span_s"][0] for row in rows)
    for row in rows:
        row["span_s"] = [round(t - first, 1) for t in row["span_s"]]
    return {"trials": rows, "gpus": gpus, "cpus": os.cpu_count(),
            "predicted_waves": [[names[i] for i in wave] for wave in waves(predicted)],
            "predicted_concurrency": max_concurrency(predicted),
            "measured_concurrency": max_concurrency([row["span_s"] for row in rows])}


def clean(value):
    """JSON-safe: numpy scalars as Python numbers, NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and value != value else value


def print_table(rows, columns):
    """rows (dicts) under columns (title, key, width, format spec); None prints as '-'."""
    print(" ".join(f"{title:>{width}}" for title, _, width, _ in columns))
    for row in rows:
        print(" ".join(f"{'-' if row[key] is None else format(row[key], spec):>{width}}"
                       for _, key, width, spec in columns))


def print_sweep(sweep):
    print(f"\nsweep: {len(sweep['trials'])} trials on {sweep['gpus']} GPU(s); at once: {sweep['measured_concurrency']} "
          f"(predicted {sweep['predicted_concurrency']}, waves {sweep['predicted_waves']})")
    rows = [{**r, "start": r["span_s"][0], "end": r["span_s"][1]} for r in sweep["trials"]]
    print_table(rows, [("trial", "trial", 16, ""), ("GPU", "gpu_share", 5, ""), ("status", "status", 10, ""),
                       ("tok/s", "tokens_per_s", 10, ",.0f"), ("MFU", "mfu", 6, ".1%"),
                       ("peak MB", "peak_mem_mb", 8, ".0f"), ("start s", "start", 8, ".1f"), ("end s", "end", 7, ".1f")])


def print_models(models):
    print(f"\nmodels: {models['device']}, batch {models['batch_size']}")
    print_table(models["rows"], [("arch", "arch", 5, ""), ("size", "size", 11, ""), ("params", "params", 12, ","),
                                 ("tok/s", "ours", 11, ",.0f"), ("MFU", "mfu", 6, ".1%"), ("peak MB", "peak_mb", 8, ".0f"),
                                 ("warm-up s", "warmup_s", 9, ".1f")])
    xl = [r["ours"] for r in models["rows"] if (r["arch"], r["size"]) == ("gpt", "xl")]
    if xl:
        verdict = "met" if xl[0] >= GOAL_TOKENS_PER_S else "NOT met"
        print(f"GPT-XL: {xl[0]:,.0f} tokens/s; goal {GOAL_TOKENS_PER_S:,}: {verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--data", default="data/music21", help="prepared data (the bundled corpus is prepared "
                                                               "here if missing)")
    parser.add_argument("--out", default=f"results/gpu-check-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: run on the GPU machine, or pass --device cpu for a dry run")
    out = (REPO / args.out).resolve()
    out.mkdir(parents=True)
    report = {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu", "torch": torch.__version__,
              "seconds": {}}
    began = time.perf_counter()
    for stage, step in (("models", lambda: models_stage(args.device, out)),
                        ("data", lambda: data_stage(REPO / args.data)),
                        ("sweep", lambda: sweep_stage(args.device, REPO / args.data, out))):
        report[stage] = step()
        report["seconds"][stage] = round(time.perf_counter() - began - sum(report["seconds"].values()), 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    if report["models"]:
        print_models(report["models"])
    if report["sweep"]:
        print_sweep(report["sweep"])
    print(f"\n{out / 'gpu_check.json'} ({', '.join(f'{k} {v:.0f} s' for k, v in report['seconds'].items())})")
    return 0 if report["models"] and report["sweep"] else 1


if __name__ == "__main__":
    sys.exit(main())
