"""Each sample's score and sound, for report.html: the score engraved as SVG by verovio from music21's
reading of the ABC (verovio's own ABC reader strings the voices of a tune one after the other), the sound
rendered from the sample's MIDI by FluidSynth with a General MIDI soundfont, as Ogg Vorbis.

FluidSynth, not symusic's Synthesizer: symusic 0.6.0's render() cannot hand back its buffer (its binding
lost the Eigen type caster), and FluidSynth writes Ogg Vorbis itself (libsndfile), with no encoder package.
"""

import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import symusic
from music21.musicxml.m21ToXml import GeneralObjectExporter

from analysis.samples import music21_score
from preprocessing.abc_tools import run_binary

SOUNDFONT_ENV = "MUSIC_SCALING_SOUNDFONT"
# Debian's default General MIDI soundfont (musescore-general-soundfont-small, fluid-soundfont-gm, ...),
# then Arch's and Fedora's; after these, the copy that symusic's download helper keeps
SOUNDFONTS = ("/usr/share/sounds/sf3/default-GM.sf3", "/usr/share/sounds/sf2/default-GM.sf2",
              "/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/default.sf2",
              "/usr/share/soundfonts/FluidR3_GM.sf2")
SAMPLE_RATE = 22050  # enough to judge a tune, and half the page of 44.1 kHz (Ogg Vorbis: ~60 kbit/s)
GAIN = 0.6  # FluidSynth's default 0.2 leaves a solo melody very quiet; 0.6 keeps a dense piece unclipped
ENGRAVE = Path(__file__).with_name("engrave.py")
HOW_TO_GET_AUDIO = (
    "Install a General MIDI soundfont (Debian/Ubuntu: apt install musescore-general-soundfont-small; or "
    "python -c \"import symusic; symusic.BuiltInSF3.MuseScoreGeneral().path()\", which downloads MuseScore "
    f"General), or point {SOUNDFONT_ENV} at an .sf2/.sf3 file; and FluidSynth (apt install fluidsynth, "
    "brew install fluid-synth); then run analysis/run.py again.")


def find_soundfont():
    """(path, None) for the soundfont to use, or (None, why there is none)."""
    chosen = os.environ.get(SOUNDFONT_ENV)
    if chosen:
        found = Path(chosen).expanduser()
        return (found, None) if found.is_file() else (None, f"{SOUNDFONT_ENV}={chosen} is not a file")
    for candidate in (*map(Path, SOUNDFONTS), symusic.BuiltInSF3.MuseScoreGeneral().path(download=False)):
        if candidate.is_file():
            return candidate, None
    return None, "no General MIDI soundfont found"


def engrave(abc_text, svg_path, timeout=120):
    """Write the score of an ABC tune to svg_path: (True, None) or (False, why not)."""
    score = music21_score(abc_text)
    if score is None:
        return False, "music21 cannot read it"
    try:
        xml = GeneralObjectExporter(score).parse()
    except Exception as error:  # music21's exporter raises many types on odd durations and spellings
        return False, f"music21 cannot write it as MusicXML ({type(error).__name__})"
    with tempfile.TemporaryDirectory(prefix="engrave-") as scratch:
        source = Path(scratch) / "score.musicxml"
        source.write_bytes(xml)
        done = run_binary([sys.executable, str(ENGRAVE), str(source), str(svg_path)], timeout)
    if done is None:
        return False, f"verovio took longer than {timeout} s"
    if done[0] != 0:
        return False, f"verovio failed (exit code {done[0]})"
    return True, None


def find_synth():
    """((FluidSynth's path, soundfont), None) to render sound with, or (None, why there is none)."""
    soundfont, missing = find_soundfont()
    fluidsynth = shutil.which("fluidsynth")
    if missing or not fluidsynth:
        return None, missing or "FluidSynth not found"
    return (fluidsynth, soundfont), None


def render_audio(midi_path, audio_path, synth, timeout=120):
    """Render a MIDI file to Ogg Vorbis at audio_path: (True, None) or (False, why not)."""
    fluidsynth, soundfont = synth
    with tempfile.TemporaryDirectory(prefix="sound-") as scratch:
        # symusic writes the notes again, each with its end: abc2midi leaves notes of a broken tie sounding,
        # and on those FluidSynth renders for minutes
        notes = Path(scratch) / "notes.mid"
        symusic.Score(str(midi_path)).dump_midi(str(notes))
        # dynamic sample loading decodes only the instruments the tune plays, not the whole soundfont (seconds)
        done = run_binary([fluidsynth, "-ni", "-q", "-o", "synth.dynamic-sample-loading=1", "-g", str(GAIN),
                           "-r", str(SAMPLE_RATE), "-T", "oga", "-F", str(audio_path), str(soundfont), str(notes)],
                          timeout)
    if done is None:
        return False, f"FluidSynth took longer than {timeout} s"
    if done[0] != 0 or not Path(audio_path).is_file():
        return False, "FluidSynth could not render it"
    return True, None


def sound(midi_path, audio_path, synth, missing):
    """(audio_path, None) once rendered, or (None, why there is no sound)."""
    if not midi_path.is_file():
        return None, "abc2midi rendered no MIDI"
    if synth is None:
        return None, missing
    rendered, note = render_audio(midi_path, audio_path, synth)
    return (audio_path if rendered else None), note


def sample_media(paths, out_dir):
    """Score and sound of each sample (.abc paths), into out_dir beside the MIDI files that analysis.samples
    wrote there; returns (one record per sample, what to do for sound or None)."""
    synth, missing = find_synth()
    tunes = [path.read_text(encoding="latin-1") for path in paths]
    # FluidSynth renders in processes of its own, in these threads, while music21 engraves in this one
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        sounds = pool.map(lambda path: sound(out_dir / f"{path.stem}.mid", out_dir / f"{path.stem}.ogg", synth,
                                             missing), paths)
        scores = [engrave(tune, out_dir / f"{path.stem}.svg") for path, tune in zip(paths, tunes)]
        records = [{"sample": path.name, "abc": tune, "score": out_dir / f"{path.stem}.svg" if engraved else None,
                    "score_note": score_note, "audio": audio, "audio_note": audio_note}
                   for path, tune, (engraved, score_note), (audio, audio_note) in zip(paths, tunes, scores, sounds)]
    return records, (f"No sound: {missing}. {HOW_TO_GET_AUDIO}" if missing else None)
