"""Power-law fits of the final validation loss per architecture, against three measures of scale."""

import math

import numpy as np

from analysis.fit import TooFewPointsError, fit_power_law, leave_largest_out

# column of `trials` -> what it measures, for tables and axis labels
SCALES = {
    "params": "total parameters",
    "params_nonembed": "non-embedding parameters",
    "flops": "training compute (FLOPs)",
}


def fit_trials(trials, include_truncated=False, seed=0, n_boot=1000):
    """{arch: {scale: entry}}; an entry holds the fit (or a message why there is none) and the
    leave-the-largest-out check (or a message). Trials cut by their time budget are left out
    unless include_truncated."""
    used = usable_trials(trials, include_truncated)
    fits = {}
    for arch in sorted(trials["arch"].dropna().unique()):
        rows = used[used["arch"] == arch]
        fits[arch] = {scale: fit_entry(rows[scale].to_numpy(float), rows["val_loss"].to_numpy(float), seed, n_boot)
                      for scale in SCALES}
    return fits


def usable_trials(trials, include_truncated=False):
    statuses = ("ok", "truncated") if include_truncated else ("ok",)
    return trials[trials["status"].isin(statuses)]


def fit_entry(n, loss, seed, n_boot):
    entry = {"fit": None, "message": None, "extrapolation": None, "extrapolation_message": None}
    try:
        entry["fit"] = fit_power_law(n, loss, seed=seed, n_boot=n_boot)
    except TooFewPointsError as error:
        entry["message"] = str(error)
        return entry
    try:
        entry["extrapolation"] = leave_largest_out(n, loss)
    except TooFewPointsError as error:
        entry["extrapolation_message"] = f"leave-the-largest-out needs one point more: {error}"
    if len(entry["fit"].n) == 3:
        entry["message"] = "3 points for 3 parameters: the curve passes through them, so no interval"
    return entry


def fits_to_json(fits):
    """Plain dicts for fits.json."""
    return {arch: {scale: {**entry, "fit": entry["fit"].to_dict() if entry["fit"] else None, "scale": SCALES[scale]}
                   for scale, entry in by_scale.items()}
            for arch, by_scale in fits.items()}


def intervals_overlap(first, second):
    """True when two (low, high) intervals share a point, or when either is unknown (NaN)."""
    if any(math.isnan(v) for v in (*first, *second)):
        return True
    return first[0] <= second[1] and second[0] <= first[1]


def exponent_difference(first, second, level=0.95):
    """(median, low, high) of alpha_first - alpha_second over the two independent bootstraps, or None."""
    if first.samples is None or second.samples is None or not len(first.samples) or not len(second.samples):
        return None
    count = min(len(first.samples), len(second.samples))
    difference = first.samples[:count, 1] - second.samples[:count, 1]
    tail = 100 * (1 - level) / 2
    return tuple(float(v) for v in np.percentile(difference, [50, tail, 100 - tail]))
