"""Training and validation windows carry their tune's header; one epoch still predicts every token once; the
validation loss per note, per bar and per kind of token."""

import collections
import math

import numpy as np
import pytest
import torch

from preprocessing.abc_tokens import EOT, Vocabulary, tokenize_abc
from sweep.batches import HEADER_CONTEXT, EpochWindows, TuneHeaders, evaluation_batches, window_targets
from sweep.config import TrialPoint, load_config
from sweep.losses import loss_metrics, token_group
from sweep.results import TOKEN_GROUPS
from sweep.trainer import Trainer

REEL = "X:1\nM:4/4\nL:1/8\nQ:1/4=120\nK:D\nV:1\n" + "A2 FA dAFA|B2 GB dBGB|A2 FA dAFA|[Ad]2 e2 f4|\n" * 12
DUET = ("X:1\nM:3/4\nL:1/8\nQ:1/4=96\nK:G\nV:1\n" + "G2 B2 d2|c2 A2 F2|G4 z2|\n" * 8
        + "V:2\n" + "G,4 D,2|A,4 D,2|G,6|\n" * 8)
JIG = "X:1\nM:6/8\nL:1/8\nQ:1/4=120\nK:Ador\nV:1\n" + "A>BA (3GFE D2|z2 E- E2 G|\n" * 6


def corpus(tunes=(REEL, DUET, JIG, DUET, REEL), vocab=None):
    """(token ids of the tunes, each ended by <eot>, and the vocabulary's tokens: those of the tunes by default)."""
    counts = collections.Counter(token for tune in tunes for token in tokenize_abc(tune))
    vocab = Vocabulary(vocab) if vocab else Vocabulary.build(counts, min_count=1)
    ids = [i for tune in tunes for i in vocab.encode(tune) + [vocab.eot_id]]
    return np.array(ids, dtype=np.uint16), vocab.tokens


def sees_its_key(x, y, vocab):
    """Whether every target of a window past its tune's header has that tune's K: line before it in the window."""
    key_seen, new_tune = False, False
    for token, target in zip(x.tolist(), y.tolist()):
        if vocab[token] == EOT:
            key_seen, new_tune = False, True
        key_seen = key_seen or vocab[token].startswith("K:")
        if target >= 0 and not (key_seen or new_tune):
            return False
    return True


def test_every_window_has_its_tunes_header_and_an_epoch_predicts_every_token_once():
    tokens, vocab = corpus()
    windows = EpochWindows(TuneHeaders(tokens, vocab), 32, 8, seed=3)
    width = window_targets(32)
    rows = [row for step in range(windows.steps) for row in zip(*windows.batch(step))]
    assert len(rows) == windows.num_windows == len(tokens) // width
    assert all(x.shape == y.shape == (32,) for x, y in rows)
    assert all(sees_its_key(x, y, vocab) for x, y in rows)
    predicted = sorted(tuple(y[y >= 0].tolist()) for _, y in rows)
    assert predicted == sorted(tuple(tokens[s:s + width].tolist()) for s in range(0, windows.tokens_per_epoch, width))
    # no token is predicted from the header alone (that is how a tune starts): the stream's token before it is there
    stream = np.concatenate([[vocab.index(EOT)], tokens])
    assert all((y[:HEADER_CONTEXT] == -1).all() and (y[HEADER_CONTEXT:] >= 0).all() for _, y in rows)
    starts = windows.order_of(0) * width
    assert [int(x[HEADER_CONTEXT]) for x, _ in rows] == [stream[s] for s in starts]
    assert [y[HEADER_CONTEXT:].tolist() for _, y in rows] == [tokens[s:s + width].tolist() for s in starts]
    # without the header context (plain windows of the stream) most windows start mid-tune, blind to the key
    stream = torch.from_numpy(tokens.astype(np.int64))
    plain = [(stream[s:s + 32], stream[s + 1:s + 33]) for s in range(0, len(tokens) - 33, 32)]
    assert sum(sees_its_key(x, y, vocab) for x, y in plain) < len(plain) / 2


def test_validation_predicts_the_whole_split_in_order_with_headers_in_context():
    tokens, vocab = corpus()
    batches = list(evaluation_batches(TuneHeaders(tokens, vocab), 32, 4))
    targets = np.concatenate([y[y >= 0].numpy() for _, y in batches])
    assert np.array_equal(targets, tokens)  # every token once, the first and the last included
    assert all(sees_its_key(x, y, vocab) for batch in batches for x, y in zip(*batch))


