"""Near-twins: tunes whose music is nearly the same, such as one reel in two tune books or two encodings of a song.

A tune's fingerprint is the set of its melodic shapes: every run of INTERVALS successive pitch intervals
(pitches.py), so a transposed version has the same set. MinHash (datasketch) keeps NUM_PERM numbers per tune,
of which the share that two tunes have in common estimates the Jaccard similarity of their sets. Two tunes
are near-twins at an estimated similarity of THRESHOLD or more; near-twins and their near-twins form a group,
and the split keeps each group in one split. LSH finds the pairs worth comparing: tunes whose numbers agree in
all ROWS places of at least one of BANDS bands (a pair at similarity 0.5 shares a band with probability 0.87;
at 0.6, 0.99; at 0.2, 0.05).
"""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import ray
from datasketch import MinHash
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from preprocessing.parallel import block_count, cluster_cpus, ordered_results
from preprocessing.pitches import tune_pitches
from preprocessing.progress import progress_bar

INTERVALS = 5  # a shingle: 6 notes
MAX_LEAP = 31  # wider intervals count as this many semitones: 6 bits an interval, so a shingle is its own 30-bit hash
NUM_PERM = 128
THRESHOLD = 0.5
BANDS, ROWS = 32, 4
SEED = 1
EMPTY = np.uint32(2**32 - 1)  # every value of the signature of a set without shingles
SCREEN = 32  # values that screen a pair in the check against every train tune
MULTIPLIERS = np.random.default_rng(SEED).integers(0, 2**63, NUM_PERM, dtype=np.uint64) * 2 + 1  # odd: row_keys
TUNES_PER_BLOCK = 200  # tunes a Ray task
PAIRS_PER_CHECK = 1 << 16  # candidate pairs compared at a time (two rows of 512 bytes each)
PERMUTATIONS = MinHash(NUM_PERM, seed=SEED).permutations


def shingles(pitches):
    """The distinct runs of INTERVALS successive intervals of a pitch sequence, as uint32 numbers."""
    intervals = np.clip(np.diff(pitches.astype(np.int32)), -MAX_LEAP, MAX_LEAP) + MAX_LEAP
    if len(intervals) < INTERVALS:
        return np.zeros(0, np.uint32)
    runs = np.lib.stride_tricks.sliding_window_view(intervals, INTERVALS)
    return np.unique(runs @ (2 * MAX_LEAP + 1) ** np.arange(INTERVALS)).astype(np.uint32)


def signature(abc):
    """The tune's MinHash: NUM_PERM uint32 values (all 2**32 - 1 for a tune of fewer than 6 notes)."""
    minhash = MinHash(NUM_PERM, seed=SEED, hashfunc=int, permutations=PERMUTATIONS, scheme="affine32")
    minhash.update_batch(shingles(tune_pitches(abc)))
    return minhash.hashvalues


@ray.remote
def signature_block(abc_texts):
    return np.stack([signature(abc) for abc in abc_texts])


