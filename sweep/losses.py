"""A split's loss in the units that compare across tokenizations (bits per note and per bar, with the counts
meta.json records) and broken down by the kind of token predicted (sweep.results.TOKEN_GROUPS).

Groups: note (a pitch with its length), length (what sets a duration without a pitch: rests, ties, broken
rhythm, tuplets), bar (bar lines, repeats, endings), chord (its brackets), space (spaces and newlines), header
(field lines: X:, M:, L:, Q:, K:, V:, inline fields), end (end of tune), other (<unk>, quotes, decorations...).
"""

import math

import numpy as np

from preprocessing.abc_tokens import EOT, UNK, token_kind
from sweep.results import TOKEN_GROUPS

KIND_GROUPS = {"note": "note", "rest": "length", "broken": "length", "tuplet": "length", "bar": "bar",
               "chord_end": "chord", "space": "space", "field": "header", "inline": "header"}
TOKEN_GROUP = {EOT: "end", UNK: "other", "[": "chord", "-": "length", "\n": "space"}  # by token, before the kind


def token_group(token):
    return TOKEN_GROUP.get(token) or KIND_GROUPS.get(token_kind(token), "other")


def group_ids(vocab):
    """Token id -> index of its group in TOKEN_GROUPS."""
    return np.array([TOKEN_GROUPS.index(token_group(token)) for token in vocab], dtype=np.int64)


def loss_metrics(split, sums, counts, meta):
    """{split}_loss (nats per token), _bits_per_note and _bits_per_bar (NaN when meta.json has no counts: data
    prepared before they were recorded) and per group _loss_<group> and _share_<group>, from the summed loss and
    the token count of each group over a whole split (every token predicted once)."""
    sums, counts = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    bits = sums.sum() / math.log(2)
    entry = meta["splits"][split]
    metrics = {f"{split}_loss": sums.sum() / counts.sum(),
               f"{split}_bits_per_note": bits / entry["notes"] if entry.get("notes") else math.nan,
               f"{split}_bits_per_bar": bits / entry["bars"] if entry.get("bars") else math.nan}
    for group, total, count in zip(TOKEN_GROUPS, sums, counts):
        metrics[f"{split}_loss_{group}"] = total / count if count else math.nan
        metrics[f"{split}_share_{group}"] = count / counts.sum()
    return metrics
