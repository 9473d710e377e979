"""The token stage on Ray Data: count the train split's tokens for the vocabulary, then cut every kept tune
into chunks and encode them, spread over the cluster's CPUs but handed back in the tunes' fixed order so
the shards are the same on every run.

At Lakh scale this is the second heaviest stage after midi2abc (tokenizing, chunking and encoding a 10k-token
tune takes ~6 ms in Python), so it must not run in the driver alone.
"""

from collections import Counter

import numpy as np
import pandas as pd
import ray

from preprocessing.abc_tokens import Vocabulary, count_tokens, tokenize_abc
from preprocessing.chunking import chunk_ranges
from preprocessing.shards import DTYPE

TUNES_PER_BLOCK = 50


def tune_dataset(abc_texts):
    """The tunes in blocks of ~TUNES_PER_BLOCK (at least two per CPU), order kept."""
    texts = list(abc_texts)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    blocks = max(1, min(len(texts), max(-(-len(texts) // TUNES_PER_BLOCK), 2 * cpus)))
    bounds = np.linspace(0, len(texts), blocks + 1).astype(int)
    return ray.data.from_pandas([pd.DataFrame({"abc": texts[a:b]}) for a, b in zip(bounds, bounds[1:])])


def count_batch(batch):
    counts = count_tokens(batch["abc"])
    return {"token": list(counts), "count": list(counts.values())}


def train_token_counts(abc_texts):
    """Counter of token strings over the given (train) tunes."""
    counts = Counter()
    if len(abc_texts):
        for batch in tune_dataset(abc_texts).map_batches(count_batch, batch_size=None).iter_batches(batch_size=None):
            counts.update(dict(zip(batch["token"], batch["count"].tolist())))
    return counts


def encode_batch(batch, vocab_tokens, max_tokens):
    """Per tune: its ids (chunks each followed by <eot>) as uint16 bytes, chunk and <unk> counts."""
    vocab = Vocabulary(vocab_tokens)
    eot = np.array([vocab.eot_id], dtype=DTYPE)
    rows = {"ids": [], "chunks": [], "unk": []}
    for abc in batch["abc"]:
        tokens = tokenize_abc(abc)
        ids = np.array(vocab.encode_tokens(tokens), dtype=DTYPE)
        chunks = chunk_ranges(tokens, max_tokens)
        tune_ids = np.concatenate([part for ranges in chunks for part in (*(ids[a:b] for a, b in ranges), eot)])
        rows["ids"].append(tune_ids.tobytes())
        rows["chunks"].append(len(chunks))
        rows["unk"].append(int((tune_ids == vocab.unk_id).sum()))
    return rows


def encoded_tunes(abc_texts, vocab, max_tokens):
    """(ids array, chunks, unk) for each tune, in the order of abc_texts."""
    if not len(abc_texts):
        return
    context = ray.data.DataContext.get_current()
    preserve_order = context.execution_options.preserve_order
    context.execution_options.preserve_order = True
    try:
        dataset = tune_dataset(abc_texts).map_batches(
            encode_batch, batch_size=None, fn_kwargs={"vocab_tokens": vocab.tokens, "max_tokens": max_tokens})
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for ids, chunks, unk in zip(batch["ids"], batch["chunks"], batch["unk"]):
                yield np.frombuffer(ids, dtype=DTYPE), int(chunks), int(unk)
    finally:
        context.execution_options.preserve_order = preserve_order
