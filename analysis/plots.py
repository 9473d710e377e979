"""The report's figures as PNG files: scaling fits, compute, cost and learning curves."""

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.scaling import SCALES, usable_trials  # noqa: E402

LOSS_LABEL = "validation loss (nats/token)"
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


def draw_scaling(ax, trials, fits, arch, scale, include_truncated):
    """Points of one architecture (hollow: left out of the fit), its fitted curve and interval band."""
    rows = trials[(trials["arch"] == arch) & trials["val_loss"].notna()]
    if rows.empty:
        return False
    used = usable_trials(rows, include_truncated)
    left_out = rows.drop(used.index)
    ax.scatter(used[scale], used["val_loss"], color=color(arch), label=f"{arch} trials", zorder=3)
    if len(left_out):
        ax.scatter(left_out[scale], left_out["val_loss"], facecolors="none", edgecolors=color(arch),
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


def plot_scaling(trials, fits, archs, scale, path, include_truncated=False, title=None):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    drawn = [draw_scaling(ax, trials, fits, arch, scale, include_truncated) for arch in archs]
    if any(drawn):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no trial with a validation loss yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(SCALE_LABELS[scale])
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title(title or f"loss vs {SCALES[scale]}")
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


def make_plots(trials, curves, fits, out_dir, include_truncated=False):
    """Every figure of the report; returns {name: path}."""
    archs = sorted(trials["arch"].dropna().unique())
    paths = {}
    for arch in archs:
        paths[f"scaling_{arch}"] = plot_scaling(trials, fits, [arch], "params", out_dir / f"scaling_{arch}.png",
                                                include_truncated, title=f"{arch}: loss vs parameters")
    paths["scaling_compare"] = plot_scaling(trials, fits, archs, "params", out_dir / "scaling_compare.png",
                                            include_truncated, title="GPT vs LSTM: loss vs parameters")
    paths["scaling_nonembed"] = plot_scaling(trials, fits, archs, "params_nonembed",
                                             out_dir / "scaling_nonembed.png", include_truncated)
    paths["loss_vs_flops"] = plot_scaling(trials, fits, archs, "flops", out_dir / "loss_vs_flops.png",
                                          include_truncated)
    paths["time_vs_params"] = plot_against_params(trials, "wall_s", "training wall time (s)",
                                                  out_dir / "time_vs_params.png", "training time vs parameters")
    paths["memory_vs_params"] = plot_against_params(trials, "peak_mem_mb", "peak memory (MiB)",
                                                    out_dir / "memory_vs_params.png", "peak memory vs parameters")
    paths["sample_efficiency"] = plot_sample_efficiency(trials, curves, out_dir / "sample_efficiency.png")
    paths["learning_curves"] = plot_learning_curves(trials, curves, out_dir / "learning_curves.png")
    return paths
