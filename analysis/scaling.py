"""Power-law fits of the final validation loss per architecture, against three measures of scale; and of the
bits per note (the loss in a unit other tokenizations share) against parameters."""

from analysis.fit import TooFewPointsError, fit_power_law, leave_largest_out
from analysis.study import envelope_trials, full_data, lr_envelope

# column of `trials` -> what it measures, for tables and axis labels
SCALES = {
    "params": "total parameters",
    "params_nonembed": "non-embedding parameters",
    "flops": "training compute (FLOPs)",
}


def fit_trials(trials, include_truncated=False, seed=0, n_boot=1000, y="val_loss", scales=tuple(SCALES)):
    """{arch: {scale: entry}}: y against each scale; an entry holds the fit (or a message why there is none)
    and the leave-the-largest-out check (or a message). The points are the trials on the whole data at their
    size's best learning rate, every seed a point. Trials cut by their time budget are left out
    unless include_truncated."""
    used = fit_points(usable_trials(trials, include_truncated))
    fits = {}
    for arch in sorted(trials["arch"].dropna().unique()):
        rows = used[used["arch"] == arch]
        fits[arch] = {scale: fit_entry(rows[scale].to_numpy(float), rows[y].to_numpy(float), seed, n_boot)
                      for scale in scales}
    return fits


def usable_trials(trials, include_truncated=False):
    statuses = ("ok", "truncated") if include_truncated else ("ok",)
    return trials[trials["status"].isin(statuses)]


def fit_points(used):
    """The usable trials the L(N) fits take: on the largest data fraction, at the best learning rate."""
    return full_data(envelope_trials(used, lr_envelope(used))) if len(used) else used


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
