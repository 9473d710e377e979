"""End-to-end analysis of a real micro sweep (conftest's `micro_sweep`: real MIDI -> the preprocessing
pipeline -> real Tune trials of sweep/trial.py, the largest size cut by its budget), then analysis/run.py."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from analysis import analyze, load_results
from conftest import MICRO_SIZES as SIZES, REPO, TRUNCATED_SIZE
from preprocessing.abc_tokens import Vocabulary
from preprocessing.shards import read_split


def write_samples(results, data):
    """best/samples as the sweep's best-model run leaves them: one real tune's opening and one broken text."""
    samples = results / "best" / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    meta = json.loads((data / "meta.json").read_text())
    vocab = Vocabulary.from_meta(meta)
    ids = read_split(data, "train")  # the few test tunes of the tiny corpus all hold a token rare enough for <unk>
    tunes = np.split(ids, np.flatnonzero(ids == vocab.eot_id) + 1)[:-1]
    tune_ = vocab.decode(next(tune for tune in tunes if vocab.unk_id not in tune)[:-1])
    (samples / "t0.9_00.abc").write_text("\n".join(tune_.splitlines()[:16]) + "\n")
    (samples / "t0.9_01.abc").write_text("K:\n|]]]] ((( not a tune\n")
    return samples


def assert_real_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 200, (path, image.shape)
    assert image[..., :3].std() > 0.01, f"{path} is blank"


FIGURES = ("scaling_gpt", "scaling_lstm", "scaling_compare", "scaling_nonembed", "loss_vs_flops", "time_vs_params",
           "memory_vs_params", "sample_efficiency", "learning_curves")


@pytest.mark.slow
def test_analysis_of_a_real_micro_sweep_writes_every_file(micro_sweep):
    data = Path(json.loads((micro_sweep / "sweep.json").read_text())["data"]["location"])
    write_samples(micro_sweep, data)
    report = analyze(micro_sweep)
    out = micro_sweep / "analysis"
    assert report == out / "report.md"
    for name in ("report.md", "report.html", "fits.json", "trials.csv", "curves.parquet", "samples.json",
                 *(f"{figure}.png" for figure in FIGURES)):
        assert (out / name).stat().st_size > 0, name
    for figure in FIGURES:
        assert_real_png(out / f"{figure}.png")
    assert_real_png(out / "samples" / "t0.9_00_piano_roll.png")

    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 2 * len(SIZES)
    truncated = trials[trials["size"] == TRUNCATED_SIZE]
    assert set(truncated["status"]) == {"truncated"} and truncated["truncated_by_budget"].all()
    assert set(trials.loc[trials["size"] != TRUNCATED_SIZE, "status"]) == {"ok"}
    curves = pd.read_parquet(out / "curves.parquet")
    assert len(curves) > len(trials) and curves["val_loss"].notna().sum() >= len(trials)

    fits = json.loads((out / "fits.json").read_text())["fits"]
    for arch in ("gpt", "lstm"):
        for scale in ("params", "params_nonembed", "flops"):
            entry = fits[arch][scale]
            assert entry["fit"]["n_points"] == len(SIZES) - 1  # the truncated trial is left out
            assert all(np.isfinite(entry["fit"]["ci"]["alpha"]))
            assert entry["extrapolation"]["fit_points"] == len(SIZES) - 2

    samples = json.loads((out / "samples.json").read_text())
    meta = json.loads((data / "meta.json").read_text())
    assert samples["share_valid_music21"] == 0.5 and samples["share_converted_to_midi"] == 0.5
    assert 0 <= samples["pitch_class_distance"] <= 1 and 0 < samples["reference"]["tunes"] <= meta["splits"]["test"]["chunks"]

    text = report.read_text()
    assert "bits/token" in text and "Left out of the fits" in text and f"gpt {TRUNCATED_SIZE} (truncated)" in text
    assert ("not distinguishable" in text) or ("do not overlap" in text)
    for figure in FIGURES:
        assert f"({figure}.png)" in text
    page = (out / "report.html").read_text()  # the page itself is tested in test_analysis_page.py
    assert page.count('<img class="score"') == 1 and f"<img alt=\"{FIGURES[0]}\" src=\"data:image/png" in page


def cut_last_report(trial_dir):
    """The trial as Tune leaves it while it writes its next report line."""
    text = (trial_dir / "result.json").read_text()
    (trial_dir / "result.json").write_text(text[: text.rstrip().rfind("\n") + 20])


@pytest.mark.slow
def test_a_partial_sweep_gets_a_partial_report_naming_what_is_missing(micro_sweep, tmp_path):
    results = shutil.copytree(micro_sweep, tmp_path / "partial", ignore=shutil.ignore_patterns("analysis", "best"))
    gone = next(d for d in results.iterdir() if d.name.startswith(f"lstm-{SIZES[1]}_"))
    shutil.rmtree(gone)
    for trial_dir in results.glob("gpt-*"):
        cut_last_report(trial_dir)  # the gpt trials are still running
    done = subprocess.run([sys.executable, "analysis/run.py", str(results)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    text = (results / "analysis" / "report.md").read_text()
    assert f"Planned by the sweep but not found (no trial folder): lstm {SIZES[1]}." in text
    assert f"gpt {SIZES[0]} (unfinished)" in text and "Every planned trial" not in text
    assert len(pd.read_csv(results / "analysis" / "trials.csv")) == 2 * len(SIZES) - 1


@pytest.mark.slow
def test_no_usable_trial_is_a_message_and_no_output(micro_sweep, tmp_path):
    results = shutil.copytree(micro_sweep, tmp_path / "running", ignore=shutil.ignore_patterns("analysis", "best"))
    for trial_dir in results.glob("*-cpu-*"):
        cut_last_report(trial_dir)
    done = subprocess.run([sys.executable, "analysis/run.py", str(results)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    assert f"no usable trial in {results} yet ({2 * len(SIZES)} unfinished)" in done.stderr
    assert sorted(p.name for p in results.iterdir() if not p.name.startswith(("gpt-", "lstm-"))) == sorted(
        p.name for p in micro_sweep.iterdir() if not p.name.startswith(("gpt-", "lstm-", "analysis", "best")))


@pytest.mark.slow
def test_truncated_trials_are_fitted_only_when_asked(micro_sweep):
    from analysis.scaling import fit_trials

    trials, _ = load_results(micro_sweep)
    assert fit_trials(trials, n_boot=0)["gpt"]["params"]["fit"].n.size == len(SIZES) - 1
    assert fit_trials(trials, include_truncated=True, n_boot=0)["gpt"]["params"]["fit"].n.size == len(SIZES)


@pytest.mark.slow
def test_too_few_trials_give_a_message_and_no_fit(micro_sweep):
    from analysis.scaling import fit_trials

    trials, _ = load_results(micro_sweep)
    entry = fit_trials(trials[trials["size"].isin(SIZES[:2])], n_boot=0)["gpt"]["params"]
    assert entry["fit"] is None and "no fit made" in entry["message"]


def test_run_py_works_as_a_script():
    done = subprocess.run([sys.executable, str(REPO / "analysis" / "run.py"), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--include-truncated" in done.stdout


def test_bad_results_folders_are_clear_errors(tmp_path, capsys):
    from analysis.run import main

    assert main([str(tmp_path / "missing")]) == 2
    assert f"folder not found: {tmp_path / 'missing'}" in capsys.readouterr().err
    trial = tmp_path / "broken" / "trial_0"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"arch": "gpt", "size": "cpu-tiny"}))
    (trial / "result.json").write_text('{"val_loss": 5.0}\n{"val_loss": 4.\n{"val_loss": 3.0}\n')
    with pytest.raises(ValueError, match=r"trial_0/result.json: line 2 is not JSON"):
        load_results(tmp_path / "broken")
    (trial / "params.json").write_text('{"arch": "gpt", "si')
    with pytest.raises(ValueError, match=r"trial_0/params.json is not valid JSON"):
        load_results(tmp_path / "broken")


def test_a_cut_last_report_is_a_trial_still_writing(tmp_path):
    trial = tmp_path / "running" / "trial_0"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"arch": "gpt", "size": "cpu-tiny"}))
    (trial / "result.json").write_text('{"val_loss": 5.0, "tokens_seen": 10}\n{"val_loss": 4.')
    trials, curves = load_results(tmp_path / "running")
    assert trials.iloc[0]["status"] == "unfinished" and len(curves) == 1


def test_a_failed_trial_is_marked_with_its_error(tmp_path):
    trial = tmp_path / "sweep" / "trial_0"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"arch": "lstm", "size": "cpu-small"}))
    (trial / "result.json").write_text(json.dumps({"arch": "lstm", "size": "cpu-small", "train_loss": 5.0}) + "\n")
    (trial / "error.txt").write_text("Traceback (most recent call last):\n  ...\nRuntimeError: out of memory\n")
    trials, curves = load_results(tmp_path / "sweep")
    row = trials.iloc[0]
    assert row["status"] == "errored" and row["error"] == "RuntimeError: out of memory"
    assert len(curves) == 1 and np.isnan(curves["val_loss"].iloc[0])
