"""The results contract between sweep/ and analysis/: the metric names every trial reports, and the one reader
of a sweep's Ray Tune storage (a local folder or any URI that preprocessing.storage reads).

`trials`: one row per trial folder with the final value of every contract metric and a `status`:
  ok          finished, last report has val_loss
  truncated   stopped by the per-trial time budget (truncated_by_budget)
  no_val_loss last report has no val_loss
  errored     Tune marked the trial ERROR (or it left an error.txt and Tune's state is missing)
  unfinished  Tune still had it RUNNING/PENDING/PAUSED, or its last report line is cut short (still writing)
  no_reports  the trial never reported
`curves`: one row per report of every trial.
"""

import json
import math
import posixpath

import pandas as pd

from preprocessing import storage

METRICS = (
    "arch",
    "size",
    "learning_rate",
    "data_fraction",
    "seed",
    "epoch_tokens",
    "params",
    "params_nonembed",
    "tokens_seen",
    "epoch_fraction",
    "train_loss",
    "val_loss",
    "val_bits_per_note",
    "val_bits_per_bar",
    "wall_s",
    "tokens_per_s",
    "flops",
    "mfu",
    "peak_mem_mb",
    "truncated_by_budget",
)
# What the validation loss is broken down by: the kind of the target token (sweep/losses.py maps the tokenizer's
# kinds to these). Each gives val_loss_<group> (nats per token of the group) and val_share_<group> (its tokens'
# share of the split).
TOKEN_GROUPS = ("note", "length", "bar", "chord", "space", "header", "end", "other")
METRICS += tuple(f"val_{what}_{group}" for group in TOKEN_GROUPS for what in ("loss", "share"))
VALIDATION_METRICS = tuple(name for name in METRICS if name.startswith("val_"))  # in the reports that validate
GRID_FIELDS = ("arch", "size", "learning_rate", "data_fraction", "seed")
SWEEP_FILE = "sweep.json"
TUNE_FIELDS = ("training_iteration", "time_total_s", "timestamp")
NOT_TRIALS = {"analysis", "best"}  # folders the sweep and analysis add beside Tune's trial folders
UNFINISHED = {"RUNNING", "PENDING", "PAUSED"}


def read_json(location, missing=None):
    """A JSON file's content; `missing` when it does not exist; ValueError naming the file when it is no JSON."""
    try:
        text = storage.read_text(location)
    except FileNotFoundError:
        return missing
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{location} is not valid JSON ({error.msg}, line {error.lineno})") from None


def read_sweep_file(results_dir):
    """results_dir/sweep.json; FileNotFoundError when results_dir is no sweep's results folder."""
    record = read_json(storage.join(results_dir, SWEEP_FILE))
    if record is None:
        raise FileNotFoundError(f"{results_dir}/{SWEEP_FILE} not found: is {results_dir} a sweep's results folder?")
    return record


def trial_folders(results_dir):
    """Trial folders: sub-folders holding Tune's params.json."""
    root = storage.normalize(results_dir).rstrip("/")
    folders = [posixpath.dirname(f) for f in storage.list_files(root) if posixpath.basename(f) == "params.json"]
    return sorted(f for f in folders if posixpath.dirname(f) == root and posixpath.basename(f) not in NOT_TRIALS)


def parse_reports(text, source):
    """(one dict per line of a result.json, whether its last line is cut short). A cut last line is a trial
    still writing; a corrupt line before it raises naming the file and line."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    reports = []
    for number, line in enumerate(lines, start=1):
        try:
            reports.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                return reports, True
            raise ValueError(f"{source}: line {number} is not JSON ({err.msg})") from err
    return reports, False


def tune_states(results_dir):
    """{trial folder name: (Tune status, number of failures)} from the newest experiment_state file."""
    states = [f for f in storage.list_files(results_dir, recursive=False)
              if posixpath.basename(f).startswith("experiment_state-") and f.endswith(".json")]
    if not states:
        return {}
    state = read_json(max(states))
    found = {}
    try:
        for trial_json, runtime_json in state.get("trial_data", []):
            trial = json.loads(trial_json)
            failures = json.loads(runtime_json).get("num_failures", 0)
            found[posixpath.basename(trial.get("relative_logdir", ""))] = (trial.get("status"), failures)
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError):
        raise ValueError(f"{max(states)}: not a Tune experiment state this version can read") from None
    return found


def _metric_row(report):
    row = {name: report.get(name) for name in METRICS + TUNE_FIELDS}
    row["trial_id"] = report.get("trial_id")
    return row


def _is_missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _status(last, tune_status, has_error_file, cut_short):
    if tune_status == "ERROR" or (tune_status is None and has_error_file):
        return "errored"
    if tune_status in UNFINISHED or cut_short:
        return "unfinished"
    if last is None:
        return "no_reports"
    if _is_missing(last.get("val_loss")):
        return "no_val_loss"
    if last.get("truncated_by_budget"):
        return "truncated"
    return "ok"


def _error_message(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None  # the exception message is the traceback's last line


def read_or_none(location):
    try:
        return storage.read_text(location)
    except FileNotFoundError:
        return None


def load_results(results_dir):
    """(trials, curves) DataFrames for the Tune storage at results_dir."""
    if storage.kind(results_dir) != "dir":
        raise FileNotFoundError(f"folder not found: {results_dir}")
    states = tune_states(results_dir)
    trial_rows, curve_rows = [], []
    for folder in trial_folders(results_dir):
        name = posixpath.basename(folder)
        params = read_json(f"{folder}/params.json", {})
        reports, cut_short = parse_reports(read_or_none(f"{folder}/result.json"), f"{folder}/result.json")
        error_text = read_or_none(f"{folder}/error.txt")
        tune_status, failures = states.get(name, (None, None))
        for report in reports:
            curve_rows.append({"trial": name, **_metric_row(report)})
        last = reports[-1] if reports else None
        row = {"trial": name, **_metric_row(last or {})}
        placed = {"arch": params.get("arch"), "size": params.get("size"), **(params.get("cell") or {})}
        for name in GRID_FIELDS:  # a trial that never reported is still placed in the grid
            row[name] = placed.get(name) if _is_missing(row[name]) else row[name]
        row.update(status=_status(last, tune_status, error_text is not None, cut_short), tune_status=tune_status,
                   num_failures=failures, n_reports=len(reports), error=_error_message(error_text))
        trial_rows.append(row)
    if not trial_rows:
        raise FileNotFoundError(f"no Tune trial folders (with params.json) under {results_dir}")
    curve_columns = ["trial", *METRICS, *TUNE_FIELDS, "trial_id"]
    return _typed(pd.DataFrame(trial_rows)), _typed(pd.DataFrame(curve_rows, columns=curve_columns))


def _typed(frame):
    """Numbers as floats (None -> NaN), the budget flag as bool, so CSV and Parquet round-trip cleanly."""
    for name in frame.columns:
        if name in ("trial", "arch", "size", "trial_id", "status", "tune_status", "error"):
            frame[name] = frame[name].astype("object")
        elif name == "truncated_by_budget":
            frame[name] = frame[name].map(lambda v: bool(v) if not _is_missing(v) else False)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame
