"""Sample quality on a folder holding one valid and one invalid ABC file (real abc2midi and music21)."""

import matplotlib.image
import numpy as np

import analysis.samples
from analysis.report import samples_section
from analysis.samples import repeated_bar_rate, sample_quality, shown_samples

VALID = "X:1\nM:4/4\nL:1/8\nK:C\nCDEF GABc|c2B2 A2G2|CDEF GABc|c8|]\n"
INVALID = "this is no tune: no X: field, no key\n"


def test_shares_of_valid_and_converted_samples(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "t0.9_00.abc").write_text(VALID)
    (samples / "t0.9_01.abc").write_text(INVALID)
    table, summary = sample_quality(samples, tmp_path / "out")
    assert summary["samples"] == 2
    assert summary["share_valid_abc2midi"] == 0.5
    assert summary["share_valid_music21"] == 0.5
    assert summary["share_converted_to_midi"] == 0.5
    assert summary["pitch_class_distance"] is None  # no data folder given
    valid, invalid = table.iloc[0], table.iloc[1]
    assert valid["valid_abc2midi"] and valid["valid_music21"] and valid["converted_to_midi"]
    assert not (invalid["valid_abc2midi"] or invalid["valid_music21"] or invalid["converted_to_midi"])
    assert "X:" in invalid["abc2midi_message"]  # abc2midi's own reason is kept
    roll = matplotlib.image.imread(tmp_path / "out" / valid["piano_roll"])
    assert roll.ndim == 3 and roll.shape[0] > 100 and roll.shape[1] > 100 and roll.std() > 0
    assert not isinstance(invalid["piano_roll"], str)


def test_repeated_bar_rate_counts_bars_seen_before():
    assert repeated_bar_rate(VALID) == 0.25  # bar 3 repeats bar 1, of 4 bars
    assert repeated_bar_rate("X:1\nL:1/8\nK:C\nCDEF|GABc|\n") == 0.0
    assert np.isnan(repeated_bar_rate("X:1\nK:C\n"))


def test_validity_per_temperature_and_prompt(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for name, text in [("t0.7_free_000", VALID), ("t0.7_free_001", INVALID), ("t0.7_opening_000", VALID),
                       ("t1.2_free_000", INVALID), ("mine", VALID), ("t0.7_free_constrained_000", VALID)]:
        (samples / f"{name}.abc").write_text(text)
    table, summary = sample_quality(samples, tmp_path / "out")
    settings = {(row["temperature"], row["prompt"], row["decoding"]): (row["samples"], row["share_valid_abc2midi"])
                for row in summary["by_setting"] if isinstance(row["prompt"], str)}
    assert settings == {(0.7, "free", "unconstrained"): (2, 0.5), (0.7, "opening", "unconstrained"): (1, 1.0),
                        (1.2, "free", "unconstrained"): (1, 0.0), (0.7, "free", "constrained"): (1, 1.0)}
    assert len(summary["by_setting"]) == 5  # and the sample its name places nowhere
    # the headline is the model's own samples; constrained decoding's stands beside it
    assert summary["samples"] == 5 and summary["share_valid_abc2midi"] == 3 / 5
    assert summary["constrained"] == {"samples": 1, "share_valid_abc2midi": 1.0, "share_valid_music21": 1.0}
    text = "\n".join(samples_section(table, summary))
    assert "5 samples of the model's own: valid ABC by abc2midi (rendered, no error) 3 of 5 (60%)" in text
    assert "By constrained decoding" in text and "| 0.7 | free | constrained | 1 of 1 (100%) |" in text


def test_every_sample_is_measured_and_the_first_of_each_setting_shown(tmp_path, monkeypatch):
    monkeypatch.setattr(analysis.samples, "SHOWN_PER_SETTING", 1)
    samples = tmp_path / "samples"
    samples.mkdir()
    for name, text in [("t0.7_free_000", VALID), ("t0.7_free_001", VALID), ("t0.7_free_002", INVALID),
                       ("t0.7_opening_000", VALID)]:
        (samples / f"{name}.abc").write_text(text)
    table, summary = sample_quality(samples, tmp_path / "out")
    assert summary["samples"] == 4 and summary["share_valid_abc2midi"] == 3 / 4
    assert shown_samples(table, samples) == [samples / "t0.7_free_000.abc", samples / "t0.7_opening_000.abc"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["t0.7_free_000_piano_roll.png",
                                                                       "t0.7_opening_000_piano_roll.png"]
    text = "\n".join(samples_section(table, summary))
    assert "2 of 4" in text and "| t0.7_free_001.abc |" not in text and "| t0.7_opening_000.abc |" in text
