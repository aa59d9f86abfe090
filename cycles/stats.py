"""XmR (individuals) process-behaviour charts: limits from a baseline, signals beyond them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

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
    better = above if direction == "increase" else below
    return SignalKind.improvement if better else SignalKind.deterioration


def _close(a: float, b: float) -> bool:
    """Equal but for floating-point rounding (a constant baseline has zero-width limits)."""
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
