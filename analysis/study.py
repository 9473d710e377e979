"""The grid's trials reduced to what the fits use.

The learning-rate envelope: per (arch, size, data fraction) the learning rate whose loss, averaged over seeds,
is lowest, flagged when it sits at an edge of the learning rates tried (the optimum may lie beyond). The fits
then take the trials at that learning rate, every seed a point of its own, so their spread enters the
bootstrap. The best learning rate of each architecture is fitted as a power law of size (DeepSeek LLM fits
it against compute; at one epoch per size, size orders the same runs).
"""

import numpy as np
import pandas as pd

KEYS = ["arch", "size", "data_fraction"]


def loss_by_lr(trials):
    """Mean, spread and count over seeds of the final loss per (arch, size, data fraction, learning rate)."""
    grouped = trials.groupby([*KEYS, "learning_rate"], sort=True)
    return grouped.agg(loss=("val_loss", "mean"), loss_std=("val_loss", "std"), seeds=("val_loss", "size"),
                       params=("params", "first"), params_nonembed=("params_nonembed", "first"),
                       flops=("flops", "mean"), tokens=("epoch_tokens", "first")).reset_index()


def lr_envelope(trials):
    """One row per (arch, size, data fraction), ordered by size: the best learning rate, its loss (mean over
    seeds), the seeds' standard deviation, the learning rates tried, and `edge`: 'low' or 'high' when the best
    is the smallest or largest of several tried, 'single' when only one was tried, else ''."""
    rows = []
    for _, cell in loss_by_lr(trials).groupby(KEYS, sort=False):
        best = cell.loc[cell["loss"].idxmin()]
        tried = sorted(cell["learning_rate"])
        edge = "single" if len(tried) < 2 else "low" if best["learning_rate"] == tried[0] else (
            "high" if best["learning_rate"] == tried[-1] else "")
        rows.append({**best.to_dict(), "learning_rates_tried": tried, "edge": edge})
    return pd.DataFrame(rows).sort_values(["arch", "params", "data_fraction"], ignore_index=True)


def envelope_trials(trials, envelope):
    """The trials at their cell's best learning rate: every seed of them."""
    best = envelope[[*KEYS, "learning_rate"]]
    return trials.merge(best, on=[*KEYS, "learning_rate"], how="inner")


def full_data(frame):
    """The rows of the largest data fraction, where the L(N) fits are made."""
    return frame[frame["data_fraction"] == frame["data_fraction"].max()]


def best_lr_law(envelope):
    """{arch: law} with lr*(N) = k · N^exponent fitted (least squares in log-log) on the full-data envelope;
    `message` says when there are fewer than 3 sizes or when optima at an edge make the law a bound."""
    laws = {}
    for arch, rows in full_data(envelope).groupby("arch"):
        entry = {"points": len(rows), "edge_points": int(rows["edge"].isin(["low", "high"]).sum()), "k": None,
                 "exponent": None, "message": None}
        if (rows["edge"] == "single").all():
            entry["message"] = "one learning rate per size was tried: nothing to fit"
        elif rows["params"].nunique() < 3:
            entry["message"] = f"{rows['params'].nunique()} sizes: too few to fit the best learning rate's law"
        else:
            exponent, log_k = np.polyfit(np.log(rows["params"]), np.log(rows["learning_rate"]), 1)
            entry.update(k=float(np.exp(log_k)), exponent=float(exponent))
            if entry["edge_points"]:
                entry["message"] = (f"{entry['edge_points']} of {len(rows)} best learning rates lie at an edge of "
                                    "the grid: the law is bounded by the grid, not measured")
        laws[arch] = entry
    return laws


def seed_spread(trials):
    """Per (arch, size, data fraction, learning rate) with more than one seed: mean, std and count."""
    by_lr = loss_by_lr(trials)
    return by_lr[by_lr["seeds"] > 1]
