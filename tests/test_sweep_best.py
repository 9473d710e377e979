"""The best-model run on a finished micro sweep: trains the best trial's model for a time budget, keeps the
best checkpoint by validation, reports test loss with that checkpoint, and writes ABC + MIDI samples."""

import json
import math
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from models import load_model
from preprocessing.abc_tokens import Vocabulary
from preprocessing.shards import load_meta, read_split
from sweep.batches import TuneHeaders, evaluation_batches
from sweep.config import load_config
from test_sweep import reports, trial_dirs

pytestmark = pytest.mark.slow


def run_command(*args):
    return [sys.executable, str(REPO / "sweep" / "run.py"), *map(str, args)]


def best_command(*args):
    return run_command("best", *args)


def test_best_run_tests_its_best_checkpoint_and_writes_samples(micro_sweep, sweep_data, tmp_path):
    out = tmp_path / "best"
    done = subprocess.run(best_command("--data", sweep_data, "--from", micro_sweep, "--time-budget", "15s",
                                       "--set", "best.samples_per_temperature=1", "--constrained", "--out", out),
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    # progress: step, losses and the budget left, and not a line per step into a log
    assert "s of budget left" in done.stderr and done.stderr.count("best model") < 10, done.stderr[-2000:]

    finals = [reports(d)[-1] for d in trial_dirs(micro_sweep)]
    best = min(finals, key=lambda final: final["val_loss"])
    assert metrics["model"] == f"{best['arch']}-{best['size']}" and metrics["steps"] > 0
    # its epochs are of the whole train split, not of the sweep's max_train_tokens
    tokens_per_epoch = metrics["tokens_seen"] / metrics["epochs"]
    assert tokens_per_epoch > load_config("tiny").train.max_train_tokens
    assert tokens_per_epoch == pytest.approx(len(read_split(sweep_data, "train")), rel=0.1)
    # the budget holds the training and its last validation; the test pass and the samples come after it
    assert metrics["train_s"] < 15 + 3, "the time budget was not kept"

    # test loss is that of the saved (best on validation) checkpoint, over the whole test split
    config = load_config("tiny").train
    meta = load_meta(sweep_data)
    vocab = Vocabulary.from_meta(meta)
    model = load_model(out / "checkpoint.pt", meta["vocab_sha256"])
    total, count = 0.0, 0
    test = TuneHeaders(read_split(sweep_data, "test"), meta["vocab"])
    with torch.no_grad():
        for x, y in evaluation_batches(test, config.block_size, config.val_batch_size):
            total += model(x, y)[1].item() * int((y >= 0).sum())
            count += int((y >= 0).sum())
    assert count == len(test)  # every test token predicted once
    assert metrics["test_loss"] == pytest.approx(total / count, rel=1e-4)
    assert metrics["test_bits_per_note"] == pytest.approx(
        total / math.log(2) / meta["splits"]["test"]["notes"], rel=1e-4)
    assert metrics["test_perplexity"] == pytest.approx(math.exp(metrics["test_loss"]))
    assert metrics["best_val_loss"] < math.log(meta["vocab_size"])

    best_config = load_config("tiny").best
    samples = metrics["samples"]
    # --set reaches a sweep's own config; --constrained samples as many again by constrained decoding
    assert len(samples) == len(best_config.temperatures) * 1 * 2 * 2
    assert {(sample["prompt"], sample["decoding"]) for sample in samples} == {
        (prompt, decoding) for prompt in ("free", "opening") for decoding in ("unconstrained", "constrained")}
    assert all(("_constrained_" in sample["name"]) == (sample["decoding"] == "constrained") for sample in samples)
    test_tunes = [vocab.decode(test.tokens[a:b]) for a, b in zip(test.starts[:-1], test.starts[1:])]
    for sample in samples:
        text = (out / "samples" / f"{sample['name']}.abc").read_text()
        # every sample begins with a held-out tune's header (X: to its V: line), an opening with its first bars
        prompt = text[:text.index("V:")] if sample["prompt"] == "free" else text[:text.index("|")]
        assert text.startswith("X:1\nM:") and any(tune.startswith(prompt) for tune in test_tunes), text[:300]
        assert (out / "samples" / f"{sample['name']}.mid").exists() == sample["midi"]

    # the sample command continues a prompt with that checkpoint
    prompt = "X:1\nM:6/8\nL:1/8\nK:D\nV:1\n"
    done = subprocess.run(run_command("sample", "--checkpoint", out / "checkpoint.pt", "--data", sweep_data,
                                      "--prompt", prompt.replace("\n", r"\n"), "--n", "3", "--max-new-tokens", "40"),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "3 samples in" in done.stdout, done.stderr[-3000:]
    texts = [path.read_text() for path in sorted((out / "prompted").glob("sample_*.abc"))]
    assert len(texts) == 3 and all(text.startswith(prompt) for text in texts)


def test_best_run_refuses_bad_arguments_with_exit_code_2(sweep_data, tmp_path):
    for args in (["--data", sweep_data, "--model", "gpt-cpu-tiny", "--time-budget", "soon"],
                 ["--data", sweep_data, "--model", "gpt-huge", "--time-budget", "10s"],
                 ["--data", tmp_path / "missing", "--model", "gpt-cpu-tiny", "--time-budget", "10s"]):
        done = subprocess.run(best_command(*args, "--out", tmp_path / "out"), cwd=REPO, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2 and "error:" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists()
