"""Tunes sampled from a trained model, written as ABC and, where abc2midi renders them, MIDI.

A sample continues a prompt: a header (X: to K: and a V: line) for a free sample, or a held-out tune's opening
bars. The model reads it as it read its training windows (sweep/batches.py): first as a window whose stream
starts where the tune does (end-of-tune tokens, the header, the body), then, once the tune outgrows that, the
header as the window's HEADER_CONTEXT and the tune's latest tokens.
"""

import collections
import itertools

import numpy as np
import torch

from preprocessing.abc_tokens import token_kind
from preprocessing.abc_tools import abc_to_midi
from sweep.abc_grammar import AbcGrammar
from sweep.batches import TuneHeaders

OPENING_BARS = 4  # bars of a test tune the best-model run gives as a prompt


def prompt_parts(ids, vocab):
    """Of a prompt's ids: (the HEADER_CONTEXT ids a window starting after its header and voice line is given, the
    ids a window starting at the tune's start holds before its body: end-of-tune tokens and the header, the body)."""
    headers = TuneHeaders(np.array(ids), vocab.tokens)
    body = min(int(headers.header_ends[0]), len(ids))
    if body < len(ids) and vocab.tokens[ids[body]].startswith("V:"):
        body = min(body + 2, len(ids))  # the voice line and its newline
    return headers.context(body), np.concatenate([headers.context(0), ids[:body]]).astype(np.int64), ids[body:]


def tune_prompts(ids, vocab, bars=OPENING_BARS):
    """(its header with its voice line, that and its body up to its bars-th bar line) of a tune's ids."""
    body = prompt_parts(ids, vocab)[2]
    header = ids[:len(ids) - len(body)]
    bar_ends = [i + 1 for i, token in enumerate(body) if token_kind(vocab.tokens[token]) == "bar"]
    return header, header + body[:bar_ends[bars - 1] if len(bar_ends) >= bars else len(body)]


def prompt_tunes(test, vocab, count):
    """The ids of the first count tunes (or chunks) of a held-out split (its TuneHeaders) whose opening holds no
    <unk> (of the first count tunes where none is so): their headers and openings are the samples' prompts."""
    bounds = list(zip(test.starts[:-1], test.starts[1:]))
    tunes = (test.tokens[a:b - 1].tolist() for a, b in bounds)
    known = (ids for ids in tunes if vocab.unk_id not in tune_prompts(ids, vocab)[1])
    return list(itertools.islice(known, count)) or [test.tokens[a:b - 1].tolist() for a, b in bounds[:count]]


def sample_tunes(model, vocab, prompts, temperature, top_k, max_new_tokens, device, constrained=False):
    """One continuation of each prompt (token ids), those whose bodies are as long sampled as one batch:
    [(the continuation's ids up to the end of the tune, whether the model ended it)]. A continuation that
    max_new_tokens cut is kept up to its last whole bar (whole_bars). constrained: the tokens that would break
    the ABC are masked (sweep/abc_grammar.py)."""
    parts = [prompt_parts(ids, vocab) for ids in prompts]
    batches = collections.defaultdict(list)
    for index, (_, opening, body) in enumerate(parts):
        batches[len(opening), len(body)].append(index)
    sampled = [None] * len(prompts)
    for (_, length), indices in batches.items():
        pinned, opening = (torch.tensor(np.stack([parts[i][part] for i in indices]), device=device) for part in (0, 1))
        bodies = torch.tensor([parts[i][2] for i in indices], dtype=torch.long, device=device)
        grammar = AbcGrammar(vocab.tokens, [parts[i][2] for i in indices], device) if constrained else None
        rows = model.generate(bodies, max_new_tokens, temperature=temperature, top_k=top_k or None, pinned=pinned,
                              start=opening, stop_id=vocab.eot_id, grammar=grammar)[:, length:].tolist()
        for i, ids in zip(indices, rows):
            ended = vocab.eot_id in ids
            sampled[i] = (ids[:ids.index(vocab.eot_id)] if ended else whole_bars(ids, vocab), ended)
    return sampled


def whole_bars(ids, vocab):
    """ids up to their last bar line that closes no tie (all of them where none does): the token budget, not
    the model, cut the bar after it."""
    for end in range(len(ids), 0, -1):
        if token_kind(vocab.tokens[ids[end - 1]]) == "bar" and (end < 2 or vocab.tokens[ids[end - 2]] != "-"):
            return ids[:end]
    return ids


def write_tunes(tunes, folder, names):
    """Each tune (ABC text) as <name>.abc and, where abc2midi renders it, <name>.mid; one record per tune."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for name, abc in zip(names, tunes):
        (folder / f"{name}.abc").write_text(abc)
        ok, message = abc_to_midi(abc, folder / f"{name}.mid")
        records.append({"name": name, "midi": ok, "midi_message": message})
    return records


def write_samples(model, vocab, folder, best, device, tunes, constrained=False):
    """At each of best.temperatures, best.samples_per_temperature free samples (from the headers of the given
    held-out tunes' ids, in turn) and as many continuations of their openings (OPENING_BARS bars), into folder
    as t<temperature>_free_<nnn> and t<temperature>_opening_<nnn> (.abc, .mid); with constrained, as many again
    by constrained decoding, as t<temperature>_<prompt>_constrained_<nnn>. Returns one record per sample."""
    chosen = [tune_prompts(tunes[i % len(tunes)], vocab) for i in range(best.samples_per_temperature)]
    prompts = {"free": [header for header, _ in chosen], "opening": [opening for _, opening in chosen]}
    records = []
    for temperature, (kind, prompted), masked in itertools.product(best.temperatures, prompts.items(),
                                                                   (False, True) if constrained else (False,)):
        sampled = sample_tunes(model, vocab, prompted, temperature, best.top_k, best.max_new_tokens, device, masked)
        texts = [vocab.decode(prompt + ids) for prompt, (ids, _) in zip(prompted, sampled)]
        setting = f"t{temperature}_{kind}{'_constrained' if masked else ''}"
        names = [f"{setting}_{index:03d}" for index in range(len(prompted))]
        records += [{**record, "temperature": temperature, "prompt": kind, "ended": ended,
                     "decoding": "constrained" if masked else "unconstrained"}
                    for record, (_, ended) in zip(write_tunes(texts, folder, names), sampled)]
    return records
