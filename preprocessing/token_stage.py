"""The token stage: every kept tune is tokenized and cut into chunks once, in Ray tasks, then encoded.

Tokenizing is costly (at Lakh scale the heaviest work after midi2abc), and the vocabulary needs the train
split's counts before any id exists. So one pass of Ray tasks gives, per tune, its distinct tokens and its
sequence as positions among them (each chunk followed by an end-of-tune slot); the driver streams these in
the tunes' fixed order to a scratch Parquet file and counts the train tunes' tokens on the way. Once the
vocabulary is built, encoding is a per-tune lookup table applied with numpy, cheap enough for the driver.
"""

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from preprocessing.abc_tokens import POSITION, tune_positions
from preprocessing.chunking import chunk_ranges
from preprocessing.parallel import block_count, cluster_cpus, ordered_results
from preprocessing.progress import progress_bar
from preprocessing.shards import DTYPE

TUNES_PER_BLOCK = 200  # tunes a task, and a read of the scratch file
TOKENIZED_SCHEMA = pa.schema([("distinct", pa.list_(pa.string())), ("counts", pa.binary()),
                              ("sequence", pa.binary())])


@ray.remote
def tokenize_block(abc_texts, max_tokens):
    """Per tune: its distinct tokens, how often each occurs in the tune, and its chunks as positions among
    them, each chunk followed by the end-of-tune slot len(distinct) (both uint32 bytes)."""
    rows = {"distinct": [], "counts": [], "sequence": []}
    for abc in abc_texts:
        distinct, positions = tune_positions(abc)
        end = np.array([len(distinct)], dtype=POSITION)
        chunks = chunk_ranges(distinct, positions, max_tokens)
        sequence = np.concatenate([part for ranges in chunks for part in (*(positions[a:b] for a, b in ranges), end)])
        rows["distinct"].append(distinct)
        rows["counts"].append(np.bincount(positions).astype(POSITION).tobytes())
        rows["sequence"].append(sequence.tobytes())
    return pa.table(rows, schema=TOKENIZED_SCHEMA)


def tokenize_tunes(abc_texts, is_train, path, max_tokens, quiet=False):
    """Tokenize the tunes into the scratch Parquet file at path, in their order; returns the Counter of
    token strings over the tunes where is_train holds. abc_texts: the tunes' ABC, sliced into Arrow arrays
    (pipeline.OrderedTexts)."""
    train_counts, is_train = Counter(), iter(is_train)
    with pq.ParquetWriter(path, TOKENIZED_SCHEMA) as writer, \
            progress_bar(len(abc_texts), "tokenizing", "tune", quiet) as bar:
        for batch in tokenized_batches(abc_texts, max_tokens):
            writer.write_table(batch)
            bar.update(batch.num_rows)
            for distinct, counts in zip(batch["distinct"].to_pylist(), batch["counts"].to_pylist()):
                if next(is_train):
                    train_counts.update(dict(zip(distinct, np.frombuffer(counts, dtype=POSITION).tolist())))
    return train_counts


def tokenized_batches(abc_texts, max_tokens):
    """tokenize_block's tables, in the order of abc_texts: blocks of ~TUNES_PER_BLOCK tunes (at least two
    per CPU) run as Ray tasks, at most two per CPU at a time. A block's texts become Python strings only
    when it is sent.

    Plain tasks, not Ray Data: the stage is one map over tunes already in the driver, and Ray Data's
    start-up is a large share of it on a small corpus."""
    bounds = np.linspace(0, len(abc_texts), block_count(len(abc_texts), TUNES_PER_BLOCK) + 1).astype(int)
    blocks = (tokenize_block.remote(abc_texts[start:stop].to_pylist(), max_tokens)
              for start, stop in zip(bounds, bounds[1:]))
    yield from ordered_results(blocks, 2 * cluster_cpus())


def encoded_tunes(path, vocab):
    """(ids array, chunks, unk) for each tune of the scratch file, in order."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=TUNES_PER_BLOCK):
        for distinct, sequence in zip(batch["distinct"].to_pylist(), batch["sequence"].to_pylist()):
            positions = np.frombuffer(sequence, dtype=POSITION)
            ids = np.array([*vocab.encode_tokens(distinct), vocab.eot_id], dtype=DTYPE)[positions]
            yield ids, int((positions == len(distinct)).sum()), int((ids == vocab.unk_id).sum())
