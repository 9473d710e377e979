"""The report's figures as PNG files: scaling fits, compute, cost and learning curves."""

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.scaling import SCALES, fit_points, usable_trials  # noqa: E402
from analysis.study import full_data, loss_by_lr  # noqa: E402

LOSS_LABEL = "validation loss (nats/token)"
Y_LABELS = {"val_loss": LOSS_LABEL, "val_bits_per_note": "validation loss (bits/note)"}
SCALE_LABELS = {"params": "total parameters (count)", "params_nonembed": "non-embedding parameters (count)",
                "flops": "training compute (FLOPs)"}
ARCH_COLORS = {"gpt": "C0", "lstm": "C1"}


def color(arch):
    return ARCH_COLORS.get(arch, "C2")


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_scaling(ax, trials, fits, arch, scale, include_truncated, y="val_loss"):
    """Points of one architecture (hollow: left out of the fit), its fitted curve and interval band."""
    rows = trials[(trials["arch"] == arch) & trials[y].notna()]
    if rows.empty:
        return False
    used = usable_trials(rows, include_truncated)
    points = fit_points(used)
    left_out = rows.drop(used.index)
    spread = points.groupby(scale)[y].agg(["mean", "std"]).reset_index()
    ax.errorbar(spread[scale], spread["mean"], yerr=spread["std"].fillna(0), fmt="o", color=color(arch),
                capsize=3, label=f"{arch}: best LR, full data (mean ± sd over seeds)", zorder=3)
    if len(left_out):
        ax.scatter(left_out[scale], left_out[y], facecolors="none", edgecolors=color(arch),
                   label=f"{arch} left out (truncated/failed)", zorder=3)
    fit = fits.get(arch, {}).get(scale, {}).get("fit")
    if fit is not None:
        grid = np.geomspace(rows[scale].min() / 1.5, rows[scale].max() * 1.5, 100)
        label = f"{arch}: {fit.a:.3g}·N^-{fit.alpha:.3f} + {fit.c:.3f}"
        ax.plot(grid, fit.predict(grid), color=color(arch), label=label)
        band = fit.band(grid)
        if band is not None:
            ax.fill_between(grid, *band, color=color(arch), alpha=0.2, label=f"{arch} 95% band")
    return True


def plot_scaling(trials, fits, archs, scale, path, include_truncated=False, title=None, y="val_loss"):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    drawn = [draw_scaling(ax, trials, fits, arch, scale, include_truncated, y) for arch in archs]
    if any(drawn):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no trial with a validation loss yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(SCALE_LABELS[scale])
    ax.set_ylabel(Y_LABELS[y])
    ax.set_title(title or f"loss vs {SCALES[scale]}")
    return save(fig, path)


def plot_lr_sweep(used, path):
    """Loss against peak learning rate on the full data, a U per size, one panel per architecture."""
    by_lr = full_data(loss_by_lr(used))
    archs = sorted(by_lr["arch"].unique())
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4.5), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], archs):
        for index, (size, rows) in enumerate(by_lr[by_lr["arch"] == arch].groupby("params")):
            ax.errorbar(rows["learning_rate"], rows["loss"], yerr=rows["loss_std"].fillna(0), fmt="o-",
                        color=f"C{index}", capsize=2, label=f"{rows['size'].iloc[0]} ({size:.3g} params)")
            best = rows.loc[rows["loss"].idxmin()]
            ax.plot(best["learning_rate"], best["loss"], "*", color=f"C{index}", markersize=12)
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel(LOSS_LABEL)
        ax.set_title(f"{arch}: loss vs learning rate (star: best)")
        ax.legend(fontsize=7)
    return save(fig, path)


