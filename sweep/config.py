"""Sweep presets (YAML in sweep/presets/) and their validation, done in full before Ray starts.

A config is a nested dict: top-level fields, `train` (the per-trial training settings, passed flat to each
trial), `resources` (per-trial CPUs and GPU shares by size) and `best` (the best-model run).
"""

import copy
import math
from pathlib import Path

import yaml

PRESET_DIR = Path(__file__).resolve().parent / "presets"
ARCHS = ("gpt", "lstm")


class ConfigError(ValueError):
    """A bad config value; `field` is its dotted name, e.g. `train.learning_rate`."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field


def _number(kind, low=None, high=None, low_open=False):
    def check(field, value):
        if isinstance(value, bool):
            raise ConfigError(field, f"expected a number, got {value!r}")
        try:
            number = kind(value) if not isinstance(value, str) else kind(float(value))
        except (TypeError, ValueError):
            raise ConfigError(field, f"expected a number, got {value!r}") from None
        if kind is int and float(value) != number:
            raise ConfigError(field, f"expected an integer, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(field, f"expected a finite number, got {value!r}")
        if low is not None and (number < low or (low_open and number == low)):
            raise ConfigError(field, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
        if high is not None and number > high:
            raise ConfigError(field, f"must be <= {high}, got {value!r}")
        return number

    return check


def _boolean(field, value):
    if not isinstance(value, bool):
        raise ConfigError(field, f"expected true or false, got {value!r}")
    return value


def _choice(options):
    def check(field, value):
        if value not in options:
            raise ConfigError(field, f"must be one of {list(options)}, got {value!r}")
        return value

    return check


def _list_of(item_check, length=None):
    def check(field, value):
        if not isinstance(value, list) or not value:
            raise ConfigError(field, f"expected a non-empty list, got {value!r}")
        if length is not None and len(value) != length:
            raise ConfigError(field, f"expected {length} values, got {len(value)}")
        items = [item_check(f"{field}[{i}]", item) for i, item in enumerate(value)]
        if len(set(map(repr, items))) != len(items):
            raise ConfigError(field, f"has duplicates: {value!r}")
        return items

    return check


def _sizes(field, value):
    from models import DEMO_SIZES, SIZES

    return _list_of(_choice(SIZES + DEMO_SIZES))(field, value)


def _gpu_shares(field, value):
    if not isinstance(value, dict) or not value:
        raise ConfigError(field, f"expected a mapping of size to GPU share, got {value!r}")
    share = _number(float, 0, 1)
    return {str(size): share(f"{field}.{size}", v) for size, v in value.items()}


SCHEMA = {
    "archs": _list_of(_choice(ARCHS)),
    "sizes": _sizes,
    "seed": _number(int, 0),
    "max_concurrent_trials": _number(int, 0),
    "max_failures": _number(int, 0),
    "train": {
        "block_size": _number(int, 2),
        "batch_size": _number(int, 1),
        "learning_rate": _number(float, 0, low_open=True),
        "min_learning_rate": _number(float, 0),
        "warmup_fraction": _number(float, 0, 1),
        "betas": _list_of(_number(float, 0, 1), length=2),
        "weight_decay": _number(float, 0),
        "grad_clip": _number(float, 0),
        "dropout": _number(float, 0, 1),
        "compile": _boolean,
        "report_every": _number(int, 1),
        "checkpoint_every": _number(int, 1),
        "checkpoint_min_s": _number(float, 0),
        "val_points": _number(int, 0),
        "val_batch_size": _number(int, 1),
        "time_budget_s": _number(float, 0, low_open=True),
        "max_train_tokens": _number(int, 0),
        "crash_at_step": _number(int, 0),
    },
    "resources": {
        "cpus_per_trial": _number(float, 0, low_open=True),
        "gpus_per_trial": _gpu_shares,
    },
    "best": {
        "eval_every": _number(int, 1),
        "temperatures": _list_of(_number(float, 0, low_open=True)),
        "samples_per_temperature": _number(int, 1),
        "top_k": _number(int, 0),
        "max_new_tokens": _number(int, 1),
        "max_epochs": _number(int, 1),
    },
}


def _check(schema, raw, prefix=""):
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected a mapping, got {raw!r}")
    for key in raw:
        if key not in schema:
            raise ConfigError(f"{prefix}{key}", f"unknown field (known: {', '.join(schema)})")
    checked = {}
    for key, rule in schema.items():
        field = f"{prefix}{key}"
        if key not in raw:
            raise ConfigError(field, "missing")
        checked[key] = _check(rule, raw[key], f"{field}.") if isinstance(rule, dict) else rule(field, raw[key])
    return checked


def validate(raw):
    """The checked config (numbers converted), or ConfigError naming the first bad field."""
    config = _check(SCHEMA, raw)
    train = config["train"]
    if train["min_learning_rate"] > train["learning_rate"]:
        raise ConfigError("train.min_learning_rate", "must not exceed train.learning_rate")
    missing = [size for size in config["sizes"] if size not in config["resources"]["gpus_per_trial"]]
    if missing:
        raise ConfigError("resources.gpus_per_trial", f"no GPU share for sizes {missing}")
    return config


def preset_names():
    return sorted(path.stem for path in PRESET_DIR.glob("*.yaml"))


def load_preset(name):
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError("preset", f"no preset {name!r} (presets: {', '.join(preset_names())})")
    return yaml.safe_load(path.read_text())


def apply_overrides(raw, assignments):
    """`--set train.learning_rate=1e-3 sizes=[tiny,small]`: values are parsed as YAML."""
    config = copy.deepcopy(raw)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep or not key:
            raise ConfigError(assignment, "expected --set key=value, e.g. train.learning_rate=1e-3")
        *parents, leaf = key.split(".")
        node = config
        for depth, part in enumerate(parents):
            if not isinstance(node.get(part), dict):
                raise ConfigError(".".join(parents[: depth + 1]), "unknown section")
            node = node[part]
        node[leaf] = yaml.safe_load(text)
    return config


def load_config(preset, assignments=()):
    return validate(apply_overrides(load_preset(preset), assignments))


def trial_space(config, data):
    """Tune's param_space: the arch x size grid; every trial also carries the data location and `train`."""
    from ray import tune

    return {
        "arch": tune.grid_search(config["archs"]),
        "size": tune.grid_search(config["sizes"]),
        "seed": config["seed"],
        "data": data,
        **config["train"],
    }
