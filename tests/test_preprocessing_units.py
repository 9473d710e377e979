"""The pieces of the pipeline on small real inputs: text events, cleaning, tokenizer, pitches, near-twins,
vocabulary, split, chunking, settings and input resolution."""

import hashlib
import io
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mido
import music21
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import symusic

from conftest import REPO
from preprocessing import abc_tools, near_twins, parallel, pipeline
from preprocessing.abc_clean import Limits, clean_abc
from preprocessing.abc_tokens import EOT, UNK, Vocabulary, tokenize_abc, tokenize_with_kinds
from preprocessing.abc_tools import MIDI2ABC_FLAGS, abc_to_midi, midi_to_abc, run_binary
from preprocessing.chunking import chunk_tune
from preprocessing.convert import convert_batch
from preprocessing.inputs import resolve_inputs
from preprocessing.midi_text import IGNORED_META, without_text_events
from preprocessing.parallel import claimed_core
from preprocessing.pitches import PITCH_KINDS, PITCH_TOKENS, key_signature, tune_pitches
from preprocessing.render import render_abc_items
from preprocessing.settings import Settings
from preprocessing.tune_split import group_splits, split_of

RAW = """X: 1
T: from /some/file name.mid
M: 4/4
L: 1/8
Q:1/4=120
% Last note suggests major mode tune
K:G % 1 sharp
V:1
%%MIDI program 0
w: la la
G2AB c2d2|e2d2 B4|G2
AB c2d2|e2d2 B4| \\
% a comment after a bar line
G2AB c2
%%MIDI program 5
d2|e2d2 B4|
V:2
%%MIDI channel 10
C,2C,2 C,2C,2|C,2C,2 C,2C,2|C,2C,2 C,2C,2|C,2C,2 C,2C,2|
"""


def test_clean_keeps_music_and_drops_chatter_and_drums(tmp_path):
    tune, reason = clean_abc(RAW)
    assert reason is None
    assert tune.abc == "X:1\nM:4/4\nL:1/8\nQ:1/4=120\nK:G\nV:1\nG2AB c2d2|e2d2 B4|G2AB c2d2|e2d2 B4|\nG2AB c2d2|e2d2 B4|\n"
    assert (tune.notes, tune.bars, tune.voices) == (24, 6, 1)
    ok, message = abc_to_midi(tune.abc, tmp_path / "t.mid")
    assert ok, message


def test_a_render_without_notes_leaves_no_midi_file(tmp_path):
    """abc2midi writes a MIDI file for a tune of rests: abc_to_midi (samples, checks) says why that is no music
    and removes it; render_tunes (the pipeline's inputs) keeps it, for midi2abc to reject with its reason."""
    rests = "X:1\nL:1/4\nK:C\nz4|z4|\n"
    assert abc_to_midi(rests, tmp_path / "checked.mid") == (False, "MIDI file has no notes")
    assert abc_tools.render_tunes([rests], [tmp_path / "input.mid"]) == [True]
    assert [path.name for path in tmp_path.iterdir()] == ["input.mid"]


def test_a_bar_broken_across_lines_is_rejoined_with_its_space():
    """midi2abc's line breaks mid-bar (where it printed text or a directive) go, and a space before one stays;
    a field line (a key change mid-bar) keeps its own line."""
    raw = "X:1\nM:4/4\nL:1/8\nK:C\nV:1\nC2D2 \nE2F2|G8|\nA2B2\n%%MIDI program 5\nc2d2|\nE2\nK:G\nF2G4|\n"
    tune, _ = clean_abc(raw, Limits(min_notes=1, min_bars=1))
    assert tune.abc == "X:1\nM:4/4\nL:1/8\nK:C\nV:1\nC2D2 E2F2|G8|\nA2B2c2d2|\nE2\nK:G\nF2G4|\n"


