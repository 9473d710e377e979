"""Curves while a sweep runs: the TensorBoard event files Tune writes into every trial folder, and
--log mlflow (Tune's own MLflowLoggerCallback) against a local MLflow file store, with real sweeps."""

import importlib.util
import json
import math
import struct

import pytest

from sweep.run import main
from sweep_support import run_sweep_in_process

CURVES = ("val_loss", "train_loss", "tokens_seen")


def event_scalars(trial_dir):
    """{tag: [values in order]} of the scalars in a trial's TensorBoard event files (TFRecord framing:
    length, its CRC, the Event, its CRC)."""
    from tensorboardX.proto.event_pb2 import Event

    scalars = {}
    for path in sorted(trial_dir.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack_from("<Q", data, at)
            event = Event.FromString(data[at + 12: at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def last_report(trial_dir):
    return json.loads((trial_dir / "result.json").read_text().splitlines()[-1])


@pytest.mark.slow
def test_tensorboard_finds_every_trial_s_curves_in_the_results_folder(micro_sweep):
    trial_dirs = [d for d in micro_sweep.iterdir() if d.is_dir() and d.name.startswith(("gpt-", "lstm-"))]
    assert trial_dirs
    for trial_dir in trial_dirs:
        scalars = event_scalars(trial_dir)
        reports = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        for metric in CURVES:  # the curve TensorBoard draws is the trial's reports, one point each
            expected = [report[metric] for report in reports if isinstance(report.get(metric), (int, float))]
            assert len(scalars[f"ray/tune/{metric}"]) == len(expected) > 0, (trial_dir, metric)
            assert all(math.isclose(got, want, rel_tol=1e-6)
                       for got, want in zip(scalars[f"ray/tune/{metric}"], expected)), (trial_dir, metric)
    assert max(len(event_scalars(d)["ray/tune/val_loss"]) for d in trial_dirs) > 1


@pytest.mark.slow
def test_log_mlflow_sends_every_trial_s_curves_to_mlflow(sweep_data, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    # MLflow 3 keeps its file store for those who opt in; a database store needs SQLAlchemy besides
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    results, path = run_sweep_in_process(sweep_data, tmp_path / "results", "tracked", tracker="mlflow")
    assert results.num_errors == 0, results.errors

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    assert sorted(run.data.params["arch"] for run in runs) == ["gpt", "lstm"]
    for run in runs:
        trial_dir = next(path.glob(f"{run.data.params['arch']}-{run.data.params['size']}_*"))
        final = last_report(trial_dir)
        assert run.info.status == "FINISHED"
        for metric in CURVES:
            history = sorted(client.get_metric_history(run.info.run_id, metric), key=lambda m: m.step)
            assert len(history) > 1 and math.isclose(history[-1].value, final[metric], rel_tol=1e-6), metric
        tokens = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "tokens_seen"),
                                          key=lambda m: m.step)]
        assert tokens == sorted(tokens)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_log_without_its_package_stops_before_ray_starts(sweep_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(sweep_data), "--preset", "tiny", "--storage", str(tmp_path), "--log", "wandb"])
    assert exit_.value.code == 2
    assert "--log: wandb is not installed: pip install -e '.[tracking]'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
