"""Power-law fits L(N) = a * N^-alpha + c with bootstrap intervals and an extrapolation check.

The fit runs in log space (residual = log L - log prediction) with a Huber loss, so a single
bad trial pulls the curve less than under least squares. N is divided by its geometric mean
before fitting, which keeps the three parameters on similar scales for the optimiser.
Intervals come from a residual bootstrap: resample the log-space residuals of the fit, add
them to the fitted curve, refit, and take percentiles of the refitted parameters. All refits (and the
several starting points of the main fit) go through one batched solver, so 1,000 bootstrap fits take a
fraction of a second.
"""

from dataclasses import dataclass, field

import numpy as np

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

    @property
    def at_bound(self):
        """Parameters the optimiser left on a bound of their range: the fit is then constrained, not free."""
        bounds = {"alpha": ALPHA_BOUNDS, "c": (0.0, float(self.loss.min()))}
        return [name for name, (low, high) in bounds.items()
                if np.isclose(getattr(self, name), low, rtol=1e-3, atol=1e-6 * float(self.loss.min()))
                or np.isclose(getattr(self, name), high, rtol=1e-4)]

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
            "ci": {name: [None if np.isnan(v) else v for v in bounds] for name, bounds in self.ci.items()},
            "level": self.level,
            "n_points": int(len(self.n)),
            "n": self.n.tolist(), "loss": self.loss.tolist(),
            "residuals": self.residuals.tolist(),
            "n_bootstrap": 0 if self.samples is None else int(len(self.samples)),
            "at_bound": self.at_bound,
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


def _solve(x, log_loss, starts, iterations=200):
    """Best Huber fit of every row: log_loss (rows, points) from starts (rows, 3) of (log A, alpha, c) on x = N/N0.

    A batched, bounded Levenberg-Marquardt with Huber weights (IRLS): thousands of bootstrap refits cost one
    numpy loop instead of one scipy call each. Returns (params (rows, 3), Huber cost (rows,)).
    """
    log_x = np.log(x)
    c_max = np.exp(log_loss.min(axis=1)) * (1 - 1e-6)  # the loss floor lies below every observed loss
    lower = np.array([-30.0, ALPHA_BOUNDS[0], 0.0])
    upper = np.column_stack([np.full_like(c_max, 30.0), np.full_like(c_max, ALPHA_BOUNDS[1]), c_max])
    params = np.clip(starts, lower, upper)
    cost, residual = _huber_cost(params, log_x, log_loss)
    damping = np.full(len(params), 1e-3)
    for _ in range(iterations):
        jac = _jacobian(params, log_x)
        weight = np.minimum(1.0, HUBER_SCALE / np.maximum(np.abs(residual), 1e-300))
        jtj = np.einsum("rpi,rp,rpj->rij", jac, weight, jac)
        grad = np.einsum("rpi,rp,rp->ri", jac, weight, residual)
        diag = np.diagonal(jtj, axis1=1, axis2=2) + 1e-12
        step = np.linalg.solve(jtj + damping[:, None, None] * np.eye(3) * diag[:, None, :], -grad[..., None])
        trial = np.clip(params + step[..., 0], lower, upper)
        trial_cost, trial_residual = _huber_cost(trial, log_x, log_loss)
        better = trial_cost < cost
        params[better], cost[better], residual[better] = trial[better], trial_cost[better], trial_residual[better]
        damping = np.where(better, np.maximum(damping / 3, 1e-9), damping * 4)  # floor: keeps the system solvable
        if np.all(damping > 1e10):
            break
    return params, cost


def _prediction(params, log_x):
    """log(A x^-alpha + c) for each row of params."""
    return np.log(np.exp(params[:, :1] - params[:, 1:2] * log_x) + params[:, 2:])


def _huber_cost(params, log_x, log_loss):
    residual = _prediction(params, log_x) - log_loss
    size = np.abs(residual)
    rho = np.where(size <= HUBER_SCALE, 0.5 * residual**2, HUBER_SCALE * size - 0.5 * HUBER_SCALE**2)
    return rho.sum(axis=1), residual


