"""Choosing an approach on evidence (issue 14; DESIGN.md "Default decision policy", rule 4).

Every phase of an approach (an unbroken run of its cycles, judged against the XmR baseline before
it started) measures its effect in the metric's units: the phase's mean minus its baseline's
centre line. A normal model on phase means uses the baseline's XmR σ (mean moving range / 1.128)
as the noise of one period; a proportion with counts uses beta-binomial posteriors of the phase's
and the baseline's pooled rates instead, counts divided by the baseline's overdispersion (as the
signals do). Each approach's effect has a normal posterior combining its phases (precision
weights) with a prior N(0, (2σ)²) centred on no effect.

When a switch finds no untried approach, the next one is drawn by Thompson sampling from these
posteriors, seeded by outcome and period, so a re-run (or `radar replay`) decides the same. The
probability of being best is computed exactly (numerical integration), not sampled.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from cycles.record import CycleRecord
from cycles.signals import D2
from cycles.values import DecisionKind, PeriodValue, Value

PRIOR_SIGMAS = 2.0  # prior sd of an approach's effect, in periods' σ (effects of ±2σ are common)


class Choice(StrEnum):
    """`policy.choice`: what a switch does once every approach has been tried."""

    evidence = "evidence"  # Thompson sampling from each approach's measured effect
    order = "order"  # declared order only: `hold` with "every approach tried"


class PhaseEffect(Value):
    """One phase of an approach and what it measured against its own baseline."""

    approach: str
    first: str  # its first and last period
    last: str
    periods: int = 0  # periods judged (reviewed on good data, carried out as planned)
    params: dict[str, Any]  # the parameters it would return with: of its last keep, else its last
    effect: float | None = None  # metric units: the phase's mean minus its baseline's centre
    variance: float | None = None  # of `effect`
    sigma: float | None = None  # one period's noise in the metric's units (sets the prior)
    model: str = "normal"  # normal | beta-binomial


class Posterior(Value):
    approach: str
    mean: float
    sd: float
    phases: int = 0  # phases with a measured effect
    periods: int = 0  # periods judged in them


# -- phases from the history ----------------------------------------------------------------------


def phase_effects(
    cycles: Sequence[CycleRecord],
    metric: str,
    *,
    proportion: bool = False,
    judged: Callable[[CycleRecord], bool] | None = None,
) -> list[PhaseEffect]:
    """Every phase in `cycles` (oldest first; the last may be the cycle under review), with its
    effect on `metric` when it has judged periods and a baseline.

    A period is judged when it has a value on good data and `judged` says so (the Review stage:
    no deployment gap, the approach was carried out as planned).
    """
    runs: list[list[CycleRecord]] = []
    previous: str | None = None
    for cycle in cycles:
        name = cycle.approach.name if cycle.approach else None
        if name is not None and name == previous:
            runs[-1].append(cycle)
        elif name is not None:
            runs.append([cycle])
        previous = name
    ok = judged or (lambda c: True)
    ran = {c.period: c.approach.name for c in cycles if c.approach is not None}
    return [
        _phase(run, metric, proportion, [c for c in run if _measured(c) and ok(c)], ran)
        for run in runs
    ]


def _measured(cycle: CycleRecord) -> bool:
    return cycle.result_value is not None and not cycle.checks.failed


def _phase(
    run: list[CycleRecord],
    metric: str,
    proportion: bool,
    judged: list[CycleRecord],
    ran: dict[str, str],
) -> PhaseEffect:
    """The phase's effect against the baseline the engine judged it by (its XmR limits), less
    the baseline periods this approach ran itself: an approach is not measured against itself."""
    kept = [c for c in run if c.decision in (DecisionKind.keep, DecisionKind.achieved)]
    source = (kept or run)[-1]
    assert source.approach is not None
    name = source.approach.name
    phase = PhaseEffect(
        approach=name, first=run[0].period, last=run[-1].period, periods=len(judged),
        params=dict(source.approach.params),
    )  # fmt: skip
    limits = next((c.limits for c in reversed(judged) if c.limits is not None), None)
    if not judged or limits is None:
        return phase
    values = [c.result_value for c in judged if c.result_value is not None]
    known: dict[str, PeriodValue] = {}
    for cycle in run:
        known |= {v.period: v for v in cycle.metrics.get(metric, [])}
    base = [p for p in limits.baseline if ran.get(p) != name and _value(known, p) is not None]
    if proportion:
        counts = _counts(known, base), _counts(known, [c.period for c in judged])
        if counts[0] is not None and counts[1] is not None:
            found = beta_binomial_effect(counts[0], counts[1])
            if found is not None:
                effect, variance, period_sd = found
                return phase.model_copy(
                    update={"effect": effect, "variance": variance, "sigma": period_sd,
                            "model": "beta-binomial"}
                )  # fmt: skip
    if limits.baseline:  # the limits name their baseline periods (the engine's always do)
        if not base:
            return phase
        centre = sum(_value(known, p) or 0.0 for p in base) / len(base)
        window = sorted({*limits.baseline, *(c.period for c in judged)})
        sigma = _sigma(known, window, ran) or limits.moving_range / D2
        base_n = len(base)
    else:
        centre, sigma = limits.centre, limits.moving_range / D2
        base_n = max(c.extra.baseline_count for c in judged)
        if base_n < 1:
            return phase
    sigma = max(sigma, 1e-12 * max(1.0, abs(centre)))  # a constant baseline
    effect = sum(values) / len(values) - centre
    variance = sigma * sigma * (1 / len(values) + 1 / base_n)  # inf, not OverflowError
    if not (math.isfinite(effect) and math.isfinite(variance)):
        return phase  # values near the float limit (1e155²): no estimate
    return phase.model_copy(update={"effect": effect, "variance": variance, "sigma": sigma})


def _value(known: dict[str, PeriodValue], period: str) -> float | None:
    found = known.get(period)
    return None if found is None else found.value


def _sigma(known: dict[str, PeriodValue], periods: list[str], ran: dict[str, str]) -> float | None:
    """The XmR σ (mean moving range / 1.128) from moving ranges within runs of one approach (or
    of the periods before any cycle): the step where the approach changed is not noise."""
    points = [(p, _value(known, p)) for p in periods]
    present = [(p, v) for p, v in points if v is not None]
    ranges = [
        abs(b - a) for (p, a), (q, b) in itertools.pairwise(present) if ran.get(p) == ran.get(q)
    ]
    return sum(ranges) / len(ranges) / D2 if len(ranges) >= 2 else None


def _counts(
    known: dict[str, PeriodValue], periods: Iterable[str]
) -> list[tuple[float, float]] | None:
    out = []
    for period in periods:
        v = known.get(period)
        if v is None or v.numerator is None or v.denominator is None or not v.denominator > 0:
            return None
        if not 0 <= v.numerator <= v.denominator:
            return None
        out.append((float(v.numerator), float(v.denominator)))
    return out or None


def beta_binomial_effect(
    baseline: Sequence[tuple[float, float]], phase: Sequence[tuple[float, float]]
) -> tuple[float, float, float] | None:
    """(mean, variance) of p_phase − p_baseline under Beta(1, 1) priors on pooled counts, each
    divided by the baseline's Pearson dispersion φ = max(1, X² / (k − 1)), and one period's sd.
    """
    s, n = sum(c[0] for c in baseline), sum(c[1] for c in baseline)
    if n <= 0:
        return None
    pbar, phi = s / n, 1.0
    if 0 < pbar < 1 and len(baseline) > 1:
        x2 = sum((si - ni * pbar) ** 2 / (ni * pbar * (1 - pbar)) for si, ni in baseline)
        phi = max(1.0, x2 / (len(baseline) - 1))
    sp, np_ = sum(c[0] for c in phase), sum(c[1] for c in phase)
    mean_b, var_b = _beta(s / phi, n / phi)
    mean_p, var_p = _beta(sp / phi, np_ / phi)
    per_period = n / len(baseline)
    period_sd = math.sqrt(max(pbar * (1 - pbar), 1e-12) * phi / per_period)
    return mean_p - mean_b, var_p + var_b, period_sd


def _beta(successes: float, trials: float) -> tuple[float, float]:
    a, b = 1 + successes, 1 + trials - successes
    return a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))


# -- posteriors, the draw, the probability of being best -------------------------------------------


def posteriors(names: Sequence[str], phases: Sequence[PhaseEffect]) -> dict[str, Posterior]:
    """Each approach's effect: a normal prior on no effect, updated by its measured phases."""
    sigmas = sorted(p.sigma for p in phases if p.sigma is not None and p.effect is not None)
    prior_sd = PRIOR_SIGMAS * sigmas[len(sigmas) // 2] if sigmas else 1.0
    out = {}
    for name in names:
        measured = [p for p in phases if p.approach == name and p.effect is not None]
        precision, weighted = 1 / prior_sd**2, 0.0
        for p in measured:
            assert p.effect is not None and p.variance is not None
            precision += 1 / p.variance
            weighted += p.effect / p.variance
        out[name] = Posterior(
            approach=name, mean=weighted / precision, sd=math.sqrt(1 / precision),
            phases=len(measured), periods=sum(p.periods for p in measured),
        )  # fmt: skip
    return out


def seed_of(outcome: str, period: str) -> int:
    """The same seed for the same outcome and period, in every process (not Python's hash)."""
    return int.from_bytes(hashlib.sha256(f"{outcome}/{period}".encode()).digest()[:8], "big")


def thompson(posts: Sequence[Posterior], better: int, seed: int) -> str:
    """One draw from each posterior (in the order given); the best draw's approach."""
    rng = random.Random(seed)
    draws = [(better * rng.normalvariate(p.mean, p.sd), -i) for i, p in enumerate(posts)]
    return posts[max(range(len(posts)), key=lambda i: draws[i])].approach


def probability_best(
    posts: Sequence[Posterior], better: int, points: int = 2001
) -> dict[str, float]:
    """P(each approach's effect is the best), by integrating over a grid (no sampling noise)."""
    if len(posts) == 1:
        return {posts[0].approach: 1.0}
    means = [better * p.mean for p in posts]
    lo = min(m - 8 * p.sd for m, p in zip(means, posts, strict=True))
    hi = max(m + 8 * p.sd for m, p in zip(means, posts, strict=True))
    step = (hi - lo) / (points - 1)
    grid = [lo + k * step for k in range(points)]
    cdf = [[_ncdf((x - m) / p.sd) for x in grid] for m, p in zip(means, posts, strict=True)]
    out = {}
    for i, (m, p) in enumerate(zip(means, posts, strict=True)):
        total = 0.0
        for k, x in enumerate(grid):
            density = math.exp(-0.5 * ((x - m) / p.sd) ** 2) / (p.sd * math.sqrt(2 * math.pi))
            others = math.prod(cdf[j][k] for j in range(len(posts)) if j != i)
            total += density * others
        out[p.approach] = total * step
    norm = sum(out.values()) or 1.0
    return {k: v / norm for k, v in out.items()}


def _ncdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def best_phase(phases: Sequence[PhaseEffect], approach: str, better: int) -> PhaseEffect | None:
    """The approach's phase with the best measured effect (None: none measured)."""
    measured = [p for p in phases if p.approach == approach and p.effect is not None]
    if not measured:
        return None
    return max(measured, key=lambda p: better * (p.effect or 0.0))


def signed(x: float) -> str:
    """+0.0123, −0.5: an effect as people read it."""
    return f"{x:+.3g}"