@pytest.mark.parametrize("raw, limits, reason", [
    ("no tune here", Limits(), "no_tune"),
    ("X:1\nT:t\n", Limits(), "no_key"),
    ("X:1\nK:C\nV:1\nz8|z8|\n", Limits(), "no_notes"),
    (RAW.replace("%%MIDI program 0", "%%MIDI channel 10"), Limits(), "drums_only"),
    (RAW, Limits(min_notes=31), "too_short"),
    (RAW, Limits(max_bars=5), "too_long"),
])
def test_clean_rejects_with_a_reason(raw, limits, reason):
    assert clean_abc(raw, limits) == (None, reason)


@pytest.mark.parametrize("text", [
    "X:1\nM:6/8\nL:1/8\nK:Bb\nV:1\n[K:D] ^c'3/2 _B,,/ =f2- f|:(3abc [CEG]2 z4 x/|1 A>B !trill!c \"Am\"d:|2 e4|]\n",
    "odd § chars\t{g}A~B .C\n\n",
])
def test_tokenizer_is_lossless(text):
    assert "".join(tokenize_abc(text)) == text


def test_tokens_are_musical_units_of_one_kind_each():
    text = "M:6/8\n[K:D] ^^c'3/2 __B,,/ =f2- f|:(3:2:3abc [CEG]2 z4 x/|1 A>>B !trill!c \"Am\"d:|2 e//4 :: [2 Z8 ||]\n"
    expected = [
        ("M:6/8", "field"), ("\n", "other"), ("[K:D]", "inline"), (" ", "space"), ("^^c'3/2", "note"), (" ", "space"),
        ("__B,,/", "note"), (" ", "space"), ("=f2", "note"), ("-", "other"), (" ", "space"), ("f", "note"),
        ("|:", "bar"), ("(3:2:3", "tuplet"), ("a", "note"), ("b", "note"), ("c", "note"), (" ", "space"),
        ("[", "other"), ("C", "note"), ("E", "note"), ("G", "note"), ("]2", "chord_end"), (" ", "space"),
        ("z4", "rest"), (" ", "space"), ("x/", "rest"), ("|1", "bar"), (" ", "space"), ("A", "note"),
        (">>", "broken"), ("B", "note"), (" ", "space"), ("!trill!", "decoration"), ("c", "note"), (" ", "space"),
        ('"Am"', "quoted"), ("d", "note"), (":|2", "bar"), (" ", "space"), ("e//4", "note"), (" ", "space"),
        ("::", "bar"), (" ", "space"), ("[2", "bar"), (" ", "space"), ("Z8", "rest"), (" ", "space"),
        ("||]", "bar"), ("\n", "other")]
    assert tokenize_with_kinds(text) == expected
    assert tokenize_abc(text) == [token for token, _ in expected]


def test_vocabulary_maps_rare_tokens_to_unk_and_checks_its_hash():
    vocab = Vocabulary.build({"A": 5, "B": 2, "C": 1}, min_count=2)
    assert vocab.tokens == [UNK, EOT, "A", "B"] and vocab.encode("ABC") == [2, 3, vocab.unk_id]
    assert vocab.decode(vocab.encode("AB")) == "AB"
    meta = {"vocab": vocab.tokens, "vocab_sha256": "0" * 64}
    with pytest.raises(ValueError, match="vocab_sha256"):
        Vocabulary.from_meta(meta)


def test_split_is_a_function_of_the_hash():
    md5s = [f"{i:032x}"[::-1] for i in range(2000)]
    splits = [split_of(m, (0.8, 0.1, 0.1)) for m in md5s]
    assert splits == [split_of(m, (0.8, 0.1, 0.1)) for m in md5s]
    assert 1450 < splits.count("train") < 1750 and splits.count("val") > 100 and splits.count("test") > 100


