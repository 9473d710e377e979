"""Inputs that must give a clear outcome, never a traceback: bad arguments refused before any work (exit 2),
inputs with too few usable tunes (exit 1, with the manifest), changed input files (a different run), and a full
disk (exit 1; a rerun with space finishes). The command runs as a user runs it, in a subprocess; those that
convert join the tests' local Ray."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager

import pandas as pd
import pytest
import ray

from conftest import REPO
from preprocessing.pipeline import prepare
from preprocessing.shards import verify_shards

pytestmark = pytest.mark.slow


def run_cli(*args):
    """(exit code, stdout, stderr) of preprocessing/run.py, which must print no traceback."""
    done = subprocess.run([sys.executable, str(REPO / "preprocessing" / "run.py"), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def address(ray_local):
    return ray.get_runtime_context().gcs_address


@pytest.fixture
def tunes(midi_dir, tmp_path):
    """A folder of five real MIDI files, each a distinct tune."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted((midi_dir / "pop909").glob("*.mid"))[:5]:
        shutil.copy(path, folder / path.name)
    return folder


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "no_midi").mkdir()
    (tmp_path / "no_midi" / "readme.txt").write_text("no music here")
    a_file, out, missing = tmp_path / "a_file", tmp_path / "out", f"file://{tmp_path}/nowhere.mid"
    a_file.write_text("")
    for given, says in [([tmp_path / "empty", out, "--split", "1,0,0"], "--split"),
                        ([tmp_path / "empty", a_file], f"--out {a_file} is a file"),
                        ([tmp_path / "empty", out], f"--input {tmp_path / 'empty'}: no MIDI file"),
                        ([tmp_path / "no_midi", out], f"--input {tmp_path / 'no_midi'}: no MIDI file"),
                        ([missing, out], f"--input {missing}: no such file")]:
        code, _, err = run_cli("--input", given[0], "--out", *given[1:], "--num-cpus", "1")
        assert (code, err.count("error: ")) == (2, 1) and says in err, err
        assert not out.exists()


def test_too_few_usable_tunes_is_a_message_and_a_manifest_of_every_input(tmp_path, midi_dir, address):
    """A folder of only bad files, one MIDI file, one file that is no MIDI: each input gets its manifest row."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.mid").write_bytes(b"")
    (bad / "text.mid").write_text("not a MIDI file\n")
    one = sorted((midi_dir / "pop909").glob("*.mid"))[0]
    for name, given, reasons in [("bad", bad, {"empty_file", "not_midi"}), ("one", one, {""}),
                                 ("text", bad / "text.mid", {"not_midi"})]:
        out = tmp_path / f"out-{name}"
        code, _, err = run_cli("--input", given, "--out", out, "--address", address)
        assert code == 1 and "too few to give train, val and test" in err and str(out / "manifest.parquet") in err, err
        manifest = pd.read_parquet(out / "manifest.parquet")
        assert set(manifest.reason) == reasons and len(manifest) == len(reasons)
        assert not (out / "summary.json").exists() and not (out / "meta.json").exists()


def test_changed_inputs_are_a_different_run(tunes, tmp_path, address):
    """By size and modification time; with --verify by the bytes, so a touched file is the same and a file
    rewritten under its old size and time is not. --overwrite then prepares the new contents."""
    out = tmp_path / "data"
    summary = prepare([str(tunes)], out, quiet=True)
    touched, rewritten, replaced = sorted(tunes.iterdir())[:3]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    code, _, err = run_cli("--input", tunes, "--out", out, "--address", address)
    assert code == 2 and f"input contents ({touched} changed" in err and "--verify" in err and "--overwrite" in err
    code, printed, _ = run_cli("--input", tunes, "--out", out, "--address", address, "--verify")
    assert code == 0 and "nothing to do" in printed

    before = rewritten.stat()
    data = bytearray(rewritten.read_bytes())
    data[len(data) // 2] ^= 1
    rewritten.write_bytes(data)
    os.utime(rewritten, ns=(before.st_atime_ns, before.st_mtime_ns))
    code, _, err = run_cli("--input", tunes, "--out", out, "--address", address, "--verify")
    assert code == 2 and f"input contents ({rewritten} changed since, by their bytes)" in err and str(touched) not in err

    replaced.write_bytes(touched.read_bytes())
    assert prepare([str(tunes)], out, quiet=True, overwrite=True)["duplicate"] == summary["duplicate"] + 1
    manifest = pd.read_parquet(out / "manifest.parquet").set_index("source")
    assert manifest.md5[str(replaced)] == hashlib.md5(replaced.read_bytes()).hexdigest()
    assert manifest.duplicate_of[str(replaced)] == str(touched)


@contextmanager
def small_disk(size):
    """A tmpfs of `size` (mount's syntax), unmounted at the end; skips where mounting is not permitted."""
    folder = tempfile.mkdtemp(prefix="small-disk-")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], capture_output=True)
    if mounted.returncode:
        os.rmdir(folder)
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", folder], check=True)
        os.rmdir(folder)


def test_a_full_disk_is_a_message_and_a_rerun_with_space_finishes(tunes, midi_dir, address):
    """The disk fills after the conversion: nothing that means "finished" is left cut short, and once there is
    space the same command resumes and finishes, even past an empty summary.json (as a writer that is not atomic
    leaves it)."""
    for path in sorted((midi_dir / "pop909").glob("*.mid"))[5:16]:
        shutil.copy(path, tunes / path.name)
    with small_disk("300k") as disk:
        out = f"{disk}/data"
        command = ["--input", tunes, "--out", out, "--address", address]
        code, _, err = run_cli(*command)
        assert code == 1 and f"the disk that holds --out {out} is full" in err, err
        files = {os.path.relpath(os.path.join(d, name), out) for d, _, names in os.walk(out) for name in names}
        assert "work/converted.done" in files and not files & {"summary.json", "meta.json"}, files
        assert not [name for name in files if os.path.basename(name).startswith(".")], "a temporary file is left"
        with open(f"{out}/summary.json", "w"):
            pass
        subprocess.run(["mount", "-o", "remount,size=64m", disk], check=True)
        code, printed, err = run_cli(*command)
        assert code == 0 and "resuming" in printed and "conversion already done" in printed, err
        summary = json.loads(open(f"{out}/summary.json").read())
        assert summary["files_in"] == 16 and verify_shards(out)["splits"]["train"]["tokens"] > 0
