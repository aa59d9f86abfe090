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
from typing import Any

from cycles.baseline import PLAIN, Spec, fit
from cycles.signals import Counts, beta_binomial_improvement, dispersion
from cycles.stats import t_isf
from cycles.values import Value

LEVEL = 0.90


class Effect(Value):
    """What `record.extra["effect"]` and the JSON's `effect` hold."""

    estimate: float  # metric units: the approach's mean less the baseline's centre line
    lower: float
    upper: float
    periods: int  # the approach's periods with a value
    approach: str | None = None
    level: float = LEVEL
    se: float = 0.0
    df: int = 0
    baseline_periods: int = 0
    probability: float | None = None  # P(improvement), beta-binomial: proportions with counts
    line: str = "mean"  # the centre line it is measured against

    def text(self) -> str:
        """ "+0.11 (90 % interval +0.09 to +0.13) over 6 periods"."""
        d = _decimals(self.upper - self.lower, self.estimate)
        span = f"{self.level:.0%}".replace("%", " %")
        many = "s" if self.periods != 1 else ""
        est, low, high = (_signed(x, d) for x in (self.estimate, self.lower, self.upper))
        text = f"{est} ({span} interval {low} to {high}) over {self.periods} period{many}"
        if self.probability is not None:
            text += f", probability of improvement {self.probability:.2f} (beta-binomial)"
        return text

    def reason(self) -> str:
        return f"{self.approach or 'approach'}: {self.text()}"


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


def from_extra(data: Any) -> Effect | None:
    """The effect a record keeps under `extra["effect"]` (None if absent or unreadable)."""
    if not isinstance(data, dict):
        return None
    try:
        return Effect.model_validate(data)
    except ValueError:
        return None


def _decimals(width: float, estimate: float) -> int:
    """Decimals that show an interval `width` wide to about two digits (4 significant digits of
    the estimate when the interval has no width: a constant series)."""
    scale = width / 4 if width > 1e-12 * max(1.0, abs(estimate)) else abs(estimate) / 1000
    if not scale > 1e-12 or not math.isfinite(scale):
        return 4
    return max(0, min(12, -math.floor(math.log10(scale))))


def _signed(x: float, decimals: int) -> str:
    """+0.11, -0.02; never -0.00."""
    text = f"{x:+.{decimals}f}"
    return "+" + text[1:] if text.startswith("-") and float(text) == 0 else text
