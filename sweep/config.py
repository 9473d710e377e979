"""Sweep presets (YAML in sweep/presets/) and their validation, done in full before Ray starts.

A config is a frozen SweepConfig: top-level fields, `train` (how each model trains), `resources` (per-trial
CPUs and GPU shares by size) and `best` (the best-model run). Each field carries the rule that checks it.
"""

import copy
import dataclasses
import itertools
import math
from pathlib import Path

import yaml

from sweep.batches import HEADER_CONTEXT, window_targets

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


def setting(check):
    """A config field and the rule that checks (and converts) its value."""
    return dataclasses.field(metadata={"check": check})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model trains: passed to each trial, and to the best-model run."""
    block_size: int = setting(_number(int, 2 * HEADER_CONTEXT))  # a window's music, and its tune's header
    batch_size: int = setting(_number(int, 1))
    min_lr_ratio: float = setting(_number(float, 0, 1))
    warmup_fraction: float = setting(_number(float, 0, 1))
    betas: list = setting(_list_of(_number(float, 0, 1), length=2))
    weight_decay: float = setting(_number(float, 0))
    grad_clip: float = setting(_number(float, 0))
    dropout: float = setting(_number(float, 0, 1))
    compile: bool = setting(_boolean)
    report_every: int = setting(_number(int, 1))
    checkpoint_every: int = setting(_number(int, 1))
    checkpoint_min_s: float = setting(_number(float, 0))
    val_points: int = setting(_number(int, 0))
    val_batch_size: int = setting(_number(int, 1))
    time_budget_s: float = setting(_number(float, 0, low_open=True))
    max_train_tokens: int = setting(_number(int, 0))


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """The cells each (arch, size) is trained at: every peak learning rate at every share of the train split
    (nested subsets) with the first seed, and every learning rate with each further seed (initialisation and
    data order) on the largest share, where the L(N) fits and their error bars are made."""
    learning_rates: list = setting(_list_of(_number(float, 0, low_open=True)))
    data_fractions: list = setting(_list_of(_number(float, 0, 1, low_open=True)))
    seeds: list = setting(_list_of(_number(int, 0)))


@dataclasses.dataclass(frozen=True)
class TrialPoint:
    """Where one trial sits in the grid."""
    arch: str
    size: str
    learning_rate: float
    data_fraction: float
    seed: int

    @classmethod
    def of(cls, config):
        """The point of a trial's config as Tune passes it (trial_space)."""
        return cls(config["arch"], config["size"], **config["cell"])


@dataclasses.dataclass(frozen=True)
class ResourcesConfig:
    cpus_per_trial: float = setting(_number(float, 0, low_open=True))
    gpus_per_trial: dict = setting(_gpu_shares)


@dataclasses.dataclass(frozen=True)
class BestConfig:
    """The best-model run: validation pace, epochs at most, and its samples."""
    eval_every: int = setting(_number(int, 1))
    temperatures: list = setting(_list_of(_number(float, 0, low_open=True)))
    samples_per_temperature: int = setting(_number(int, 1))
    top_k: int = setting(_number(int, 0))
    max_new_tokens: int = setting(_number(int, 1))
    max_epochs: int = setting(_number(int, 1))


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    archs: list = setting(_list_of(_choice(ARCHS)))
    sizes: list = setting(_sizes)
    grid: GridConfig = setting(None)
    max_concurrent_trials: int = setting(_number(int, 0))
    max_failures: int = setting(_number(int, 0))
    train: TrainConfig = setting(None)
    resources: ResourcesConfig = setting(None)
    best: BestConfig = setting(None)

    def to_dict(self):
        return dataclasses.asdict(self)


def _check(cls, raw, prefix=""):
    """cls built from raw, every field checked by its rule (sections recursively); unknown or missing
    fields are errors."""
    if not isinstance(raw, dict):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", f"unknown field (known: {', '.join(fields)})")
    checked = {}
    for key, field in fields.items():
        name = f"{prefix}{key}"
        if key not in raw:
            raise ConfigError(name, "missing")
        rule = field.metadata["check"]
        checked[key] = _check(field.type, raw[key], f"{name}.") if rule is None else rule(name, raw[key])
    return cls(**checked)


def validate(raw):
    """The checked SweepConfig (numbers converted), or ConfigError naming the first bad field."""
    config = _check(SweepConfig, raw)
    missing = [size for size in config.sizes if size not in config.resources.gpus_per_trial]
    if missing:
        raise ConfigError("resources.gpus_per_trial", f"no GPU share for sizes {missing}")
    return config


def check_fits(train, train_tokens):
    """ConfigError when the train split, or the max_train_tokens an epoch may take of it, fills no window."""
    width = window_targets(train.block_size)
    if train_tokens < width:
        raise ConfigError("train.block_size", f"the {train_tokens} training tokens fill no window of "
                                              f"train.block_size {train.block_size} tokens ({width} of them predicted)")
    if train.max_train_tokens and train.max_train_tokens < width:
        raise ConfigError("train.max_train_tokens", f"an epoch of at most {train.max_train_tokens} tokens fills no "
                                                    f"window of train.block_size {train.block_size} tokens "
                                                    f"({width} of them predicted)")


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
    """Tune's param_space: the grid of TrialPoints; every trial also carries the data location and `train`."""
    from ray import tune

    return {
        "arch": tune.grid_search(config.archs),
        "size": tune.grid_search(config.sizes),
        "cell": tune.grid_search(grid_cells(config.grid)),
        "data": data,
        "train": dataclasses.asdict(config.train),
    }


def grid_cells(grid):
    """The (learning_rate, data_fraction, seed) cells of GridConfig's rule, as dicts."""
    first, *more = grid.seeds
    cells = list(itertools.product(grid.learning_rates, grid.data_fractions, [first]))
    cells += itertools.product(grid.learning_rates, [max(grid.data_fractions)], more)
    return [{"learning_rate": lr, "data_fraction": fraction, "seed": seed} for lr, fraction, seed in cells]


def trial_points(config):
    """Every trial of the sweep, in a fixed order."""
    return [TrialPoint(arch, size, **cell)
            for arch in config.archs for size in config.sizes for cell in grid_cells(config.grid)]
