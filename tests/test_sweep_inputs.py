"""Hostile inputs to the sweep command: each is refused before Ray starts, with exit code 2, a message that
names the file or field, no traceback and nothing written."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import ray

from conftest import REPO
from sweep.config import load_config
from sweep.experiment import write_sweep_file
from sweep.run import main


def run_main(argv, capsys):
    """(exit code, stderr) of sweep/run.py's main in this process, which must stop before Ray starts."""
    was_running = ray.is_initialized()
    with pytest.raises(SystemExit) as stopped:
        main([str(a) for a in argv])
    assert ray.is_initialized() == was_running, "Ray was started"
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return stopped.value.code, err


@pytest.fixture
def data(sweep_data, tmp_path):
    """A copy of the prepared data to damage."""
    return shutil.copytree(sweep_data, tmp_path / "data")


def rewrite_meta(data, change):
    meta = json.loads((data / "meta.json").read_text())
    change(meta)
    (data / "meta.json").write_text(json.dumps(meta))


def replace_shard(data, split, ids):
    """A shard of these ids, with meta.json made to agree with it (size and sha256)."""
    raw = np.asarray(ids, dtype=np.uint16).tobytes()
    (data / "tokens" / f"{split}.bin").write_bytes(raw)
    rewrite_meta(data, lambda meta: meta["splits"][split].update(tokens=len(ids), sha256=hashlib.sha256(raw).hexdigest()))


def flip_a_byte(data):
    path = data / "tokens" / "train.bin"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


def cut_4_bytes(data):
    path = data / "tokens" / "train.bin"
    path.write_bytes(path.read_bytes()[:-4])


def odd_size(data):
    path = data / "tokens" / "train.bin"
    path.write_bytes(path.read_bytes()[:-1])


DAMAGE = {
    "flipped byte": (flip_a_byte, "train.bin does not match the sha256"),
    "cut by 4 bytes": (cut_4_bytes, "train.bin holds"),
    "odd size": (odd_size, "cut short or damaged"),
    "id beyond the vocabulary": (lambda d: replace_shard(d, "train", [5, 9, 60000, 3] * 100), "token id 60000"),
    "val.bin missing": (lambda d: (d / "tokens" / "val.bin").unlink(), "val.bin is missing"),
    "tokens/ missing": (lambda d: shutil.rmtree(d / "tokens"), "train.bin is missing"),
    "empty val.bin": (lambda d: replace_shard(d, "val", []), "val.bin is empty"),
    "meta.json without splits": (lambda d: rewrite_meta(d, lambda m: m.pop("splits")), "describes no train, val"),
    "vocab_size beyond uint16": (lambda d: rewrite_meta(d, lambda m: m.update(vocab_size=70000)), "does not fit uint16"),
    "meta.json cut short": (lambda d: (d / "meta.json").write_text('{"vocab_size": 3'), "meta.json is not valid JSON"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_data_is_refused_naming_the_file(damage, data, tmp_path, capsys):
    make, message = DAMAGE[damage]
    make(data)
    code, err = run_main(["--data", data, "--preset", "tiny", "--storage", tmp_path / "results"], capsys)
    assert code == 2 and "--data" in err and message in err, err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("override, field", [
    ("train.max_train_tokens=10", "train.max_train_tokens"),
    ("train.block_size=1000000", "train.block_size"),  # longer than the whole train split
])
def test_windows_that_do_not_fit_the_data_are_refused(override, field, sweep_data, tmp_path, capsys):
    code, err = run_main(["--data", sweep_data, "--preset", "tiny", "--set", override, "--storage", tmp_path], capsys)
    assert code == 2 and f"{field}: " in err and "fill" in err and "no window" in err, err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".hidden"])
def test_a_name_is_one_folder_name(name, sweep_data, tmp_path, capsys):
    storage = tmp_path / "deep" / "results"
    code, err = run_main(["--data", sweep_data, "--preset", "tiny", "--storage", storage, "--name", name], capsys)
    assert code == 2 and "--name: a sweep's name is one folder name" in err, err
    assert not list(tmp_path.iterdir())


def test_a_name_taken_by_another_sweep_is_refused(sweep_data, tmp_path, capsys):
    write_sweep_file(tmp_path / "taken", {"name": "taken", "config": {}})
    before = (tmp_path / "taken" / "sweep.json").read_text()
    code, err = run_main(["--data", sweep_data, "--preset", "tiny", "--storage", tmp_path, "--name", "taken"], capsys)
    assert code == 2 and "holds a sweep already: continue it with --resume" in err, err
    assert (tmp_path / "taken" / "sweep.json").read_text() == before


def test_two_drivers_never_run_one_sweep(sweep_data, tmp_path, capsys):
    """Another process holds the sweep's folder (as a running driver does): this one is refused, naming it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom sweep.experiment import claim\n"
         f"claim({str(tmp_path / 'busy')!r}, resume=False)\nprint('held', flush=True)\ntime.sleep(120)"],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for argv in (["--data", sweep_data, "--preset", "tiny", "--name", "busy"], ["--resume", "busy"]):
            code, err = run_main([*argv, "--storage", tmp_path], capsys)
            assert code == 2 and f"in use by another sweep driver (pid {holder.pid} on" in err, err
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "busy" / "sweep.json").exists()


def test_resume_checks_the_folder_before_tune_reads_it(sweep_data, tmp_path, capsys):
    code, err = run_main(["--resume", "never-ran", "--storage", tmp_path], capsys)
    assert code == 2 and "never-ran/sweep.json not found" in err, err
    write_sweep_file(tmp_path / "renamed", {"name": "original", "config": load_config("tiny").to_dict()})
    code, err = run_main(["--resume", "renamed", "--storage", tmp_path], capsys)
    assert code == 2 and "names the sweep 'original', not 'renamed'" in err, err
