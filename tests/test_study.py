"""The study: the grid and its plan, the learning-rate envelope, the joint L(N, D) fit and its frontier, and a
GPT-vs-LSTM verdict that never contradicts the tables; then the whole path on a micro grid with real trials."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from analysis.joint_fit import fit_joint, optimal_size_for_tokens, optimal_split, optimal_tokens_for_size
from analysis.run import study_results
from analysis.scaling import fit_trials
from analysis.study import lr_envelope
from models import build_model
from models.mfu import peak_flops
from sweep.batches import EpochWindows, TuneHeaders
from sweep.config import grid_cells, load_config, trial_points
from sweep.plan import ASSUMED_MFU, epoch_tokens, make_plan
from test_sweep_inputs import run_main

TRUE = {"E": 1.2, "A": 60.0, "alpha": 0.35, "B": 400.0, "beta": 0.4}
N = np.geomspace(1e4, 1e8, 6)
D = np.geomspace(1e6, 1.6e7, 4)


def joint_losses(seed, noise=0.01):
    n, d = (a.ravel() for a in np.meshgrid(N, D))
    clean = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
    return n, d, clean * np.exp(np.random.default_rng(seed).normal(0, noise, len(n)))


def test_joint_fit_recovers_a_known_law_with_intervals_that_cover_it():
    fit = fit_joint(*joint_losses(seed=0, noise=0.002), n_boot=40)
    for name in ("E", "alpha", "beta"):
        assert getattr(fit, name) == pytest.approx(TRUE[name], rel=0.1), name
    covered = {name: 0 for name in TRUE}
    repetitions = 8
    for seed in range(repetitions):
        fit = fit_joint(*joint_losses(seed=10 + seed), seed=seed, n_boot=40)
        for name, truth in TRUE.items():
            covered[name] += fit.ci[name][0] <= truth <= fit.ci[name][1]
    assert all(count >= repetitions - 2 for count in covered.values()), covered


def test_the_frontier_splits_compute_consistently():
    params = tuple(TRUE.values())
    compute = 1e18
    n, d = optimal_split(params, compute)
    assert 6 * n * d == pytest.approx(compute)
    assert optimal_size_for_tokens(params, d) == pytest.approx(n)
    assert optimal_tokens_for_size(params, n) == pytest.approx(d)
    # N* minimises the law's loss along C = 6ND
    sizes = n * np.array([0.8, 1.0, 1.25])
    losses = [TRUE["E"] + TRUE["A"] / s ** TRUE["alpha"] + TRUE["B"] / (compute / 6 / s) ** TRUE["beta"] for s in sizes]
    assert np.argmin(losses) == 1


def grid_trials(rows):
    """A trials table as sweep.results makes it, from (arch, size, params, lr, fraction, seed, loss) rows."""
    frame = pd.DataFrame(rows, columns=["arch", "size", "params", "learning_rate", "data_fraction", "seed", "val_loss"])
    return frame.assign(status="ok", params_nonembed=frame["params"] * 0.8, flops=6 * frame["params"] * 1e6,
                        epoch_tokens=frame["data_fraction"] * 1e6, truncated_by_budget=False)


def test_the_envelope_takes_the_best_mean_over_seeds_and_flags_edges():
    trials = grid_trials([
        # size s: 1e-3 wins on the mean over seeds (one unlucky seed of 3e-3 is not enough)
        ("gpt", "s", 1e5, 1e-3, 1.0, 1, 3.0), ("gpt", "s", 1e5, 1e-3, 1.0, 2, 3.1),
        ("gpt", "s", 1e5, 3e-3, 1.0, 1, 2.9), ("gpt", "s", 1e5, 3e-3, 1.0, 2, 3.4),
        ("gpt", "s", 1e5, 1e-4, 1.0, 1, 3.5),
        # size m: the largest learning rate wins: an edge
        ("gpt", "m", 1e6, 1e-4, 1.0, 1, 3.0), ("gpt", "m", 1e6, 1e-3, 1.0, 1, 2.8), ("gpt", "m", 1e6, 3e-3, 1.0, 1, 2.5),
    ])
    envelope = lr_envelope(trials).set_index("size")
    assert envelope.loc["s", "learning_rate"] == 1e-3 and envelope.loc["s", "loss"] == pytest.approx(3.05)
    assert envelope.loc["s", "edge"] == "" and envelope.loc["s", "seeds"] == 2
    assert envelope.loc["s", "loss_std"] == pytest.approx(np.std([3.0, 3.1], ddof=1))
    assert envelope.loc["m", "learning_rate"] == 3e-3 and envelope.loc["m", "edge"] == "high"


def test_the_verdict_follows_the_losses_not_the_exponents():
    """The demo's case: GPT's α is larger (its curve falls faster toward a higher floor) while the LSTM has the
    lower loss at the largest sizes. The headline must name the LSTM, and never crown GPT for its exponent."""
    sizes = np.geomspace(2e4, 1e6, 5)
    gpt = 40 * sizes ** -0.32 + 1.8
    lstm = 6 * sizes ** -0.15 + 0.9
    assert gpt[-1] > lstm[-1] and gpt[-2] > lstm[-2] and gpt[0] > lstm[0]
    rng = np.random.default_rng(0)
    rows = [(arch, f"s{i}", n, 1e-3, 1.0, seed, loss * math.exp(rng.normal(0, 0.003)))
            for arch, losses in (("gpt", gpt), ("lstm", lstm)) for i, (n, loss) in enumerate(zip(sizes, losses))
            for seed in (1, 2)]
    trials = grid_trials(rows)
    fits = fit_trials(trials, n_boot=300)
    assert fits["gpt"]["params"]["fit"].alpha > fits["lstm"]["params"]["fit"].alpha
    result = study_results(trials, fits, corpus_tokens_=1e6)["verdict"]
    assert "lstm reaches the lower loss" in result["headline"], result["headline"]
    assert "faster" not in result["headline"]
    largest = result["by_params"]["points"][1]
    assert largest["reading"] == "lstm lower" and largest["difference"][1] > 0  # the whole interval above zero


def test_a_fit_that_contradicts_the_measured_losses_gives_no_headline():
    from analysis.verdict import headline

    by_params = {"points": [{}, {"x": 1e6, "difference": (-0.2, -0.3, -0.1), "reading": "gpt lower"}]}
    text = headline(by_params, measured=+0.15, first="gpt", second="lstm")
    assert text.startswith("No verdict from the fits") and "+0.150" in text


def test_grid_expansion_and_plan_figures():
    config = load_config("tiny", ["sizes=[cpu-tiny,cpu-small]", "grid.learning_rates=[1e-3,3e-3,1e-2]",
                                  "grid.data_fractions=[0.25,0.5,1.0]", "grid.seeds=[1,2,3]"])
    cells = grid_cells(config.grid)
    assert len(cells) == 3 * 3 + 3 * 2  # every cell with the first seed; the others on the whole data only
    assert {c["seed"] for c in cells if c["data_fraction"] < 1} == {1}
    points = trial_points(config)
    assert len(points) == 2 * 2 * len(cells) and len(set(points)) == len(points)
    meta = {"vocab_size": 300, "splits": {"train": {"tokens": 100_000}, "val": {"tokens": 5_000}}}
    plan = make_plan(config, meta)
    assert len(plan) == len(points)
    row = plan[(plan["arch"] == "gpt") & (plan["data_fraction"] == 0.25)].iloc[0]
    # the tiny preset caps the epoch at 12,000 tokens: a quarter of its 600 windows of 32 positions, 20 of them
    # predicted (the first 12 hold the tune's header)
    stream = TuneHeaders(np.zeros(100_000, dtype=np.uint16), ["<unk>", "<eot>"])
    windows = EpochWindows(stream, 32, 8, seed=1, data_fraction=0.25, max_tokens=12_000)
    assert row["tokens"] == epoch_tokens(config.train, 100_000, 0.25) == windows.tokens_per_epoch == 150 * 20
    per_token = build_model("gpt", row["size"], 300, block_size=32).flops_per_token() * 32 / 20
    expected = per_token * row["tokens"] + (config.train.val_points + 1) * 5_000 * per_token / 3
    assert row["flops"] == pytest.approx(expected)
    assert row["H100_hours"] == pytest.approx(expected / (peak_flops("H100") * ASSUMED_MFU["gpt"]) / 3600)


def test_plan_prints_before_any_work_and_a_budget_refuses(sweep_data, tmp_path, capsys):
    grid = ["--set", "grid.learning_rates=[1e-3,3e-3]", "--set", "grid.seeds=[1,2]"]
    code, _ = run_main(["--data", sweep_data, "--preset", "tiny", *grid, "--storage", tmp_path, "--plan"], capsys)
    assert code == 0 and not list(tmp_path.iterdir())
    code, err = run_main(["--data", sweep_data, "--preset", "tiny", *grid, "--storage", tmp_path,
                          "--max-gpu-hours", "1e-12"], capsys)
    assert code == 2 and "--max-gpu-hours: the plan needs" in err and not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_study_path_on_a_micro_grid(sweep_data, ray_local, tmp_path):
    """Real trials over learning rate, data size and seed at three sizes of each family, then the analysis."""
    from analysis import analyze
    from sweep_support import run_sweep_in_process

    overrides = ["sizes=[cpu-tiny,cpu-small,cpu-medium]", "grid.learning_rates=[1e-3,3e-3]",
                 "grid.data_fractions=[0.25,0.5,1.0]", "grid.seeds=[1337,1338]", "train.val_points=0",
                 "max_concurrent_trials=2"]
    results, path = run_sweep_in_process(sweep_data, tmp_path, "study", overrides)
    assert results.num_errors == 0 and len(results) == 2 * 3 * (2 * 3 + 2)
    report = analyze(path, n_boot=200)
    fits = json.loads((path / "analysis" / "fits.json").read_text())
    assert len(fits["lr_envelope"]) == 2 * 3 * 3
    assert {entry["arch"] for entry in fits["lr_envelope"]} == {"gpt", "lstm"}
    for arch in ("gpt", "lstm"):
        joint = fits["joint_fits"][arch]
        assert joint["fit"] is not None and joint["fit"]["n_points"] == 3 * 3 + 3, joint
    assert fits["verdict"]["headline"] and fits["best_lr_law"]["gpt"]["points"] == 3
    text = report.read_text()
    for section in ("## GPT against LSTM", "## Learning rate", "## Data and compute"):
        assert section in text
    for figure in ("lr_sweep", "isoflop", "frontier"):
        assert (path / "analysis" / f"{figure}.png").stat().st_size > 10_000
