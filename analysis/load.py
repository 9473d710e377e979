"""Read a sweep's Ray Tune storage (local folder or any pyarrow.fs URI such as s3://) into DataFrames.

`trials`: one row per trial folder with the final value of every contract metric and a `status`:
  ok          finished, last report has val_loss
  truncated   stopped by the per-trial time budget (truncated_by_budget)
  no_val_loss last report has no val_loss
  errored     Tune marked the trial ERROR (or it left an error.txt and Tune's state is missing)
  unfinished  Tune still had it RUNNING/PENDING/PAUSED (the sweep was interrupted)
  no_reports  the trial never reported
`curves`: one row per report of every trial.
"""

import json
import math
import posixpath
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from pyarrow import fs as pafs

from sweep.metrics import METRICS

TUNE_FIELDS = ("training_iteration", "time_total_s", "timestamp")
NOT_TRIALS = {"analysis", "best"}  # folders the sweep and analysis add beside Tune's trial folders
UNFINISHED = {"RUNNING", "PENDING", "PAUSED"}


def open_storage(results_dir):
    """(filesystem, root path) for a local folder or a URI understood by pyarrow.fs; raises if it is no folder."""
    results_dir = str(results_dir)
    if "://" in results_dir:
        filesystem, root = pafs.FileSystem.from_uri(results_dir)
    else:
        filesystem, root = pafs.LocalFileSystem(), str(Path(results_dir).resolve())
    info = filesystem.get_file_info(root)
    if info.type != pafs.FileType.Directory:
        raise FileNotFoundError(f"folder not found: {results_dir}")
    return filesystem, root


def read_text(filesystem, path):
    """The file's text, or None when it does not exist."""
    if filesystem.get_file_info(path).type != pafs.FileType.File:
        return None
    return read_bytes(filesystem, path).decode("utf-8")


def read_bytes(filesystem, path):
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


def list_entries(filesystem, folder):
    return filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))


def trial_folders(filesystem, root):
    """Trial folders: sub-folders holding Tune's params.json. Found from a listing of files, not of folders:
    on Google Cloud Storage, pyarrow lists no folder that lacks a marker object (apache/arrow#35993)."""
    root = root.rstrip("/")
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    folders = [posixpath.dirname(info.path) for info in filesystem.get_file_info(selector)
               if info.base_name == "params.json" and info.type == pafs.FileType.File]
    return sorted(f for f in folders if posixpath.dirname(f) == root and posixpath.basename(f) not in NOT_TRIALS)


def parse_reports(text, source):
    """One dict per line of a result.json; a corrupt line raises naming the file and line."""
    reports = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            reports.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: line {number} is not JSON ({err.msg})") from err
    return reports


def tune_states(filesystem, root):
    """{trial folder name: (Tune status, number of failures)} from the newest experiment_state file."""
    states = sorted(info.path for info in list_entries(filesystem, root)
                    if info.base_name.startswith("experiment_state-") and info.base_name.endswith(".json"))
    if not states:
        return {}
    state = json.loads(read_text(filesystem, states[-1]))
    found = {}
    for trial_json, runtime_json in state.get("trial_data", []):
        trial = json.loads(trial_json)
        failures = json.loads(runtime_json).get("num_failures", 0)
        found[Path(trial.get("relative_logdir", "")).name] = (trial.get("status"), failures)
    return found


def _metric_row(report):
    row = {name: report.get(name) for name in METRICS + TUNE_FIELDS}
    row["trial_id"] = report.get("trial_id")
    return row


def _is_missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _status(last, tune_status, has_error_file):
    if tune_status == "ERROR" or (tune_status is None and has_error_file):
        return "errored"
    if tune_status in UNFINISHED:
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


def load_results(results_dir):
    """(trials, curves) DataFrames for the Tune storage at results_dir."""
    filesystem, root = open_storage(results_dir)
    states = tune_states(filesystem, root)
    trial_rows, curve_rows = [], []
    for folder in trial_folders(filesystem, root):
        name = Path(folder).name
        params = json.loads(read_text(filesystem, f"{folder}/params.json"))
        reports = parse_reports(read_text(filesystem, f"{folder}/result.json"), f"{folder}/result.json")
        error_text = read_text(filesystem, f"{folder}/error.txt")
        tune_status, failures = states.get(name, (None, None))
        for report in reports:
            curve_rows.append({"trial": name, **_metric_row(report)})
        last = reports[-1] if reports else None
        row = {"trial": name, **_metric_row(last or {})}
        row["arch"] = row["arch"] or params.get("arch")
        row["size"] = row["size"] or params.get("size")
        row.update(status=_status(last, tune_status, error_text is not None), tune_status=tune_status,
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


def local_folder(results_dir, sub, scratch):
    """A local path to results_dir/sub (downloaded into scratch when remote), or None if absent."""
    filesystem, root = open_storage(results_dir)
    source = f"{root}/{sub}"
    if filesystem.get_file_info(source).type != pafs.FileType.Directory:
        return None
    if isinstance(filesystem, pafs.LocalFileSystem):
        return Path(source)
    # File by file from a listing, not pafs.copy_files: on GCS that misses the subfolders that no marker object
    # stands for (apache/arrow#35993) and then fails to write the files inside them.
    target = Path(scratch) / sub
    target.mkdir(parents=True, exist_ok=True)
    for info in filesystem.get_file_info(pafs.FileSelector(source, recursive=True)):
        if info.type == pafs.FileType.File:
            local = target / info.path.removeprefix(f"{source}/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(read_bytes(filesystem, info.path))
    return target


def output_folder(results_dir):
    """Where analysis writes: results_dir/analysis when local, else a local staging folder."""
    filesystem, root = open_storage(results_dir)
    if isinstance(filesystem, pafs.LocalFileSystem):
        out = Path(root) / "analysis"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return Path(tempfile.mkdtemp(prefix="analysis-"))


def publish(out_dir, results_dir):
    """Upload a staged analysis folder to remote storage; a no-op when it was written in place."""
    filesystem, root = open_storage(results_dir)
    if isinstance(filesystem, pafs.LocalFileSystem):
        return Path(out_dir)
    pafs.copy_files(str(out_dir), f"{root}/analysis", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=filesystem)
    shutil.rmtree(out_dir)
    return f"{str(results_dir).rstrip('/')}/analysis"


def read_sweep_config(results_dir):
    """results_dir/sweep.json as a dict, or {} when the sweep did not write one."""
    filesystem, root = open_storage(results_dir)
    text = read_text(filesystem, f"{root}/sweep.json")
    return json.loads(text) if text else {}
