"""Sampling keeps the tune's header in view; prompts from held-out tunes; constrained decoding; the `sample`
command."""

import json
import re
import tempfile
from pathlib import Path

import pytest
import torch

from models import build_model, save_model
from preprocessing.abc_tokens import Vocabulary, token_kind, tokenize_abc
from preprocessing.abc_tools import abc_to_midi
from sweep.abc_grammar import MAX_CHORD_NOTES, AbcGrammar, note_length
from sweep.batches import HEADER_CONTEXT
from sweep.run import main
from sweep.samples import prompt_parts, sample_tunes, tune_prompts, whole_bars, write_tunes
from test_sweep_windows import DUET, JIG, REEL, corpus

PROMPT = "X:1\nM:6/8\nL:1/8\nK:D\n"


def test_generate_keeps_the_pinned_header_in_front_of_the_latest_tokens():
    torch.manual_seed(0)
    model = build_model("gpt", "cpu-tiny", 40, block_size=24)
    pinned, prompt = torch.randint(40, (1, HEADER_CONTEXT)), torch.randint(40, (1, 5))
    out = model.generate(prompt, 20, temperature=0, pinned=pinned)
    plain = model.generate(prompt, 20, temperature=0)
    with torch.no_grad():
        for t in range(5, 25):  # each new token: the likeliest after the header and the latest (up to) 12 tokens
            context = torch.cat((pinned, out[:, max(0, t - (24 - HEADER_CONTEXT)):t]), dim=1)
            assert model(context)[0][0, -1].argmax() == out[0, t]
            assert model(plain[:, max(0, t - 24):t])[0][0, -1].argmax() == plain[0, t]  # without: the latest 24
    empty = torch.zeros((1, 0), dtype=torch.long)  # a header alone: the first token is the header's
    assert torch.equal(model.generate(empty, 3, temperature=0, pinned=pinned),
                       model.generate(pinned, 3, temperature=0)[:, HEADER_CONTEXT:])
    assert torch.equal(model.generate(prompt, 20, temperature=0, stop_id=int(plain[0, 5])), plain[:, :6])
    start = torch.randint(40, (1, 16))  # a tune's opening: read whole while it fits, then the header pinned
    begun = model.generate(prompt, 20, temperature=0, pinned=pinned, start=start)
    with torch.no_grad():
        for t in range(5, 25):
            context = (torch.cat((start, begun[:, :t]), dim=1) if 16 + t <= 24
                       else torch.cat((pinned, begun[:, max(0, t - (24 - HEADER_CONTEXT)):t]), dim=1))
            assert model(context)[0][0, -1].argmax() == begun[0, t]


def test_prompts_are_a_tunes_header_and_its_opening_bars_read_as_a_window_reads_them():
    vocab = Vocabulary(corpus()[1])
    text = lambda ids: "".join(vocab.tokens[i] for i in ids)  # noqa: E731
    header = "X:1\nM:3/4\nL:1/8\nQ:1/4=96\nK:G\nV:1\n"
    assert [text(ids) for ids in tune_prompts(vocab.encode(DUET), vocab, bars=2)] == [header,
                                                                                       header + "G2 B2 d2|c2 A2 F2|"]
    assert text(tune_prompts(vocab.encode(REEL), vocab, bars=5)[1]) == REEL[:REEL.index("V:1\n") + 4] + (
        "A2 FA dAFA|B2 GB dBGB|A2 FA dAFA|[Ad]2 e2 f4|\nA2 FA dAFA|")
    for prompt, context, rest in [(header + "G2 B2 d2|", header, "G2 B2 d2|"), (header, header, ""),
                                  ("X:1\nM:3/4\nL:1/8\nK:G\n", "<eot>" * 4 + "X:1\nM:3/4\nL:1/8\nK:G\n", ""),
                                  ("G2 B2|", "<eot>" * HEADER_CONTEXT, "G2 B2|")]:
        pinned, opening, body = prompt_parts(vocab.encode(prompt), vocab)
        assert (text(pinned), text(body)) == (context, rest)
        assert text(opening) == "<eot>" * HEADER_CONTEXT + prompt.removesuffix(rest)  # as a tune starts in a window


def tiny_model(vocab):
    torch.manual_seed(0)
    return build_model("gpt", "cpu-tiny", len(vocab), block_size=32)


