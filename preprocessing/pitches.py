"""The MIDI pitch of every note of an ABC tune, read from the tokenizer's note tokens as abc2midi plays them:
the K: field's sharps or flats (from where it stands on, in every voice: midi2abc writes one), and an accidental
that holds for its letter and octave to the end of the bar (midi2abc writes `^F, F,` for two F sharps). The notes
of a chord count in the order written; rests, lengths and ties are left out."""

import functools
import re

import numpy as np

from preprocessing.abc_tokens import FLAGS, TOKEN_KINDS, token_kind

# The tokenizer's patterns for the kinds that matter here, and for those that hold letters that are no notes
# (quoted text, decorations). The kinds left out hold no letter, so the tokens of these kinds come out as they
# do from tokenize_with_kinds, at a quarter of its cost.
PITCH_KINDS = ("field", "inline", "note", "bar", "quoted", "decoration")
PITCH_TOKENS = re.compile("|".join(alternative for kind, alternatives in TOKEN_KINDS if kind in PITCH_KINDS
                                   for alternative in alternatives), FLAGS)
LETTER_SEMITONES = dict(zip("CDEFGAB", (0, 2, 4, 5, 7, 9, 11)))
FIFTHS = "FCGDAEB"  # the order in which a key signature adds sharps (and, reversed, flats)
MODE_FIFTHS = {"maj": 0, "ion": 0, "mix": -1, "dor": -2, "m": -3, "min": -3, "aeo": -3, "phr": -4, "loc": -5,
               "lyd": 1}
ACCIDENTALS = {"^^": 2, "^": 1, "=": 0, "_": -1, "__": -2}
NOTE = re.compile(r"(\^\^|\^|=|__|_)?([A-Ga-g])([,']*)")
KEY = re.compile(r"\[?K:\s*([A-G])([#b]?)\s*([A-Za-z]{0,3})")


def key_signature(field):
    """{letter: semitones} of a K: field or inline [K:...]; {} for a key it does not name (K:none, K:HP)."""
    match = KEY.match(field)
    if not match:
        return {}
    mode = MODE_FIFTHS.get(match.group(3).lower(), 0)  # anything else there (clef=, a typo) leaves it major
    sharps = FIFTHS.index(match.group(1)) - 1 + {"#": 7, "b": -7, "": 0}[match.group(2)] + mode
    if sharps >= 0:
        return {letter: 1 for letter in FIFTHS[:sharps]}
    return {letter: -1 for letter in FIFTHS[::-1][:-sharps]}


@functools.lru_cache(maxsize=1 << 16)
def token_meaning(token):
    """What a token does to the pitches: ("note", letter, octave, accidental or None, natural pitch),
    ("bar",) (a bar line or a voice's start: accidentals end), ("key", signature), or None."""
    kind = token_kind(token)
    if kind == "note":
        accidental, letter, marks = NOTE.match(token).groups()
        octave = 60 + 12 * letter.islower() + 12 * marks.count("'") - 12 * marks.count(",")
        return "note", letter.upper(), octave, ACCIDENTALS.get(accidental), octave + LETTER_SEMITONES[letter.upper()]
    if kind == "bar" or (kind == "field" and token.startswith("V:")):
        return ("bar",)
    if kind in ("field", "inline") and token.lstrip("[").startswith("K:"):
        return "key", key_signature(token)
    return None


def tune_pitches(abc):
    """The MIDI pitch numbers of the tune's notes, in order (int16)."""
    key, held, pitches = {}, {}, []
    for meaning in map(token_meaning, PITCH_TOKENS.findall(abc)):
        if meaning is None:
            continue
        if meaning[0] == "note":
            _, letter, octave, accidental, natural = meaning
            if accidental is not None:
                held[letter, octave] = accidental
            pitches.append(natural + held.get((letter, octave), key.get(letter, 0)))
        elif meaning[0] == "bar":
            held = {}
        else:
            key, held = meaning[1], {}
    return np.array(pitches, dtype=np.int16)
