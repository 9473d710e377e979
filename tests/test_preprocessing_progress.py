"""Preprocessing's progress into a log file: files and tunes done, in a few lines, not a line per batch."""

import re

import pytest

from preprocessing.pipeline import prepare


@pytest.mark.slow
def test_progress_into_a_log_file_is_a_few_lines(midi_dir, ray_local, tmp_path, capsys):
    files = sorted(str(p) for p in (midi_dir / "pop909").glob("*.mid"))[:8]
    prepare(files, tmp_path / "quiet", split="0.6,0.2,0.2", quiet=True)
    assert capsys.readouterr() == ("", "")
    summary = prepare(files, tmp_path / "out", split="0.6,0.2,0.2", batch_size=1)  # a batch per file
    lines = [line for line in re.split(r"[\r\n]+", capsys.readouterr().err) if line.strip()]
    tunes = summary["ok"]
    for stage, done in [("converting", f"{len(files)}/{len(files)} ["), ("tokenizing", f"{tunes}/{tunes} [")]:
        shown = [line for line in lines if line.startswith(stage)]
        assert 1 <= len(shown) <= 3 and done in shown[-1], lines
    assert re.search(r"files?/s", "\n".join(lines)) and re.search(r"tunes?/s", "\n".join(lines)), lines
