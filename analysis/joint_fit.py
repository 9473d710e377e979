"""L(N, D) = E + A/N^alpha + B/D^beta (Chinchilla's third approach) and the compute-optimal frontier it implies.

As Hoffmann et al. (2022) and Epoch AI's replication: the fit minimises a Huber loss of log-space residuals,
log L - LSE(a - alpha log N, b - beta log D, e), from a grid of starting points (L-BFGS-B, bounded); N and D are
divided by their geometric means first. Intervals come from a bootstrap over the points (resampled with
replacement and refitted), which Epoch AI found honest where residual bootstraps of few points are too narrow.
With C = 6ND, the loss-minimising split of a compute budget is N*(C) = G (C/6)^a, D*(C) = (C/6)^b / G with
a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

PARAM_NAMES = ("E", "A", "alpha", "B", "beta")
MIN_POINTS = 7  # five parameters, and at least two points to spare
HUBER_DELTA = 1e-3  # Chinchilla's
NEGLIGIBLE_E = 0.05  # a floor below 5% of the smallest loss is read as the bound 0: no floor is measured
EXPONENT_BOUNDS = (0.0, 2.5)
STARTS = {"alpha": (0.1, 0.4, 1.0), "beta": (0.1, 0.4, 1.0), "e_frac": (0.3, 0.8)}


class JointFitError(ValueError):
    """Too few points, or too few distinct sizes or data sizes, for a joint fit."""


@dataclass
class JointFit:
    E: float
    A: float
    alpha: float
    B: float
    beta: float
    ci: dict  # name -> (low, high)
    at_bound: list
    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    residuals: np.ndarray
    level: float = 0.95
    samples: np.ndarray = field(default=None, repr=False)  # bootstrap rows of (E, A, alpha, B, beta)

    def predict(self, n, d):
        return joint_law(np.asarray(n, float), np.asarray(d, float), self.E, self.A, self.alpha, self.B, self.beta)

    def to_dict(self):
        return {**{name: getattr(self, name) for name in PARAM_NAMES},
                "ci": {name: list(bounds) for name, bounds in self.ci.items()}, "level": self.level,
                "at_bound": self.at_bound, "n_points": int(len(self.n)), "n": self.n.tolist(), "d": self.d.tolist(),
                "loss": self.loss.tolist(), "residuals": self.residuals.tolist(),
                "n_bootstrap": 0 if self.samples is None else int(len(self.samples))}


def joint_law(n, d, E, A, alpha, B, beta):
    return E + A / n**alpha + B / d**beta


def _huber(residual):
    size = np.abs(residual)
    return np.where(size <= HUBER_DELTA, 0.5 * residual**2, HUBER_DELTA * (size - 0.5 * HUBER_DELTA)).sum()


def _objective(theta, x, y, log_loss):
    """The Huber loss and its gradient in (e, a, alpha, b, beta)."""
    e, a, alpha, b, beta = theta
    terms = np.stack([np.full_like(x, e), a - alpha * x, b - beta * y])
    top = terms.max(axis=0)
    predicted = top + np.log(np.exp(terms - top).sum(axis=0))
    residual = predicted - log_loss
    weights = np.exp(terms - predicted)  # d predicted / d term
    slope = np.clip(residual, -HUBER_DELTA, HUBER_DELTA)  # d huber / d residual
    gradient = np.array([weights[0], weights[1], -x * weights[1], weights[2], -y * weights[2]]) @ slope
    return _huber(residual), gradient


def _bounds(loss):
    return [(np.log(1e-4), np.log(loss.min())), (-20, 20), EXPONENT_BOUNDS, (-20, 20), EXPONENT_BOUNDS]


def _best(starts, x, y, log_loss, bounds):
    fits = [minimize(_objective, start, args=(x, y, log_loss), jac=True, method="L-BFGS-B", bounds=bounds)
            for start in starts]
    return min(fits, key=lambda f: f.fun).x


def _to_natural(theta, n0, d0):
    e, a, alpha, b, beta = theta
    return np.array([np.exp(e), np.exp(a) * n0**alpha, alpha, np.exp(b) * d0**beta, beta])


def fit_joint(n, d, loss, seed=0, n_boot=200, level=0.95):
    """Fit L(N, D); raises JointFitError with fewer than MIN_POINTS points or fewer than 3 distinct N or D."""
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    keep = np.isfinite(n) & np.isfinite(d) & np.isfinite(loss) & (n > 0) & (d > 0) & (loss > 0)
    n, d, loss = n[keep], d[keep], loss[keep]
    if len(n) < MIN_POINTS or len(np.unique(n)) < 3 or len(np.unique(d)) < 3:
        raise JointFitError(f"L(N, D) needs at least {MIN_POINTS} points over 3 or more model sizes and 3 or more "
                            f"data sizes, got {len(n)} points, {len(np.unique(n))} sizes, {len(np.unique(d))} data "
                            "sizes; no fit made")
    n0, d0 = np.exp(np.log(n).mean()), np.exp(np.log(d).mean())
    x, y, log_loss = np.log(n / n0), np.log(d / d0), np.log(loss)
    bounds = _bounds(loss)
    # a and b start where their term alone is about the loss above E: log(loss - E) near the middle point
    starts = [[np.log(f * loss.min()), np.log((1 - f) * loss.min()), alpha, np.log((1 - f) * loss.min()), beta]
              for f, alpha, beta in itertools.product(STARTS["e_frac"], STARTS["alpha"], STARTS["beta"])]
    theta = _best(starts, x, y, log_loss, bounds)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(n), len(n))
        samples.append(_to_natural(_best([theta], x[pick], y[pick], log_loss[pick], bounds), n0, d0))
    samples = np.array(samples) if samples else None
    natural = _to_natural(theta, n0, d0)
    fitted = joint_law(n, d, *natural)
    tail = 100 * (1 - level) / 2
    ci = ({name: (float(lo), float(hi)) for name, lo, hi in zip(
        PARAM_NAMES, np.percentile(samples, tail, axis=0), np.percentile(samples, 100 - tail, axis=0))}
          if samples is not None else {name: (np.nan, np.nan) for name in PARAM_NAMES})
    at_bound = [name for name, value, (low, high) in zip(("E", "A", "alpha", "B", "beta"), theta, bounds)
                if np.isclose(value, low, atol=1e-4) or np.isclose(value, high, atol=1e-4)]
    if natural[0] < NEGLIGIBLE_E * loss.min() and "E" not in at_bound:  # a floor of ~0: not separable from A, B
        at_bound.insert(0, "E")
    return JointFit(*map(float, natural), ci=ci, at_bound=at_bound, n=n, d=d, loss=loss,
                    residuals=np.log(loss) - np.log(fitted), level=level, samples=samples)


def frontier_coefficients(E, A, alpha, B, beta):
    """(G, a, b) of N*(C) = G (C/6)^a and D*(C) = (C/6)^b / G."""
    return (alpha * A / (beta * B)) ** (1 / (alpha + beta)), beta / (alpha + beta), alpha / (alpha + beta)


def optimal_split(params, compute):
    """(N*, D*) for training compute C = 6ND, for a row (or rows) of (E, A, alpha, B, beta)."""
    G, a, b = frontier_coefficients(*params)
    return G * (compute / 6) ** a, (compute / 6) ** b / G


def optimal_size_for_tokens(params, tokens):
    """The model size for which `tokens` training tokens are compute-optimal."""
    G, a, b = frontier_coefficients(*params)
    return G * (tokens * G) ** (a / b)


def optimal_tokens_for_size(params, n):
    """The training tokens that make a model of n parameters compute-optimal."""
    G, a, b = frontier_coefficients(*params)
    return (n / G) ** (b / a) / G


def with_interval(fit, quantity, *args, level=0.95):
    """(value, low, high) of quantity(params, *args) at the fit and over its bootstrap samples."""
    value = float(quantity((fit.E, fit.A, fit.alpha, fit.B, fit.beta), *args))
    if fit.samples is None or not len(fit.samples):
        return value, np.nan, np.nan
    with np.errstate(all="ignore"):
        values = np.array([quantity(tuple(row), *args) for row in fit.samples], dtype=float)
    values = values[np.isfinite(values)]
    tail = 100 * (1 - level) / 2
    return value, float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
