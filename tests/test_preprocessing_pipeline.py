"""End to end: the pipeline on every real MIDI file plus hostile ones, on a real local Ray."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import music21
import numpy as np
import pandas as pd
import pretty_midi
import pytest

from preprocessing.abc_tokens import TOKENIZER_VERSION, Vocabulary, tokenize_abc
from preprocessing.abc_tools import abc_to_midi
from preprocessing.chunking import chunk_tune
from preprocessing.pipeline import DifferentRunError, prepare
from preprocessing.shards import SPLITS, load_meta, read_split, verify_shards
from preprocessing.tune_split import SPLIT_VERSION, split_of
from preprocessing.versions import versions as installed_versions

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
WEIRD_NAME = "a'b \"c\" $(x);.mid"
HOSTILE_REASONS = {"zero.mid": "empty_file", "random.mid": "not_midi", "header_only.mid": "no_notes",
                   "text.mid": "not_midi", "drums.mid": "drums_only", "truncated.mid": "parse_error",
                   "missing.mid": "unreadable"}  # named by where dangling.mid points


def make_hostile(folder, midi_dir):
    """Bad files, plus real files under awkward names (those convert: duplicates of the originals)."""
    folder.mkdir()
    real = sorted((midi_dir / "pop909").iterdir())[0].read_bytes()
    (folder / "zero.mid").write_bytes(b"")
    (folder / "random.mid").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "truncated.mid").write_bytes(real[: len(real) // 3])
    (folder / "header_only.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0")
    (folder / "text.mid").write_text("this is not a MIDI file\n")
    (folder / "dangling.mid").symlink_to(folder / "missing.mid")
    drums = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    kit.notes = [pretty_midi.Note(100, 36 + i % 8, i * 0.25, i * 0.25 + 0.2) for i in range(200)]
    drums.instruments.append(kit)
    drums.write(str(folder / "drums.mid"))
    (folder / WEIRD_NAME).write_bytes(real)
    (folder / "with space.mid").write_bytes(real)
    second = sorted((midi_dir / "pop909").iterdir())[1].read_bytes()
    (folder / "UPPER.MIDI").write_bytes(second)
    # Not in F sharp major: midi2abc writes that key's F sharps as E, which is E sharp (F) in ABC
    (folder / "transposed.mid").write_bytes(version_of(second, shift=2))
    (folder / "edited.mid").write_bytes(version_of(second, shift=2, edited=True))
    return folder


def version_of(midi_bytes, shift, edited=False):
    """The MIDI file a few semitones higher (its drums as they are); edited, with the notes of one rare pitch
    (3 to 10 of them) a semitone higher still."""
    midi = mido.MidiFile(file=io.BytesIO(midi_bytes))
    notes = [message for track in midi.tracks for message in track
             if message.type in ("note_on", "note_off") and message.channel != 9]
    counts = pd.Series([n.note for n in notes if n.type == "note_on" and n.velocity]).value_counts()
    rare = counts[counts.between(3, 10)].index.min() if edited else None
    for note in notes:
        note.note += shift + (note.note == rare)
    data = io.BytesIO()
    midi.save(file=data)
    return data.getvalue()


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory, midi_dir):
    return make_hostile(tmp_path_factory.mktemp("hostile") / "in", midi_dir)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, midi_dir, hostile_dir, ray_local):
    out = tmp_path_factory.mktemp("prepared") / "data"
    # 80/10/10: with the default 98/1/1 a small folder could leave the validation or test split empty
    summary = prepare([str(midi_dir), str(hostile_dir)], out, split="0.8,0.1,0.1", quiet=True)
    return out, summary


def test_every_input_has_one_manifest_row(prepared, midi_dir, hostile_dir):
    out, summary = prepared
    manifest = pd.read_parquet(out / "manifest.parquet")
    inputs = [p for d in (midi_dir, hostile_dir) for p in d.rglob("*") if (p.is_file() or p.is_symlink())
              and p.suffix.lower() in (".mid", ".midi")]
    on_disk = sum(name.lower().endswith((".mid", ".midi")) for _, _, names in os.walk(midi_dir) for name in names)
    assert len(inputs) == on_disk + len(list(hostile_dir.iterdir()))
    assert sorted(manifest.source) == sorted(str(p.resolve()) for p in inputs)
    assert set(manifest.status) == {"ok", "duplicate", "rejected"}
    assert summary["files_in"] == len(manifest) == summary["ok"] + summary["duplicate"] + summary["rejected"]
    abc = pd.read_parquet(out / "abc")
    assert sorted(abc.source) == sorted(manifest.source[manifest.status == "ok"])
    kept = set(manifest.source[manifest.status == "ok"])
    assert set(manifest.duplicate_of[manifest.status == "duplicate"]) <= kept


def test_bad_files_are_rejected_with_their_reason(prepared, midi_dir, hostile_dir):
    out, _ = prepared
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("source")
    for name, reason in HOSTILE_REASONS.items():
        row = manifest.loc[str(hostile_dir / name)]
        assert (row.status, row.reason) == ("rejected", reason), name
    assert manifest.loc[str(midi_dir / "miditok/one_track/empty.mid"), "reason"] == "no_notes"
    assert manifest.reason[manifest.status == "rejected"].ne("").all()


def test_copies_under_awkward_names_are_duplicates_of_one_kept_tune(prepared, hostile_dir):
    out, _ = prepared
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("source")
    for names, copies in (([WEIRD_NAME, "with space.mid"], 3), (["UPPER.MIDI"], 2)):
        rows = manifest.loc[[str(hostile_dir / name) for name in names]]
        group = manifest[manifest.tune_md5 == rows.tune_md5.iloc[0]]
        assert len(group) == copies and (group.status == "ok").sum() == 1
        assert set(group.duplicate_of[group.status == "duplicate"]) == {min(group.index)}


def test_versions_of_a_song_share_a_group_and_its_split(prepared, hostile_dir):
    out, summary = prepared
    manifest = pd.read_parquet(out / "manifest.parquet")
    kept = manifest[manifest.status == "ok"]
    versions = manifest.set_index("source").loc[[str(hostile_dir / name) for name in
                                                 ("UPPER.MIDI", "transposed.mid", "edited.mid")]]
    assert versions.group.nunique() == 1 and versions.tune_md5.nunique() == 3
    group = kept[kept.group == versions.group.iloc[0]]  # the original in midi_dir, transposed, edited
    assert len(group) == 3 and group.split.nunique() == 1 and group.group.iloc[0] == min(group.tune_md5)
    assert (manifest.group[manifest.status == "rejected"] == "").all()
    abc = pd.read_parquet(out / "abc")
    assert abc.set_index("md5").group.to_dict() == kept.set_index("tune_md5").group.to_dict()
    sizes = kept.group.value_counts()
    twins = summary["near_twins"]
    assert (twins["groups"], twins["tunes_in_groups"]) == ((sizes > 1).sum(), sizes[sizes > 1].sum())
    assert twins["test_tunes"]["after"] == (kept.split == "test").sum()
    assert twins["test_with_twin_in_train"]["after"] == 0
    # Before, each tune was split by its own hash. The groups here are all of tunes near-twins to each other.
    before = kept.tune_md5.map(lambda md5: split_of(md5, (0.8, 0.1, 0.1)))
    with_twin = [(before[kept.group == g] == "train").any() for g in kept.group[before == "test"]]
    assert twins["test_tunes"]["before"] == (before == "test").sum()
    assert twins["test_with_twin_in_train"]["before"] == sum(with_twin)


def test_every_tune_round_trips_through_tokens_and_shards(prepared):
    out, _ = prepared
    meta = load_meta(out)
    vocab = Vocabulary.from_meta(meta)
    abc = pd.read_parquet(out / "abc")
    for split in SPLITS:
        ids = np.asarray(read_split(out, split))
        ends = np.flatnonzero(ids == vocab.eot_id)
        assert len(ends) == meta["splits"][split]["chunks"] and (len(ids) == 0 or ends[-1] == len(ids) - 1)
        pieces = [p for tune in abc.abc[abc.split == split] for p in chunk_tune(tune, meta["settings"]["chunk_tokens"])]
        assert len(pieces) == len(ends)
        for piece, start, end in zip(pieces, np.r_[0, ends[:-1] + 1], ends):
            assert "".join(tokenize_abc(piece)) == piece
            assert vocab.encode(piece) == ids[start:end].tolist()
            if vocab.unk_id not in ids[start:end]:
                assert vocab.decode(ids[start:end]) == piece
            assert piece.startswith("X:1\n") and "\nK:" in piece


def test_splits_are_disjoint_and_match_meta(prepared):
    out, summary = prepared
    verify_shards(out)
    meta = load_meta(out)
    abc = pd.read_parquet(out / "abc")
    assert abc.md5.is_unique
    for split in SPLITS:
        assert meta["splits"][split]["tunes"] == (abc.split == split).sum() > 0
        assert meta["splits"][split]["tokens"] == len(read_split(out, split)) == abc.tokens[abc.split == split].sum()
    assert sum(meta["splits"][s]["tokens"] for s in SPLITS) == summary["tokens"]
    assert meta["vocab_size"] == len(meta["vocab"]) < 65536 and meta["dtype"] == "uint16"


def test_kept_abc_plays_in_abc2midi_and_music21(prepared, tmp_path):
    out, _ = prepared
    abc = pd.read_parquet(out / "abc").sort_values("md5")
    for i, tune in enumerate(abc.abc.iloc[::25]):
        ok, message = abc_to_midi(tune, tmp_path / f"{i}.mid")
        assert ok, message
    for tune in abc.sort_values("tokens").abc.iloc[:3]:
        score = music21.converter.parse(tune, format="abc")
        assert len(score.flatten().notes) > 0


def test_long_tunes_are_cut_into_chunks_that_play(prepared, tmp_path):
    out, _ = prepared
    meta = load_meta(out)
    abc = pd.read_parquet(out / "abc")
    long_tune = abc.sort_values("tokens").abc.iloc[-1]
    pieces = chunk_tune(long_tune, meta["settings"]["chunk_tokens"])
    assert len(pieces) > 1
    for piece in (pieces[0], pieces[len(pieces) // 2], pieces[-1]):
        ok, message = abc_to_midi(piece, tmp_path / "chunk.mid")
        assert ok, message


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory, midi_dir, hostile_dir, ray_local):
    inputs = [str(midi_dir / "miditok"), str(hostile_dir)]
    outs = [tmp_path_factory.mktemp("small") / f"run{i}" for i in range(2)]
    summaries = [prepare(inputs, out, quiet=True, chunk_tokens=512) for out in outs]
    return inputs, outs, summaries


def test_two_runs_give_identical_shards(small_runs):
    _, (first, second), _ = small_runs
    for name in [f"tokens/{s}.bin" for s in SPLITS] + ["meta.json"]:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert pd.read_parquet(first / "manifest.parquet").equals(pd.read_parquet(second / "manifest.parquet"))


def test_rerun_into_existing_out_resumes_or_refuses(small_runs, tmp_path):
    inputs, (first, second), (summary, _) = small_runs
    assert prepare(inputs, first, quiet=True, chunk_tokens=512) == summary  # complete: nothing redone
    with pytest.raises(FileExistsError, match="settings.*--overwrite"):
        prepare(inputs, first, quiet=True, chunk_tokens=1024)
    with pytest.raises(FileExistsError, match="inputs"):
        prepare(inputs[:1], first, quiet=True, chunk_tokens=512)
    run_file = first / "run.json"
    current = run_file.read_text()
    run_file.write_text(json.dumps({**json.loads(current), "tokenizer_version": TOKENIZER_VERSION - 1}))
    with pytest.raises(DifferentRunError, match="tokenizer_version") as refused:
        prepare(inputs, first, quiet=True, chunk_tokens=512)
    assert refused.value.differing == ["tokenizer_version"]  # what the demo checks to prepare its copy again
    run_file.write_text(current)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="no preprocessing run"):
        prepare(inputs, stranger, quiet=True)
    shards = (second / "tokens/train.bin").read_bytes()
    (second / "summary.json").unlink()  # as if interrupted before the end
    (second / "tokens/train.bin").write_bytes(b"partial")
    resumed = prepare(inputs, second, quiet=True, chunk_tokens=512)
    assert (second / "tokens/train.bin").read_bytes() == shards
    assert resumed["splits"] == summary["splits"]


def test_versions_are_recorded_and_data_of_another_converter_is_refused(small_runs):
    inputs, (first, _), (summary, _) = small_runs
    here = installed_versions()
    assert set(here) == {"music-scaling", "midi2abc", "symusic", "torch", "ray"} and "unknown" not in here.values()
    assert here["midi2abc"] == "3.64", "pyproject.toml pins symusic to the versions that ship the tested midi2abc"
    run_file = first / "run.json"
    current = run_file.read_text()
    assert json.loads(current)["versions"] == load_meta(first)["versions"] == here
    other_torch = {**here, "torch": "0.1", "ray": "0.1", "music-scaling": "0.0.1"}
    run_file.write_text(json.dumps({**json.loads(current), "versions": other_torch}))
    assert prepare(inputs, first, quiet=True, chunk_tokens=512) == summary  # the same conversion: reused
    run_file.write_text(json.dumps({**json.loads(current), "versions": {**here, "midi2abc": "3.63"}}))
    with pytest.raises(DifferentRunError, match=r"midi2abc version \(3.63 there, 3.64 here\)"):
        prepare(inputs, first, quiet=True, chunk_tokens=512)
    run_file.write_text(current)


def test_data_split_by_an_older_rule_is_refused(small_runs):
    inputs, (first, _), (summary, _) = small_runs
    run_file = first / "run.json"
    current = run_file.read_text()
    assert json.loads(current)["split_version"] == load_meta(first)["split_version"] == SPLIT_VERSION
    older = {key: value for key, value in json.loads(current).items() if key != "split_version"}
    run_file.write_text(json.dumps(older))
    with pytest.raises(DifferentRunError, match="split_version"):
        prepare(inputs, first, quiet=True, chunk_tokens=512)
    run_file.write_text(current)


def test_cli_refuses_clearly(tmp_path, hostile_dir):
    script = [sys.executable, str(REPO / "preprocessing" / "run.py")]
    missing = subprocess.run(script + ["--input", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                                       "--num-cpus", "1"], capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "nowhere: no such file" in missing.stderr
    bad_split = subprocess.run(script + ["--input", str(hostile_dir), "--out", str(tmp_path / "o"),
                                         "--split", "0.5,0.6,0.1", "--num-cpus", "1"],
                               capture_output=True, text=True, timeout=120)
    assert bad_split.returncode != 0 and "split" in bad_split.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    taken = subprocess.run(script + ["--input", str(hostile_dir), "--out", str(tmp_path / "taken"),
                                     "--num-cpus", "1"], capture_output=True, text=True, timeout=120)
    assert taken.returncode != 0 and "--out" in taken.stderr and json.dumps("x") not in taken.stdout
