"""XmR (individuals) process-behaviour charts: limits from a baseline, signals beyond them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from cycles.numbers import is_increase
from cycles.values import Limits, SignalKind

MIN_BASELINE = 6  # fewer baseline periods than this and no signal may be claimed
SCALE = 2.66  # 3 / d2 for moving ranges of two points


def xmr_limits(values: Sequence[float | None], periods: Sequence[str] = ()) -> Limits | None:
    """Centre line = mean; natural process limits = mean ± 2.66 × mean moving range.

    Missing values are skipped; None when fewer than MIN_BASELINE values remain.
    """
    points = [
        (p, v) for p, v in zip(periods or [""] * len(values), values, strict=True) if v is not None
    ]
    if len(points) < MIN_BASELINE:
        return None
    xs = [v for _, v in points]
    centre = sum(xs) / len(xs)
    moving_range = sum(abs(b - a) for a, b in itertools.pairwise(xs)) / (len(xs) - 1)
    return Limits(
        centre=centre,
        lower=centre - SCALE * moving_range,
        upper=centre + SCALE * moving_range,
        baseline=[p for p, _ in points if p],
        moving_range=moving_range,
    )


def point_signal(value: float | None, limits: Limits | None, direction: str) -> SignalKind:
    """A point beyond the limit on the better side: improvement; on the worse: deterioration."""
    if value is None or limits is None:
        return SignalKind.none
    above = value > limits.upper and not _close(value, limits.upper)
    below = value < limits.lower and not _close(value, limits.lower)
    if not (above or below):
        return SignalKind.none
    better = above if is_increase(direction) else below
    return SignalKind.improvement if better else SignalKind.deterioration


def _close(a: float, b: float) -> bool:
    """Equal but for floating-point rounding (a constant baseline has zero-width limits)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# -- Student's t and Fisher's F (pure Python: the core imports no scipy) ------------------------


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified
    Lentz; Numerical Recipes §6.4), within 1e-13 for the a, b the t and F tests use."""
    if not 0 <= x <= 1:
        raise ValueError("x must be in [0, 1]")
    if x in (0, 1):
        return float(x)
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast below this point
        return 1 - front * _beta_fraction(b, a, 1 - x) / b
    return front * _beta_fraction(a, b, x) / a


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + num * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with `df` degrees of freedom (df > 0)."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1 - tail


def t_isf(p: float, df: float) -> float:
    """The t with P(T > t) = p (0 < p < 1): the upper p quantile, by bisection on `t_sf`."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    if p > 0.5:
        return -t_isf(1 - p, df)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > p:
        lo, hi = hi, 2 * hi
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_sf(mid, df) > p else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def f_sf(f: float, d1: float, d2: float) -> float:
    """P(F > f) for Fisher's F with (d1, d2) degrees of freedom."""
    if f <= 0:
        return 1.0
    return betainc(d2 / 2, d1 / 2, d2 / (d2 + d1 * f))