def test_sampled_tunes_continue_their_prompts(tmp_path):
    vocab = Vocabulary(corpus()[1])
    jig, duet = (tune_prompts(vocab.encode(tune), vocab) for tune in (JIG, DUET))
    prompts = [jig[0], duet[1], jig[1], duet[0]]  # bodies of three lengths: three batches
    sampled = sample_tunes(tiny_model(vocab.tokens), vocab, prompts, 1.0, 10, 40, "cpu")
    for ids, ended in sampled:  # up to the end of the tune, or cut by the 40 tokens, then to its last whole bar
        assert len(ids) <= 40 and vocab.eot_id not in ids
        assert ended or len(ids) == 40 or token_kind(vocab.tokens[ids[-1]]) == "bar"
    texts = [vocab.decode(prompt + ids) for prompt, (ids, _) in zip(prompts, sampled)]
    records = write_tunes(texts, tmp_path, ["a", "b", "c", "d"])
    assert [(tmp_path / f"{r['name']}.abc").read_text() for r in records] == texts
    assert all((tmp_path / f"{r['name']}.mid").exists() == r["midi"] for r in records)


def test_a_sample_the_token_budget_cuts_ends_with_its_last_whole_bar():
    texts = ["A2 FA|dAFA|B2 G", "A2 FA|dA-|A2 G", "A2 FA dA"]
    vocab = Vocabulary(["<unk>", "<eot>", *sorted({token for text in texts for token in tokenize_abc(text)})])
    kept = [vocab.decode(whole_bars(vocab.encode(text), vocab)) for text in texts]
    assert kept == ["A2 FA|dAFA|", "A2 FA|", "A2 FA dA"]  # a bar line after a tie ends no bar; no bar line: all


# chords, ties over a bar line, broken rhythms, a tuplet, lengths of every form, key and metre changes, an end bar
RICH = ("X:1\nM:4/4\nL:1/8\nQ:1/4=100\nK:G\nV:1\n"
        "G>A B<c d2 [GBd]2|(3efg f>e d4-|d2 c/2B/2A/ G/ [D2G2] z2|\n"
        "K:D\nA,2 F,A, ^c'3/2d'/ =c2|[K:A] e4 e2- e2|\nM:3/4\n_B,4 A,2|]\n")


def rich_vocab():
    return Vocabulary(["<unk>", "<eot>", *sorted({t for tune in (REEL, DUET, JIG, RICH) for t in tokenize_abc(tune)})])


def renders_cleanly(abc):
    with tempfile.TemporaryDirectory() as folder:
        ok, message = abc_to_midi(abc, Path(folder) / "tune.mid")
    return ok and message == "ok"


def test_note_lengths_read_as_abc_reads_them():
    assert [note_length(t) for t in ["A", "A2", "A/", "A//", "A3/2", "A/4", "^c'3/", "B,,16"]] == [
        1, 2, 0.5, 0.25, 1.5, 0.25, 1.5, 16]


def test_the_grammar_allows_every_token_of_tunes_abc2midi_reads():
    vocab = rich_vocab()
    for tune in (REEL, DUET, JIG, RICH):
        assert renders_cleanly(tune)
        ids = vocab.encode(tune)
        grammar = AbcGrammar(vocab.tokens, [[]])
        for i in ids[len(tune_prompts(ids, vocab)[0]):] + [vocab.eot_id]:  # its body (after the voice line), its end
            assert grammar.allowed()[0, i], (tune[:20], vocab.tokens[i], grammar.rows[0])
            grammar.advance([i])


def test_the_grammar_masks_what_breaks_a_tune():
    vocab = rich_vocab()

    def allowed_after(text):
        grammar = AbcGrammar(vocab.tokens, [vocab.encode(text)])
        return {vocab.tokens[i] for i in grammar.allowed()[0].nonzero().flatten().tolist()}

    notes = {t for t in vocab.tokens[2:] if token_kind(t) == "note"}
    assert allowed_after("G2>") == {t for t in notes if note_length(t) == 2}  # a broken rhythm's notes: one length
    assert not {">", "<"} & allowed_after("G>A")  # one broken rhythm a note
    assert not {">", "<"} & allowed_after("(3efg")  # none on a tuplet's note
    assert "(3" not in allowed_after("(3e") and "(3" in allowed_after("(3efg")
    tied = allowed_after("d4-")
    assert {"d", "d2", "|", " "} <= tied and not tied & {"e", "[", "z2", "<eot>", ">"}  # a tie: to the same note
    assert not {"-", ">", "<"} & allowed_after("G2 z2 ")  # after no note
    chord_ends = {"]", "]2"}
    assert allowed_after("G2 [") == notes and allowed_after("G2 [GB") == notes | chord_ends
    assert allowed_after("[" + "G" * MAX_CHORD_NOTES) == chord_ends  # a chord ends; a chord does not nest
    assert not chord_ends & allowed_after("G2 ")
    assert not {"\n", "<eot>"} & allowed_after("")  # no empty line (it ends the tune), no end before a note
    assert "K:D" in allowed_after("G2|\n") and "K:D" not in allowed_after("G2|")  # fields start lines
    assert allowed_after("G2|\nK:D") == {"\n"}
    assert "<unk>" not in allowed_after("G2") and "X:1" not in allowed_after("G2|\n")


