"""Model structure: size tables, parameter and FLOP counts, the LSTM match, overrides, causality."""

import pytest
import torch

from models import DEMO_SIZES, SIZES, build_model
from models.__main__ import main as print_size_table
from models.lstm import match_lstm
from models.sizes import GPT_SHAPES, STUDY_PARAMS, STUDY_VOCAB_SIZE


pytestmark = pytest.mark.usefixtures("one_thread")


def meta_model(arch, size, vocab_size, **overrides):
    with torch.device("meta"):
        return build_model(arch, size, vocab_size, **overrides)


@pytest.mark.parametrize("size", SIZES)
def test_study_gpt_shapes_and_reported_counts(size):
    model = meta_model("gpt", size, STUDY_VOCAB_SIZE)
    c = model.config
    assert (c.n_layer, c.n_head, c.n_embd) == GPT_SHAPES[size] and c.block_size == 256
    assert model.arch == "gpt" and model.size == size
    assert model.num_params() == pytest.approx(STUDY_PARAMS[size], rel=0.01)


@pytest.mark.parametrize("size", SIZES + DEMO_SIZES)
def test_gpt_counts_follow_the_formula(size):
    vocab_size = 300
    model = meta_model("gpt", size, vocab_size)
    L, d, T = model.config.n_layer, model.config.n_embd, model.config.block_size
    # Per block: QKV + proj + MLP weights 12·d², their biases 9·d, two LayerNorms 4·d; final LayerNorm 2·d.
    non_embedding = L * (12 * d * d + 13 * d) + 2 * d
    assert model.num_params(non_embedding=True) == non_embedding
    assert model.num_params() == non_embedding + (2 * vocab_size + T) * d
    assert model.flops_per_token() == 6 * (non_embedding + vocab_size * d) + 12 * L * d * T


def test_lstm_counts_and_flops():
    model = meta_model("lstm", "cpu-small", 300)
    h, L, V = model.config.n_hidden, model.config.n_layer, model.config.vocab_size
    recurrent = L * (8 * h * h + 8 * h)
    assert model.num_params(non_embedding=True) == recurrent + 2 * h
    assert model.num_params() == recurrent + 2 * h + 2 * V * h
    assert model.flops_per_token() == 6 * (recurrent + 2 * h + V * h)


def test_demo_sizes_span_20k_to_1m_geometrically():
    totals = [meta_model("gpt", size, 300).num_params() for size in DEMO_SIZES]
    assert 15_000 <= totals[0] <= 25_000 and 0.8e6 <= totals[-1] <= 1.2e6
    ratios = [b / a for a, b in zip(totals, totals[1:])]
    assert all(2.0 <= r <= 3.5 for r in ratios), ratios


@pytest.mark.parametrize("vocab_size", [100, 500, 1734, 5000])
def test_lstm_partner_within_3_percent_for_every_size(vocab_size):
    for size in SIZES + DEMO_SIZES:
        gpt = meta_model("gpt", size, vocab_size)
        lstm = meta_model("lstm", size, vocab_size)
        assert lstm.arch == "lstm" and lstm.size == size
        assert lstm.config.block_size == gpt.config.block_size
        assert abs(lstm.num_params() / gpt.num_params() - 1) <= 0.03, (size, lstm.config)


def test_lstm_partner_follows_a_block_size_override():
    gpt = meta_model("gpt", "cpu-large", 300, block_size=512)
    lstm = meta_model("lstm", "cpu-large", 300, block_size=512)
    assert lstm.config.block_size == 512
    assert abs(lstm.num_params() / gpt.num_params() - 1) <= 0.03


def test_match_lstm_refuses_an_impossible_target():
    with pytest.raises(ValueError, match="no LSTM within"):
        match_lstm(10, vocab_size=5000)


def test_bad_arch_size_or_override_is_named():
    with pytest.raises(ValueError, match="arch"):
        build_model("rnn", "tiny", 100)
    with pytest.raises(ValueError, match="huge"):
        build_model("gpt", "huge", 100)
    with pytest.raises(ValueError, match="n_hidden"):
        build_model("gpt", "cpu-tiny", 100, n_hidden=8)
    with pytest.raises(ValueError, match="multiple of n_head"):
        build_model("gpt", "cpu-tiny", 100, n_head=3)


@pytest.mark.parametrize("arch", ["gpt", "lstm"])
def test_forward_shapes_loss_and_overrides(arch):
    torch.manual_seed(0)
    model = build_model(arch, "cpu-tiny", 50, block_size=16, dropout=0.1)
    assert model.config.block_size == 16 and model.config.dropout == 0.1
    idx = torch.randint(50, (3, 16))
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 50) and loss is None
    logits, loss = model(idx, idx)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(torch.log(torch.tensor(50.0)).item(), rel=0.1)  # near uniform at init
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("arch", ["gpt", "lstm"])
def test_changing_future_tokens_never_changes_earlier_logits(arch):
    torch.manual_seed(0)
    model = build_model(arch, "cpu-small", 40, block_size=24).eval()
    idx = torch.randint(40, (2, 24))
    changed = idx.clone()
    changed[:, 10:] = torch.randint(40, (2, 14))
    with torch.no_grad():
        before, _ = model(idx)
        after, _ = model(changed)
    torch.testing.assert_close(before[:, :10], after[:, :10], rtol=0, atol=1e-6)
    assert not torch.allclose(before[:, 10:], after[:, 10:])


def test_size_table_prints_every_model_and_the_study_counts(capsys):
    print_size_table(["--vocab-size", str(STUDY_VOCAB_SIZE)])
    out = capsys.readouterr().out
    for arch in ("gpt", "lstm"):
        for size in SIZES + DEMO_SIZES:
            assert any(line.split()[:2] == [arch, size] for line in out.splitlines()), (arch, size)
    assert "3,384,576" in out and "100.9M" in out
