"""Text events in MIDI tracks, retyped in place so that midi2abc skips them.

midi2abc (3.64) keeps a track's text-class meta events (FF 01 to FF 0F) with its notes and replays them as it
writes the voice, misreading them: a text event (FF 01) becomes a key change with the sharps parsed from its
words ("hello" gives K:C, and the rest of the voice is spelled in C), a copyright notice (FF 02) a time
signature ("M: 264/264"), and a marker or other text mid-track breaks the music line mid-bar. In a file marked
as karaoke, text events become sung words printed inside the music. The cleaner drops their text anyway, so
each is retyped as a sequencer-specific event (FF 7F), which midi2abc skips: no byte moves, no time changes.
"""

import re

IGNORED_META = 0x7F  # sequencer-specific: midi2abc reads past it
# Track and instrument names (FF 03, FF 04) open nearly every track, where they do no harm, so only a track
# holding another kind of text is walked, and most files cost one search.
OTHER_TEXT = re.compile(rb"\xff[\x01\x02\x05-\x0f]")


def without_text_events(data):
    """The MIDI file's bytes with the text events of each track that holds one other than a name retyped, or
    data itself where there is none. A track whose events do not end exactly at its chunk's end (corrupt) is
    left as it is, for midi2abc to judge."""
    if not OTHER_TEXT.search(data):
        return data
    positions = [position for start, end in track_chunks(data) if OTHER_TEXT.search(data, start, end)
                 for position in text_type_bytes(data, start, end) or ()]
    if not positions:
        return data
    retyped = bytearray(data)
    for position in positions:
        retyped[position] = IGNORED_META
    return bytes(retyped)


def track_chunks(data):
    """(start, end) of the events of each track chunk (MTrk) after the header chunk (also in an RMID file)."""
    position = data.find(b"MThd")
    if position < 0:
        return
    position += 8 + int.from_bytes(data[position + 4:position + 8], "big")
    while position + 8 <= len(data):
        start = position + 8
        position = start + int.from_bytes(data[position + 4:start], "big")
        if data[start - 8:start - 4] == b"MTrk":
            yield start, min(position, len(data))


def text_type_bytes(data, start, end):
    """Where the type byte of each text event of one track's events (data[start:end]) is; None where the
    events cannot be read, as midi2abc's reader reads them, up to exactly end."""
    found, i, status = [], start, 0
    try:
        while i < end:
            while data[i] & 0x80:  # the delta time
                i += 1
            i += 1
            if data[i] & 0x80:
                status = data[i]
                i += 1
            elif not 0x80 <= status < 0xF0:  # running status (no status byte) only follows a channel message
                return None
            if status == 0xFF:  # meta event: type, length, data
                if 0 < data[i] < 0x10:
                    found.append(i)
                i = past_counted_bytes(data, i + 1)
            elif status in (0xF0, 0xF7):  # system exclusive: length, data
                i = past_counted_bytes(data, i)
            elif status < 0xF0:  # channel message: one data byte for program and channel pressure, else two
                i += 1 if 0xC0 <= status < 0xE0 else 2
            else:
                return None
    except IndexError:
        return None
    return found if i == end else None


def past_counted_bytes(data, i):
    """The position after a variable-length quantity at i and the bytes it counts."""
    length = 0
    while data[i] & 0x80:
        length = (length << 7) | (data[i] & 0x7F)
        i += 1
    return i + 1 + ((length << 7) | data[i])
