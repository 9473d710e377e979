"""The token stage on Ray Data: count the train split's tokens for the vocabulary, then cut every kept tune
into chunks and encode them, spread over the cluster's CPUs but handed back in the tunes' fixed order so
the shards are the same on every run.

At Lakh scale this is the second heaviest stage after midi2abc (tokenizing a 10k-token tune takes ~25 ms
in Python), so it must not run in the driver alone.
"""

from collections import Counter

import numpy as np
import pandas as pd
import ray

from preprocessing.abc_tokens import Vocabulary, count_tokens, tokenize_with_kinds
from preprocessing.chunking import chunk_tokens
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
    rows = {"ids": [], "chunks": [], "unk": []}
    for abc in batch["abc"]:
        pieces = chunk_tokens(tokenize_with_kinds(abc), max_tokens)
        ids = [i for piece in pieces for i in vocab.encode_tokens(piece) + [vocab.eot_id]]
        rows["ids"].append(np.asarray(ids, dtype=DTYPE).tobytes())
        rows["chunks"].append(len(pieces))
        rows["unk"].append(ids.count(vocab.unk_id))
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
