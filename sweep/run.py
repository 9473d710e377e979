"""The command users type.

    python sweep/run.py                                   the demo (sweep/demo.py): bundled corpus, CPU sizes,
                                                          local Ray, a short best-model run with samples, report
    python sweep/run.py --data DIR --preset full [--name NAME] [--storage DIR|s3://...] [--set key=value ...]
    python sweep/run.py --resume NAME [--storage ...]     continue an interrupted sweep
    python sweep/run.py best --data DIR (--from results/NAME | --model gpt-xl) --time-budget 2h
    python sweep/run.py sample --checkpoint results/NAME/best/checkpoint.pt --data DIR --prompt 'X:1\nK:D\n'

The config and the data folder are checked before Ray starts: a bad one stops with exit code 2.
"""

import argparse
import sys
import time
from pathlib import Path

import ray

from preprocessing import storage
from preprocessing.shards import verify_shards
from preprocessing.versions import versions
from sweep.config import ConfigError, check_fits, load_config, preset_names, validate
from sweep.data import local_data_dir
from sweep.experiment import (TRACKERS, check_tracker, claim, experiment_path, new_tuner, restored_tuner,
                              write_sweep_file)
from sweep.plan import add_cpu_estimate, format_plan, make_plan, runs_on_cpu_here
from sweep.results import read_sweep_file

RESULTS = Path("results")
USAGE_ERROR = 2


def parse_sweep_args(argv):
    parser = argparse.ArgumentParser(prog="sweep/run.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared data folder or object-store URI (default: the demo, on the "
                                       "bundled music21 corpus)")
    parser.add_argument("--preset", default="demo", help=f"one of {', '.join(preset_names())}")
    parser.add_argument("--name", help="experiment name (default: <preset>-<date>-<time>)")
    parser.add_argument("--storage", default=str(RESULTS), help="results root: a folder or s3://... URI")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a preset value, e.g. train.learning_rate=1e-3 (repeatable)")
    parser.add_argument("--resume", metavar="NAME", help="continue the interrupted sweep NAME")
    parser.add_argument("--plan", action="store_true", help="print the plan (trials, FLOPs, GPU-hours) and exit")
    parser.add_argument("--max-gpu-hours", type=float, metavar="H",
                        help="refuse a plan of more H100 GPU-hours than this (at the plan's assumed MFU)")
    parser.add_argument("--quiet", action="store_true", help="no progress table")
    parser.add_argument("--log", choices=TRACKERS, help="also send every trial's metrics to MLflow or Weights & "
                                                        "Biases (pip install -e '.[tracking]'); a resumed sweep "
                                                        "keeps the choice it started with")
    return parser.parse_args(argv)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


def data_summary(location, config):
    """meta.json's gist for sweep.json, once the data is verified and config's windows fit it; raises
    ConfigError naming --data when it is not a sound prepared folder."""
    try:
        meta = verify_shards(local_data_dir(location))
    except (FileNotFoundError, OSError, ValueError) as error:
        raise ConfigError("--data", str(error)) from None
    check_fits(config.train, meta["splits"]["train"]["tokens"])
    if "notes" not in meta["splits"]["val"]:
        print(f"note: {location} was prepared before meta.json recorded notes and bars: val_bits_per_note and "
              f"val_bits_per_bar will be NaN (prepare the data again to have them)", file=sys.stderr)
    return {"location": storage.normalize(location), "vocab_size": meta["vocab_size"],
            "vocab_sha256": meta["vocab_sha256"], "splits": meta["splits"]}


def connect_ray():
    """Join the running cluster (RAY_ADDRESS or one started with `ray start`), else start a local Ray."""
    context = ray.init(configure_logging=False)
    if context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}", flush=True)
    return ray.cluster_resources().get("GPU", 0) > 0


