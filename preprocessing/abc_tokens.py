"""A lossless note-level ABC tokenizer and its vocabulary.

A token is one musical unit: a note with its accidental, octave marks and length; a rest; a bar line
or repeat; a chord bracket; a tie; a tuplet; a header or voice field line; a space or a newline. Any
other character is a token of its own, so "".join(tokenize_abc(x)) == x for every text.
"""

import hashlib
import json
import re
from itertools import chain

import numpy as np

TOKENIZER_VERSION = 1
UNK = "<unk>"
EOT = "<eot>"
POSITION = np.uint32  # a token's index among its tune's distinct tokens

# Each kind of token and the alternatives that match it, tried in this order. Every alternative but the
# first (a line start) starts with a literal or a character set, never an optional part or a repeat (so
# "\|\|*", not "\|+"): re then skips a failing alternative after one character.
LENGTH = r"\d*/*\d*"                                     # 2, /, 3/2, //
NOTE = r"[A-Ga-g][,']*" + LENGTH                          # the pitch letter, octave marks and length
TOKEN_KINDS = (
    ("field", [r"^[A-Za-z]:[^\n]*"]),                     # header or voice line, whole: K:G, V:2
    ("inline", [r"\[[A-Za-z]:[^\]\n]*\]"]),              # inline field [K:D]
    ("note", [NOTE, r"\^\^?" + NOTE, r"__?" + NOTE, "=" + NOTE]),
    ("rest", [r"[zxZX]" + LENGTH]),
    ("bar", [r"\|\|*[\]:]*\d*", r"::*\|\|*[\]:]*\d*", "::", r"\[\d\d*"]),  # | || |] |: :| :|: :: |1 [2
    ("chord_end", [r"\]" + LENGTH]),
    ("tuplet", [r"\(\d(?::\d*){0,2}"]),
    ("quoted", [r'"[^"\n]*"']),
    ("decoration", [r"![^!\n]*!"]),
    ("broken", [r"[<>][<>]*"]),
    ("space", [r"[ \t][ \t]*"]),
    ("other", ["."]),                                      # [ - ( ) { } newline and anything else
)
FLAGS = re.MULTILINE | re.DOTALL
TOKEN_PATTERN = re.compile("|".join(f"(?P<{kind}>{'|'.join(alternatives)})" for kind, alternatives in TOKEN_KINDS),
                           FLAGS)
# The alternatives without groups: findall then returns the token strings, faster than finditer.
UNNAMED_PATTERN = re.compile("|".join(a for _, alternatives in TOKEN_KINDS for a in alternatives), FLAGS)


# A line with its newline (the last one may have none). No token spans a newline, and "^" in the
# pattern only matches after one, so a text tokenizes as its lines do, one after the other.
LINE = re.compile(r"[^\n]*\n|[^\n]+")


def tokenize_abc(text):
    return UNNAMED_PATTERN.findall(text)


def tune_positions(text):
    """(distinct tokens in order of first use, the text's tokens as positions among them).

    Each distinct line is tokenized once: bars and whole lines repeat within a tune."""
    lines = LINE.findall(text)
    line_tokens = {line: UNNAMED_PATTERN.findall(line) for line in dict.fromkeys(lines)}
    position_of = {token: i for i, token in enumerate(dict.fromkeys(chain.from_iterable(line_tokens.values())))}
    line_positions = {line: np.fromiter(map(position_of.__getitem__, tokens), POSITION, len(tokens))
                      for line, tokens in line_tokens.items()}
    positions = [line_positions[line] for line in lines]
    return list(position_of), np.concatenate(positions) if positions else np.zeros(0, POSITION)


def tokenize_with_kinds(text):
    """(token, kind) pairs; kind is the pattern group name (note, rest, bar, field, ...)."""
    return [(match.group(), match.lastgroup) for match in TOKEN_PATTERN.finditer(text)]


def token_kind(token):
    """The kind of one token on its own, the same as in its tune: only a field starts with "X:"."""
    return TOKEN_PATTERN.match(token).lastgroup


class Vocabulary:
    """Token strings <-> uint16 ids; <unk> and <eot> first, then tokens by falling frequency."""

    def __init__(self, tokens):
        if tokens[:2] != [UNK, EOT]:
            raise ValueError(f"a vocabulary starts with {UNK!r}, {EOT!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens are not unique")
        self.tokens = list(tokens)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        self.unk_id, self.eot_id = 0, 1

    @classmethod
    def build(cls, counts, min_count=2, max_size=65535):
        """From token counts (of the train split): tokens seen fewer than min_count times are <unk>."""
        kept = [t for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
        return cls([UNK, EOT] + kept[: max_size - 2])

    @classmethod
    def from_meta(cls, meta):
        vocab = cls(meta["vocab"])
        if vocab.sha256 != meta.get("vocab_sha256", vocab.sha256):
            raise ValueError("meta.json vocab does not match its vocab_sha256")
        return vocab

    @property
    def sha256(self):
        return hashlib.sha256(json.dumps(self.tokens).encode()).hexdigest()

    def __len__(self):
        return len(self.tokens)

    def encode(self, text):
        return self.encode_tokens(tokenize_abc(text))

    def encode_tokens(self, tokens):
        unk_id = self.unk_id
        return [self.ids.get(token, unk_id) for token in tokens]

    def decode(self, ids):
        return "".join(self.tokens[int(i)] for i in ids)

