"""Constrained decoding: while sampling, mask the tokens that would break a tune's ABC for abc2midi.

An option (`best --constrained`, `sample --constrained`); the model's own samples are always measured beside it.
The rules are those that abc2midi's errors name in unconstrained samples: a broken rhythm (> or <) joins a note
outside a tuplet to a next one of the same length, and a note takes part in one at most; a tie follows a note and
leads, over bar lines and spaces only, to a note of the same letter and octave; a chord holds notes only, at most
MAX_CHORD_NOTES, and does not nest; a tuplet does not start inside another; a field line starts a line, and a line is
not empty (an empty line ends the tune); no <unk>, no new tune (X:) and no end before a first note.
"""

import dataclasses
import re
from fractions import Fraction

import torch

from preprocessing.abc_tokens import EOT, UNK, token_kind
from preprocessing.pitches import token_meaning

MAX_CHORD_NOTES = 6
LENGTH = re.compile(r"(\d*)(/*)(\d*)$")
TUPLET = re.compile(r"\((\d)(?::\d*)?(?::(\d+))?")


def note_length(token):
    """A note token's length in units of L: A -> 1, A2 -> 2, A/ -> 1/2, A3/2 -> 3/2, A// -> 1/4, A/4 -> 1/4."""
    numerator, slashes, denominator = LENGTH.search(token).groups()
    value = Fraction(int(numerator or 1))
    return value / int(denominator) if denominator else value / 2 ** len(slashes)


def tuplet_notes(token):
    """How many notes a tuplet token (p[:q[:r]]) takes: r, or p."""
    p, r = TUPLET.match(token).groups()
    return int(r or p)


@dataclasses.dataclass
class Row:
    """Where one sample stands: what the next token may be follows from it."""
    notes: int = 0                 # notes so far
    chord_notes: int = None        # notes in the open chord; None outside one
    last_note: tuple = None        # (length, letter and octave) of the previous token when it is a note
    broken_length: Fraction = None  # after a broken rhythm: the length the next note must have
    tied: tuple = None             # after a tie: the letter and octave the next note must have
    tuplet_left: int = 0           # notes still to come in the open tuplet
    line_start: bool = True        # the previous token ended a line (the header's last line, at first)
    field: bool = False            # the previous token was a field line, whose newline comes next


class AbcGrammar:
    """The next tokens allowed for each sample (allowed()), and their states as tokens come (advance())."""

    def __init__(self, tokens, prompts, device="cpu"):
        """tokens: the vocabulary; prompts: each sample's ids so far after its header (read before sampling)."""
        self.tokens = tokens
        self.kinds = [token if token in (UNK, EOT) else token_kind(token) for token in tokens]
        self.notes = {i: (note_length(token), token_meaning(token)[1:3])
                      for i, token in enumerate(tokens) if self.kinds[i] == "note"}
        mask = lambda keep: torch.tensor([keep(i) for i in range(len(tokens))], device=device)  # noqa: E731
        self.note = mask(lambda i: i in self.notes)
        self.chord_end = mask(lambda i: self.kinds[i] == "chord_end")
        self.after_note_only = mask(lambda i: self.kinds[i] == "broken" or tokens[i] == "-")
        self.tuplet = mask(lambda i: self.kinds[i] == "tuplet")
        self.end = mask(lambda i: tokens[i] == EOT)
        self.over_tie = mask(lambda i: self.kinds[i] in ("bar", "space") or tokens[i] == "\n")
        self.line_start_only = mask(lambda i: self.kinds[i] == "field")
        self.newline = mask(lambda i: tokens[i] == "\n")
        self.anywhere = mask(lambda i: tokens[i] != UNK and not tokens[i].startswith("X:")
                             and self.kinds[i] != "chord_end")
        self.with_length = {}
        self.with_pitch = {}
        for i, (length, pitch) in self.notes.items():
            self.with_length.setdefault(length, torch.zeros_like(self.note))[i] = True
            self.with_pitch.setdefault(pitch, torch.zeros_like(self.note))[i] = True
        self.rows = [Row() for _ in prompts]
        for row, ids in zip(self.rows, prompts):
            for i in ids:
                self.take(row, i)

    def allowed(self):
        """(rows, vocabulary) bool: the tokens each sample may take next."""
        return torch.stack([self.allowed_after(row) for row in self.rows])

    def allowed_after(self, row):
        if row.field:
            return self.newline
        if row.chord_notes is not None:
            allowed = self.chord_end if row.chord_notes else torch.zeros_like(self.note)
            return allowed | self.note if row.chord_notes < MAX_CHORD_NOTES else allowed
        if row.broken_length is not None:
            return self.with_length.get(row.broken_length, self.note)
        if row.tied is not None:
            allowed = self.with_pitch.get(row.tied, self.note) | self.over_tie
            return allowed & ~self.newline if row.line_start else allowed
        allowed = self.anywhere if row.last_note else self.anywhere & ~self.after_note_only
        allowed = allowed & ~self.newline if row.line_start else allowed & ~self.line_start_only
        if row.tuplet_left:
            allowed = allowed & ~self.tuplet
        return allowed if row.notes else allowed & ~self.end

    def advance(self, ids):
        """Each row takes its next token id."""
        for row, i in zip(self.rows, ids):
            self.take(row, i)

    def take(self, row, i):
        token, kind, note = self.tokens[i], self.kinds[i], self.notes.get(i)
        row.line_start, row.field = token == "\n", kind == "field"
        if row.chord_notes is not None:
            row.chord_notes = row.chord_notes + 1 if note else row.chord_notes
            if kind == "chord_end":
                row.chord_notes, row.notes, row.tuplet_left = None, row.notes + 1, max(0, row.tuplet_left - 1)
            return
        if note:  # a note takes part in one broken rhythm, and in none inside a tuplet
            row.last_note = None if row.broken_length is not None or row.tuplet_left else note
            row.broken_length, row.tied, row.notes = None, None, row.notes + 1
            row.tuplet_left = max(0, row.tuplet_left - 1)
            return
        if kind == "broken":
            row.broken_length = row.last_note[0] if row.last_note else None
        elif token == "-":
            row.tied = row.last_note[1] if row.last_note else None
        elif token == "[":
            row.chord_notes = 0
        elif kind == "tuplet":
            row.tuplet_left = tuplet_notes(token)
        elif kind == "rest":
            row.tuplet_left = max(0, row.tuplet_left - 1)
        row.last_note = None
