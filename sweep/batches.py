"""One epoch as shuffled, non-overlapping windows of a token shard, addressable by step for exact resumes.

Window i holds inputs tokens[i*B : i*B+B] and targets tokens[i*B+1 : i*B+B+1], so across the windows every
training token is predicted exactly once (the last < B tokens that do not fill a window are left out).
The order is a permutation drawn from the seed alone, so a restarted trial rebuilds it and goes on at its step.
"""

import numpy as np
import torch


class EpochWindows:
    def __init__(self, tokens, block_size, batch_size, seed):
        self.tokens = tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.num_windows = (len(tokens) - 1) // block_size
        if self.num_windows < 1:
            raise ValueError(f"{len(tokens)} tokens do not fill one window of {block_size}")
        self.order = np.random.default_rng(seed).permutation(self.num_windows)

    @property
    def tokens_per_epoch(self):
        return self.num_windows * self.block_size

    @property
    def steps(self):
        return -(-self.num_windows // self.batch_size)

    def batch(self, step):
        """Inputs and targets (int64, [n, block_size]) of the step-th batch; the last batch may be smaller."""
        starts = self.order[step * self.batch_size : (step + 1) * self.batch_size] * self.block_size
        return windows_at(self.tokens, starts, self.block_size)


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
