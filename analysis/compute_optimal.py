"""Which model size a compute budget should buy: the joint L(N, D) fits, IsoFLOP profiles and the frontier.

IsoFLOP profiles (Chinchilla's second approach): the envelope's points (best learning rate, mean over seeds)
are binned by training compute, a half-decade a bin; where a bin holds three or more model sizes, a parabola
in log N gives the loss-minimising size N*(C) of that budget. The frontier and the corpus's compute-optimal
size come from the joint fits (the third approach), with bootstrap intervals; budgets beyond the measured
compute are extrapolations and are labelled so.
"""

import numpy as np

from analysis.joint_fit import (JointFitError, fit_joint, optimal_size_for_tokens, optimal_split,
                                optimal_tokens_for_size, with_interval)
from analysis.study import envelope_trials

BIN_DECADES = 0.5
MIN_SIZES_PER_BIN = 3


def joint_fits(trials, envelope, seed=0, n_boot=200):
    """{arch: {"fit": JointFit or None, "message": why not}} over the envelope's trials of every data size."""
    points = envelope_trials(trials, envelope)
    fits = {}
    for arch in sorted(trials["arch"].dropna().unique()):
        rows = points[points["arch"] == arch]
        try:
            fits[arch] = {"fit": fit_joint(rows["params"], rows["epoch_tokens"], rows["val_loss"], seed=seed,
                                           n_boot=n_boot), "message": None}
        except JointFitError as error:
            fits[arch] = {"fit": None, "message": str(error)}
    return fits


def isoflop_profiles(envelope):
    """{arch: [bin]}, a bin per half-decade of compute with >= 3 sizes: its compute, points and the parabola's
    minimum (n_opt; None when the minimum falls outside the sizes measured, which then bound it)."""
    profiles = {}
    for arch, rows in envelope.groupby("arch"):
        bins = []
        keys = np.round(np.log10(rows["flops"]) / BIN_DECADES)
        for key, members in rows.groupby(keys):
            if members["params"].nunique() < MIN_SIZES_PER_BIN:
                continue
            log_n = np.log(members["params"].to_numpy(float))
            curve = np.polyfit(log_n, members["loss"].to_numpy(float), 2)
            inside = curve[0] > 0 and log_n.min() <= -curve[1] / (2 * curve[0]) <= log_n.max()
            bins.append({"flops": float(10 ** (key * BIN_DECADES)), "params": members["params"].tolist(),
                         "loss": members["loss"].tolist(), "tokens": members["tokens"].tolist(),
                         "n_opt": float(np.exp(-curve[1] / (2 * curve[0]))) if inside else None})
        profiles[arch] = bins
    return profiles


def frontier(fits, trials, corpus_tokens):
    """{arch: entry}: N*(C) and D*(C) with intervals at budgets spanning the measured compute and 10x beyond,
    the compute-optimal size for the corpus's tokens, and the tokens each trained size would need."""
    measured = trials["flops"].dropna()
    budgets = np.geomspace(measured.min(), measured.max() * 10, 7) if len(measured) else []
    entries = {}
    for arch, entry in fits.items():
        fit = entry["fit"]
        if fit is None:
            entries[arch] = {"message": entry["message"]}
            continue
        entries[arch] = {
            "budgets": [{"flops": float(c), "extrapolation": bool(c > measured.max()),
                         "n_opt": with_interval(fit, lambda p, c: optimal_split(p, c)[0], c),
                         "d_opt": with_interval(fit, lambda p, c: optimal_split(p, c)[1], c)} for c in budgets],
            "corpus_tokens": corpus_tokens,
            "n_opt_for_corpus": with_interval(fit, optimal_size_for_tokens, corpus_tokens) if corpus_tokens else None,
            "tokens_for_size": {str(int(n)): with_interval(fit, optimal_tokens_for_size, n)
                                for n in sorted(trials.loc[trials["arch"] == arch, "params"].dropna().unique())},
            "at_bound": fit.at_bound,
        }
    return entries
