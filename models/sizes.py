"""The size ladders of the study and of the CPU demo, and build_model for both families.

An LSTM size is defined by its GPT partner: same name, same vocabulary, and a width and depth
found by `match_lstm` so its total parameter count lands within ±3% of the GPT's.
"""

import dataclasses
from functools import lru_cache

import torch

from models.gpt import GPT, GPTConfig
from models.lstm import LSTM, LSTMConfig, match_lstm

ARCHS = ("gpt", "lstm")
SIZES = ("tiny", "small", "medium", "large", "xl")
DEMO_SIZES = ("cpu-tiny", "cpu-small", "cpu-medium", "cpu-large", "cpu-xl")

# size: (n_layer, n_head, n_embd). The context length (block_size) is a training setting: the sweep's preset
# sets it; GPTConfig's default (256, the study's) serves the size table and the benchmarks.
GPT_SHAPES = {
    "tiny": (6, 6, 192),
    "small": (8, 8, 256),
    "medium": (12, 12, 384),
    "large": (16, 16, 512),
    "xl": (20, 20, 640),
    # CPU demo ladder: ~18k to ~1M parameters at a 300-token vocabulary, ~2.5-3x apart.
    "cpu-tiny": (2, 2, 16),
    "cpu-small": (2, 2, 32),
    "cpu-medium": (3, 3, 54),
    "cpu-large": (4, 4, 80),
    "cpu-xl": (5, 5, 120),
}

# Total parameters the study reported for its GPTs at a 1,734-token vocabulary (untied head).
STUDY_VOCAB_SIZE = 1734
STUDY_PARAMS = {"tiny": 3.4e6, "small": 7.3e6, "medium": 22.7e6, "large": 52.4e6, "xl": 100.9e6}


def gpt_config(size, vocab_size, **overrides):
    if size not in GPT_SHAPES:
        raise ValueError(f"size must be one of {SIZES + DEMO_SIZES}, got {size!r}")
    n_layer, n_head, n_embd = GPT_SHAPES[size]
    config = GPTConfig(vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    return _with_overrides(config, overrides)


def lstm_config(size, vocab_size, **overrides):
    block_size = overrides.get("block_size", gpt_config(size, vocab_size).block_size)
    n_hidden, n_layer = _matched_shape(size, vocab_size, block_size)
    config = LSTMConfig(vocab_size=vocab_size, block_size=block_size, n_hidden=n_hidden, n_layer=n_layer)
    return _with_overrides(config, overrides)


def build_model(arch, size, vocab_size, **overrides):
    """A freshly initialised model of that family and size; overrides replace config fields."""
    if arch == "gpt":
        return GPT(gpt_config(size, vocab_size, **overrides), size=size)
    if arch == "lstm":
        return LSTM(lstm_config(size, vocab_size, **overrides), size=size)
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def model_class(arch):
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    return GPT if arch == "gpt" else LSTM


@lru_cache(maxsize=None)
def _matched_shape(size, vocab_size, block_size):
    """The LSTM shape matched to the GPT of that size at this vocabulary and block size."""
    with torch.device("meta"):
        target = GPT(gpt_config(size, vocab_size, block_size=block_size)).num_params()
    return match_lstm(target, vocab_size)


def _with_overrides(config, overrides):
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown {type(config).__name__} field(s) {unknown}; known: {sorted(fields)}")
    return dataclasses.replace(config, **overrides)