def test_pitches_follow_the_key_and_an_accidental_held_to_the_bar_line():
    text = ('X:1\nM:4/4\nL:1/8\nK:D\nV:1\nFGAB ^c=cc2|c^G,G,G [CEG]2 z2 C,,c\'|\n'
            '[K:Bb] B "Bb"b !trill!e ^F\nV:2\nF|\n')
    assert tune_pitches(text).tolist() == [66, 67, 69, 71, 73, 72, 72, 73, 56, 56, 67, 61, 64, 67, 37, 85,
                                           70, 82, 75, 66, 65]
    assert key_signature("K:F#") == dict.fromkeys("FCGDAE", 1) and key_signature("K:Gm") == {"B": -1, "E": -1}
    assert key_signature("K:Dmix") == {"F": 1} and key_signature("K:none") == {}


def test_pitch_tokens_are_the_tokenizers_own(midi_dir):
    raw, reason = midi_to_abc(sorted((midi_dir / "pop909").glob("*.mid"))[0])
    tune, reason = clean_abc(raw)
    text = "M:6/8\n[K:D] ^^c'3/2 __B,,/ =f2- f|:(3:2:3abc [CEG]2 z4 x/|1 A>>B !trill!c \"Am\"d:|2 e//4 :: [2 Z8 ||]\n"
    for abc in (tune.abc, text):
        kept = [token for token, kind in tokenize_with_kinds(abc) if kind in PITCH_KINDS]
        assert PITCH_TOKENS.findall(abc) == kept and len(kept) > 10


def walk(seed, notes=128):
    """A diatonic melody as letter positions in CDEFGABcdefgab (1 to 12): steps of at most a third."""
    steps = np.random.default_rng(seed).integers(-2, 3, notes)
    return list(np.clip(6 + np.cumsum(steps), 1, 12))


def as_abc(positions, key):
    letters = "".join("CDEFGABcdefgab"[p] for p in positions)
    bars = "|".join(letters[i:i + 8] for i in range(0, len(letters), 8))
    return f"X:1\nM:4/4\nL:1/8\nK:{key}\nV:1\n{bars}|\n"


def test_versions_of_a_tune_form_one_group_and_an_unrelated_tune_its_own():
    melody = walk(0)
    up_a_tone = [p + 1 for p in melody]  # D major read a step higher in E major: the same intervals
    edited = [p - (2 if i in (20, 60, 100) else 0) for i, p in enumerate(up_a_tone)]
    tunes = {"original": as_abc(melody, "D"), "transposed": as_abc(up_a_tone, "E"),
             "edited": as_abc(edited, "E"), "unrelated": as_abc(walk(1), "D")}
    signatures = np.stack([near_twins.signature(abc) for abc in tunes.values()])
    similarity = near_twins.similarity(signatures[:1], signatures)
    assert similarity[1] == 1 and near_twins.THRESHOLD <= similarity[2] < 1 and similarity[3] < 0.2
    md5s = [hashlib.md5(abc.encode()).hexdigest() for abc in tunes.values()]
    group = near_twins.groups(md5s, signatures)
    assert group[md5s[0]] == group[md5s[1]] == group[md5s[2]] == min(md5s[:3]) and group[md5s[3]] == md5s[3]
    figures = near_twins.twin_figures(signatures, [group[m] for m in md5s], ["train", "test", "test", "train"],
                                      ["test", "test", "test", "train"])
    assert figures["groups"] == 1 and figures["tunes_in_groups"] == 3
    assert figures["test_with_twin_in_train"] == {"before": 2, "after": 0}
    assert figures["test_tunes"] == {"before": 2, "after": 3}


def test_a_group_is_split_by_its_first_tunes_hash_and_no_split_stays_empty():
    groups = [f"{i:032x}"[::-1] for i in range(3)]
    assert [split_of(g, (0.8, 0.1, 0.1)) for g in groups] == ["train"] * 3
    # the train groups of the highest hash positions fill the empty splits
    assert group_splits(groups, (0.8, 0.1, 0.1)) == {groups[0]: "train", groups[2]: "val", groups[1]: "test"}
    with pytest.raises(ValueError, match="too few"):
        group_splits(groups[:2], (0.8, 0.1, 0.1))


