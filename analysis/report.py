"""report.md: the trial and fit tables, the figures, sample quality and a comparison that claims only what
the intervals support."""

import math

from analysis.scaling import SCALES
from sweep.results import TOKEN_GROUPS

NATS_PER_BIT = math.log(2)
FEW_POINTS = 6  # below this many points per fit the bootstrap intervals deserve a warning
TRIAL_COLUMNS = ("arch", "size", "learning_rate", "data_fraction", "seed", "params", "params_nonembed", "tokens_seen",
                 "epoch_fraction", "train_loss", "val_loss", "val_bits", "val_bits_per_note", "val_bits_per_bar",
                 "wall_s", "tokens_per_s", "flops", "mfu", "peak_mem_mb", "status")


def bits(nats):
    return nats / NATS_PER_BIT


def number(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, str)):
        return str(value)
    return f"{value:.{digits}g}"


def with_interval(value, interval, digits=4):
    low, high = interval
    if math.isnan(low):
        return number(value, digits)
    return f"{number(value, digits)} [{number(low, digits)}, {number(high, digits)}]"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def trials_table(trials):
    frame = trials.assign(val_bits=bits(trials["val_loss"])).sort_values(
        ["arch", "params", "data_fraction", "learning_rate", "seed"])
    return table(TRIAL_COLUMNS, [[number(row[c]) for c in TRIAL_COLUMNS] for _, row in frame.iterrows()])


def token_group_table(trials):
    """Per trial, the validation loss (nats/token) on each group of tokens and the group's share of them."""
    frame = trials.sort_values(["arch", "params", "data_fraction", "learning_rate", "seed"])
    rows = [[row["arch"], row["size"], number(row["learning_rate"]), number(row["data_fraction"]), number(row["seed"])]
            + [f"{number(row[f'val_loss_{g}'], 3)} ({number(100 * row[f'val_share_{g}'], 2)}%)" for g in TOKEN_GROUPS]
            for _, row in frame.iterrows()]
    return table(("arch", "size", "learning rate", "data fraction", "seed", *TOKEN_GROUPS), rows)


def fits_table(fits, unit="nats/token"):
    """unit: the fitted loss's; a floor c in nats is also given in bits."""
    in_nats = unit == "nats/token"
    rows = []
    for arch, by_scale in fits.items():
        for scale, entry in by_scale.items():
            fit, check = entry["fit"], entry["extrapolation"]
            if fit is None:
                rows.append([arch, SCALES[scale], "–", "–", "–", "–", *["–"] * in_nats, entry["message"]])
                continue
            c_cells = [with_interval(fit.c, fit.ci["c"])]
            if in_nats:
                c_cells.append(with_interval(bits(fit.c), tuple(bits(v) for v in fit.ci["c"])))
            held_out = (f"{100 * check['rel_error']:+.1f}% (fit on {check['fit_points']})" if check
                        else entry["extrapolation_message"])
            notes = [held_out, entry["message"]] + [f"{name} at its bound" for name in fit.at_bound]
            low, high = fit.ci["alpha"]
            if high - low > fit.alpha:
                notes.append("weak: α's interval is wider than α")
            rows.append([arch, SCALES[scale], len(fit.n), with_interval(fit.a, fit.ci["a"]),
                         with_interval(fit.alpha, fit.ci["alpha"]), *c_cells, "; ".join(n for n in notes if n)])
    header = ("arch", "against", "points", "a [95% CI]", "α [95% CI]", f"c {unit} [95% CI]",
              *["c bits/token [95% CI]"] * in_nats, "largest left out: prediction error; notes")
    return table(header, rows)


def difference_rows(comparison, unit):
    if "points" not in comparison:
        return [comparison["message"]]
    rows = [[p["where"], f"{p['x']:.3g} {unit}", with_interval(p["difference"][0], p["difference"][1:], 3),
             p["reading"]] for p in comparison["points"]]
    return [table(("where", "at", "difference first − second, nats [95% CI]", "reading"), rows)]


