"""Quality of generated ABC: validity (abc2midi and music21), MIDI conversion, pitch-class and note-length
distributions against the test split, repeated bars, and a piano roll per sample.

Both the samples and the reference tunes are rendered to MIDI by abc2midi and measured from the MIDI in
quarter notes, so the two sides of each distance are measured the same way.
"""

import collections
import re
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import music21  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pretty_midi  # noqa: E402
import pyarrow.compute  # noqa: E402
import pyarrow.dataset  # noqa: E402
import symusic  # noqa: E402
from scipy.spatial.distance import jensenshannon  # noqa: E402

from preprocessing import storage  # noqa: E402
from preprocessing.abc_tokens import tokenize_with_kinds  # noqa: E402
from preprocessing.abc_tools import abc_to_midi, render_tunes  # noqa: E402

REFERENCE_TUNES = 200  # test tunes rendered for the reference distributions
SHOWN_PER_SETTING = 5  # samples of each temperature and prompt given a piano roll, a score and sound; all are measured
# note lengths in quarter notes, binned by the nearest power of two from a 64th note to a double whole
LENGTH_EXPONENTS = np.arange(-4, 4)
MUSICAL = ("note", "rest", "chord_end", "tuplet", "broken", "other")  # token kinds that make up a bar
# a best-model run's sample: t<temperature>_<prompt>[_constrained]_<nnn>.abc, prompt "free" (a header) or
# "opening" (first bars), "_constrained" for constrained decoding
SAMPLE_NAME = re.compile(r"t(?P<temperature>\d+(?:\.\d+)?)_(?:(?P<prompt>[a-z]+)_)?(?P<constrained>constrained_)?"
                         r"\d+\.abc$")


def check_sample(abc_text, midi_path):
    """Validity and repetition of one sample; the MIDI goes to midi_path when abc2midi renders notes."""
    converted, message = abc_to_midi(abc_text, midi_path)
    return {
        "converted_to_midi": converted,
        "valid_abc2midi": converted and message == "ok",  # rendered and abc2midi reported no error
        "abc2midi_message": message,
        "valid_music21": music21_valid(abc_text),
        "repeated_bar_rate": repeated_bar_rate(abc_text),
    }


def music21_valid(abc_text):
    """music21 parses the text and finds at least one note."""
    return music21_score(abc_text) is not None


def music21_score(abc_text):
    """music21's reading of an ABC tune, or None when it cannot parse it or finds no note."""
    try:
        score = music21.converter.parse(abc_text, format="abc")
    except Exception:  # music21 raises many exception types on bad ABC; any of them means invalid
        return None
    return score if len(score.flatten().notes) else None


def bars(abc_text):
    """The bars of a tune's body as strings of their musical tokens (spaces and fields dropped)."""
    found, current = [], []
    for token, kind in tokenize_with_kinds(abc_text):
        if kind == "bar":
            if current:
                found.append("".join(current))
            current = []
        elif kind in MUSICAL and token.strip():
            current.append(token)
    if current:
        found.append("".join(current))
    return found


def repeated_bar_rate(abc_text):
    """Share of bars equal to an earlier bar of the same tune (NaN without bars)."""
    seen, repeats, all_bars = set(), 0, bars(abc_text)
    for bar in all_bars:
        repeats += bar in seen
        seen.add(bar)
    return repeats / len(all_bars) if all_bars else float("nan")


def midi_notes(midi_path):
    """(pitches, durations in quarter notes) of every non-drum note of a MIDI file."""
    score = symusic.Score(str(midi_path), ttype="quarter")
    notes = [note for track in score.tracks if not track.is_drum for note in track.notes]
    return np.array([n.pitch for n in notes], dtype=int), np.array([n.duration for n in notes], dtype=float)


def pitch_class_histogram(pitches):
    return np.bincount(pitches % 12, minlength=12) / max(len(pitches), 1)


def note_length_histogram(durations):
    durations = durations[durations > 0]
    exponents = np.clip(np.round(np.log2(durations)), LENGTH_EXPONENTS[0], LENGTH_EXPONENTS[-1])
    counts = np.bincount((exponents - LENGTH_EXPONENTS[0]).astype(int), minlength=len(LENGTH_EXPONENTS))
    return counts / max(counts.sum(), 1)


def distributions(midi_paths):
    """Pooled pitch-class and note-length histograms over MIDI files; None when there are no notes."""
    pitches, durations = [], []
    for path in midi_paths:
        p, d = midi_notes(path)
        pitches.append(p)
        durations.append(d)
    pitches = np.concatenate(pitches) if pitches else np.array([], dtype=int)
    if not len(pitches):
        return None
    return {"pitch_class": pitch_class_histogram(pitches),
            "note_length": note_length_histogram(np.concatenate(durations))}


def reference_tunes(data_dir, limit=REFERENCE_TUNES):
    """The first `limit` test tunes as the data folder's abc/ table holds them: the cleaned ABC, whole (tokens
    decoded would hold <unk> where a tune has a token too rare for the vocabulary, a tempo or key line in most
    of a small corpus's tunes, and abc2midi reads no tune without its K: line)."""
    filesystem, path = storage.resolve(storage.join(data_dir, "abc"))
    tunes = pyarrow.dataset.dataset(path, filesystem=filesystem, format="parquet")
    return tunes.head(limit, columns=["abc"], filter=pyarrow.compute.field("split") == "test").column("abc").to_pylist()


