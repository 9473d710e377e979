"""The two abcMIDI binaries that the symusic wheel ships, run without a shell and with a timeout.

midi2abc turns MIDI into ABC (the pipeline's conversion); abc2midi renders ABC to MIDI (the bundled
corpus, the sweep's samples and the validity checks of analysis), each tune in a scratch folder of its
own, where it writes its MIDI file.
"""

import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import symusic

BIN_DIR = Path(symusic.__file__).resolve().parent / "bin"

# Key guessing (-gk) spells notes in a key even when the MIDI file has no key signature (most of
# Lakh), so fewer accidentals and tokens; anacrusis guessing (-ga) puts bar lines where the fewest
# notes are tied across them; four bars per line without continuations (-bpl 4 -bps 4) avoids a
# "\" + newline token every bar; lyrics (-noly) are dropped by the cleaner anyway. -splitvoices is
# left out: it turns every non-homophonic chord into extra voices, so longer tunes with more V: sections.
# No broken rhythms (-nb): "G>A" is written "G3/2A/2", the same notes in fewer tokens, and no rule that the
# note after a ">" repeat the length of the one before (broken in most invalid samples of the demo's model).
MIDI2ABC_FLAGS = ("-gk", "-ga", "-nb", "-bpl", "4", "-bps", "4", "-noly")

TUNE_START = re.compile(r"^X:", re.MULTILINE)


def midi2abc_path():
    return BIN_DIR / "midi2abc"


def abc2midi_path():
    return BIN_DIR / "abc2midi"


def midi_to_abc(midi_path, flags=MIDI2ABC_FLAGS, timeout=10.0):
    """Convert one MIDI file; returns (abc_text, None) or (None, reason) with a short reason code."""
    midi_path = os.path.abspath(midi_path)  # absolute, so a name starting with "-" is no option
    done = run_binary([str(midi2abc_path()), "-f", midi_path, *flags], timeout)
    if done is None:
        return None, "timeout"
    returncode, stdout, stderr = done
    if returncode != 0:
        return None, failure_reason(stderr.decode("latin-1"))
    return stdout.decode("latin-1"), None


def run_binary(args, timeout):
    """Run a program without a shell and with an empty environment: (returncode, stdout, stderr), or None
    when it ran past timeout (killed). No child is left behind, even when interrupted.

    Not subprocess.run(timeout=...): after the output, its wait polls for the exit in sleeps of 1 ms, a large
    share of a ~2.5 ms midi2abc call (benchmarks/README.md). Here the pipes are read up to the deadline; once
    both are closed the program is exiting, so Popen's blocking wait on leaving the with-block returns at once."""
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}) as process:
        output = None
        try:
            output = read_until_closed(process, time.monotonic() + timeout)
        finally:
            if output is None:  # past the deadline, or interrupted
                process.kill()
    return None if output is None else (process.returncode, *output)


def read_until_closed(process, deadline):
    """Everything the process writes to its stdout and stderr until it closes both; None past the deadline."""
    out_read, err_read = process.stdout.fileno(), process.stderr.fileno()
    chunks = {out_read: [], err_read: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    open_pipes = len(chunks)
    while open_pipes:
        ready = poller.poll(max(0.0, deadline - time.monotonic()) * 1000)
        if not ready:
            return None
        for fd, _ in ready:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                chunks[fd].append(chunk)
            else:
                poller.unregister(fd)
                open_pipes -= 1
    return b"".join(chunks[out_read]), b"".join(chunks[err_read])


def failure_reason(message):
    if "no notes" in message:
        return "no_notes"
    if "expecting MThd" in message:
        return "not_midi"
    return "parse_error"


def split_tunes(book_text):
    """The tunes of an ABC file or tune book: each from its X: line to the next blank line or X:."""
    starts = [m.start() for m in TUNE_START.finditer(book_text)]
    tunes = []
    for start, end in zip(starts, starts[1:] + [len(book_text)]):
        tune = re.split(r"\n[ \t]*\n", book_text[start:end], maxsplit=1)[0].strip()
        tunes.append(tune + "\n")
    return tunes


def render_tunes(tunes, midi_paths, timeout=10.0):
    """Render each ABC tune to its MIDI path; returns one flag per tune, True where a MIDI file was written.

    One abc2midi call per tune, in threads (each waits on its own process): given several tunes in one
    file, abc2midi carries state from one tune into the next (wrong octaves, output that differs by run)."""
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return [ok for ok, _ in pool.map(lambda tune, path: render_tune(tune, path, timeout), tunes, midi_paths)]


def render_tune(abc_text, midi_path, timeout):
    """abc2midi on one tune, in a scratch folder: (True, its messages) once its MIDI file is moved to
    midi_path, or (False, why it wrote none)."""
    with tempfile.TemporaryDirectory(prefix="abc2midi-") as scratch:
        source, rendered = Path(scratch) / "tune.abc", Path(scratch) / "tune.mid"
        source.write_text(abc_text, encoding="latin-1", errors="replace")
        done = run_binary([str(abc2midi_path()), str(source), "-o", str(rendered)], timeout)
        if done is None:
            return False, f"abc2midi timed out after {timeout} s"
        message = done[1].decode("latin-1") + done[2].decode("latin-1")
        if not (rendered.exists() and rendered.stat().st_size > 0):
            return False, message.strip() or "abc2midi wrote no MIDI file"
        Path(midi_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(rendered, midi_path)
        return True, message


def abc_to_midi(abc_text, midi_path, timeout=10):
    """Render one ABC tune to midi_path; ok means a MIDI file with notes was written (nothing is left there
    otherwise). The message lists abc2midi's errors, or says "ok"."""
    rendered, message = render_tune(abc_text, midi_path, timeout)
    if not rendered:
        return False, message
    problem = notes_problem(midi_path)
    if problem:
        Path(midi_path).unlink()
        return False, problem
    errors = [line for line in message.splitlines() if line.startswith("Error")]
    return True, "; ".join(errors) or "ok"


def notes_problem(midi_path):
    """Why the MIDI file holds no playable notes, or None when it does."""
    try:
        score = symusic.Score(str(midi_path))
    except Exception as error:  # symusic raises plain RuntimeError/ValueError on bad MIDI
        return f"unreadable MIDI: {error}"
    return None if any(len(track.notes) for track in score.tracks) else "MIDI file has no notes"