def exponent_line(fits, arch):
    fit = fits[arch]["params"]["fit"]
    if fit is None:
        return f"- {arch}: no L(N) fit ({fits[arch]['params']['message']})."
    bound = f"; at its bound: {', '.join(fit.at_bound)} (the fit is constrained there)" if fit.at_bound else ""
    return (f"- {arch}: α = {with_interval(fit.alpha, fit.ci['alpha'], 3)} toward a floor c = "
            f"{with_interval(fit.c, fit.ci['c'], 3)} nats{bound}.")


def verdict_section(fits, study):
    """The headline the tables support, the differences behind it, and the exponents beside their floors."""
    result = study["verdict"]
    if result is None:
        return ["Only one architecture: no comparison."]
    first, second = result["first"], result["second"]
    lines = [f"**{result['headline']}**", "",
             f"Predicted loss differences ({first} − {second}; negative: {first} lower) at matched parameters:", "",
             *difference_rows(result["by_params"], "parameters"), "",
             "At matched training compute (each model trained one epoch; FLOPs of training):", "",
             *difference_rows(result["by_flops"], "FLOPs"), "",
             "Exponents describe how fast each curve approaches its own floor c; with different floors they do "
             "not rank the models, so they are given only beside c:",
             exponent_line(fits, first), exponent_line(fits, second)]
    counts = [len(e["fit"].n) for by_scale in fits.values() for e in by_scale.values() if e["fit"] is not None]
    if counts and min(counts) < FEW_POINTS:
        lines.append(f"- Caution: a fit has only {min(counts)} points for 3 parameters; a bootstrap over so few "
                     "residuals understates the uncertainty, so read these intervals as optimistic.")
    return lines


def learning_rate_section(study):
    envelope = study["envelope"]
    rows = [[r.arch, r.size, number(r.data_fraction), ", ".join(f"{v:.3g}" for v in r.learning_rates_tried),
             f"{r.learning_rate:.3g}", with_interval(r.loss, (r.loss - r.loss_std, r.loss + r.loss_std), 4)
             if r.seeds > 1 else number(r.loss), int(r.seeds),
             {"low": "at the low edge: the optimum may be lower", "high": "at the high edge: the optimum may be higher",
              "single": "not searched (one tried)"}.get(r.edge, "inside the grid")] for r in envelope.itertuples()]
    lines = [table(("arch", "size", "data fraction", "learning rates tried", "best", "loss (± sd over seeds)",
                    "seeds", "best learning rate"), rows), ""]
    for arch, law in study["lr_law"].items():
        law_text = (f"lr*(N) = {law['k']:.3g} · N^{law['exponent']:.3f}" if law["k"] is not None else "no law")
        lines.append(f"- {arch}: {law_text} over {law['points']} sizes on the full data"
                     + (f" ({law['message']})" if law["message"] else "") + ".")
    edges = int(envelope["edge"].isin(["low", "high"]).sum())
    if edges:
        lines.append(f"- {edges} of {len(envelope)} best learning rates lie at an edge of the grid: widen it there "
                     "before trusting those points.")
    return lines


WEAK_RATIO = 10  # an interval wider than this factor says little


def triple(value):
    """value [low, high], marked when the interval spans more than a factor WEAK_RATIO."""
    text = with_interval(value[0], value[1:], 3)
    low, high = value[1:]
    return text + (" (too weak to read)" if not low > 0 or high / low > WEAK_RATIO else "")