def tune_signatures(tunes_path, quiet=False):
    """(tune md5s, signatures: tunes x NUM_PERM uint32) of the tunes in a Parquet file (columns tune_md5 and
    abc), each block of tunes in a Ray task."""
    file = pq.ParquetFile(tunes_path)
    tunes = file.metadata.num_rows
    per_block = -(-tunes // block_count(tunes, TUNES_PER_BLOCK)) if tunes else 1
    blocks = (signature_block.remote(batch["abc"].to_pylist())
              for batch in file.iter_batches(per_block, columns=["abc"]))
    signatures = []
    with progress_bar(tunes, "fingerprinting", "tune", quiet) as bar:
        for block in ordered_results(blocks, 2 * cluster_cpus()):
            signatures.append(block)
            bar.update(len(block))
    md5s = file.read(columns=["tune_md5"])["tune_md5"].to_pylist()
    return md5s, np.concatenate(signatures) if signatures else np.zeros((0, NUM_PERM), np.uint32)


def twin_pairs(signatures):
    """(first, second) index arrays of the near-twin pairs that LSH finds. Tunes with equal signatures are
    paired with the first of them, which alone goes on to the bands: thousands of copies cost no more than one.
    A tune of fewer than 6 notes has no shingles, and no near-twin."""
    rows = np.flatnonzero((signatures != EMPTY).any(axis=1))
    bands = np.stack([row_keys(signatures[rows, band * ROWS:(band + 1) * ROWS]) for band in range(BANDS)], axis=1)
    _, first, copy_of = np.unique(row_keys(bands), return_index=True, return_inverse=True)
    copies = np.flatnonzero(first[copy_of] != np.arange(len(rows)))
    candidates = [(first[copy_of[copies]], copies)]
    candidates += [(first[i], first[j]) for band in range(BANDS) for i, j in band_candidates(bands[first, band])]
    pairs = [near_pairs(signatures, rows[i], rows[j]) for i, j in candidates]
    return np.unique(np.sort(np.concatenate(pairs, axis=1), axis=0), axis=1)


def row_keys(values):
    """A 64-bit hash of each row of values (uint32 or uint64): rows with equal keys are compared, so a rare
    collision of unequal rows costs a comparison and no more."""
    return np.bitwise_xor.reduce(values.astype(np.uint64) * MULTIPLIERS[:values.shape[1]], axis=1)


def band_candidates(keys):
    """(i, j) index arrays of every pair of rows with equal keys."""
    _, bucket, size = np.unique(keys, return_inverse=True, return_counts=True)
    order = np.flatnonzero(size[bucket] > 1)  # the rows that share their bucket
    order = order[np.argsort(bucket[order], kind="stable")]
    bucket = bucket[order]
    offset = 1
    while (same := np.flatnonzero(bucket[offset:] == bucket[:-offset])).size:
        yield order[same], order[same + offset]
        offset += 1


def near_pairs(signatures, i, j):
    """The pairs of rows (i, j) of signatures at an estimated similarity of THRESHOLD or more, as a 2 x pairs
    array; compared PAIRS_PER_CHECK at a time."""
    near = [similarity(signatures[i[start:start + PAIRS_PER_CHECK]], signatures[j[start:start + PAIRS_PER_CHECK]])
            >= THRESHOLD for start in range(0, len(i), PAIRS_PER_CHECK)]
    return np.stack([i, j])[:, np.concatenate(near)] if near else np.zeros((2, 0), np.int64)


def similarity(first, second):
    """Estimated Jaccard similarity of each pair of rows of two signature arrays: the share of equal values."""
    return (first == second).mean(axis=1)


def groups(md5s, signatures):
    """{tune md5: its group}: the smallest md5 of the tunes it is linked to by near-twin pairs (its own md5 for
    a tune without near-twins), so the groups do not depend on the input order."""
    first, second = twin_pairs(signatures)
    graph = coo_matrix((np.ones(len(first)), (first, second)), shape=(len(md5s),) * 2)
    component = connected_components(graph, directed=False)[1]
    md5s = np.array(md5s, dtype=str)
    by_md5 = np.argsort(md5s)
    smallest = md5s[by_md5[np.unique(component[by_md5], return_index=True)[1]]]  # components are numbered 0, 1, ...
    return dict(zip(md5s.tolist(), smallest[component].tolist()))


def with_twin(held, others):
    """Which rows of held have a near-twin among the rows of others, each compared with every one of them,
    not only with LSH's candidates. The first SCREEN values screen a pair: one at THRESHOLD agrees in fewer
    than a quarter of them with probability 1.1e-4."""
    others = others[(others != EMPTY).any(axis=1)]
    screen = np.ascontiguousarray(others[:, :SCREEN].T)  # one value of every other tune, contiguous
    found = np.zeros(len(held), bool)
    for start in range(0, len(held), 64):
        rows = held[start:start + 64]
        for part in range(0, len(others), 16384):
            columns = screen[:, part:part + 16384]
            agree = np.zeros((len(rows), columns.shape[1]), np.uint8)
            for value in range(SCREEN):
                agree += rows[:, value, None] == columns[value]
            row, other = np.nonzero(agree >= SCREEN * THRESHOLD / 2)
            found[start + row[similarity(rows[row], others[part + other]) >= THRESHOLD]] = True
    return found


def twin_figures(signatures, group, before, after):
    """summary.json's near_twins. group: each tune's group; before, after: each tune's split under two
    assignments, for the count of test tunes with a near-twin in train under each."""
    sizes = pd.Series(group, dtype=object).value_counts()
    splits = {"before": np.array(before, dtype=object), "after": np.array(after, dtype=object)}
    return {"threshold": THRESHOLD, "intervals_per_shingle": INTERVALS, "num_perm": NUM_PERM,
            "groups": int((sizes > 1).sum()), "tunes_in_groups": int(sizes[sizes > 1].sum()),
            "largest_group": int(sizes.max()) if len(sizes) else 0,
            "test_tunes": {name: int((split == "test").sum()) for name, split in splits.items()},
            "test_with_twin_in_train": {name: int(with_twin(signatures[split == "test"],
                                                            signatures[split == "train"]).sum())
                                        for name, split in splits.items()}}
