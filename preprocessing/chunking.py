"""Cut tunes longer than a token limit at bar lines into chunks that are valid ABC on their own.

Every chunk starts with the tune's header (X..K) and, when it starts inside a voice, that voice's
V: line. A single bar longer than the limit becomes a chunk of its own, over the limit. A key or
metre change inside the body is not carried into the next chunk's header.
"""

from preprocessing.abc_tokens import tokenize_with_kinds


def chunk_tune(text, max_tokens):
    """The tune as a list of ABC texts of at most max_tokens tokens each (end-of-tune excluded)."""
    return ["".join(chunk) for chunk in chunk_tokens(tokenize_with_kinds(text), max_tokens)]


def chunk_tokens(tokens, max_tokens):
    """(token, kind) pairs of one tune -> lists of token strings, one list per chunk."""
    if len(tokens) <= max_tokens:
        return [[tok for tok, _ in tokens]]
    header_end = next(i for i, (tok, kind) in enumerate(tokens) if kind == "field" and tok.startswith("K:")) + 2
    header = [tok for tok, _ in tokens[:header_end]]
    chunks, current, voice_line = [], list(header), []
    for unit, is_voice in bar_units(tokens[header_end:]):
        if is_voice:
            voice_line = unit
        if len(current) > len(header) and len(current) + len(unit) > max_tokens:
            chunks.append(current)
            current = header + (voice_line if voice_line and not is_voice else [])
        current.extend(unit)
    chunks.append(current)
    return chunks


def bar_units(tokens):
    """Runs of token strings that each end at a bar line (with the newline right after it), or before
    a field line; a voice line (V:n + newline) is a run of its own, flagged True."""
    unit = []
    for i, (tok, kind) in enumerate(tokens):
        unit.append(tok)
        next_tok, next_kind = tokens[i + 1] if i + 1 < len(tokens) else ("", "end")
        if kind == "field" or next_tok == "\n":
            continue
        if kind == "bar" or next_kind in ("field", "end") or (unit[0].startswith("V:") and tok == "\n"):
            yield unit, unit[0].startswith("V:") and len(unit) == 2
            unit = []