def plot_isoflop(envelope, profiles, path):
    """Loss against parameters in bins of equal compute, with each bin's parabola minimum."""
    archs = sorted(profiles)
    fig, axes = plt.subplots(1, max(1, len(archs)), figsize=(5.5 * max(1, len(archs)), 4.5), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        for index, bin_ in enumerate(profiles[arch]):
            ax.plot(bin_["params"], bin_["loss"], "o-", color=f"C{index}", label=f"C ≈ {bin_['flops']:.2g} FLOPs")
            if bin_["n_opt"] is not None:
                ax.axvline(bin_["n_opt"], color=f"C{index}", linestyle=":")
        if not profiles[arch]:
            ax.text(0.5, 0.5, "no compute bin holds 3 sizes", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.set_xscale("log")
            ax.legend(fontsize=7)
        ax.set_xlabel(SCALE_LABELS["params"])
        ax.set_ylabel(LOSS_LABEL)
        ax.set_title(f"{arch}: IsoFLOP profiles (dotted: minimum)")
    return save(fig, path)


def plot_frontier(frontier, path):
    """N*(C) and D*(C) of each architecture's joint fit with intervals; dashed beyond the measured compute."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for arch, entry in frontier.items():
        if "budgets" not in entry:
            continue
        flops = np.array([b["flops"] for b in entry["budgets"]])
        for ax, key, label in ((axes[0], "n_opt", "compute-optimal parameters N*"),
                               (axes[1], "d_opt", "compute-optimal tokens D*")):
            value, low, high = np.array([b[key] for b in entry["budgets"]]).T
            ax.plot(flops, value, "-", color=color(arch), label=arch)
            ax.fill_between(flops, low, high, color=color(arch), alpha=0.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("training compute C = 6ND (FLOPs)")
            ax.set_ylabel(label)
    measured = max((b["flops"] for e in frontier.values() for b in e.get("budgets", []) if not b["extrapolation"]),
                   default=None)
    for ax in axes:
        if measured:
            ax.axvline(measured, color="grey", linestyle="--", label="largest measured (beyond: extrapolation)")
        ax.legend(fontsize=7)
    fig.suptitle("compute-optimal frontier from L(N, D) = E + A/N^α + B/D^β (bands: 95% bootstrap)")
    return save(fig, path)


def plot_against_params(trials, column, label, path, title):
    """A cost column (time, memory) against total parameters, one series per architecture, log-log."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for arch, rows in trials[trials[column].notna()].groupby("arch"):
        rows = rows.sort_values("params")
        ax.plot(rows["params"], rows[column], "o-", color=color(arch), label=arch)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(SCALE_LABELS["params"])
    ax.set_ylabel(label)
    ax.set_title(title)
    ax.legend()
    return save(fig, path)


def plot_sample_efficiency(trials, curves, path):
    """Validation loss against tokens seen, one curve per trial."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for trial, rows in curves[curves["val_loss"].notna()].groupby("trial"):
        info = trials.loc[trials["trial"] == trial].iloc[0]
        ax.plot(rows["tokens_seen"], rows["val_loss"], "o-", color=color(info["arch"]), markersize=3,
                alpha=0.4 + 0.6 * size_rank(trials, info), label=trial_label(info))
    ax.set_xscale("log")
    ax.set_xlabel("tokens seen (tokens)")
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("sample efficiency (darker = larger model)")
    ax.legend(fontsize=6, ncol=2)
    return save(fig, path)


def trial_label(info):
    marker = "" if info["status"] == "ok" else f" ({info['status']})"
    return f"{info['arch']} {info['size']}{marker}"


def size_rank(trials, info):
    """0 for the smallest model of its architecture, 1 for the largest."""
    sizes = np.sort(trials.loc[trials["arch"] == info["arch"], "params"].dropna().unique())
    return 0.0 if len(sizes) < 2 else float(np.searchsorted(sizes, info["params"]) / (len(sizes) - 1))


def plot_learning_curves(trials, curves, path):
    """Training loss (lines) and validation loss (dots) against tokens seen, one panel per architecture."""
    archs = sorted(trials["arch"].dropna().unique())
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4.5), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], archs):
        for index, (trial, rows) in enumerate(curves[curves["arch"] == arch].groupby("trial")):
            info = trials.loc[trials["trial"] == trial].iloc[0]
            line, = ax.plot(rows["tokens_seen"], rows["train_loss"], color=f"C{index}", label=trial_label(info))
            validated = rows[rows["val_loss"].notna()]
            ax.plot(validated["tokens_seen"], validated["val_loss"], "o", color=line.get_color(), markersize=4)
        ax.set_xlabel("tokens seen (tokens)")
        ax.set_ylabel("loss (nats/token): line train, dots validation")
        ax.set_title(f"learning curves: {arch}")
        ax.legend(fontsize=7)
    return save(fig, path)


def make_plots(trials, curves, fits, study, out_dir, include_truncated=False):
    """Every figure of the report; returns {name: path}. study: what analysis.run's study_results gives, and the
    bits-per-note fits (per_note)."""
    archs = sorted(trials["arch"].dropna().unique())
    paths = {"lr_sweep": plot_lr_sweep(usable_trials(trials, include_truncated), out_dir / "lr_sweep.png"),
             "isoflop": plot_isoflop(study["envelope"], study["isoflop"], out_dir / "isoflop.png"),
             "frontier": plot_frontier(study["frontier"], out_dir / "frontier.png")}
    for arch in archs:
        paths[f"scaling_{arch}"] = plot_scaling(trials, fits, [arch], "params", out_dir / f"scaling_{arch}.png",
                                                include_truncated, title=f"{arch}: loss vs parameters")
    paths["scaling_compare"] = plot_scaling(trials, fits, archs, "params", out_dir / "scaling_compare.png",
                                            include_truncated, title="GPT vs LSTM: loss vs parameters")
    paths["scaling_nonembed"] = plot_scaling(trials, fits, archs, "params_nonembed",
                                             out_dir / "scaling_nonembed.png", include_truncated)
    paths["bits_per_note"] = plot_scaling(trials, study["per_note"], archs, "params", out_dir / "bits_per_note.png",
                                          include_truncated, "bits per note vs parameters", "val_bits_per_note")
    paths["loss_vs_flops"] = plot_scaling(trials, fits, archs, "flops", out_dir / "loss_vs_flops.png",
                                          include_truncated)
    paths["time_vs_params"] = plot_against_params(trials, "wall_s", "training wall time (s)",
                                                  out_dir / "time_vs_params.png", "training time vs parameters")
    paths["memory_vs_params"] = plot_against_params(trials, "peak_mem_mb", "peak memory (MiB)",
                                                    out_dir / "memory_vs_params.png", "peak memory vs parameters")
    paths["sample_efficiency"] = plot_sample_efficiency(trials, curves, out_dir / "sample_efficiency.png")
    paths["learning_curves"] = plot_learning_curves(trials, curves, out_dir / "learning_curves.png")
    return paths