def test_chunks_are_cut_at_bar_lines_and_keep_the_header(midi_dir, tmp_path):
    raw, _ = midi_to_abc(midi_dir / "miditok" / "multitrack" / "Aicha.mid")
    tune, _ = clean_abc(raw)
    pieces = chunk_tune(tune.abc, 300)
    header = tune.abc[: tune.abc.index("\nV:1") + 1]
    assert len(pieces) > 3 and all(p.startswith(header) for p in pieces)
    assert all(len(tokenize_abc(p)) <= 300 for p in pieces[:-1] if p.count("|") > 1)
    bodies = "".join(p[len(header):] for p in pieces)
    assert bodies.replace("\n", "").count("|") == tune.abc.replace("\n", "").count("|")
    for piece in pieces[1:4]:
        assert piece[len(header):].startswith("V:") and abc_to_midi(piece, tmp_path / "c.mid")[0]
    with pytest.raises(ValueError, match="K: line"):
        chunk_tune("X:1\nM:4/4\n" + "abc|" * 200, 300)


def test_settings_name_the_bad_option():
    with pytest.raises(ValueError, match="split"):
        Settings.from_kwargs(split="0.5,0.5,0.5")
    with pytest.raises(ValueError, match="unknown setting 'chunk'"):
        Settings.from_kwargs(chunk=3)
    with pytest.raises(ValueError, match="max_vocab"):
        Settings.from_kwargs(max_vocab=70000)


def test_inputs_folder_glob_list_and_tune_book(tmp_path, midi_dir):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "A.MID").write_bytes(b"x")
    (tmp_path / "b.midi").write_bytes(b"x")
    (tmp_path / "ignored.txt.bak").write_text("")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    (outside / "linked-folder").mkdir(parents=True)
    (outside / "linked-folder" / "hidden.mid").write_bytes(b"x")
    (outside / "real.mid").write_bytes(b"x")
    (tmp_path / "link.mid").symlink_to(outside / "real.mid")  # a symlinked file: named by its target
    (tmp_path / "linked-folder").symlink_to(outside / "linked-folder")  # a symlinked folder: not followed
    book = tmp_path / "book.abc"
    book.write_text("%abc\nX:1\nT:a\nK:C\nCDEF|\n\nX:2\nT:b\nK:G\nGABc|\n")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# comment\n{book.as_uri()}\nb.midi\n")  # a file:// URI is a local path
    folder = resolve_inputs([str(tmp_path)])
    assert [i["source"] for i in folder] == [str(outside / "real.mid"), str(tmp_path / "b.midi"),
                                             str(tmp_path / "sub" / "A.MID")]
    listed = resolve_inputs([str(listing), str(tmp_path / "*.midi")])
    assert [i["source"] for i in listed] == [str(tmp_path / "b.midi"), f"{book}#1", f"{book}#2"]
    assert listed[2]["text"] == "X:2\nT:b\nK:G\nGABc|\n"
    spaced = tmp_path / "sub" / "a b.mid"
    spaced.write_bytes(b"x")
    assert resolve_inputs([spaced.as_uri()]) == resolve_inputs([str(spaced)])  # percent-encoded: a%20b.mid
    with pytest.raises(ValueError, match="nowhere"):
        resolve_inputs([str(tmp_path / "nowhere")])


def test_a_remote_file_converts_from_its_bytes_as_the_local_file_does(midi_dir):
    """A remote file (s3://, gs://) has no local path for midi2abc: its bytes go to a scratch copy, one
    after another within a batch."""
    local = sorted(str(p) for p in (midi_dir / "pop909").glob("*.mid"))[:3]
    data = [Path(path).read_bytes() for path in local]
    remote = [f"s3://bucket/{Path(path).name}" for path in local]
    as_local = convert_batch({"bytes": data, "path": local}, MIDI2ABC_FLAGS, 10.0, Limits())
    as_remote = convert_batch({"bytes": data, "path": remote}, MIDI2ABC_FLAGS, 10.0, Limits())
    assert as_remote["path"] == remote and as_remote["status"] == ["ok"] * 3
    assert len(set(as_remote["tune_md5"])) == 3
    assert {k: v for k, v in as_remote.items() if k != "path"} == {k: v for k, v in as_local.items() if k != "path"}


