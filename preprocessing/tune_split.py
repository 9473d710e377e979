"""Per-tune train/val/test assignment, decided by the tune's hash alone (so a tune has one split)."""

from preprocessing.shards import SPLITS


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


def rescue_empty_splits(counts, train_candidates, fractions):
    """Move train tunes into val/test where those came out empty (tiny corpora).

    counts: tunes per split; train_candidates: md5s of train tunes with the highest hash positions,
    highest first. Returns {md5: split} overrides; raises if the corpus is too small to split.
    """
    overrides = {}
    candidates = list(train_candidates)
    for split, fraction in zip(SPLITS[1:], fractions[1:]):
        if fraction > 0 and counts[split] == 0:
            if counts["train"] - len(overrides) < 2 or not candidates:
                raise ValueError(
                    f"only {sum(counts.values())} tunes were kept: too few to give train, val and "
                    f"test at least one tune each (add input files or relax the filters)")
            overrides[candidates.pop(0)] = split
    return overrides
