"""GPU placement without a GPU: `sweep/run.py` on a Ray node started with fake GPUs (`ray start --num-gpus N`),
the full preset's GPU shares given to the CPU sizes (tiny 0.25, small 0.25, medium 0.5, large 1, xl 1), one CPU a
trial and CPUs enough that only the GPUs bind. torch sees no CUDA, so the trials train on CPU; Ray still holds
each trial's share. The trials' start and end come from Tune's own records (result.json: `timestamp`, whole
seconds, and `time_total_s`), and the schedule they show must be the one sweep.placement predicts: the same
trials together at the start, wave after wave in the predicted order, as many at once, never more GPU in use
than there is.

On one GPU the sizes go tiny, xl, small, so Tune's order (arch fastest) puts both XL trials, which must wait for
the whole GPU, before the small ones: these must not wait behind them but start at once beside the tiny ones,
where the GPU has room. Start-up times on a busy machine (a new trial's first step came 5-15 s after the end of
the one it replaced) make "started within n seconds of its turn" a flaky test; who starts in the first wave is not.
"""

import json
import os
import shutil
import subprocess
import tempfile

import pytest
import ray

from conftest import REPO
from models import DEMO_SIZES, SIZES
from preprocessing.versions import versions
from sweep.config import load_config
from sweep.placement import max_concurrency, measured_span, schedule, tune_demands, waves
from sweep_support import sweep_command
from test_sweep import reports, trial_dirs
from test_sweep_multinode import free_port, kill_node, start_node

CPUS = 10  # one per trial: the GPUs alone decide what runs at once


def test_schedule_packs_shares_per_gpu_and_lets_later_trials_past_ones_that_do_not_fit():
    quarter, half, whole = (1, 0.25), (1, 0.5), (1, 1.0)
    assert waves(schedule([half, quarter, half, quarter], [(8, 1)])) == [[0, 1, 3], [2]]
    assert waves(schedule([half, half, half], [(8, 2)])) == [[0, 1, 2]]  # two halves on one GPU, one on the next
    assert waves(schedule([whole, half, whole], [(8, 1), (8, 1)])) == [[0, 1], [2]]  # a whole GPU per node
    assert waves(schedule([quarter] * 4, [(2, 8)])) == [[0, 1], [2, 3]]  # the CPUs bind
    assert waves(schedule([quarter] * 3, [(8, 8)], max_concurrent=2)) == [[0, 1], [2]]
    spans = schedule([quarter, whole, quarter], [(8, 1)], durations=[3, 1, 1])
    assert spans == [(0, 3), (3, 4), (0, 1)] and max_concurrency(spans) == 2
    with pytest.raises(ValueError, match="trial 0 needs"):
        schedule([(16, 0.5)], [(8, 1)])


def test_the_full_preset_runs_in_one_wave_on_an_8_gpu_node_and_in_six_on_one_gpu():
    _, demands = tune_demands(load_config("full"), use_gpu=True)
    assert waves(schedule(demands, [(96, 8)])) == [list(range(10))]
    assert [len(wave) for wave in waves(schedule(demands, [(16, 1)]))] == [4, 2, 1, 1, 1, 1]


def overrides(sizes, budget_s):
    """The tiny preset's training on the whole train split or for budget_s, full's GPU shares on the CPU sizes."""
    full = load_config("full").resources.gpus_per_trial
    shares = ", ".join(f"{demo}: {full[size]}" for size, demo in zip(SIZES, DEMO_SIZES))
    return [f"sizes=[{','.join(sizes)}]", f"resources.gpus_per_trial={{{shares}}}", "resources.cpus_per_trial=1",
            "train.max_train_tokens=0", f"train.time_budget_s={budget_s}", "train.val_points=0",
            "train.checkpoint_every=100000"]


def gpu_in_use(spans, demands):
    """The most GPU the running trials held at once (each span shrunk by the timestamps' half-second)."""
    return max(sum(demands[i][1] for i, (start, end) in enumerate(spans) if start + 0.5 <= t < end - 0.5)
               for t, _ in spans)


def run_on_fake_gpus(gpus, settings, sweep_data, storage):
    """(spans, trial configs and demands in Tune's order, sweep.json) of a sweep run as a user runs it."""
    temp_dir = tempfile.mkdtemp(prefix="rt-", dir="/tmp")
    port = free_port()
    head = start_node("--head", "--port", str(port), "--include-dashboard", "false", "--num-cpus", str(CPUS),
                      "--num-gpus", str(gpus), temp_dir=temp_dir)
    try:
        name = f"gpus-{gpus}"
        command = sweep_command(sweep_data, storage, name, settings)
        address = f"{ray.util.get_node_ip_address()}:{port}"
        run = subprocess.run(command, cwd=REPO, env={**os.environ, "RAY_ADDRESS": address}, capture_output=True,
                             text=True, timeout=540)
    finally:
        kill_node(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    specs, demands = tune_demands(load_config("tiny", settings), use_gpu=True)
    order = {(spec["arch"], spec["size"]): i for i, spec in enumerate(specs)}
    spans = [None] * len(specs)
    for trial in trial_dirs(storage / name):
        trial_reports = reports(trial)
        spans[order[trial_reports[-1]["arch"], trial_reports[-1]["size"]]] = measured_span(trial_reports)
    return spans, specs, demands, json.loads((storage / name / "sweep.json").read_text())


def describe(spans, specs, demands):
    first = min(start for start, _ in spans)
    return "\n".join(f"{specs[i]['arch']:4} {specs[i]['size']:10} GPU {demands[i][1]:4} "
                     f"{spans[i][0] - first:6.1f} -> {spans[i][1] - first:6.1f} s" for i in range(len(spans)))


# 8 GPUs: all ten trials (6 GPUs of shares) in one wave. 1 GPU: both tiny and both small trials (4 x 0.25) in the
# first wave, past the two XL trials ahead of them in Tune's order, then each XL alone: three waves.
@pytest.mark.slow
@pytest.mark.parametrize("gpus, sizes, budget_s", [(8, DEMO_SIZES, 30), (1, ["cpu-tiny", "cpu-xl", "cpu-small"], 20)])
def test_trials_run_as_their_gpu_shares_allow(gpus, sizes, budget_s, sweep_data, tmp_path):
    spans, specs, demands, record = run_on_fake_gpus(gpus, overrides(sizes, budget_s), sweep_data, tmp_path)
    assert record["versions"] == versions()
    predicted = schedule(demands, [(CPUS, gpus)])
    schedule_text = describe(spans, specs, demands)
    first_end = min(end for _, end in spans)
    started_first = [i for i, (start, _) in enumerate(spans) if start < first_end]
    assert started_first == waves(predicted)[0], schedule_text
    wave_of = {i: wave for wave, trials in enumerate(waves(predicted)) for i in trials}
    started = [wave_of[i] for i in sorted(range(len(spans)), key=lambda i: spans[i][0])]
    assert started == sorted(started), schedule_text  # wave by wave, in the predicted order
    assert max_concurrency(spans) == max_concurrency(predicted), schedule_text
    assert gpu_in_use(spans, demands) <= gpus, schedule_text
    print(f"\n{gpus} fake GPU(s): predicted waves {waves(predicted)}, concurrency {max_concurrency(predicted)}\n"
          f"{schedule_text}")
