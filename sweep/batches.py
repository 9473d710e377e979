"""Epochs of shuffled windows of a token shard, each with its tune's header in context, addressable by step for
exact resumes.

A window of block_size positions gives its first HEADER_CONTEXT to the header of the tune its stream part starts
in (X:, M:, L:, Q:, K: and the V: line of its voice: what says how long a note is and which key it is read in) and
the rest to the stream, from the token before its first target on. Window i predicts the W = block_size -
HEADER_CONTEXT tokens tokens[i*W : i*W + W], each from the header and the stream before it, so across an epoch's
windows every training token is predicted exactly once (the last < W tokens that do not fill a window are left
out). No token is predicted from the header alone: a header followed straight by a token to predict is how a tune
starts, and windows that begin mid-tune taught the models to start tunes with bar lines, ties and end-of-tune
tokens. The header's positions have no targets (-1). A window that starts inside a header is given only the part
before its start, so its context is the stream as it was; a short header is preceded by end-of-tune tokens, as a
tune is in the stream, and so is the shard's first token.

An epoch takes its windows from the whole shard: the first max_tokens // W (the CPU demo's cap), times a data
fraction f, of the windows in one fixed random order, the same for every seed, so the subsets of a data-scaling
grid are nested and each is a sample of every tune, not of the shard's first ones. Epoch e's order is a
permutation drawn from seed + e alone, so a restarted run rebuilds it and goes on at its step.
"""

import functools

import numpy as np
import torch

from preprocessing.abc_tokens import EOT, UNK, token_kind

SUBSET_SEED = 0  # the order data fractions take their windows in: fixed, so smaller subsets nest in larger
HEADER_CONTEXT = 12  # X:, M:, L:, Q:, K: and V: lines, a field and a newline token each; a longer header keeps its end
LONGEST_HEADER = 32  # tokens searched for a tune's header end
SCAN = 1 << 24  # tokens looked up at a time when indexing a shard
BODY, HEADER, VOICE, END = range(4)


def window_targets(block_size):
    """Tokens one window predicts: its positions but the header's (the first after the header holds the token
    before the first target)."""
    return block_size - HEADER_CONTEXT


def positions_per_target(block_size):
    """Positions a model processes per token it is trained on: the header context's cost."""
    return block_size / window_targets(block_size)


def token_role(token):
    """END for <eot>; VOICE for a V: line; HEADER for another field line, a newline or <unk> (a rare key is
    <unk>); BODY for the rest."""
    if token == EOT:
        return END
    if token == UNK or token == "\n":
        return HEADER
    if token_kind(token) != "field":
        return BODY
    return VOICE if token.startswith("V:") else HEADER


class TuneHeaders:
    """A split's tokens and, found once in them, where each tune (or chunk: each repeats its tune's header)
    starts, where its header ends and where its voice lines are."""

    def __init__(self, tokens, vocab):
        """tokens: the split's ids (a memmap); vocab: meta.json's token strings."""
        roles = np.array([token_role(token) for token in vocab], dtype=np.int8)
        self.tokens = tokens
        self.eot_id = vocab.index(EOT)
        self.starts = np.concatenate([[0], positions(tokens, roles == END) + 1])
        self.header_ends = self.starts + header_lengths(tokens, self.starts, roles == HEADER)
        self.voices = positions(tokens, roles == VOICE)

    def __len__(self):
        return len(self.tokens)

    def context(self, start):
        """The HEADER_CONTEXT tokens a window starting at `start` is given: the header of its tune before start,
        then the part before start of the voice line start is in, end-of-tune tokens ahead to fill it."""
        tune = np.searchsorted(self.starts, start, side="right") - 1
        begin, header_end = self.starts[tune], self.header_ends[tune]
        parts = [self.tokens[begin:min(start, header_end)]]
        voice = np.searchsorted(self.voices, start) - 1
        if start > header_end and voice >= 0 and self.voices[voice] >= header_end:
            parts.append(self.tokens[self.voices[voice]:min(self.voices[voice] + 2, start)])
        header = np.concatenate(parts)[-HEADER_CONTEXT:]
        return np.concatenate([np.full(HEADER_CONTEXT - len(header), self.eot_id), header])


