"""A micro sweep on a local Ray: every trial finishes one exact epoch and reports the contract's metrics."""

import json
import math

import pytest

from preprocessing.shards import load_meta
from sweep.config import ConfigError, apply_overrides, load_config, load_preset, preset_names
from sweep import plan
from sweep.results import METRICS, TOKEN_GROUPS, VALIDATION_METRICS
from sweep.run import main
from conftest import MICRO_SIZES, TRUNCATED_SIZE


def trial_dirs(experiment):
    return sorted(p for p in experiment.iterdir() if (p / "params.json").exists())


def reports(trial_dir):
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]


def epoch_tokens(data_dir, config):
    """Tokens in one epoch of windows on the whole data: of train.bin, at most max_train_tokens of it."""
    return plan.epoch_tokens(config.train, load_meta(data_dir)["splits"]["train"]["tokens"], 1.0)


@pytest.mark.slow
def test_micro_sweep_trials_report_every_metric_and_one_exact_epoch(micro_sweep, sweep_data):
    config = load_config("tiny", [f"sizes=[{','.join(MICRO_SIZES)}]"])
    dirs = trial_dirs(micro_sweep)
    assert sorted((json.loads((d / "params.json").read_text())["arch"] for d in dirs)) == \
        ["gpt"] * len(MICRO_SIZES) + ["lstm"] * len(MICRO_SIZES)
    for trial_dir in dirs:
        lines = reports(trial_dir)
        final = lines[-1]
        assert all(set(METRICS) - set(VALIDATION_METRICS) <= set(line) for line in lines)
        assert all(set(VALIDATION_METRICS) <= set(line) for line in lines if "val_loss" in line)
        val = load_meta(sweep_data)["splits"]["val"]  # the whole split's loss in bits, over its notes and bars
        bits = final["val_loss"] * val["tokens"] / math.log(2)
        assert (final["val_bits_per_note"], final["val_bits_per_bar"]) == pytest.approx((bits / val["notes"],
                                                                                          bits / val["bars"]))
        assert sum(final[f"val_share_{group}"] for group in TOKEN_GROUPS) == pytest.approx(1)
        assert sum(final[f"val_share_{group}"] * final[f"val_loss_{group}"] for group in TOKEN_GROUPS
                   if final[f"val_share_{group}"]) == pytest.approx(final["val_loss"])
        assert math.isfinite(final["val_loss"]) and final["val_loss"] < math.log(load_meta(sweep_data)["vocab_size"])
        assert [line["tokens_seen"] for line in lines] == sorted(line["tokens_seen"] for line in lines)
        assert any(p.name.startswith("checkpoint_") for p in trial_dir.iterdir())
        if final["size"] == TRUNCATED_SIZE:  # cut by its budget after one step, still with final metrics
            assert final["truncated_by_budget"] is True and 0 < final["epoch_fraction"] < 1
            continue
        assert len(lines) > 3, "a trial reports every few steps, not only at the end"
        assert final["tokens_seen"] == epoch_tokens(sweep_data, config)
        assert final["epoch_fraction"] == 1.0 and final["truncated_by_budget"] is False
        assert sum("val_loss" in line for line in lines) == config.train.val_points + 1
    sweep_file = json.loads((micro_sweep / "sweep.json").read_text())
    assert sweep_file["config"] == config.to_dict()
    processes = {reports(trial_dir)[-1]["pid"] for trial_dir in dirs}
    assert len(processes) < len(dirs), "a finished trial's actor trains the next trial"


@pytest.mark.parametrize("override, field", [
    ("train.learning_rate=-1", "train.learning_rate"),
    ("train.lerning_rate=1e-3", "train.lerning_rate"),
    ("sizes=[cpu-tiny,huge]", "sizes[1]"),
    ("train.betas=[0.9]", "train.betas"),
    ("resources.cpus_per_trial=0", "resources.cpus_per_trial"),
    ("train.checkpoint_min_s=-1", "train.checkpoint_min_s"),
])
def test_bad_values_are_named(override, field):
    with pytest.raises(ConfigError) as error:
        load_config("full", [override])
    assert error.value.field == field


def test_every_preset_is_valid():
    assert {"demo", "full", "tiny"} <= set(preset_names())
    for name in preset_names():
        load_config(name)
    assert apply_overrides(load_preset("full"), ["train.batch_size=8"])["train"]["batch_size"] == 8
    assert load_config("full", ["train.batch_size=8"]).train.batch_size == 8


def test_bad_preset_fails_fast_with_exit_code_2_before_ray_starts(sweep_data, tmp_path, capsys):
    import ray

    was_running = ray.is_initialized()
    for argv in (["--data", sweep_data, "--preset", "nope"],
                 ["--data", sweep_data, "--preset", "tiny", "--set", "train.dropout=2"],
                 ["--data", tmp_path / "missing", "--preset", "tiny"]):
        with pytest.raises(SystemExit) as exit_:
            main([str(a) for a in argv] + ["--storage", str(tmp_path)])
        assert exit_.value.code == 2
    errors = capsys.readouterr().err
    assert "preset" in errors and "train.dropout" in errors and "--data" in errors
    assert ray.is_initialized() == was_running and not list(tmp_path.iterdir())
