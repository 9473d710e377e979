"""End-to-end analysis of a real micro sweep: real MIDI -> ABC -> tokens, real Ray Tune trials that train
models.build_model for a few steps and report the contract metrics, then analysis/run.py on the storage.

`micro_sweep` is the only place that knows how the results folder is made; swap it for the sweep's own
micro-sweep fixture once that exists.
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch
from ray import cloudpickle, tune

from analysis import analyze, load_results
from models import build_model
from preprocessing.abc_clean import clean_abc
from preprocessing.abc_tokens import TOKENIZER_VERSION, Vocabulary, count_tokens
from preprocessing.abc_tools import midi_to_abc
from preprocessing.shards import read_split, write_meta, write_split

REPO = Path(__file__).resolve().parents[1]
SIZES = ["cpu-tiny", "cpu-small", "cpu-medium", "cpu-large", "cpu-xl"]
TRUNCATED_SIZE = "cpu-xl"  # given no time budget, so its trials stop after one step
BLOCK, BATCH, STEPS, VAL_WINDOWS = 32, 8, 12, 24


def make_data(midi_dir, out_dir, n_files=14):
    """A data folder in the contract's format from real POP909 files: 3 val, 3 test, the rest train."""
    tunes = []
    for path in sorted((midi_dir / "pop909").glob("*.mid"))[:n_files]:
        raw, reason = midi_to_abc(path)
        tune_, reason = clean_abc(raw) if raw else (None, reason)
        assert tune_ is not None, f"{path}: {reason}"
        tunes.append(tune_.abc)
    splits = {"val": tunes[:3], "test": tunes[3:6], "train": tunes[6:]}
    vocab = Vocabulary.build(count_tokens(splits["train"]), min_count=1)
    meta = {"tokenizer_version": TOKENIZER_VERSION, "vocab": vocab.tokens, "vocab_size": len(vocab),
            "vocab_sha256": vocab.sha256, "eot_id": vocab.eot_id, "unk_id": vocab.unk_id, "dtype": "uint16",
            "splits": {}}
    for split, texts in splits.items():
        ids = [i for text in texts for i in vocab.encode(text) + [vocab.eot_id]]
        meta["splits"][split] = {"tunes": len(texts), **write_split(out_dir, split, ids)}
    write_meta(out_dir, meta)
    return out_dir