def test_a_window_gets_the_header_before_it_its_voice_line_and_end_of_tune_tokens_ahead():
    tokens, vocab = corpus()
    headers = TuneHeaders(tokens, vocab)
    text = lambda ids: "".join(vocab[i] for i in ids)  # noqa: E731
    second = headers.starts[1]  # the duet
    inside_header = second + 4  # after "X:1\nM:3/4\n"
    assert text(headers.context(inside_header)) == EOT * (HEADER_CONTEXT - 4) + "X:1\nM:3/4\n"
    voice_2 = next(p for p in headers.voices if second < p < headers.starts[2] and vocab[tokens[p]] == "V:2")
    assert text(headers.context(voice_2 + 7)) == "X:1\nM:3/4\nL:1/8\nQ:1/4=96\nK:G\nV:2\n"
    assert text(headers.context(voice_2 + 1)) == "<eot>X:1\nM:3/4\nL:1/8\nQ:1/4=96\nK:G\nV:2"
    assert text(headers.context(headers.starts[2] - 1)).endswith("K:G\nV:2\n")  # its <eot>: still the duet's
    assert text(headers.context(second)) == EOT * HEADER_CONTEXT  # a tune's start: the <eot> before it


def test_a_restarted_run_rebuilds_its_order_and_data_fractions_nest():
    tokens, vocab = corpus()
    headers = TuneHeaders(tokens, vocab)
    first, again = EpochWindows(headers, 32, 4, seed=7, epochs=2), EpochWindows(headers, 32, 4, seed=7, epochs=2)
    for step in (0, 3, first.steps - 1):
        assert all(torch.equal(a, b) for a, b in zip(first.batch(step), again.batch(step)))
    assert not torch.equal(first.batch(0)[0], EpochWindows(headers, 32, 4, seed=8).batch(0)[0])
    half = EpochWindows(headers, 32, 4, seed=7, data_fraction=0.5)
    assert set(half.windows) < set(first.windows) and half.tokens_per_epoch == half.num_windows * window_targets(32)


def test_token_groups_and_losses_per_note_and_bar():
    groups = {token: token_group(token) for token in ("A2", "^f/2", "z4", "-", ">", "(3", "|", ":|2", "[", "]2",
                                                      " ", "\n", "K:D", "V:2", "[K:G]", EOT, "<unk>", '"Am"')}
    assert groups == {"A2": "note", "^f/2": "note", "z4": "length", "-": "length", ">": "length", "(3": "length",
                      "|": "bar", ":|2": "bar", "[": "chord", "]2": "chord", " ": "space", "\n": "space",
                      "K:D": "header", "V:2": "header", "[K:G]": "header", EOT: "end", "<unk>": "other",
                      '"Am"': "other"}
    sums = np.zeros(len(TOKEN_GROUPS))
    counts = np.zeros(len(TOKEN_GROUPS), dtype=int)
    sums[TOKEN_GROUPS.index("note")], counts[TOKEN_GROUPS.index("note")] = 30.0, 10
    sums[TOKEN_GROUPS.index("bar")], counts[TOKEN_GROUPS.index("bar")] = 2.0, 10
    meta = {"splits": {"val": {"notes": 8, "bars": 4}}}
    metrics = loss_metrics("val", sums, counts, meta)
    assert metrics["val_loss"] == pytest.approx(32 / 20)
    assert metrics["val_bits_per_note"] == pytest.approx(32 / math.log(2) / 8)
    assert metrics["val_bits_per_bar"] == pytest.approx(32 / math.log(2) / 4)
    assert (metrics["val_loss_note"], metrics["val_share_note"]) == (3.0, 0.5)
    assert math.isnan(metrics["val_loss_chord"]) and metrics["val_share_chord"] == 0
    assert math.isnan(loss_metrics("val", sums, counts, {"splits": {"val": {}}})["val_bits_per_note"])


def test_the_trainers_validation_breaks_the_loss_down_by_token_group(one_thread):
    train_tokens, vocab = corpus((REEL, DUET, JIG) * 3)
    val_tokens, _ = corpus((DUET, JIG), vocab)
    train = load_config("tiny").train
    meta = {"vocab": vocab, "vocab_size": len(vocab), "vocab_sha256": "test",
            "splits": {"val": {"notes": 90, "bars": 50}}}
    trainer = Trainer(train, TrialPoint("gpt", "cpu-tiny", 1e-3, 1.0, 0), meta, train_tokens, val_tokens, 60)
    val = trainer.validate()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in evaluation_batches(TuneHeaders(val_tokens, vocab), 32, train.val_batch_size):
            logits, _ = trainer.model(x)
            total += torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, ignore_index=-1, reduction="sum")
            count += int((y >= 0).sum())
    assert count == len(val_tokens)
    assert val["val_loss"] == pytest.approx(float(total) / count, rel=1e-5)
    assert val["val_bits_per_bar"] == pytest.approx(float(total) / math.log(2) / 50, rel=1e-5)
    shares = {group: val[f"val_share_{group}"] for group in TOKEN_GROUPS}
    assert sum(shares.values()) == pytest.approx(1) and shares["note"] > shares["header"] > 0
    assert sum(val[f"val_loss_{g}"] * share for g, share in shares.items() if share) == pytest.approx(val["val_loss"])
