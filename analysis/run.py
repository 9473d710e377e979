"""Analyse a sweep: python analysis/run.py results/NAME [--data DIR] [--samples DIR] [--include-truncated]

Writes results/NAME/analysis/{report.md, report.html, fits.json, trials.csv, curves.parquet, *.png, samples.json,
samples.csv, samples/}.
"""

import argparse
import json
import sys
import tempfile

from analysis.load import load_results, local_folder, read_sweep_config, report_location, staged_output
from analysis.media import sample_media
from analysis.page import write_page
from analysis.plots import make_plots
from analysis.report import write_report
from analysis.samples import sample_quality, shown_samples
from analysis.compute_optimal import frontier, isoflop_profiles, joint_fits
from analysis.scaling import fit_points, fit_trials, fits_to_json, usable_trials
from analysis.study import best_lr_law, lr_envelope
from analysis.verdict import verdict
from preprocessing import storage
from sweep.results import read_json

USAGE_ERROR = 2


def sweep_data_dir(sweep_config):
    """The data location the sweep recorded in sweep.json, or None."""
    data = sweep_config.get("data")
    return data.get("location") if isinstance(data, dict) else data


def best_metrics(results_dir):
    return read_json(storage.join(results_dir, "best", "metrics.json"))


def corpus_tokens(sweep_config):
    """The train split's tokens the sweep recorded (the corpus in hand), or None."""
    data = sweep_config.get("data")
    return data["splits"]["train"]["tokens"] if isinstance(data, dict) and "splits" in data else None


def study_results(used, fits, corpus_tokens_, seed=0):
    """What the grid adds to the L(N) fits: the learning-rate envelope and its law, the joint L(N, D) fits,
    IsoFLOP profiles, the compute-optimal frontier and the GPT-vs-LSTM verdict."""
    envelope = lr_envelope(used)
    joint = joint_fits(used, envelope, seed=seed)
    archs = sorted(fits)
    return {"envelope": envelope, "lr_law": best_lr_law(envelope), "joint": joint,
            "isoflop": isoflop_profiles(envelope), "frontier": frontier(joint, used, corpus_tokens_),
            "verdict": verdict(fits, fit_points(used), *archs[:2]) if len(archs) >= 2 else None}


def study_to_json(study):
    """fits.json's sections for the study (documented in the README)."""
    return {"lr_envelope": study["envelope"].to_dict(orient="records"), "best_lr_law": study["lr_law"],
            "joint_fits": {arch: {"fit": e["fit"].to_dict() if e["fit"] else None, "message": e["message"]}
                           for arch, e in study["joint"].items()},
            "isoflop": study["isoflop"], "frontier": study["frontier"], "verdict": study["verdict"]}


class NoUsableTrialError(ValueError):
    """Nothing to analyse yet: no trial finished with a validation loss."""


def planned_trials(sweep_config):
    """(arch, size) of every trial the sweep's config asked for; empty when sweep.json is missing."""
    config = sweep_config.get("config") or {}
    return [(arch, size) for arch in config.get("archs", []) for size in config.get("sizes", [])]


def missing_trials(sweep_config, trials):
    found = set(zip(trials["arch"], trials["size"]))
    return [f"{arch} {size}" for arch, size in planned_trials(sweep_config) if (arch, size) not in found]


def analyze(results_dir, data_dir=None, include_truncated=False, samples_dir=None, seed=0, n_boot=1000):
    """Analyse the sweep stored at results_dir (local or a URI); returns the location of report.md."""
    trials, curves = load_results(results_dir)
    used = usable_trials(trials, include_truncated)
    if used.empty:
        counts = ", ".join(f"{n} {status}" for status, n in trials["status"].value_counts().items())
        raise NoUsableTrialError(f"no usable trial in {results_dir} yet ({counts}): nothing to fit or report")
    sweep_config = read_sweep_config(results_dir)
    data_dir = data_dir or sweep_data_dir(sweep_config)
    with staged_output(results_dir) as out:
        trials.to_csv(out / "trials.csv", index=False)
        curves.to_parquet(out / "curves.parquet", index=False)
        fits = fit_trials(trials, include_truncated, seed=seed, n_boot=n_boot)
        study = study_results(used, fits, corpus_tokens(sweep_config), seed)
        study["per_note"] = fit_trials(trials, include_truncated, seed=seed, n_boot=n_boot, y="val_bits_per_note",
                                       scales=("params",))
        (out / "fits.json").write_text(json.dumps(
            {"include_truncated": include_truncated, "fits": fits_to_json(fits),
             "fits_bits_per_note": fits_to_json(study["per_note"]), **study_to_json(study)},
            indent=1, default=float))
        figures = make_plots(trials, curves, fits, study, out, include_truncated)
        with tempfile.TemporaryDirectory(prefix="samples-") as scratch:
            samples = samples_dir or local_folder(results_dir, "best/samples", scratch)
            quality = sample_quality(samples, out / "samples", data_dir) if samples else (None, None)
            media = sample_media(shown_samples(quality[0], samples), out / "samples") if samples else ([], None)
        if quality[1] is not None:
            (out / "samples.json").write_text(json.dumps(quality[1], indent=1))
            quality[0].to_csv(out / "samples.csv", index=False)
        write_report(out / "report.md", results_dir, trials, used, fits, study, figures, quality,
                     best_metrics(results_dir), include_truncated, missing_trials(sweep_config, trials))
        write_page(out, media)
    return report_location(results_dir)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the sweep's results folder (results/NAME) or an s3:// URI")
    parser.add_argument("--data", help="prepared data folder for the sample distances (default: sweep.json's)")
    parser.add_argument("--samples", help="a folder of .abc files to judge (default: results/NAME/best/samples)")
    parser.add_argument("--include-truncated", action="store_true",
                        help="fit trials cut by their time budget too (left out by default)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        report = analyze(args.results, args.data, args.include_truncated, args.samples)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    print(f"Report: {report}\nPage: {report_location(args.results, 'report.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
