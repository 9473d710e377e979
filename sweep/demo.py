"""The laptop demo, what `python sweep/run.py` runs with no --data: the bundled corpus prepared on a local Ray,
the sweep, a short best-model run with samples, and the analysis report."""

import sys
import time
from pathlib import Path

from analysis.run import NoUsableTrialError, analyze
from preprocessing.pipeline import DifferentRunError, prepare
from sweep.best import best_main
from sweep.config import ConfigError, load_config
from sweep.run import claim_new_sweep, connect_ray, exit_code, fail, fit, new_sweep

DEMO_DATA = Path("data/music21")
DEMO_BEST_BUDGET = "300s"  # at most: on 2 CPUs gpt-cpu-large trains its 3 epochs (best.max_epochs) in ~210 s


def prepare_demo_data():
    """The bundled corpus, prepared into data/music21 on the Ray this command runs: once, and again
    when this version prepares it differently (conversion, tokenizer, settings or corpus changed)."""
    print(f"The bundled music21 corpus, in {DEMO_DATA} (preparing it takes a few minutes, once):", flush=True)
    try:
        prepare(["music21"], DEMO_DATA)
    except DifferentRunError as error:  # the folder is this command's own copy of the corpus
        print(f"{DEMO_DATA} was prepared with different {', '.join(error.differing)}: preparing it again", flush=True)
        prepare(["music21"], DEMO_DATA, overwrite=True)


def run_demo(args):
    try:
        load_config(args.preset, args.set)  # a bad value stops the demo before its minutes of preparation
    except ConfigError as error:
        fail(error)
    began = time.perf_counter()
    use_gpu = connect_ray()
    prepare_demo_data()
    config, summary, path = claim_new_sweep(args, DEMO_DATA)
    tuner = new_sweep(args, config, summary, path, use_gpu)
    seconds = {"preparation": time.perf_counter() - began}
    results = fit(tuner, path)
    seconds["sweep"] = time.perf_counter() - began - sum(seconds.values())
    if not results.num_errors:
        print(f"Best-model run ({DEMO_BEST_BUDGET}): test loss and samples into {path}/best", flush=True)
        best_main(["--data", str(DEMO_DATA), "--from", str(path), "--time-budget", DEMO_BEST_BUDGET, "--constrained"])
    seconds["best model"] = time.perf_counter() - began - sum(seconds.values())
    try:
        print(f"Report: {analyze(path)}")
    except NoUsableTrialError as error:
        print(f"No report: {error}", file=sys.stderr)
    seconds["report"] = time.perf_counter() - began - sum(seconds.values())
    print("Wall time: " + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items())
          + f", total {time.perf_counter() - began:.0f} s")
    print(f"Results: {path}")
    return exit_code(results, path)