def _jacobian(params, log_x):
    scaled = np.exp(params[:, :1] - params[:, 1:2] * log_x)
    pred = scaled + params[:, 2:]
    return np.stack([scaled / pred, -scaled * log_x / pred, 1 / pred], axis=-1)


def _starts(x, loss):
    """Rows of (log A, alpha, c): a grid of alpha and c, A chosen so the curve meets the middle point."""
    mid = len(x) // 2
    starts = []
    for c_frac in C_START_FRACTIONS:
        c0 = c_frac * loss.min()
        for alpha0 in ALPHA_STARTS:
            a0 = max(loss[mid] - c0, 1e-6) * x[mid] ** alpha0
            starts.append([np.log(a0), alpha0, c0])
    return np.array(starts)


def _to_natural(params, n0):
    """Rows of (log A, alpha, c) on x = N/N0 -> rows of (a, alpha, c) on N."""
    return np.column_stack([np.exp(params[:, 0] + params[:, 1] * np.log(n0)), params[:, 1], params[:, 2]])


def fit_power_law(n, loss, seed=0, n_boot=1000, level=0.95):
    """Fit L(N) = a*N^-alpha + c; returns a PowerLawFit with percentile bootstrap intervals.

    Raises TooFewPointsError (a ValueError) when fewer than 3 usable points remain.
    """
    n, loss = usable_points(n, loss)
    n0 = float(np.exp(np.mean(np.log(n))))
    x, log_loss = n / n0, np.log(loss)
    starts = _starts(x, loss)
    params, cost = _solve(x, np.tile(log_loss, (len(starts), 1)), starts)
    best = params[np.argmin(cost)]
    fitted = _prediction(best[None], np.log(x))[0]
    residuals = log_loss - fitted
    samples = _bootstrap(x, fitted, residuals, best, n0, n_boot, seed) if n_boot else None
    a, alpha, c = _to_natural(best[None], n0)[0]
    ci = _intervals(samples, level, exact=len(n) <= len(PARAM_NAMES))
    return PowerLawFit(a=float(a), alpha=float(alpha), c=float(c), ci=ci, residuals=residuals,
                       n=n, loss=loss, level=level, samples=samples)


def _bootstrap(x, fitted, residuals, best, n0, n_boot, seed):
    """Residual bootstrap: refit the curve plus resampled residuals n_boot times, all in one batch."""
    dof = len(x) - len(PARAM_NAMES)
    if dof <= 0:
        return np.empty((0, 3))
    rng = np.random.default_rng(seed)
    # residuals of a fit are smaller than the noise by about sqrt(dof / n); undo that shrinkage
    scaled = (residuals - residuals.mean()) * np.sqrt(len(x) / dof)
    resampled = fitted + rng.choice(scaled, size=(n_boot, len(x)), replace=True)
    params, _ = _solve(x, resampled, np.tile(best, (n_boot, 1)))
    return _to_natural(params, n0)


def _intervals(samples, level, exact):
    if samples is None or exact or len(samples) == 0:
        return {name: (float("nan"), float("nan")) for name in PARAM_NAMES}
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0)
    return {name: (float(lo), float(hi)) for name, lo, hi in zip(PARAM_NAMES, low, high)}


def leave_largest_out(n, loss):
    """Fit on all but the largest N (all its seeds) and predict it: the honest test of an extrapolation."""
    n, loss = usable_points(n, loss)
    held = n == n[-1]
    fit = fit_power_law(n[~held], loss[~held], n_boot=0)
    predicted = float(fit.predict(n[-1]))
    actual = float(loss[held].mean())
    return {"held_out_n": float(n[-1]), "actual": actual, "predicted": predicted,
            "rel_error": (predicted - actual) / actual, "fit_points": int((~held).sum())}
