"""GPT against LSTM, by what a reader wants to know: which reaches the lower loss at the same number of
parameters and at the same training compute, over the range both measured, with intervals, and what the fits
predict at ten times the largest size, labelled an extrapolation.

Exponents are given only beside their floors c: alpha says how fast a curve approaches its own floor, so a
larger alpha toward a higher floor can still mean a higher loss everywhere measured. The headline is the
difference in loss at the largest size both measured; where the fits' sign disagrees with the measured
losses there, the headline says so instead of trusting the fits.
"""

import math

import numpy as np

from analysis.fit import power_law

EXTRAPOLATION = 10  # how far beyond the largest measured size the fits are asked, labelled as extrapolation


def predicted_difference(one, two, x, level=0.95):
    """(L_one(x) - L_two(x), low, high): the fits' difference and its interval over paired bootstrap curves."""
    point = float(one.predict(x) - two.predict(x))
    if one.samples is None or two.samples is None or not len(one.samples) or not len(two.samples):
        return point, math.nan, math.nan
    count = min(len(one.samples), len(two.samples))
    curves = [power_law(x, *fit.samples[:count].T) for fit in (one, two)]
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(curves[0] - curves[1], [tail, 100 - tail])
    return point, float(low), float(high)


def reading(first, second, difference):
    """Which is lower, or that the interval spans zero (or is unknown)."""
    point, low, high = difference
    if math.isnan(low) or low <= 0 <= high:
        return "not distinguishable"
    return f"{second} lower" if point > 0 else f"{first} lower"


def compare_at(fits, first, second, scale):
    """Differences of the two fits against `scale` at the smallest and largest value both measured and at
    EXTRAPOLATION times the largest; or a message when a fit or a common range is missing."""
    one, two = fits[first][scale]["fit"], fits[second][scale]["fit"]
    if one is None or two is None:
        return {"message": fits[first][scale]["message"] or fits[second][scale]["message"]}
    low, high = max(one.n.min(), two.n.min()), min(one.n.max(), two.n.max())
    if low > high:
        return {"message": f"the {first} and {second} trials share no range of {scale}"}
    points = []
    for where, x in (("smallest common", low), ("largest common", high),
                     (f"{EXTRAPOLATION}x the largest (extrapolation)", EXTRAPOLATION * high)):
        difference = predicted_difference(one, two, x)
        points.append({"where": where, "x": float(x), "difference": difference,
                       "reading": reading(first, second, difference)})
    return {"points": points}


def measured_difference(points, first, second):
    """Mean loss (over seeds) of first's largest model minus second's: the sizes are parameter-matched partners.
    None when either architecture has no point."""
    means = []
    for arch in (first, second):
        rows = points[points["arch"] == arch]
        if rows.empty:
            return None
        means.append(rows.loc[rows["params"] == rows["params"].max(), "val_loss"].mean())
    return float(means[0] - means[1])


def headline(by_params, measured, first, second):
    """One sentence the tables support."""
    if "points" not in by_params:
        return f"No verdict: {by_params['message']}."
    largest = by_params["points"][1]
    point, low, high = largest["difference"]
    lower = largest["reading"]
    size = f"{largest['x']:.3g} parameters (the largest size both measured)"
    if measured is not None and lower != "not distinguishable" and np.sign(measured) != np.sign(point):
        return (f"No verdict from the fits: at {size} they put {lower.split()[0]} lower, but the measured losses "
                f"there say the opposite ({first} − {second} = {measured:+.3f} nats): the fits do not describe "
                "the largest models; read the trial table.")
    if lower == "not distinguishable":
        return (f"At {size}, {first} and {second} are not distinguishable: the predicted difference "
                f"{first} − {second} = {point:+.3f} nats [{low:+.3f}, {high:+.3f}] spans zero.")
    return (f"At {size}, {lower.split()[0]} reaches the lower loss: predicted {first} − {second} = "
            f"{point:+.3f} nats [{low:+.3f}, {high:+.3f}]" + (f", measured {measured:+.3f}" if measured is not None
                                                               else "") + ".")


def verdict(fits, points, first, second):
    """{headline, by_params, by_flops}: the comparison at matched parameters and at matched training compute."""
    by_params = compare_at(fits, first, second, "params")
    return {"first": first, "second": second,
            "headline": headline(by_params, measured_difference(points, first, second), first, second),
            "by_params": by_params, "by_flops": compare_at(fits, first, second, "flops")}
