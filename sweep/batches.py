"""Epochs of shuffled, non-overlapping windows of a token shard, addressable by step for exact resumes.

Window i holds inputs tokens[i*B : i*B+B] and targets tokens[i*B+1 : i*B+B+1], so across an epoch's windows
every training token is predicted exactly once (the last < B tokens that do not fill a window are left out).
An epoch takes its windows from the whole shard: the first max_windows (the CPU demo's cap), times a data
fraction f, of the windows in one fixed random order, the same for every seed, so the subsets of a
data-scaling grid are nested and each is a sample of every tune, not of the shard's first ones. Epoch e's order is a permutation drawn from seed + e alone, so a
restarted run rebuilds it and goes on at its step.
"""

import functools

import numpy as np
import torch


SUBSET_SEED = 0  # the order data fractions take their windows in: fixed, so smaller subsets nest in larger


class EpochWindows:
    def __init__(self, tokens, block_size, batch_size, seed, epochs=1, data_fraction=1.0, max_windows=0):
        self.tokens = tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.seed = seed
        windows = (len(tokens) - 1) // block_size
        if windows < 1:
            raise ValueError(f"{len(tokens)} tokens do not fill one window of {block_size}")
        self.num_windows = epoch_windows(windows, data_fraction, max_windows)
        self.windows = np.sort(np.random.default_rng(SUBSET_SEED).permutation(windows)[:self.num_windows])
        self.steps_per_epoch = -(-self.num_windows // batch_size)
        self.steps = epochs * self.steps_per_epoch
        self.order_of = functools.lru_cache(maxsize=1)(self._order)

    @property
    def tokens_per_epoch(self):
        return self.num_windows * self.block_size

    def _order(self, epoch):
        return self.windows[np.random.default_rng(self.seed + epoch).permutation(self.num_windows)]

    def batch(self, step):
        """Inputs and targets (int64, [n, block_size]) of the step-th batch; an epoch's last batch may be smaller."""
        epoch, step = divmod(step, self.steps_per_epoch)
        starts = self.order_of(epoch)[step * self.batch_size : (step + 1) * self.batch_size] * self.block_size
        return windows_at(self.tokens, starts, self.block_size)


def epoch_windows(windows, data_fraction=1.0, max_windows=0):
    """How many of a shard's windows one epoch takes."""
    return max(1, int(min(windows, max_windows or windows) * data_fraction))


def windows_at(tokens, starts, length):
    rows = np.stack([np.asarray(tokens[s : s + length + 1], dtype=np.int64) for s in starts])
    rows = torch.from_numpy(rows)
    return rows[:, :-1], rows[:, 1:]


def evaluation_batches(tokens, block_size, batch_size):
    """The whole split in order: full windows in batches, then the leftover tail as one shorter window."""
    full = (len(tokens) - 1) // block_size
    for first in range(0, full, batch_size):
        starts = np.arange(first, min(first + batch_size, full)) * block_size
        yield windows_at(tokens, starts, block_size)
    tail = len(tokens) - 1 - full * block_size
    if tail > 0:
        yield windows_at(tokens, [full * block_size], tail)