def reference_statistics(data_dir, scratch):
    tunes = reference_tunes(data_dir)
    paths = [Path(scratch) / f"reference{number}.mid" for number in range(len(tunes))]
    rendered = [path for path, ok in zip(paths, render_tunes(tunes, paths)) if ok]
    stats = distributions(rendered) or {}
    stats.update(tunes=len(tunes), rendered=len(rendered),
                 repeated_bar_rate=float(np.nanmean([repeated_bar_rate(t) for t in tunes])) if tunes else None)
    return stats


def plot_piano_roll(midi_path, png_path, title):
    roll = pretty_midi.PrettyMIDI(str(midi_path)).get_piano_roll(fs=20)
    pitched = np.flatnonzero(roll.any(axis=1))
    low, high = (pitched.min(), pitched.max() + 1) if len(pitched) else (0, 128)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.imshow(roll[low:high] > 0, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest",
              extent=(0, roll.shape[1] / 20, low - 0.5, high - 0.5))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("MIDI pitch (semitones)")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def sample_quality(samples_dir, out_dir, data_dir=None):
    """(per-sample DataFrame, summary dict) for every *.abc in samples_dir; MIDI renders and the shown samples'
    piano rolls go under out_dir. Without data_dir the distances to the test split are left out (None)."""
    paths = sorted(Path(samples_dir).glob("*.abc"))
    if not paths:
        raise FileNotFoundError(f"no .abc samples in {samples_dir}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, seen = [], collections.Counter()
    for path in paths:
        midi_path = out_dir / f"{path.stem}.mid"
        setting = sample_setting(path.name)
        seen[tuple(setting.values())] += 1
        row = {"sample": path.name, **setting, "shown": seen[tuple(setting.values())] <= SHOWN_PER_SETTING,
               **check_sample(path.read_text(encoding="latin-1"), midi_path)}
        row["piano_roll"] = (plot_piano_roll(midi_path, out_dir / f"{path.stem}_piano_roll.png", path.stem).name
                             if row["converted_to_midi"] and row["shown"] else None)
        rows.append(row)
    table = pd.DataFrame(rows)
    return table, summarize(table, out_dir, data_dir)


def shown_samples(table, samples_dir):
    """The paths of the samples (of sample_quality's table) the report shows."""
    return [Path(samples_dir) / name for name in table.loc[table["shown"], "sample"]]


def sample_setting(name):
    """The temperature, prompt and decoding a sample's file name gives (None where it gives none)."""
    match = SAMPLE_NAME.match(name)
    if match is None:
        return {"temperature": None, "prompt": None, "decoding": None}
    return {"temperature": float(match["temperature"]), "prompt": match["prompt"],
            "decoding": "constrained" if match["constrained"] else "unconstrained"}


def validity_by_setting(table):
    """Per temperature, prompt and decoding: samples, and the shares valid by abc2midi and by music21."""
    grouped = table.groupby(["temperature", "prompt", "decoding"], dropna=False)
    return grouped.agg(samples=("sample", "size"), share_valid_abc2midi=("valid_abc2midi", "mean"),
                       share_valid_music21=("valid_music21", "mean")).reset_index().to_dict(orient="records")


def summarize(table, out_dir, data_dir):
    """The model's own samples' figures (all but those of constrained decoding), the constrained ones' validity
    beside them, and validity per setting."""
    constrained = table["decoding"] == "constrained"
    own = table[~constrained]
    summary = {
        "samples": int(len(own)),
        "share_valid_abc2midi": float(own["valid_abc2midi"].mean()),
        "share_valid_music21": float(own["valid_music21"].mean()),
        "share_converted_to_midi": float(own["converted_to_midi"].mean()),
        "constrained": {"samples": int(constrained.sum()),
                        "share_valid_abc2midi": float(table.loc[constrained, "valid_abc2midi"].mean()),
                        "share_valid_music21": float(table.loc[constrained, "valid_music21"].mean())}
                       if constrained.any() else None,
        "by_setting": validity_by_setting(table),
        "repeated_bar_rate": (float(own["repeated_bar_rate"].mean())
                              if own["repeated_bar_rate"].notna().any() else None),
        "pitch_class_distance": None, "note_length_distance": None, "reference": None, "reference_error": None,
    }
    if data_dir is None:
        return summary
    converted = own.loc[own["converted_to_midi"], "sample"]
    generated = distributions([out_dir / f"{Path(name).stem}.mid" for name in converted])
    with tempfile.TemporaryDirectory(prefix="reference-") as scratch:
        try:
            reference = reference_statistics(data_dir, scratch)
        except (FileNotFoundError, ValueError) as error:  # a moved data folder costs the distances, not the report
            summary["reference_error"] = f"no distances to the test split: {error}"
            return summary
    summary["reference"] = {"tunes": reference["tunes"], "rendered": reference["rendered"],
                            "repeated_bar_rate": reference["repeated_bar_rate"]}
    if generated and "pitch_class" in reference:
        for name in ("pitch_class", "note_length"):
            # Jensen-Shannon distance in bits: 0 = same distribution, 1 = no overlap
            summary[f"{name}_distance"] = float(jensenshannon(generated[name], reference[name], base=2))
    return summary