def compute_section(study):
    lines = []
    for arch, entry in study["joint"].items():
        fit = entry["fit"]
        if fit is None:
            lines.append(f"- {arch}: no L(N, D) fit ({entry['message']}).")
            continue
        bound = f"; at a bound: {', '.join(fit.at_bound)}" if fit.at_bound else ""
        lines.append(f"- {arch}: L(N, D) = E + A/N^α + B/D^β over {len(fit.n)} points: E = "
                     f"{with_interval(fit.E, fit.ci['E'], 3)}, α = {with_interval(fit.alpha, fit.ci['alpha'], 3)}, "
                     f"β = {with_interval(fit.beta, fit.ci['beta'], 3)}, A = {number(fit.A, 3)}, "
                     f"B = {number(fit.B, 3)}{bound}; residuals within ±{100 * abs(fit.residuals).max():.1f}%.")
        front = study["frontier"][arch]
        if front.get("n_opt_for_corpus"):
            lines.append(f"  - The corpus's {front['corpus_tokens']:.3g} training tokens are compute-optimal for "
                         f"N* = {triple(front['n_opt_for_corpus'])} parameters (extrapolated from the fit).")
        need = "; ".join(f"{int(n):,}: {triple(v)}" for n, v in front["tokens_for_size"].items())
        lines.append(f"  - Tokens each trained size would need to be compute-optimal: {need}.")
    for arch, bins in study["isoflop"].items():
        minima = [f"{b['flops']:.2g} FLOPs → N* ≈ {b['n_opt']:.3g}" if b["n_opt"] else
                  f"{b['flops']:.2g} FLOPs → minimum outside the sizes measured" for b in bins]
        lines.append(f"- IsoFLOP profiles, {arch}: " + ("; ".join(minima) if minima else
                                                        "no compute bin holds three sizes: the grid does not allow it")
                     + ".")
    return lines


def samples_section(table_, summary):
    if summary is None:
        return ["No samples found (results/NAME/best/samples or --samples)."]
    lines = [
        f"{summary['samples']} samples of the model's own: valid ABC by abc2midi (rendered, no error) "
        f"{share_of(summary['share_valid_abc2midi'], summary['samples'])}, valid by music21 "
        f"{share_of(summary['share_valid_music21'], summary['samples'])}, converted to MIDI "
        f"{summary['share_converted_to_midi']:.0%}; repeated-bar rate {number(summary['repeated_bar_rate'], 3)}.",
        "",
    ]
    constrained = summary.get("constrained")
    if constrained:
        lines += [f"By constrained decoding (an option: the tokens that would break the ABC masked, "
                  f"sweep/abc_grammar.py), {constrained['samples']} samples: valid by abc2midi "
                  f"{share_of(constrained['share_valid_abc2midi'], constrained['samples'])}, by music21 "
                  f"{share_of(constrained['share_valid_music21'], constrained['samples'])}. The figures above and "
                  f"below the table are the model's own.", ""]
    lines += [setting_table(summary["by_setting"]), ""]
    reference = summary["reference"]
    if reference is None:
        lines.append(summary["reference_error"]
                     or "No data folder given (--data or sweep.json): no distances to the test split.")
    elif summary["pitch_class_distance"] is None:
        lines.append("No sample rendered to MIDI with notes, so no distances to the test split.")
    else:
        lines.append(
            f"Against {reference['rendered']} rendered test tunes (repeated-bar rate "
            f"{number(reference['repeated_bar_rate'], 3)}): Jensen–Shannon distance (bits; 0 = same) of pitch "
            f"classes {number(summary['pitch_class_distance'], 3)}, of note lengths "
            f"{number(summary['note_length_distance'], 3)}.")
    lines.append("")
    shown = table_[table_["shown"]]
    if len(shown) < len(table_):
        lines += [f"Shown here and in report.html: the first samples of each temperature and prompt, {len(shown)} "
                  f"of {len(table_)}; samples.csv lists every one.", ""]
    header = ("sample", "abc2midi valid", "music21 valid", "MIDI", "repeated bars", "piano roll")
    rows = [[r["sample"], r["valid_abc2midi"], r["valid_music21"], r["converted_to_midi"],
             number(r["repeated_bar_rate"], 3),
             f"![](samples/{r['piano_roll']})" if isinstance(r["piano_roll"], str) else "–"]
            for _, r in shown.iterrows()]
    lines.append(table(header, rows))
    return lines


def share_of(share, count):
    return f"{round(share * count)} of {count} ({share:.0%})"


