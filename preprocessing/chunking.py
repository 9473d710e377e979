"""Cut tunes longer than a token limit at bar lines into chunks that are valid ABC on their own.

Every chunk starts with the tune's header (X..K) and, when it starts inside a voice, that voice's
V: line. A single bar longer than the limit becomes a chunk of its own, over the limit. A key or
metre change inside the body is not carried into the next chunk's header.

The body is cut into units first: runs of tokens that end at a bar line (with the newline right
after it) or before a field line; a voice line (V:n + newline) is a unit of its own. Units are
found with array operations, not a loop over tokens: at Lakh scale the token stage handles
billions of tokens.
"""

import numpy as np

from preprocessing.abc_tokens import token_kind, tune_positions

FIELD, VOICE, BAR, NEWLINE, OTHER = range(5)


class TokenCodes(dict):
    """Token string -> its code above, worked out once per distinct token."""

    def __missing__(self, token):
        kind = token_kind(token)
        if kind == "field":
            code = VOICE if token.startswith("V:") else FIELD
        else:
            code = BAR if kind == "bar" else NEWLINE if token == "\n" else OTHER
        self[token] = code
        return code


CODES = TokenCodes()


def chunk_tune(text, max_tokens):
    """The tune as a list of ABC texts of at most max_tokens tokens each (end-of-tune excluded)."""
    distinct, positions = tune_positions(text)
    tokens = [distinct[i] for i in positions]
    return ["".join("".join(tokens[a:b]) for a, b in ranges) for ranges in chunk_ranges(distinct, positions, max_tokens)]


def chunk_ranges(distinct, positions, max_tokens):
    """One tune as tune_positions gives it -> per chunk, the (start, end) token ranges that make it up."""
    if len(positions) <= max_tokens:
        return [[(0, len(positions))]]
    codes = np.array([CODES[token] for token in distinct], dtype=np.int8)[positions]
    is_key = np.array([token.startswith("K:") for token in distinct])[positions]
    if not is_key.any():
        raise ValueError("a tune is cut after its header, which ends at its K: line; this tune has none")
    header_end = int(np.argmax(is_key)) + 2  # the K: line and its newline
    chunks, prefix, body_start, size, voice_line = [], [], header_end, header_end, None
    for start, stop, is_voice in zip(*unit_bounds(codes, header_end)):
        if is_voice:
            voice_line = (start, stop)
        if size > header_end and size + stop - start > max_tokens:
            chunks.append([(0, header_end), *prefix, (body_start, start)])
            prefix = [voice_line] if voice_line and not is_voice else []
            body_start, size = start, header_end + sum(b - a for a, b in prefix)
        size += stop - start
    chunks.append([(0, header_end), *prefix, (body_start, len(positions))])
    return chunks


def unit_bounds(codes, body_start):
    """Starts, stops (token indices) and is-voice-line flags of the body's units; codes: one per token."""
    codes = codes[body_start:]
    field = (codes == FIELD) | (codes == VOICE)
    newline = codes == NEWLINE
    next_newline = np.append(newline[1:], False)
    next_field = np.append(field[1:], True)  # the end counts as a field line: the last unit ends there
    ends = ~field & ~next_newline & ((codes == BAR) | next_field)
    # A voice line's unit also ends at the first newline after it that no other newline follows.
    candidates = np.flatnonzero(ends | (newline & ~next_newline))
    after_voice = np.searchsorted(candidates, np.flatnonzero(codes == VOICE), side="right")
    ends[candidates[after_voice[after_voice < len(candidates)]]] = True
    ends[-1] = True
    stops = np.flatnonzero(ends) + 1
    starts = np.concatenate([[0], stops[:-1]])
    is_voice = (codes[starts] == VOICE) & (stops - starts == 2)
    return (starts + body_start).tolist(), (stops + body_start).tolist(), is_voice.tolist()