def test_text_events_in_note_tracks_leave_the_music_as_it_is(midi_dir, tmp_path):
    """midi2abc misreads the text-class events of a note track: a text event as a key change (its words
    parsed as sharps), a copyright notice as a time signature, a marker as a line break mid-bar. Retyped before
    the conversion, they leave the tune exactly as the file without them converts."""
    original = midi_dir / "pop909" / "001.mid"
    midi = mido.MidiFile(original)
    midi.tracks[1].insert(200, mido.MetaMessage("text", text="3 0"))
    midi.tracks[2].insert(1, mido.MetaMessage("copyright", text="(c) 1997"))
    midi.tracks[3].insert(300, mido.MetaMessage("marker", text="Chorus"))
    texted = tmp_path / "texted.mid"
    midi.save(texted)
    as_is = clean_abc(midi_to_abc(texted)[0])[0].abc
    assert "K:A" in as_is and as_is.count("M:") > 1  # the misreadings this guards against
    paths = [str(original), str(texted)]
    records = convert_batch({"bytes": [Path(p).read_bytes() for p in paths], "path": paths}, MIDI2ABC_FLAGS,
                            10.0, Limits())
    assert records["status"] == ["ok", "ok"] and records["abc"][0] == records["abc"][1] != as_is
    assert records["md5"][1] == hashlib.md5(texted.read_bytes()).hexdigest()  # the file's own, not the copy's


def test_sung_words_leave_the_music_as_it_is(tmp_path):
    """abc2midi writes a tune's w: lyrics as karaoke text events between its notes, which midi2abc prints
    inside the music lines: the tune must convert to the same ABC as without its lyrics."""
    book = Path(music21.corpus.getWork("josquin/adieuMesAmours")).read_text(encoding="latin-1")
    sung = abc_tools.split_tunes(book)[0]
    plain = "".join(line for line in sung.splitlines(keepends=True) if not line.startswith("w:"))
    paths = [tmp_path / "sung.mid", tmp_path / "plain.mid"]
    assert plain != sung and abc_tools.render_tunes([sung, plain], paths) == [True, True]
    data = [path.read_bytes() for path in paths]
    assert b"@KMIDI KARAOKE FILE" in data[0] and b"@KMIDI KARAOKE FILE" not in data[1]
    records = convert_batch({"bytes": data, "path": [str(p) for p in paths]}, MIDI2ABC_FLAGS, 10.0, Limits())
    assert records["status"] == ["ok", "ok"] and records["abc"][0] == records["abc"][1]
    assert records["notes"][0] > 150


def test_dotted_rhythms_convert_to_explicit_lengths_and_the_same_notes(tmp_path):
    """A broken rhythm ("G>A") is a rule the models break (the next note must repeat the length before it):
    the pipeline's midi2abc writes explicit lengths instead, and they play the notes of the input."""
    dotted = "X:1\nM:6/8\nL:1/8\nK:G\nG>AB c<dB|A>GF G3|d>cB A<GF|G6|]\n"
    midi, again = tmp_path / "dotted.mid", tmp_path / "again.mid"
    assert abc_tools.render_tunes([dotted], [midi]) == [True]
    assert "<" in clean_abc(midi_to_abc(midi, flags=tuple(f for f in MIDI2ABC_FLAGS if f != "-nb"))[0])[0].abc
    tune, _ = clean_abc(midi_to_abc(midi)[0])
    assert not {"broken"} & {kind for _, kind in tokenize_with_kinds(tune.abc)} and "3/2" in tune.abc
    assert abc_tools.render_tunes([tune.abc], [again]) == [True]
    assert notes_of(again) == notes_of(midi)


def notes_of(midi_path):
    """(onset, pitch, duration) of every note, in quarter notes."""
    score = symusic.Score(str(midi_path))
    return sorted((n.time / score.ticks_per_quarter, n.pitch, n.duration / score.ticks_per_quarter)
                  for track in score.tracks for n in track.notes)