def setting_table(by_setting):
    """Validity per temperature, prompt (free: from a header; opening: continuing a test tune's first bars) and
    decoding."""
    named = lambda value: value if isinstance(value, str) else "–"  # noqa: E731
    rows = [[number(r["temperature"]), named(r["prompt"]), named(r.get("decoding")),
             share_of(r["share_valid_abc2midi"], r["samples"]), share_of(r["share_valid_music21"], r["samples"])]
            for r in by_setting]
    return table(("temperature", "prompt", "decoding", "valid by abc2midi", "valid by music21"), rows)


def best_model_line(best):
    test_loss = best.get("test_loss")
    return (f"{best.get('model', '?')}: test loss {number(test_loss)} nats = "
            f"{number(bits(test_loss) if test_loss is not None else None)} bits/token = "
            f"{number(best.get('test_bits_per_note'))} bits/note = {number(best.get('test_bits_per_bar'))} bits/bar, "
            "perplexity "
            f"{number(best.get('test_perplexity'))}; best validation loss {number(best.get('best_val_loss'))} nats "
            f"after {number(best.get('steps'))} steps, {number(best.get('tokens_seen'))} tokens.")


def left_out_reason(trial):
    error = f": {trial.error}" if isinstance(trial.error, str) else ""
    return f"{trial.arch} {trial.size} ({trial.status}{error})"


def trials_used_line(trials, trials_used, include_truncated, missing):
    left_out = trials.drop(trials_used.index)
    parts = []
    if missing:
        parts.append(f"Planned by the sweep but not found (no trial folder): {', '.join(missing)}.")
    if len(left_out):
        parts.append(f"Left out of the fits: {', '.join(left_out_reason(r) for r in left_out.itertuples())}.")
    if not parts:
        parts.append("Every planned trial is found and used in the fits.")
    if not include_truncated:
        parts.append("Trials cut by their time budget are left out (--include-truncated keeps them).")
    return " ".join(parts)


def write_report(path, results_dir, trials, trials_used, fits, study, figures, samples, best, include_truncated,
                 missing):
    """samples: (per-sample table, summary) or (None, None); best: best/metrics.json or None; missing: the
    planned trials without a folder."""
    lines = [
        f"# Scaling analysis: {results_dir}",
        "",
        "Losses are per-token cross-entropy of the final validation pass, in nats (bits = nats / ln 2); "
        "val_bits_per_note and val_bits_per_bar divide the split's whole loss in bits by its notes and bars. "
        "Fits: L(N) = a·N^−α + c per architecture on the trials of the whole data at each size's best "
        "learning rate (every seed a point), Huber loss in log space, 95% percentile intervals from a "
        "residual bootstrap; L(N, D) = E + A/N^α + B/D^β on the best learning rate of every data size, "
        "intervals from a bootstrap over points. A difference whose interval spans zero is read as not "
        "distinguishable; a parameter at a bound of its range is flagged.",
        "",
        "## Trials",
        "",
        trials_table(trials),
        "",
        trials_used_line(trials, trials_used, include_truncated, missing),
        "",
        "## Fits",
        "",
        fits_table(fits),
        "",
        "The same fit of the loss in bits per note (a unit that other tokenizations share: the split's whole loss "
        "in bits over its notes):",
        "",
        fits_table(study["per_note"], unit="bits/note"),
        "",
        "## Loss by kind of token",
        "",
        "Validation loss (nats/token) on the tokens of each kind, and their share of the split: note (a pitch with "
        "its length), length (rests, ties, broken rhythm, tuplets), bar (bar lines and repeats), chord (brackets), "
        "space (spaces, newlines), header (field lines), end (end of tune), other.",
        "",
        token_group_table(trials_used),
        "",
        "## GPT against LSTM",
        "",
        *verdict_section(fits, study),
        "",
        "## Learning rate",
        "",
        *learning_rate_section(study),
        "",
        "## Data and compute",
        "",
        *compute_section(study),
        "",
    ]
    if best:
        lines += ["## Best model", "", best_model_line(best), ""]
    lines += ["## Figures", ""] + [f"![{name}]({p.name})" for name, p in figures.items()] + [""]
    lines += ["## Sample quality", "", *samples_section(*samples), ""]
    path.write_text("\n".join(lines))
    return path
