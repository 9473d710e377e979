"""Power-law fits L(N) = a * N^-alpha + c with bootstrap intervals and an extrapolation check.

The fit runs in log space (residual = log L - log prediction) with a Huber loss, so a single
bad trial pulls the curve less than under least squares. N is divided by its geometric mean
before fitting, which keeps the three parameters on similar scales for the optimiser.
Intervals come from a residual bootstrap: resample the log-space residuals of the fit, add
them to the fitted curve, refit, and take percentiles of the refitted parameters.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

PARAM_NAMES = ("a", "alpha", "c")
MIN_POINTS = 3
HUBER_SCALE = 0.05  # log-space residual (~5 %) beyond which a point counts as an outlier
ALPHA_BOUNDS = (0.0, 3.0)
ALPHA_STARTS = (0.05, 0.2, 0.5, 1.0)
C_START_FRACTIONS = (0.0, 0.5, 0.9)  # starting c as a fraction of the smallest loss


class TooFewPointsError(ValueError):
    """Raised when there are fewer than MIN_POINTS usable (N, loss) pairs."""


@dataclass
class PowerLawFit:
    a: float
    alpha: float
    c: float
    ci: dict  # name -> (low, high) at `level`; (nan, nan) when the fit is exact (3 points)
    residuals: np.ndarray  # log(loss) - log(prediction), one per point
    n: np.ndarray
    loss: np.ndarray
    level: float = 0.95
    samples: np.ndarray = field(default=None, repr=False)  # bootstrap (a, alpha, c) rows

    def predict(self, n):
        return power_law(np.asarray(n, dtype=float), self.a, self.alpha, self.c)

    def band(self, n, level=None):
        """Pointwise (low, high) of the bootstrap curves at n, or None without bootstrap samples."""
        if self.samples is None or len(self.samples) == 0:
            return None
        level = self.level if level is None else level
        n = np.asarray(n, dtype=float)
        curves = power_law(n[None, :], self.samples[:, :1], self.samples[:, 1:2], self.samples[:, 2:])
        tail = 100 * (1 - level) / 2
        return np.percentile(curves, tail, axis=0), np.percentile(curves, 100 - tail, axis=0)

    def to_dict(self):
        return {
            "a": self.a, "alpha": self.alpha, "c": self.c,
            "ci": {name: list(bounds) for name, bounds in self.ci.items()},
            "level": self.level,
            "n_points": int(len(self.n)),
            "n": self.n.tolist(), "loss": self.loss.tolist(),
            "residuals": self.residuals.tolist(),
            "n_bootstrap": 0 if self.samples is None else int(len(self.samples)),
        }


def power_law(n, a, alpha, c):
    return a * n ** -alpha + c


def usable_points(n, loss):
    """Keep pairs with finite positive N and finite positive loss; raise if fewer than MIN_POINTS distinct N."""
    n = np.asarray(n, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if n.shape != loss.shape:
        raise ValueError(f"n and loss differ in length: {n.shape} vs {loss.shape}")
    keep = np.isfinite(n) & np.isfinite(loss) & (n > 0) & (loss > 0)
    n, loss = n[keep], loss[keep]
    if len(np.unique(n)) < MIN_POINTS:
        raise TooFewPointsError(
            f"need at least {MIN_POINTS} points with distinct N > 0 and a finite loss to fit "
            f"L(N) = a*N^-alpha + c, got {len(np.unique(n))}; no fit made")
    order = np.argsort(n)
    return n[order], loss[order]


def _solve(x, log_loss, starts):
    """Best Huber least-squares solution over the starts; parameters are (log A, alpha, c) on x = N/N0."""
    c_max = np.exp(log_loss.min()) * (1 - 1e-9)
    lower, upper = [-30.0, ALPHA_BOUNDS[0], 0.0], [30.0, ALPHA_BOUNDS[1], c_max]

    log_x = np.log(x)

    def residuals(p):
        return np.log(np.exp(p[0]) * x ** -p[1] + p[2]) - log_loss

    def jacobian(p):
        scaled = np.exp(p[0]) * x ** -p[1]
        pred = scaled + p[2]
        return np.column_stack([scaled / pred, -scaled * log_x / pred, 1 / pred])

    best = None
    for start in starts:
        start = np.clip(start, lower, np.nextafter(upper, -np.inf))
        sol = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), loss="huber", f_scale=HUBER_SCALE)
        if best is None or sol.cost < best.cost:
            best = sol
    return best.x


def _starts(x, loss):
    starts = []
    for c_frac in C_START_FRACTIONS:
        c0 = c_frac * loss.min()
        for alpha0 in ALPHA_STARTS:
            # choose A so the curve passes through the geometric-middle point
            mid = len(x) // 2
            a0 = max(loss[mid] - c0, 1e-6) * x[mid] ** alpha0
            starts.append(np.array([np.log(a0), alpha0, c0]))
    return starts


def _to_natural(p, n0):
    """(log A, alpha, c) on x = N/N0 -> (a, alpha, c) on N."""
    log_a, alpha, c = p
    return np.exp(log_a + alpha * np.log(n0)), alpha, c


def fit_power_law(n, loss, seed=0, n_boot=1000, level=0.95):
    """Fit L(N) = a*N^-alpha + c; returns a PowerLawFit with percentile bootstrap intervals.

    Raises TooFewPointsError (a ValueError) when fewer than 3 usable points remain.
    """
    n, loss = usable_points(n, loss)
    n0 = float(np.exp(np.mean(np.log(n))))
    x, log_loss = n / n0, np.log(loss)
    best = _solve(x, log_loss, _starts(x, loss))
    fitted = np.log(np.exp(best[0]) * x ** -best[1] + best[2])
    residuals = log_loss - fitted
    samples = _bootstrap(x, fitted, residuals, best, n0, n_boot, seed) if n_boot else None
    a, alpha, c = _to_natural(best, n0)
    ci = _intervals(samples, level, exact=len(n) <= len(PARAM_NAMES))
    return PowerLawFit(a=float(a), alpha=float(alpha), c=float(c), ci=ci, residuals=residuals,
                       n=n, loss=loss, level=level, samples=samples)


def _bootstrap(x, fitted, residuals, best, n0, n_boot, seed):
    rng = np.random.default_rng(seed)
    dof = len(x) - len(PARAM_NAMES)
    if dof <= 0:
        return np.empty((0, 3))
    # residuals of a fit are smaller than the noise by about sqrt(dof / n); undo that shrinkage
    scaled = (residuals - residuals.mean()) * np.sqrt(len(x) / dof)
    rows = []
    for _ in range(n_boot):
        resampled = fitted + rng.choice(scaled, size=len(x), replace=True)
        rows.append(_to_natural(_solve(x, resampled, [best]), n0))
    return np.array(rows)


def _intervals(samples, level, exact):
    if samples is None or exact or len(samples) == 0:
        return {name: (float("nan"), float("nan")) for name in PARAM_NAMES}
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(PARAM_NAMES, low, high)}


def leave_largest_out(n, loss):
    """Fit on all but the largest N and predict the largest: the honest test of an extrapolation."""
    n, loss = usable_points(n, loss)
    fit = fit_power_law(n[:-1], loss[:-1], n_boot=0)
    predicted = float(fit.predict(n[-1]))
    actual = float(loss[-1])
    return {"held_out_n": float(n[-1]), "actual": actual, "predicted": predicted,
            "rel_error": (predicted - actual) / actual, "fit_points": int(len(n) - 1)}
