"""The power-law fit: recovery of known parameters, interval coverage, too few points, extrapolation check."""

import numpy as np
import pytest

from analysis import TooFewPointsError, fit_power_law, leave_largest_out

TRUE = {"a": 40.0, "alpha": 0.3, "c": 1.5}
N = np.geomspace(1e4, 1e8, 10)


def noisy_losses(seed, noise=0.02):
    rng = np.random.default_rng(seed)
    clean = TRUE["a"] * N ** -TRUE["alpha"] + TRUE["c"]
    return clean * np.exp(rng.normal(0.0, noise, len(N)))


def test_fit_recovers_known_parameters_from_noisy_points():
    fit = fit_power_law(N, noisy_losses(seed=1, noise=0.005))
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=0.1)
    assert fit.c == pytest.approx(TRUE["c"], rel=0.05)
    assert fit.a == pytest.approx(TRUE["a"], rel=0.3)
    assert np.abs(fit.residuals).max() < 0.02
    for name in TRUE:
        low, high = fit.ci[name]
        assert low <= getattr(fit, name) <= high


def test_interval_covers_the_truth_in_most_repetitions():
    repetitions = 50
    covered = {name: 0 for name in TRUE}
    for seed in range(repetitions):
        fit = fit_power_law(N, noisy_losses(seed=100 + seed), seed=seed, n_boot=300)
        for name, truth in TRUE.items():
            low, high = fit.ci[name]
            covered[name] += low <= truth <= high
    assert all(count >= 0.8 * repetitions for count in covered.values()), covered


def test_fewer_than_three_usable_points_is_a_clear_error():
    # four points, but two are unusable (NaN loss, N = 0): no fit
    with pytest.raises(TooFewPointsError, match="at least 3 points.*got 2; no fit"):
        fit_power_law([1e4, 1e5, 1e6, 0.0], [3.0, 2.5, float("nan"), 2.0])


def test_three_points_fit_exactly_without_an_interval():
    fit = fit_power_law(N[:3], noisy_losses(seed=3)[:3])
    assert np.abs(fit.residuals).max() < 1e-3
    assert all(np.isnan(fit.ci[name]).all() for name in TRUE)
    assert fit.band(N) is None


def test_leave_largest_out_predicts_the_largest_model():
    losses = noisy_losses(seed=4, noise=0.005)
    check = leave_largest_out(N, losses)
    assert check["held_out_n"] == N[-1] and check["fit_points"] == len(N) - 1
    assert abs(check["rel_error"]) < 0.03
    with pytest.raises(TooFewPointsError):
        leave_largest_out(N[:3], losses[:3])
