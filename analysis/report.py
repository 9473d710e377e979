"""report.md: the trial and fit tables, the figures, sample quality and a comparison that claims only what
the intervals support."""

import math

from analysis.scaling import SCALES, exponent_difference, intervals_overlap

NATS_PER_BIT = math.log(2)
FEW_POINTS = 6  # below this many points per fit the bootstrap intervals deserve a warning
TRIAL_COLUMNS = ("arch", "size", "params", "params_nonembed", "tokens_seen", "epoch_fraction", "train_loss",
                 "val_loss", "val_bits", "wall_s", "tokens_per_s", "flops", "mfu", "peak_mem_mb", "status")


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
    frame = trials.assign(val_bits=bits(trials["val_loss"])).sort_values(["arch", "params"])
    return table(TRIAL_COLUMNS, [[number(row[c]) for c in TRIAL_COLUMNS] for _, row in frame.iterrows()])


def fits_table(fits):
    rows = []
    for arch, by_scale in fits.items():
        for scale, entry in by_scale.items():
            fit, check = entry["fit"], entry["extrapolation"]
            if fit is None:
                rows.append([arch, SCALES[scale], "–", "–", "–", "–", "–", entry["message"]])
                continue
            c_bits = (bits(fit.c), tuple(bits(v) for v in fit.ci["c"]))
            held_out = (f"{100 * check['rel_error']:+.1f}% (fit on {check['fit_points']})" if check
                        else entry["extrapolation_message"])
            rows.append([arch, SCALES[scale], len(fit.n), with_interval(fit.a, fit.ci["a"]),
                         with_interval(fit.alpha, fit.ci["alpha"]), with_interval(fit.c, fit.ci["c"]),
                         with_interval(*c_bits), f"{held_out}; {entry['message'] or ''}".strip("; ")])
    header = ("arch", "against", "points", "a [95% CI]", "α [95% CI]", "c nats/token [95% CI]",
              "c bits/token [95% CI]", "largest left out: prediction error; notes")
    return table(header, rows)


def comparison(fits, trials_used):
    """Sentences comparing the exponents of the first two architectures, one per scale."""
    archs = list(fits)
    if len(archs) < 2:
        return ["Only one architecture: no comparison."]
    first, second = archs[:2]
    lines = []
    for scale, label in SCALES.items():
        one, two = fits[first][scale]["fit"], fits[second][scale]["fit"]
        if one is None or two is None:
            lines.append(f"- Against {label}: no comparison, a fit is missing "
                         f"({fits[first][scale]['message'] or fits[second][scale]['message']}).")
            continue
        stated = (f"α({first}) = {with_interval(one.alpha, one.ci['alpha'], 3)}, "
                  f"α({second}) = {with_interval(two.alpha, two.ci['alpha'], 3)}")
        if intervals_overlap(one.ci["alpha"], two.ci["alpha"]):
            verdict = "the intervals overlap (or are unknown), so the exponents are not distinguishable"
        else:
            better, worse = (first, second) if one.alpha > two.alpha else (second, first)
            verdict = f"{better} improves faster with scale than {worse}: the intervals do not overlap"
        difference = exponent_difference(one, two)
        extra = (f"; α({first}) − α({second}) = {difference[0]:.3f} [{difference[1]:.3f}, {difference[2]:.3f}]"
                 if difference else "")
        lines.append(f"- Against {label}: {stated}; {verdict}{extra}.")
    lines.append(largest_models(trials_used, first, second))
    counts = [len(e["fit"].n) for by_scale in fits.values() for e in by_scale.values() if e["fit"] is not None]
    if counts and min(counts) < FEW_POINTS:
        lines.append(f"- Caution: a fit has only {min(counts)} points for 3 parameters; a bootstrap over so few "
                     "residuals understates the uncertainty, so read these intervals as optimistic.")
    return lines


def largest_models(trials_used, first, second):
    """The final losses of each architecture's largest usable model, without a claim of significance."""
    parts = []
    for arch in (first, second):
        rows = trials_used[trials_used["arch"] == arch]
        if len(rows):
            row = rows.loc[rows["params"].idxmax()]
            parts.append(f"{arch} {row['size']} ({number(row['params'])} params): {row['val_loss']:.3f} nats = "
                         f"{bits(row['val_loss']):.3f} bits/token")
    return ("- Largest models used in the fits (one run each, so no interval on a single loss): "
            + "; ".join(parts) + ".")


def samples_section(table_, summary):
    if summary is None:
        return ["No samples found (results/NAME/best/samples or --samples)."]
    lines = [
        f"{summary['samples']} samples: valid ABC by abc2midi (rendered, no error) "
        f"{summary['share_valid_abc2midi']:.0%}, valid by music21 {summary['share_valid_music21']:.0%}, "
        f"converted to MIDI {summary['share_converted_to_midi']:.0%}; repeated-bar rate "
        f"{number(summary['repeated_bar_rate'], 3)}.",
    ]
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
    header = ("sample", "abc2midi valid", "music21 valid", "MIDI", "repeated bars", "piano roll")
    rows = [[r["sample"], r["valid_abc2midi"], r["valid_music21"], r["converted_to_midi"],
             number(r["repeated_bar_rate"], 3),
             f"![](samples/{r['piano_roll']})" if isinstance(r["piano_roll"], str) else "–"]
            for _, r in table_.iterrows()]
    lines.append(table(header, rows))
    return lines


def best_model_line(best):
    test_loss = best.get("test_loss")
    return (f"{best.get('model', '?')}: test loss {number(test_loss)} nats = "
            f"{number(bits(test_loss) if test_loss is not None else None)} bits/token, perplexity "
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


def write_report(path, results_dir, trials, trials_used, fits, figures, samples, best, include_truncated, missing):
    """samples: (per-sample table, summary) or (None, None); best: best/metrics.json or None; missing: the
    planned trials without a folder."""
    lines = [
        f"# Scaling analysis: {results_dir}",
        "",
        "Losses are per-token cross-entropy of the final validation pass, in nats (bits = nats / ln 2). "
        "Fits: L(N) = a·N^−α + c per architecture, Huber loss in log space, 95% percentile intervals from "
        "a residual bootstrap. Intervals that overlap are read as not distinguishable.",
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
        "## Comparison",
        "",
        *comparison(fits, trials_used),
        "",
    ]
    if best:
        lines += ["## Best model", "", best_model_line(best), ""]
    lines += ["## Figures", ""] + [f"![{name}]({p.name})" for name, p in figures.items()] + [""]
    lines += ["## Sample quality", "", *samples_section(*samples), ""]
    path.write_text("\n".join(lines))
    return path