def positions(tokens, wanted):
    """Positions of the tokens whose id `wanted` (a boolean table) marks, a slice of the shard at a time."""
    found = [np.flatnonzero(wanted[tokens[at:at + SCAN]]) + at for at in range(0, len(tokens), SCAN)]
    return np.concatenate([np.zeros(0, dtype=np.int64), *found])


def header_lengths(tokens, starts, is_header):
    """Per tune, how many of its first tokens are header lines (at most LONGEST_HEADER)."""
    lengths = []
    for block in range(0, len(starts), SCAN // LONGEST_HEADER):
        ahead = starts[block:block + SCAN // LONGEST_HEADER, None] + np.arange(LONGEST_HEADER)
        inside = is_header[tokens[np.minimum(ahead, len(tokens) - 1)]]
        lengths.append(np.where(inside.all(axis=1), LONGEST_HEADER, inside.argmin(axis=1)))
    return np.concatenate([np.zeros(0, dtype=np.int64), *lengths])


class EpochWindows:
    def __init__(self, headers, block_size, batch_size, seed, epochs=1, data_fraction=1.0, max_tokens=0):
        """headers: the train split's TuneHeaders."""
        self.headers = headers
        self.width = window_targets(block_size)
        self.batch_size = batch_size
        self.seed = seed
        windows = len(headers) // self.width
        if windows < 1:
            raise ValueError(f"{len(headers)} tokens do not fill one window of {self.width} targets")
        self.num_windows = epoch_windows(len(headers), block_size, data_fraction, max_tokens)
        self.windows = np.sort(np.random.default_rng(SUBSET_SEED).permutation(windows)[:self.num_windows])
        self.steps_per_epoch = -(-self.num_windows // batch_size)
        self.steps = epochs * self.steps_per_epoch
        self.order_of = functools.lru_cache(maxsize=1)(self._order)

    @property
    def tokens_per_epoch(self):
        return self.num_windows * self.width

    def _order(self, epoch):
        return self.windows[np.random.default_rng(self.seed + epoch).permutation(self.num_windows)]

    def batch(self, step):
        """Inputs and targets (int64, [n, block_size]) of the step-th batch; an epoch's last batch may be smaller."""
        epoch, step = divmod(step, self.steps_per_epoch)
        starts = self.order_of(epoch)[step * self.batch_size : (step + 1) * self.batch_size] * self.width
        return windows_at(self.headers, starts, self.width)


def epoch_windows(tokens, block_size, data_fraction=1.0, max_tokens=0):
    """How many windows one epoch takes of a shard of `tokens` tokens, at most max_tokens (0: all) of them."""
    width = window_targets(block_size)
    return max(1, int(min(tokens, max_tokens or tokens) // width * data_fraction))


def windows_at(headers, starts, length):
    """Inputs and targets of the windows that predict tokens[s : s + length] for each s in starts."""
    rows = torch.from_numpy(np.stack([window_row(headers, s, length) for s in starts]).astype(np.int64))
    targets = rows[:, 1:].clone()
    targets[:, :HEADER_CONTEXT] = -1
    return rows[:, :-1], targets


def window_row(headers, start, length):
    """The context of the token before start, that token and the length tokens from start on; before the shard's
    first token stands an end of tune."""
    if start == 0:
        return np.concatenate([headers.context(0), [headers.eot_id], headers.tokens[:length]])
    return np.concatenate([headers.context(start - 1), headers.tokens[start - 1:start + length]])


def evaluation_batches(headers, block_size, batch_size):
    """The whole split in order, every token predicted once: full windows in batches, then the leftover tail as
    one shorter window."""
    width = window_targets(block_size)
    full = len(headers) // width
    for first in range(0, full, batch_size):
        yield windows_at(headers, np.arange(first, min(first + batch_size, full)) * width, width)
    tail = len(headers) - full * width
    if tail:
        yield windows_at(headers, [full * width], tail)
