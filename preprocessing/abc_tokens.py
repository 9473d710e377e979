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

LENGTH = r"(?:\d+)?(?:/+\d*)?"
TOKEN_PATTERN = re.compile(
    r"(?P<field>^[A-Za-z]:[^\n]*)"                      # header or voice line, whole: K:G, V:2
    r"|(?P<inline>\[[A-Za-z]:[^\]\n]*\])"                # inline field [K:D]
    r"|(?P<note>(?:\^\^|\^|__|_|=)?[A-Ga-g][,']*" + LENGTH + r")"
    r"|(?P<rest>[zxZX]" + LENGTH + r")"
    r"|(?P<bar>:*\|+[\]:]*\d*|::|\[\d+)"                # | || |] |: :| :|: :: |1 [2
    r"|(?P<chord_end>\]" + LENGTH + r")"
    r"|(?P<tuplet>\(\d(?::\d*){0,2})"
    r"|(?P<quoted>\"[^\"\n]*\")"
    r"|(?P<decoration>![^!\n]*!)"
    r"|(?P<broken>[<>]+)"
    r"|(?P<space>[ \t]+)"
    r"|(?P<other>.)",                                    # [ - ( ) { } newline and anything else
    re.MULTILINE | re.DOTALL,
)


# The same alternatives without group names: findall then returns the token strings, 2.5x faster.
UNNAMED_PATTERN = re.compile(re.sub(r"\(\?P<\w+>", "(?:", TOKEN_PATTERN.pattern), TOKEN_PATTERN.flags)


# A line with its newline (the last one may have none). No token spans a newline, and "^" in the
# pattern only matches after one, so a text tokenizes as its lines do, one after the other.
LINE = re.compile(r"[^\n]*\n|[^\n]+")


def tokenize_abc(text):
    return UNNAMED_PATTERN.findall(text)


def tune_positions(text):
    """(distinct tokens in order of first use, the text's tokens as positions among them).

    Each distinct line is tokenized once: bars and whole lines repeat within a tune (measured: the
    token stage 1.1-1.75x faster on POP909, over several runs, than tokenizing every line)."""
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