def test_constrained_decoding_makes_an_untrained_models_samples_valid():
    vocab = rich_vocab()
    torch.manual_seed(0)
    model = build_model("gpt", "cpu-tiny", len(vocab.tokens), block_size=64)
    prompts = [tune_prompts(vocab.encode(tune), vocab)[0] for tune in (REEL, DUET, JIG, RICH)] * 3
    valid = {}
    for constrained in (False, True):
        torch.manual_seed(1)
        sampled = sample_tunes(model, vocab, prompts, 1.0, None, 120, "cpu", constrained)
        valid[constrained] = sum(renders_cleanly(vocab.decode(prompt + ids))
                                 for prompt, (ids, _) in zip(prompts, sampled))
    assert valid[False] <= 3 and valid[True] == len(prompts), valid


@pytest.fixture
def trained_on(tmp_path):
    """(data folder with meta.json, a checkpoint of a model for its vocabulary)."""
    vocab = Vocabulary(corpus()[1])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "meta.json").write_text(json.dumps({"vocab": vocab.tokens, "vocab_sha256": vocab.sha256}))
    save_model(tmp_path / "checkpoint.pt", tiny_model(vocab.tokens), vocab.sha256)
    return tmp_path / "data", tmp_path / "checkpoint.pt"


def test_the_sample_command_writes_abc_and_midi(trained_on, tmp_path, capsys):
    data, checkpoint = trained_on
    args = ["sample", "--checkpoint", str(checkpoint), "--data", str(data), "--n", "2", "--max-new-tokens", "30"]
    assert main([*args, "--prompt", PROMPT.replace("\n", r"\n"), "--seed", "1"]) == 0
    written = sorted((tmp_path / "prompted").glob("*.abc"))
    assert [p.name for p in written] == ["sample_000.abc", "sample_001.abc"]
    assert all(p.read_text().startswith(PROMPT) for p in written)
    assert "2 samples in" in capsys.readouterr().out
    opening = "".join(JIG.splitlines(keepends=True)[:7])  # its header and first line
    (tmp_path / "tune.abc").write_text(opening)
    assert main([*args, "--prompt-file", str(tmp_path / "tune.abc"), "--out", str(tmp_path / "from-file")]) == 0
    assert all(p.read_text().startswith(opening) for p in (tmp_path / "from-file").glob("*.abc"))


def test_the_sample_command_refuses_bad_arguments_with_a_message(trained_on, tmp_path, capsys):
    data, checkpoint = trained_on
    other = tmp_path / "other.pt"
    save_model(other, build_model("gpt", "cpu-tiny", 50, block_size=32), "another vocabulary")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    good = {"--checkpoint": str(checkpoint), "--data": str(data), "--prompt": PROMPT}
    for change, named in [({"--checkpoint": str(tmp_path / "absent.pt")}, "--checkpoint"),
                          ({"--checkpoint": str(other)}, "--checkpoint: .*vocabulary"),
                          ({"--checkpoint": str(tmp_path / "notes.txt")}, "--checkpoint: .*not a model checkpoint"),
                          ({"--data": str(tmp_path)}, "--data: .*meta.json not found"),
                          ({"--n": "0"}, "--n: must be >= 1"), ({"--temperature": "-1"}, "--temperature"),
                          ({"--prompt": "  "}, "--prompt: is empty")]:
        args = [part for pair in {**good, **change}.items() for part in pair]
        assert main(["sample", *args]) == 2
        error = capsys.readouterr().err
        assert error.startswith("error: ") and re.search(named, error), error
    del good["--prompt"]
    with pytest.raises(SystemExit) as exit_:  # argparse: one of --prompt and --prompt-file is needed
        main(["sample", *[part for pair in good.items() for part in pair]])
    assert exit_.value.code == 2 and "--prompt" in capsys.readouterr().err
    assert main(["sample", *[p for pair in good.items() for p in pair], "--prompt-file", str(tmp_path / "no.abc")]) == 2
    assert "error: --prompt-file: cannot read" in capsys.readouterr().err
    assert not (tmp_path / "prompted").exists()
