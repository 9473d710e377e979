"""Train/val/test assignment per group of near-twins (near_twins.py), decided by the group's hash alone: its
first tune's md5. So a group, and every tune, has one split, whatever the input order."""

import collections

from preprocessing.shards import SPLITS

# Raised whenever tunes can land in other splits (2: by groups of near-twins, not tune by tune).
SPLIT_VERSION = 2


def hash_position(md5):
    """A uniform number in [0, 1) drawn from the tune's md5."""
    return int(md5[:15], 16) / 16**15


def split_of(md5, fractions):
    """fractions: (train, val, test) summing to 1; the tune's split name."""
    position = hash_position(md5)
    edge = 0.0
    for split, fraction in zip(SPLITS, fractions):
        edge += fraction
        if position < edge:
            return split
    return SPLITS[-1]


def group_splits(groups, fractions):
    """{group: split} for groups named by their first tune's md5; a split that would be empty (tiny corpora)
    gets the train group of the highest hash position."""
    splits = {group: split_of(group, fractions) for group in groups}
    counts = collections.Counter(splits.values())
    train = sorted((g for g, split in splits.items() if split == "train"), key=hash_position, reverse=True)
    return {**splits, **rescue_empty_splits(counts, train, fractions)}


def rescue_empty_splits(counts, train_candidates, fractions):
    """Move train groups into val/test where those came out empty (tiny corpora).

    counts: groups per split; train_candidates: train groups with the highest hash positions, highest first.
    Returns {group: split} overrides; raises if the corpus is too small to split.
    """
    overrides = {}
    candidates = list(train_candidates)
    for split, fraction in zip(SPLITS[1:], fractions[1:]):
        if fraction > 0 and counts[split] == 0:
            if counts["train"] - len(overrides) < 2 or not candidates:
                raise ValueError(
                    f"only {sum(counts.values())} tunes (groups of near-twins) were kept: too few to give train, "
                    f"val and test at least one each (add input files or relax the filters)")
            overrides[candidates.pop(0)] = split
    return overrides
