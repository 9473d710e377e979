"""Clean and normalise midi2abc output into one canonical ABC tune, or say why it is rejected.

Kept: X (always X:1), M, L, Q, K in the header and the V structure of the body (voices renumbered
V:1..n). Dropped: comments and %% directives (%%MIDI program/channel), lyrics (w:, W:), titles and
every other field (T: is "from <file name>"), midi2abc's chatter, trailing blanks and continuations.
Drum voices (MIDI channel 10) are dropped: their "pitches" name percussion instruments, not notes,
so as ABC notes they would teach the model false melodies and harmonies.
"""

import hashlib
import re
from dataclasses import dataclass

HEADER_FIELDS = ("M", "L", "Q", "K")
BODY_FIELDS = ("M", "L", "Q", "K")
FIELD_LINE = re.compile(r"^([A-Za-z]):(.*)$")
DRUM_CHANNEL = re.compile(r"^%%MIDI\s+channel\s+10\s*$")
# Counting with C-speed regexes, not the tokenizer: cleaning runs once per input file and must cost
# little next to midi2abc itself. Field lines are removed first so "K:G" letters are no notes.
BODY_FIELD_LINE = re.compile(r"^[A-Za-z]:.*$", re.MULTILINE)
NOTE_LETTERS = b"ABCDEFGabcdefg"


@dataclass(frozen=True)
class Limits:
    min_notes: int = 16
    min_bars: int = 4
    max_notes: int = 100_000
    max_bars: int = 5_000


@dataclass(frozen=True)
class Tune:
    abc: str
    md5: str
    notes: int
    bars: int
    voices: int


def clean_abc(raw, limits=Limits()):
    """Returns (Tune, None) for a kept tune or (None, reason)."""
    lines = raw.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("X:")), None)
    if start is None:
        return None, "no_tune"
    header, sections = split_voices(lines[start:])
    key_seen = any(line.startswith("K:") for line in header)
    if not key_seen:
        return None, "no_key"
    voices = [(body, *note_and_bar_count(body)) for body, is_drum in sections if not is_drum]
    voices = [voice for voice in voices if voice[1]]
    if not voices:
        return None, "drums_only" if any(is_drum for _, is_drum in sections) else "no_notes"
    text = render(header, [body for body, _, _ in voices])
    notes = sum(count for _, count, _ in voices)
    bars = max(count for _, _, count in voices)
    if notes < limits.min_notes or bars < limits.min_bars:
        return None, "too_short"
    if notes > limits.max_notes or bars > limits.max_bars:
        return None, "too_long"
    return Tune(text, hashlib.md5(text.encode()).hexdigest(), notes, bars, len(voices)), None


def split_voices(lines):
    """Header field lines and, per voice, (body text, is_drum). Text before any V: is voice 1."""
    header, sections, body, is_drum = [], [], [], False
    in_header, open_bar = True, ""
    for line in lines:
        if "%" in line and DRUM_CHANNEL.match(line.strip()):
            is_drum = True
        field = FIELD_LINE.match(line) if line[1:2] == ":" else None
        if in_header:
            if field and field.group(1) in HEADER_FIELDS:
                header.append(normal_field(field))
            in_header = not (field and field.group(1) == "K")
            continue
        if field and field.group(1) == "V":
            if body or sections or is_drum:
                sections.append(("".join(body), is_drum))
            body, is_drum, open_bar = [], False, ""
            continue
        if field and field.group(1) not in BODY_FIELDS:
            continue  # lyrics, titles, notes
        end = line[-1:]
        if "%" in line or end.isspace() or end == "\\":  # most music lines need no stripping
            line = strip_comment(line)
            end = "|" if line[-1:] == "|" else end
        if not line:
            continue
        if field:
            body.append(normal_field(field) + "\n")
            open_bar = ""
            continue
        if open_bar:
            # midi2abc ends its lines at bar lines, but breaks one mid-bar where it prints text (a %%MIDI program
            # for a program change within a track, a marker's bare newline): the bar goes on on its line, after
            # the space that ended the line before, if any (open_bar: that line's last character).
            body[-1] = body[-1][:-1] + (" " if open_bar.isspace() else "") + line + "\n"
        else:
            body.append(line + "\n")
        open_bar = end != "|" and end
    sections.append(("".join(body), is_drum))
    return header, sections


def normal_field(field):
    return f"{field.group(1)}:{strip_comment(field.group(2)).strip()}"


def strip_comment(line):
    if "%" in line:
        line = line.split("%", 1)[0]
    return line.rstrip().removesuffix("\\").rstrip()


def render(header, voices):
    lines = ["X:1"] + header
    text = "\n".join(lines) + "\n"
    for number, body in enumerate(voices, 1):
        text += f"V:{number}\n{body}"
    return text


def note_and_bar_count(body):
    """Notes (pitch letters; chord notes count each) and bar lines of one voice's body."""
    music = BODY_FIELD_LINE.sub("", body) if ":" in body else body  # no ":", no field line
    letters = music.encode("latin-1", "replace")
    return len(letters) - len(letters.translate(None, NOTE_LETTERS)), music.count("|")
