"""The current approach's estimated effect: its periods against the baseline, with uncertainty.

The estimate is the mean of the approach's periods less the baseline's centre line (its mean, or
the seasonal/trended line of cycles.baseline), in the metric's units. The 90 % interval is
Student's t with σ pooled within the baseline (around its line) and within the approach's periods,
on n − p + t − 1 degrees of freedom (n baseline periods, p the line's parameters, t the
approach's periods), and a standard error that counts both the periods' own noise and the line's
estimation error: σ √(1/t + line error): exact for normal noise of equal variance in both parts
(tests/cycles/test_effects.py checks its coverage). It is the interval of the `glr` rule's test.
For a proportion with counts (plain line), the probability that the approach's pooled rate is
better than the baseline's pooled rate (beta-binomial, counts divided by the baseline's
overdispersion, as the signals do).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cycles.baseline import PLAIN, Spec, fit
from cycles.signals import Counts, beta_binomial_improvement, dispersion
from cycles.stats import t_isf
from cycles.values import LEVEL, Effect


def estimate(
    values: Sequence[float | None],
    *,
    baseline_end: int,
    direction: str,
    counts: Sequence[Counts | None] | None = None,
    index: Sequence[int] | None = None,
    model: Spec = PLAIN,
    approach: str | None = None,
    level: float = LEVEL,
) -> Effect | None:
    """The effect of the periods after `baseline_end` (the approach's, this one included) against
    the baseline before it; None without a chart (fewer than 6 baseline values) or a value."""
    where = list(index) if index is not None else list(range(len(values)))
    base = [(i, float(v)) for i, v in zip(where[:baseline_end], values[:baseline_end], strict=True)
            if v is not None]  # fmt: skip
    phase = [(i, float(v)) for i, v in zip(where[baseline_end:], values[baseline_end:], strict=True)
             if v is not None]  # fmt: skip
    line, _ = fit([i for i, _ in base], [v for _, v in base], model)
    if line is None or not phase:
        return None
    t = len(phase)
    resid = [v - line.centre(i) for i, v in phase]
    mean = sum(resid) / t
    df = line.df + t - 1
    if df < 1:
        return None
    ss = line.ss + sum((r - mean) ** 2 for r in resid)
    line_var = line.var([1 / t] * t, [i for i, _ in phase])
    se = math.sqrt(ss / df) * math.sqrt(1 / t + line_var)
    half = t_isf((1 - level) / 2, df) * se
    probability = None
    if counts is not None and line.plain:
        probability = _probability(counts, baseline_end, direction)
    return Effect(
        estimate=mean, lower=mean - half, upper=mean + half, periods=t, approach=approach,
        level=level, se=se, df=df, baseline_periods=line.n, probability=probability,
        line="mean" if line.plain else line.describe(),
    )  # fmt: skip


def _probability(
    counts: Sequence[Counts | None], baseline_end: int, direction: str
) -> float | None:
    """P(the approach's pooled rate is better than the baseline's), counts ÷ the baseline's φ."""
    base = [c for c in counts[:baseline_end] if c is not None]
    phase = [c for c in counts[baseline_end:] if c is not None]
    if not base or not phase:
        return None
    if not all(0 <= s <= n < math.inf and n > 0 for s, n in [*base, *phase]):
        return None
    phi = dispersion(base)
    pooled = (sum(s for s, _ in phase) / phi, sum(n for _, n in phase) / phi)
    return beta_binomial_improvement([(s / phi, n / phi) for s, n in base], pooled, direction)