def claim_new_sweep(args, location):
    """(config, data summary, results folder) of a new sweep, all checked, its plan printed and the folder
    claimed, before Ray starts; a bad one stops the command, naming the field. --plan stops after the plan."""
    try:
        config = load_config(args.preset, args.set)
        name = args.name or f"{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        path = experiment_path(args.storage, name)
        summary = data_summary(location, config)
        check_tracker(args.log)
        check_plan(args, config, summary)
        claim(path, resume=False)
    except ConfigError as error:
        fail(error)
    return config, summary, path


def check_plan(args, config, summary):
    plan = make_plan(config, summary)
    cpu_wall_s = add_cpu_estimate(plan, config, summary) if runs_on_cpu_here(config) else None
    print(format_plan(plan, cpu_wall_s), flush=True)
    if args.plan:
        sys.exit(0)
    hours = plan["H100_hours"].sum()
    if args.max_gpu_hours is not None and hours > args.max_gpu_hours:
        raise ConfigError("--max-gpu-hours", f"the plan needs {hours:.3g} H100 GPU-hours, more than "
                                             f"{args.max_gpu_hours:g}: shrink the grid (--set grid...) or raise it")


def new_sweep(args, config, summary, path, use_gpu):
    """The Tuner of a new sweep, with its sweep.json written."""
    name = storage.normalize(path).rstrip("/").rsplit("/", 1)[-1]
    write_sweep_file(path, {"name": name, "preset": args.preset, "overrides": args.set,
                            "config": config.to_dict(), "data": summary, "versions": versions()})
    return new_tuner(config, summary["location"], name, args.storage, use_gpu, verbose=0 if args.quiet else 1,
                     tracker=args.log)


def start_sweep(args):
    config, summary, path = claim_new_sweep(args, args.data)
    return new_sweep(args, config, summary, path, connect_ray()), path


def resume_sweep(args):
    """The restored Tuner, once the folder is claimed and its sweep.json, name and data are checked. Tune
    unpickles the folder's tuner.pkl: a results folder is trusted like code."""
    try:
        path = experiment_path(args.storage, args.resume, "--resume")
        claim(path, resume=True)
        record = read_sweep_file(path)
        config = validate(record["config"])
        if record.get("name") != args.resume:
            raise ConfigError("--resume", f"{path}/sweep.json names the sweep {record.get('name')!r}, not "
                                          f"{args.resume!r}: the folder was renamed or its files mixed")
        data = data_summary(record["data"]["location"], config)
        if data["splits"] != record["data"]["splits"]:
            raise ConfigError("--resume", f"the data at {data['location']} changed since the sweep began")
    except (FileNotFoundError, ValueError, KeyError, TypeError) as error:
        fail(error)
    return restored_tuner(path, config, connect_ray()), path


def fit(tuner, path):
    print(f"Results: {path} (continue an interrupted run with --resume {Path(path).name})", flush=True)
    results = tuner.fit()
    rows = sorted((r.metrics.get("arch", "?"), r.metrics.get("size", "?"), r.metrics.get("val_loss", float("nan")),
                   r.metrics.get("tokens_seen", 0), r.metrics.get("truncated_by_budget")) for r in results)
    print(f"{'arch':6} {'size':12} {'val_loss':>9} {'tokens':>10} truncated")
    for arch, size, val_loss, tokens, truncated in rows:
        print(f"{arch:6} {size:12} {val_loss:9.4f} {tokens:10d} {truncated}")
    return results


def exit_code(results, path):
    if results.num_errors:
        print(f"{results.num_errors} trial(s) failed; see {path}", file=sys.stderr)
        return 1
    return 0


def sweep_main(argv):
    args = parse_sweep_args(argv)
    if args.data is None and not args.resume:
        from sweep.demo import run_demo

        return run_demo(args)
    tuner, path = resume_sweep(args) if args.resume else start_sweep(args)
    results = fit(tuner, path)
    print(f"Results: {path}\nAnalyse them with: python analysis/run.py {path}")
    return exit_code(results, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["best"]:
        from sweep.best import best_main

        return best_main(argv[1:])
    if argv[:1] == ["sample"]:
        from sweep.sample import sample_main

        return sample_main(argv[1:])
    return sweep_main(argv)


if __name__ == "__main__":
    sys.exit(main())
