"""The two abcMIDI binaries that the symusic wheel ships, run without a shell and with a timeout.

midi2abc turns MIDI into ABC (the pipeline's conversion); abc2midi renders ABC to MIDI (the bundled
corpus, the sweep's samples and the validity checks of analysis), each tune in a scratch folder of its
own, where it writes its MIDI file.
"""

import contextlib
import functools
import os
import re
import select
import shutil
import signal
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
MIDI2ABC_FLAGS = ("-gk", "-ga", "-bpl", "4", "-bps", "4", "-noly")

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
    """Run a program without a shell: (returncode, stdout, stderr), or None when it ran past timeout (killed).

    posix_spawn and two pipes polled up to the deadline, not subprocess.Popen: its own work cost a Ray worker
    0.25 ms of CPU a midi2abc call, against 0.16 ms here (measured on POP909, 3 x 600 calls each). Once both
    pipes are closed the program is exiting, so a plain blocking wait returns at once."""
    deadline = time.monotonic() + timeout
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    output = None
    try:
        try:
            pid = spawn(args, out_write, err_write)
        finally:
            os.close(out_write)  # the child holds its own copies
            os.close(err_write)
        try:
            output = read_until_closed(out_read, err_read, deadline)
        finally:
            if output is None:  # past the deadline, or interrupted: no child is left behind
                kill(pid)
    finally:
        os.close(out_read)
        os.close(err_read)
    return None if output is None else (os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), *output)


def read_until_closed(out_read, err_read, deadline):
    """Everything written to the two pipes until both are closed, (stdout, stderr); None past the deadline."""
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


def kill(pid):
    """Kill a child and reap it, so that it is no zombie."""
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def spawn(args, stdout, stderr):
    """Start args[0] (a path) with its stdout and stderr on the given descriptors, no other descriptor of this
    process (see close_inherited_on_exec) and an empty environment (the binaries read none of it); its pid.
    It runs on the cores this thread may use (parallel.claimed_core)."""
    close_inherited_on_exec()
    return os.posix_spawn(args[0], args, {}, file_actions=[
        (os.POSIX_SPAWN_DUP2, stdout, 1), (os.POSIX_SPAWN_DUP2, stderr, 2)])


@functools.cache
def close_inherited_on_exec():
    """Mark the descriptors that this process holds inheritable, beyond stdin, stdout and stderr, close-on-exec,
    once, before its first program starts (posix_spawn, unlike Popen, closes none in the child).

    Python opens none such (PEP 446), but a process may be given some: a Ray worker starts with a dozen, among
    them the pipe by which its raylet learns that the worker died, which a child would hold open. Once, not per
    call: listing them cost a Ray worker ~0.03-0.06 ms a call, most of what posix_spawn saves. So descriptors
    that a library opens inheritable later are inherited (ray.init opens three log files so in its driver)."""
    for name in os.listdir("/dev/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            if int(name) > 2 and os.get_inheritable(int(name)):
                os.set_inheritable(int(name), False)


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
    file, abc2midi carries state from one tune into the next (measured on music21's corpus: 82 tunes
    rendered in the wrong octave, and one rendered differently on every run)."""
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
