"""The command users type.

    python sweep/run.py                                   the demo: bundled corpus, CPU sizes, local Ray,
                                                          a short best-model run with samples, report
    python sweep/run.py --data DIR --preset full [--name NAME] [--storage DIR|s3://...] [--set key=value ...]
    python sweep/run.py --resume NAME [--storage ...]     continue an interrupted sweep
    python sweep/run.py best --data DIR (--from results/NAME | --model gpt-xl) --time-budget 2h

The config and the data folder are checked before Ray starts: a bad one stops with exit code 2.
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import ray

from preprocessing.shards import load_meta
from sweep.config import ConfigError, load_config, preset_names, validate
from sweep.data import is_uri, local_data_dir, resolve_location
from sweep.experiment import (experiment_path, new_tuner, read_sweep_file, restored_tuner, write_sweep_file)

DEMO_DATA = Path("data/music21")
DEMO_BEST_BUDGET = "90s"  # the demo's best-model run: enough for samples that look like tunes
RESULTS = Path("results")
USAGE_ERROR = 2


def parse_sweep_args(argv):
    parser = argparse.ArgumentParser(prog="sweep/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared data folder or object-store URI (default: the bundled "
                                       f"music21 corpus, prepared into {DEMO_DATA} when missing or stale)")
    parser.add_argument("--preset", default="demo", help=f"one of {', '.join(preset_names())}")
    parser.add_argument("--name", help="experiment name (default: <preset>-<date>-<time>)")
    parser.add_argument("--storage", default=str(RESULTS), help="results root: a folder or s3://... URI")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset value, e.g. train.learning_rate=1e-3 (repeatable)")
    parser.add_argument("--resume", metavar="NAME", help="continue the interrupted sweep NAME")
    parser.add_argument("--quiet", action="store_true", help="no progress table")
    return parser.parse_args(argv)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def data_summary(location):
    """meta.json's gist for sweep.json; raises ConfigError naming --data when it is not a prepared folder."""
    try:
        meta = load_meta(local_data_dir(location))
    except (FileNotFoundError, OSError, ValueError) as error:
        raise ConfigError("--data", str(error)) from None
    return {"location": resolve_location(location), "vocab_size": meta["vocab_size"],
            "vocab_sha256": meta["vocab_sha256"], "splits": meta["splits"]}


def prepare_demo_data():
    """The bundled corpus, prepared into data/music21 on the Ray this command runs: once, and again
    when this version prepares it differently (conversion, tokenizer, settings or corpus changed)."""
    from preprocessing.pipeline import DifferentRunError, prepare

    print(f"The bundled music21 corpus, in {DEMO_DATA} (preparing it takes a few minutes, once):", flush=True)
    began = time.perf_counter()
    try:
        prepare(["music21"], DEMO_DATA)
    except DifferentRunError as error:  # the folder is this command's own copy of the corpus
        print(f"{DEMO_DATA} was prepared with different {', '.join(error.differing)}: preparing it again", flush=True)
        prepare(["music21"], DEMO_DATA, overwrite=True)
    return time.perf_counter() - began


def connect_ray():
    """Join the running cluster (RAY_ADDRESS or one started with `ray start`), else start a local Ray."""
    context = ray.init(configure_logging=False)
    if context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}", flush=True)
    return ray.cluster_resources().get("GPU", 0) > 0


def start_sweep(args):
    demo = args.data is None
    try:
        config = load_config(args.preset, args.set)
        if not demo:
            summary = data_summary(args.data)
    except ConfigError as error:
        fail(error)
    use_gpu = connect_ray()
    prepare_s = prepare_demo_data() if demo else 0.0
    if demo:
        summary = data_summary(DEMO_DATA)
    name = args.name or f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    write_sweep_file(args.storage, name, {"name": name, "preset": args.preset, "overrides": args.set,
                                          "config": config, "data": summary})
    tuner = new_tuner(config, summary["location"], name, args.storage, use_gpu, verbose=0 if args.quiet else 1)
    return tuner, experiment_path(args.storage, name), prepare_s


def resume_sweep(args):
    path = experiment_path(args.storage, args.resume)
    try:
        record = read_sweep_file(path)
        config = validate(record["config"])
    except (FileNotFoundError, ConfigError) as error:
        fail(error)
    use_gpu = connect_ray()
    return restored_tuner(path, config, use_gpu), path


def run_demo_best(results_dir):
    """The demo's best-model run: the sweep's best trial retrained briefly, tested, sampled."""
    from sweep.best import best_main

    print(f"Best-model run ({DEMO_BEST_BUDGET}): test loss and samples into {results_dir}/best", flush=True)
    began = time.perf_counter()
    best_main(["--data", str(DEMO_DATA), "--from", str(results_dir), "--time-budget", DEMO_BEST_BUDGET])
    return time.perf_counter() - began


def run_analysis(results_dir):
    """The analysis report, when the analysis package is installed beside the sweep."""
    if is_uri(results_dir) or importlib.util.find_spec("analysis.run") is None:
        print("No analysis/ package here (or remote results): run python analysis/run.py on the results.")
        return
    from analysis.run import analyze

    print(f"Report: {analyze(results_dir)}")


def print_summary(results):
    rows = sorted((r.metrics.get("arch", "?"), r.metrics.get("size", "?"), r.metrics.get("val_loss", float("nan")),
                   r.metrics.get("tokens_seen", 0), r.metrics.get("truncated_by_budget")) for r in results)
    print(f"{'arch':6} {'size':12} {'val_loss':>9} {'tokens':>10} truncated")
    for arch, size, val_loss, tokens, truncated in rows:
        print(f"{arch:6} {size:12} {val_loss:9.4f} {tokens:10d} {truncated}")


def sweep_main(argv):
    args = parse_sweep_args(argv)
    began = time.perf_counter()
    if args.resume:
        tuner, path = resume_sweep(args)
        prepare_s = 0.0
    else:
        tuner, path, prepare_s = start_sweep(args)
    print(f"Results: {path} (continue an interrupted run with --resume {Path(path).name})", flush=True)
    sweep_began = time.perf_counter()
    results = tuner.fit()
    sweep_s = time.perf_counter() - sweep_began
    print_summary(results)
    best_s = run_demo_best(path) if args.data is None and not args.resume and not results.num_errors else 0.0
    report_began = time.perf_counter()
    run_analysis(path)
    print(f"Wall time: preparation {prepare_s:.0f} s, sweep {sweep_s:.0f} s, best model {best_s:.0f} s, "
          f"report {time.perf_counter() - report_began:.0f} s, total {time.perf_counter() - began:.0f} s")
    print(f"Results: {path}")
    if results.num_errors:
        print(f"{results.num_errors} trial(s) failed; see {path}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["best"]:
        from sweep.best import best_main

        return best_main(argv[1:])
    return sweep_main(argv)


if __name__ == "__main__":
    sys.exit(main())
