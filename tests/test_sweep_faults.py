"""Faults a sweep must survive: a trial process killed mid-epoch, a time budget, an interrupted sweep."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import ray
import torch

from conftest import REPO
from test_sweep import epoch_tokens, reports, trial_dirs
from sweep_support import crashing_trial, run_sweep_in_process, sweep_command
from sweep.batches import window_targets
from sweep.config import load_config
from sweep.trainer import STATE_FILE

pytestmark = pytest.mark.slow


def test_killed_trial_resumes_from_its_checkpoint_and_sees_each_token_once(sweep_data, ray_local, tmp_path):
    # checkpoints at steps 10, 20, ...; the trial's process dies at step 23, so steps 21-23 are done twice.
    overrides = ["archs=[gpt]", "train.checkpoint_every=10", "train.report_every=5"]
    results, experiment = run_sweep_in_process(sweep_data, tmp_path, "killed", overrides,
                                               train_fn=crashing_trial(23))
    assert results.num_errors == 0, results.errors
    final = results[0].metrics
    assert final["tokens_seen"] == epoch_tokens(sweep_data, load_config("tiny", overrides))
    assert final["epoch_fraction"] == 1.0 and final["truncated_by_budget"] is False
    assert final["iterations_since_restore"] < final["training_iteration"], "restarted from scratch"
    lines = reports(trial_dirs(experiment)[0])
    first_after_restart = [line for line in lines if line["iterations_since_restore"] == 1][-1]
    # its first report (the next of every 5 steps, or a validation) comes within 5 steps of the step-20 checkpoint
    step_tokens = 8 * window_targets(32)  # 8 windows a step
    assert 20 * step_tokens < first_after_restart["tokens_seen"] <= 25 * step_tokens, "the retry goes on from step 20"


def test_checkpoints_also_wait_for_their_floor_in_seconds(sweep_data, ray_local, tmp_path):
    """Due every 10 steps, but also an hour apart: a trial of seconds saves only its final checkpoint."""
    overrides = ["archs=[gpt]", "train.checkpoint_every=10", "train.checkpoint_min_s=3600"]
    results, experiment = run_sweep_in_process(sweep_data, tmp_path, "floor", overrides)
    assert results.num_errors == 0, results.errors
    trial_dir = trial_dirs(experiment)[0]
    assert [p.name for p in trial_dir.glob("checkpoint_*")] == ["checkpoint_000000"]
    state = torch.load(trial_dir / "checkpoint_000000" / STATE_FILE, weights_only=True)
    assert state["progress"]["tokens_seen"] == results[0].metrics["tokens_seen"] > 10 * 8 * window_targets(32)


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def finished(trial_dir):
    return (trial_dir / "result.json").exists() and any(
        json.loads(line).get("epoch_fraction") == 1.0 for line in (trial_dir / "result.json").read_text().splitlines())


def test_interrupted_sweep_resumes_without_rerunning_finished_trials(sweep_data, ray_local, tmp_path):
    """The driver is stopped (Ctrl-C) once the second trial has checkpointed; --resume runs only what is left.

    One trial at a time, each on the whole train split (~900 steps): the second still has most of its epoch
    to go when stopped, however fast this machine (on 12k tokens it once finished before the signal landed)."""
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    overrides = ["max_concurrent_trials=1", "train.max_train_tokens=0", "train.checkpoint_every=50",
                 "train.report_every=25"]
    driver = subprocess.Popen(sweep_command(sweep_data, tmp_path, "resumed", overrides), cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    experiment = tmp_path / "resumed"

    def second_trial_checkpointed():  # checkpoints reach the storage at once; result.json files may lag
        assert driver.poll() is None, f"the sweep ended before it was interrupted:\n{driver.stdout.read()}"
        return experiment.exists() and sum(any(d.glob("checkpoint_*")) for d in experiment.iterdir()) == 2

    wait_for(second_trial_checkpointed, 180, "the second trial's first checkpoint")
    driver.send_signal(signal.SIGINT)
    output = driver.communicate(timeout=60)[0]
    first = next(d for d in trial_dirs(experiment) if finished(d))
    before = (first / "result.json").read_text()
    assert sum(map(finished, trial_dirs(experiment))) == 1, f"expected one trial left to resume:\n{output}"

    resumed = subprocess.run([sys.executable, str(REPO / "sweep" / "run.py"), "--resume", "resumed",
                              "--storage", str(tmp_path), "--quiet"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (first / "result.json").read_text() == before, "a finished trial ran again"
    assert len(trial_dirs(experiment)) == 2 and all(finished(d) for d in trial_dirs(experiment))