def test_only_the_type_of_a_text_event_changes_and_a_corrupt_track_stays_as_it_is():
    notes = [mido.Message("note_on", note=60, velocity=64), mido.Message("note_on", note=64, velocity=64)]
    ends = [mido.Message("note_on", note=60, velocity=0, time=20), mido.Message("note_on", note=64, velocity=0)]
    texts = [mido.MetaMessage("lyrics", text="la", time=10), mido.MetaMessage("text", text="\xff\x01", time=30)]
    data = midi_bytes([mido.MetaMessage("track_name", name="tune"), *notes, texts[0], *ends, texts[1]])
    assert data.count(bytes([0x40, 0x40])) == 1  # the second note is in running status (no status byte)
    retyped = without_text_events(data)
    changed = [i for i, (a, b) in enumerate(zip(data, retyped)) if a != b]
    assert len(retyped) == len(data) and [data[i] for i in changed] == [0x03, 0x05, 0x01]  # not the FF 01 in "\xff\x01"
    assert all(retyped[i] == IGNORED_META and data[i - 1] == 0xFF for i in changed)
    types = [message.type for message in mido.MidiFile(file=io.BytesIO(retyped)).tracks[0]]
    assert types.count("sequencer_specific") == 3 and types.count("note_on") == 4
    cut = data[:-6]  # the track cut short of its chunk's length: left for midi2abc to judge
    assert without_text_events(cut) is cut
    named = midi_bytes([mido.MetaMessage("track_name", name="tune"), *notes, *ends])
    assert without_text_events(named) is named  # names alone do no harm: the track is not even walked


def midi_bytes(messages):
    midi = mido.MidiFile(type=1)
    midi.tracks.append(mido.MidiTrack(messages))
    file = io.BytesIO()
    midi.save(file=file)
    return file.getvalue()


def test_music21_corpus_is_found():
    items = resolve_inputs(["music21"])
    assert len(items) > 12000 and all(i["kind"] == "abc" for i in items[:50])
    assert music21.converter.parse(items[0]["text"], format="abc") is not None


def test_abc_tunes_render_the_same_on_every_run(tmp_path):
    """abc2midi renders CrossRoad differently on every run when another tune precedes it in its file."""
    items = [i for i in resolve_inputs(["music21"]) if i["source"].startswith("music21/ryansMammoth/")]
    at = next(n for n, i in enumerate(items) if i["source"].endswith("/CrossRoad.abc#1"))
    pair = items[at - 1:at + 1]
    runs = []
    for run in range(3):
        midi_items, rejected = render_abc_items(pair, tmp_path / str(run), timeout=10)
        assert not rejected and [i["source"] for i in midi_items] == [i["source"] for i in pair]
        runs.append([Path(i["location"]).read_bytes() for i in midi_items])
    assert runs[0] == runs[1] == runs[2]


def test_a_program_gets_its_whole_output_or_is_killed_at_its_timeout(tmp_path):
    noisy = "import sys; sys.stdout.write('a' * 300_000); sys.stderr.write('b' * 200_000); sys.exit(3)"
    done = run_binary([sys.executable, "-c", noisy], timeout=30)
    assert done == (3, b"a" * 300_000, b"b" * 200_000)
    pid_file = tmp_path / "pid"
    sleeper = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    assert run_binary([sys.executable, "-c", sleeper], timeout=5) is None
    assert time.monotonic() - started < 15
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left as a zombie
        os.kill(int(pid_file.read_text()), 0)


LINUX_ONLY = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="core affinity is Linux-only")


