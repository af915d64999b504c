"""The building blocks of the single-case tests: Crawford & Howell's t of one case against a
control sample, the interval of its effect size Z_CC, Anscombe's arcsine transform of a rate with
its sampling variance, and Holm's step-down correction. See :mod:`emocore.stats.single_case`
for how they are combined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special, stats

from emocore.errors import ConfigError, check_choice

__all__ = ["anscombe_arcsine", "crawford_howell", "holm", "sampling_var", "z_cc_interval"]


def crawford_howell(
    x: float, controls: Sequence[float], *, alternative: str = "less"
) -> tuple[float, int, float]:
    """Crawford & Howell's (1998) modified t-test of one case against a control sample.

    Returns ``(t, df, p)``: ``t = (x - mean) / (sd * sqrt((n + 1) / n))`` with the sample SD
    (``ddof=1``), ``df = n - 1`` and the p-value of ``alternative`` (``"less"``: the case is
    below the controls; ``"greater"``; ``"two-sided"``). Needs at least two controls with a
    positive SD.
    """
    c = np.asarray(controls, dtype=float)
    c = c[np.isfinite(c)]
    if len(c) < 2:
        raise ConfigError(f"crawford_howell needs at least 2 controls; {len(c)} were given")
    sd = float(c.std(ddof=1))
    if sd <= 0:
        raise ConfigError(
            "crawford_howell: the controls have no spread (SD 0); the test is undefined"
        )
    n = len(c)
    t = (float(x) - float(c.mean())) / (sd * math.sqrt((n + 1) / n))
    return t, n - 1, _t_tail(np.array([t]), n - 1, alternative)[0]


def z_cc_interval(z: float | np.ndarray, n: int | np.ndarray, *, level: float = 0.95) -> np.ndarray:
    """Interval of the case-controls effect size ``Z_CC = (x - m) / s`` (Crawford & Garthwaite
    2002; Crawford, Garthwaite & Porter 2010), for one value or an array of them.

    ``z * sqrt(n)`` follows a non-central t with ``n - 1`` degrees of freedom and
    non-centrality ``delta * sqrt(n)``; the limits are the non-centralities at which the
    observed value is the upper and lower ``(1 - level) / 2`` quantile, divided by
    ``sqrt(n)``. Returns ``(..., 2)`` (lower, upper); NaN where it cannot be computed (fewer
    than 2 controls, a missing ``z``). scipy has the non-central t's CDF (``nctdtr``) but no
    inverse in its non-centrality, so the limits are found by bisection, all at once.
    """
    z = np.asarray(z, dtype=float)
    n = np.broadcast_to(np.asarray(n, dtype=float), z.shape)
    ok = np.isfinite(z) & (n >= 2)
    root_n = np.sqrt(np.where(ok, n, 2.0))
    df = np.where(ok, n, 2.0) - 1
    c = np.where(ok, z, 0.0) * root_n
    tail = (1.0 - level) / 2.0

    def cdf(delta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            value = special.nctdtr(df, delta, c)
        # the CDF fails far in the tails: the normal approximation of Abramowitz & Stegun
        # (26.7.10) takes over there
        approx = special.ndtr((c * (1 - 1 / (4 * df)) - delta) / np.sqrt(1 + c * c / (2 * df)))
        return np.where(np.isfinite(value), value, approx)

    def limit(target: float) -> np.ndarray:
        # the CDF at c falls as delta grows: bisect between brackets that surely hold the root
        lo, hi = c - 12.0 - np.abs(c), c + 12.0 + np.abs(c)
        for _ in range(45):
            mid = (lo + hi) / 2
            above = cdf(mid) > target
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        return (lo + hi) / 2

    out = np.stack([limit(1.0 - tail), limit(tail)], axis=-1) / root_n[..., None]
    return np.where(ok[..., None], out, np.nan)


def _t_tail(t: np.ndarray, df: np.ndarray | int, alternative: str) -> np.ndarray:
    if alternative == "less":
        return stats.t.cdf(t, df)
    if alternative == "greater":
        return stats.t.sf(t, df)
    if alternative == "two-sided":
        return np.minimum(1.0, 2 * stats.t.sf(np.abs(t), df))
    check_choice("alternative", alternative, ("less", "greater", "two-sided"))
    raise AssertionError("unreachable")


def anscombe_arcsine(k: np.ndarray | float, n: np.ndarray | float) -> np.ndarray:
    """Anscombe's variance-stabilising transform of ``k`` successes out of ``n``.

    ``asin(sqrt((k + 3/8) / (n + 3/4)))``; its binomial sampling variance is about
    ``1 / (4 n + 2)`` for any rate. ``NaN`` where ``n <= 0``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.arcsin(np.sqrt(np.clip((k + 0.375) / (n + 0.75), 0.0, 1.0)))
    return np.where(n > 0, out, np.nan)


def sampling_var(n: np.ndarray) -> np.ndarray:
    """The binomial sampling variance of :func:`anscombe_arcsine` for ``n`` volumes, about
    ``1 / (4 n + 2)``; ``NaN`` where ``n <= 0``."""
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(n > 0, 1.0 / (4.0 * n + 2.0), np.nan)


def holm(p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (``NaN`` entries are left out and stay ``NaN``).

    Controls the family-wise error rate under any dependence between the tests.
    """
    values = np.asarray(p, dtype=float)
    out = np.full(values.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(values[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * values[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out
