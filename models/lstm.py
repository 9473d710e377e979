"""Embedding -> multi-layer LSTM (cuDNN on GPU) -> LayerNorm -> output head, and its size search.

Windows are independent: every forward starts from a zero hidden state, like the GPT's context.
"""

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn as nn

from models.base import LanguageModel, next_token_loss

MATCH_TOLERANCE = 0.03
LAYER_CHOICES = (1, 2, 3, 4)
PREFERRED_LAYERS = 2


@dataclass
class LSTMConfig:
    vocab_size: int
    block_size: int = 256
    n_hidden: int = 256
    n_layer: int = 2
    dropout: float = 0.0


class LSTM(LanguageModel):
    arch = "lstm"
    config_class = LSTMConfig
    # Dynamo graph-breaks on nn.LSTM and then runs the whole forward eagerly (pytorch issue 141184);
    # cuDNN's fused LSTM kernel is the fast path anyway.
    compilable = False

    def __init__(self, config, size=None):
        super().__init__(config, size)
        h = config.n_hidden
        self.embedding = nn.Embedding(config.vocab_size, h)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(h, h, num_layers=config.n_layer, batch_first=True,
                            dropout=config.dropout if config.n_layer > 1 else 0.0)
        self.ln_f = nn.LayerNorm(h)
        self.lm_head = nn.Linear(h, config.vocab_size, bias=False)
        nn.init.normal_(self.embedding.weight, mean=0.0, std=0.02)
        nn.init.normal_(self.lm_head.weight, mean=0.0, std=0.02)
        with torch.no_grad():
            # Forget-gate bias of 1 (gate order i, f, g, o): remember by default early in training.
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[h:2 * h].fill_(1.0)

    def lookup_tables(self):
        return [self.embedding.weight]

    def vocabulary_parameters(self):
        return [self.embedding.weight, self.lm_head.weight]

    def forward(self, idx, targets=None):
        if idx.size(1) > self.config.block_size:
            raise ValueError(f"sequence length {idx.size(1)} exceeds block_size {self.config.block_size}")
        x, _ = self.lstm(self.drop(self.embedding(idx)))
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else next_token_loss(logits, targets)
        return logits, loss


def lstm_params(vocab_size, n_hidden, n_layer):
    """Exact parameter count of an LSTM model of that shape (built on the meta device: no memory)."""
    with torch.device("meta"):
        return LSTM(LSTMConfig(vocab_size, n_hidden=n_hidden, n_layer=n_layer)).num_params()


def match_lstm(target_params, vocab_size, tolerance=MATCH_TOLERANCE):
    """The (n_hidden, n_layer) whose LSTM lands within ±tolerance of target_params.

    Search: for each depth in LAYER_CHOICES, solve for the real width whose count equals the target
    and take as candidates the integer widths and the multiples of 8 on either side of it. Among
    candidates within tolerance prefer, in order: the depth closest to PREFERRED_LAYERS (the usual
    depth of LSTM language models, kept the same along a ladder so only width changes), a width
    that is a multiple of 8 (tensor cores), then the smallest relative error.
    """
    candidates = []
    for n_layer in LAYER_CHOICES:
        a, b, c = _count_coefficients(vocab_size, n_layer)
        width = (-b + math.sqrt(b * b - 4 * a * (c - target_params))) / (2 * a)
        for n_hidden in {math.floor(width), math.ceil(width), math.floor(width / 8) * 8, math.ceil(width / 8) * 8}:
            if n_hidden >= 1:
                error = abs((a * n_hidden ** 2 + b * n_hidden + c) / target_params - 1)
                candidates.append((abs(n_layer - PREFERRED_LAYERS), n_hidden % 8 != 0, error, n_hidden, n_layer))
    within = [c for c in candidates if c[2] <= tolerance]
    if not within:
        raise ValueError(f"no LSTM within ±{tolerance:.0%} of {target_params} parameters "
                         f"at vocab_size {vocab_size}")
    *_, n_hidden, n_layer = min(within)
    return n_hidden, n_layer


@lru_cache(maxsize=None)
def _count_coefficients(vocab_size, n_layer):
    """count(width) = a·width² + b·width + c exactly, so three real counts fix (a, b, c)."""
    p1, p2, p3 = (lstm_params(vocab_size, h, n_layer) for h in (1, 2, 3))
    a = (p3 - 2 * p2 + p1) // 2
    b = p2 - p1 - 3 * a
    return a, b, p1 - a - b