def cores_of_a_program():
    """The cores that a program started from this thread may run on, as printed: "[0, 1]"."""
    printed = run_binary([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"], 30)[1]
    return printed.decode().strip()


@LINUX_ONLY
def test_each_claim_gets_a_core_of_its_own_and_its_programs_run_there():
    """One claim more than there are cores, from threads that all hold theirs at once: each core goes to one
    claim, the last gets none, and every thread's cores are given back at the end."""
    cores = os.sched_getaffinity(0)
    holding = threading.Barrier(len(cores) + 1)

    def hold_a_claim(_):
        with claimed_core() as core:
            program_cores = cores_of_a_program()
            holding.wait(timeout=30)
        return core, program_cores, os.sched_getaffinity(0)

    with ThreadPoolExecutor(len(cores) + 1) as pool:
        claims = list(pool.map(hold_a_claim, range(len(cores) + 1)))
    claimed = [core for core, _, _ in claims if core is not None]
    assert sorted(claimed) == sorted(cores)
    for core, program_cores, cores_after in claims:
        assert program_cores == str(sorted(cores) if core is None else [core])
        assert cores_after == cores
    with claimed_core() as core:  # all given back
        assert core in cores


@LINUX_ONLY
def test_a_killed_holder_gives_its_core_back():
    holder = subprocess.Popen([sys.executable, "-c", "import time\nfrom preprocessing.parallel import claimed_core\n"
                               "with claimed_core() as core:\n    print(core, flush=True)\n    time.sleep(60)"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    core = int(holder.stdout.readline())
    assert parallel.claim(core) is None
    holder.kill()
    holder.wait(timeout=30)
    freed = parallel.claim(core)
    assert freed is not None
    freed.close()


@LINUX_ONLY
def test_a_task_runs_unpinned_where_pinning_is_forbidden(monkeypatch):
    """Some containers' seccomp rules forbid sched_setaffinity; this machine does not, hence the stand-in."""
    def forbidden(pid, cores):
        raise PermissionError(1, "Operation not permitted")

    cores = os.sched_getaffinity(0)
    with monkeypatch.context() as patch:
        patch.setattr(os, "sched_setaffinity", forbidden)
        with claimed_core() as core:
            assert core is None
            assert cores_of_a_program() == str(sorted(cores))
    with claimed_core() as core:  # the claim was given back
        assert core == min(cores)


@LINUX_ONLY
def test_a_claim_gives_its_core_back_when_its_block_fails():
    cores = os.sched_getaffinity(0)
    with pytest.raises(ZeroDivisionError), claimed_core():
        1 / 0
    assert os.sched_getaffinity(0) == cores
    with claimed_core() as core:
        assert core == min(cores)


def test_ordered_texts_gather_rows_across_chunks_in_the_given_order():
    column = pa.chunked_array([["a", "b"], [], ["c"], ["d", "e", "f"]], pa.large_string())
    texts = pipeline.OrderedTexts(column, np.array([5, 0, 3, 2, 4, 1]))
    assert len(texts) == 6
    assert texts[0:6].to_pylist() == ["f", "a", "d", "c", "e", "b"]
    assert texts[2:4].to_pylist() == ["d", "c"]
    assert texts[3:3].to_pylist() == [] and texts[3:3].type == pa.large_string()


def test_the_abc_table_written_in_parts_keeps_each_tune_with_its_row(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "TUNES_PER_WRITE", 2)
    tunes = pd.DataFrame({"source": [f"s{i}" for i in range(5)], "tune_md5": [f"t{i}" for i in range(5)],
                          "md5": [f"f{i}" for i in range(5)], "split": ["train"] * 3 + ["val", "test"],
                          "group": [f"t{i}" for i in range(5)],
                          **{name: list(range(5)) for name in ("notes", "bars", "voices", "chunks", "tokens", "unk")}})
    column = pa.chunked_array([["abc t3", "abc t0"], ["abc t4", "abc t1", "abc t2"]], pa.large_string())
    pipeline.write_tables(tmp_path, pd.DataFrame({"source": ["s0"]}), tunes,
                          pipeline.OrderedTexts(column, np.array([1, 3, 4, 0, 2])))
    table = pd.read_parquet(tmp_path / "abc")
    assert list(table.columns[:5]) == ["source", "md5", "file_md5", "abc", "split"]
    assert list(table.abc) == [f"abc {md5}" for md5 in table.md5] and list(table.md5) == list(tunes.tune_md5)