def micro_trainable(config):
    """Trains one real model for a few steps and reports the contract metrics like sweep/trial.py does."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    started = time.perf_counter()
    train = torch.from_numpy(read_split(config["data"], "train").astype(np.int64))
    val = torch.from_numpy(read_split(config["data"], "val").astype(np.int64))
    vocab_size = json.loads((Path(config["data"]) / "meta.json").read_text())["vocab_size"]
    model = build_model(config["arch"], config["size"], vocab_size, block_size=BLOCK)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    windows = train[: len(train) // (BLOCK + 1) * (BLOCK + 1)].view(-1, BLOCK + 1)
    val_windows = val[: VAL_WINDOWS * (BLOCK + 1)].view(-1, BLOCK + 1)
    tokens_seen, losses = 0, []
    for step in range(STEPS):
        batch = windows[(step * BATCH) % len(windows):][:BATCH]
        _, loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens_seen += batch[:, 1:].numel()
        losses.append(loss.item())
        truncated = time.perf_counter() - started > config["time_budget_s"]
        final = truncated or step == STEPS - 1
        if final or (step + 1) % 4 == 0:
            metrics = {
                "arch": config["arch"], "size": config["size"], "params": model.num_params(),
                "params_nonembed": model.num_params(non_embedding=True), "tokens_seen": tokens_seen,
                "epoch_fraction": tokens_seen / windows[:, 1:].numel(), "train_loss": float(np.mean(losses)),
                "wall_s": time.perf_counter() - started,
                "tokens_per_s": tokens_seen / (time.perf_counter() - started),
                "flops": model.flops_per_token() * tokens_seen, "mfu": None,
                "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "truncated_by_budget": truncated,
            }
            if final or step + 1 == STEPS // 2:
                with torch.no_grad():
                    metrics["val_loss"] = model(val_windows[:, :-1], val_windows[:, 1:])[1].item()
            tune.report(metrics)
            losses = []
        if final:
            return


@pytest.fixture(scope="module")
def micro_sweep(tmp_path_factory, midi_dir, ray_local):
    """results/<name>/ of a real 10-trial Tune run (5 sizes x GPT/LSTM; the largest cut by its budget)."""
    root = tmp_path_factory.mktemp("micro")
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import a test module
    data = make_data(midi_dir, root / "data")
    space = {"arch": tune.grid_search(["gpt", "lstm"]), "size": tune.grid_search(SIZES), "data": str(data),
             "time_budget_s": tune.sample_from(lambda config: 0.0 if config["size"] == TRUNCATED_SIZE else 600.0)}
    tuner = tune.Tuner(tune.with_resources(micro_trainable, {"cpu": 1}), param_space=space,
                       tune_config=tune.TuneConfig(reuse_actors=True),  # no process start-up per trial
                       run_config=tune.RunConfig(storage_path=str(root / "results"), name="micro", verbose=0))
    grid = tuner.fit()
    assert not grid.errors, grid.errors
    results = root / "results" / "micro"
    (results / "sweep.json").write_text(json.dumps({"name": "micro", "data": {"location": str(data)}}))
    return results


def write_samples(results, data):
    """best/samples as the sweep's best-model run leaves them: one real test tune's opening and one broken text."""
    samples = results / "best" / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    meta = json.loads((data / "meta.json").read_text())
    vocab = Vocabulary.from_meta(meta)
    ids = read_split(data, "test")
    tune_ = vocab.decode(ids[: int(np.flatnonzero(ids == vocab.eot_id)[0])])
    (samples / "t0.9_00.abc").write_text("\n".join(tune_.splitlines()[:16]) + "\n")
    (samples / "t0.9_01.abc").write_text("K:\n|]]]] ((( not a tune\n")
    return samples


def assert_real_png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 200, (path, image.shape)
    assert image[..., :3].std() > 0.01, f"{path} is blank"


FIGURES = ("scaling_gpt", "scaling_lstm", "scaling_compare", "scaling_nonembed", "loss_vs_flops", "time_vs_params",
           "memory_vs_params", "sample_efficiency", "learning_curves")


def test_analysis_of_a_real_micro_sweep_writes_every_file(micro_sweep):
    data = Path(json.loads((micro_sweep / "sweep.json").read_text())["data"]["location"])
    write_samples(micro_sweep, data)
    report = analyze(micro_sweep)
    out = micro_sweep / "analysis"
    assert report == out / "report.md"
    for name in ("report.md", "fits.json", "trials.csv", "curves.parquet", "samples.json",
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
    assert samples["share_valid_music21"] == 0.5 and samples["share_converted_to_midi"] == 0.5
    assert 0 <= samples["pitch_class_distance"] <= 1 and samples["reference"]["tunes"] == 3

    text = report.read_text()
    assert "bits/token" in text and "Left out of the fits" in text and f"gpt {TRUNCATED_SIZE} (truncated)" in text
    assert ("not distinguishable" in text) or ("do not overlap" in text)
    for figure in FIGURES:
        assert f"({figure}.png)" in text


def test_truncated_trials_are_fitted_only_when_asked(micro_sweep):
    from analysis.scaling import fit_trials

    trials, _ = load_results(micro_sweep)
    assert fit_trials(trials, n_boot=0)["gpt"]["params"]["fit"].n.size == len(SIZES) - 1
    assert fit_trials(trials, include_truncated=True, n_boot=0)["gpt"]["params"]["fit"].n.size == len(SIZES)


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
    (trial / "result.json").write_text('{"val_loss": 5.0}\n{"val_loss": 4.\n')
    with pytest.raises(ValueError, match=r"trial_0/result.json: line 2 is not JSON"):
        load_results(tmp_path / "broken")


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
