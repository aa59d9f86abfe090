"""Improvement signals beyond the single point: run rules, EWMA, CUSUM and beta-binomial evidence.

`detect` judges the period under review (the last value of the series) against the baseline
before the current phase (approach), causally: it looks only at data up to that period, so the
same call made each period is what the policy would have seen then. Every finding is directional
(improvement or deterioration, per `direction`) and carries a reason naming its rule.

Rules (switch them on in a `RuleSet`):
- point         the period beyond the XmR limit (mean ± 2.66 × mean moving range; DESIGN.md)
- two_of_three  2 of the last 3 periods beyond two-thirds of the way to one limit, the period
                under review one of them (Western Electric rule 2; NHS "Making Data Count")
- run_of_7      7 periods in a row on one side of the centre line, points on it break the run
- trend_of_7    7 periods in a row each above (below) the one before, ties break the trend
- ewma          exponentially weighted moving average beyond its limits
- cusum         tabular CUSUM beyond its decision interval h (reference value k), in σ units
- bayes         beta-binomial probability of improvement of the period's proportion over the
                pooled baseline's, for proportions with counts

Run rules count only periods of the current phase: a pattern that began in the baseline says
nothing about the current approach. σ of the EWMA and CUSUM is the mean moving range / d2 over
the baseline and the phase (moving ranges within each part: a step between them is not noise),
and the EWMA's limits include the uncertainty of the baseline mean, so that rule's false-signal
rate does not creep up over the periods of a phase (the classical limits assume a known mean).
`bench/signal_quality.py` measures each rule; DEFAULT is chosen there (≤ 1 % false signals per
period and direction, ≥ 60 % of 2σ shifts caught within 3 periods, with a 12-period baseline).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import Field

from cycles.stats import MIN_BASELINE, xmr_limits
from cycles.values import Limits, SignalKind, Value

D2 = 1.128  # mean moving range of two / σ for normal data (Wheeler: 2.66 = 3 / d2)
Counts = tuple[float, float]  # (successes, trials) of one period


class Rule(StrEnum):
    point = "point"
    two_of_three = "two_of_three"
    run_of_7 = "run_of_7"
    trend_of_7 = "trend_of_7"
    ewma = "ewma"
    cusum = "cusum"
    bayes = "bayes"


class RuleSet(Value):
    """Which rules are on, and their parameters (the declaration's `policy` builds one)."""

    rules: frozenset[Rule] = frozenset({Rule.ewma})
    ewma_lambda: float = Field(0.2, gt=0, le=1)  # weight of the newest period
    ewma_width: float = Field(2.8, gt=0)  # limits at ± width standard errors of the EWMA
    cusum_k: float = Field(0.5, ge=0)  # reference value, σ units
    cusum_h: float = Field(5.0, gt=0)  # decision interval, σ units
    bayes_threshold: float = Field(0.95, gt=0.5, lt=1)
    bayes_alone: bool = False  # False: the probability backs another rule's signal, never alone

    @classmethod
    def of(cls, names: Iterable[str], **params: float | bool) -> RuleSet:
        return cls(rules=frozenset(Rule(n) for n in names), **params)


DEFAULT = RuleSet()
SINGLE_POINT = RuleSet.of(["point"])
NHS = RuleSet.of(["point", "two_of_three", "run_of_7", "trend_of_7"])


class Finding(Value):
    """One rule that fired at the period under review."""

    rule: Rule
    kind: SignalKind
    reason: str
    periods: list[str] = Field(default_factory=list)  # the periods that make the pattern
    statistic: float | None = None  # the rule's number: EWMA or CUSUM in σ units, probability
    counts: bool = True  # whether it makes the signal (bayes evidence may only back others)


class Evidence(Value):
    """The signal at the period under review, every finding behind it, and the chart used."""

    kind: SignalKind = SignalKind.none
    findings: list[Finding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    limits: Limits | None = None
    probability: float | None = None  # beta-binomial P(improvement), when computed


def detect(
    values: Sequence[float | None],
    periods: Sequence[str],
    *,
    baseline_end: int,
    direction: str,
    rules: RuleSet = DEFAULT,
    counts: Sequence[Counts | None] | None = None,
) -> Evidence:
    """The signal at the last period of `values` (first baseline period … period under review).

    `values[:baseline_end]` is the baseline (see `phase_baseline`), `values[baseline_end:]` the
    current phase. `counts`, aligned with `values`, feed the beta-binomial evidence.
    """
    if len(periods) != len(values) or (counts is not None and len(counts) != len(values)):
        raise ValueError("values, periods and counts must be aligned")
    if not 0 <= baseline_end < len(values):
        raise ValueError("the period under review must come after the baseline")
    pairs = [(p, None if v is None else float(v)) for p, v in zip(periods, values, strict=True)]
    base = [(p, v) for p, v in pairs[:baseline_end] if v is not None]
    limits = xmr_limits([v for _, v in base], [p for p, _ in base])
    if limits is None:
        why = f"no signal can be claimed: {len(base)} baseline periods ({MIN_BASELINE} needed)"
        return Evidence(reasons=[why])
    if values[-1] is None:
        return Evidence(limits=limits, reasons=[f"no signal: no value for {periods[-1]}"])
    phase = [(p, v) for p, v in pairs[baseline_end:] if v is not None]
    better = 1 if direction == "increase" else -1
    chart = _Chart(limits, [v for _, v in base], phase, better)
    findings = [f for rule in Rule if rule in rules.rules for f in chart.check(rule, rules)]
    probability = None
    current = counts[-1] if counts is not None else None
    if Rule.bayes in rules.rules and counts is not None and current is not None:
        kept = [c for c, v in zip(counts[:baseline_end], values, strict=False) if v is not None]
        base_counts = [c for c in kept if c is not None]
        if base_counts and len(base_counts) == len(kept):
            probability, finding = _bayes(base_counts, current, direction, rules, findings)
            findings += [finding] if finding else []
    kinds = {f.kind for f in findings if f.counts}
    kind = next(iter(kinds)) if len(kinds) == 1 else SignalKind.none
    reasons = [f.reason for f in findings]
    if len(kinds) > 1:
        reasons.append("conflicting signals: none claimed")
    if not findings:
        reasons.append(f"no signal from {', '.join(r for r in Rule if r in rules.rules)}")
    return Evidence(
        kind=kind, findings=findings, reasons=reasons, limits=limits, probability=probability
    )


def phase_baseline(
    values: Sequence[float | None], starts: Sequence[int], *, baseline_periods: int = 12
) -> int:
    """Index of the first baseline period for the phase that starts at `starts[-1]`.

    Limits are recomputed for every phase (approach), as practitioners do: the baseline is the up
    to `baseline_periods` periods just before the phase, kept within the previous phase (the
    process as it last was) unless that phase has fewer than MIN_BASELINE values, in which case it
    reaches back only as far as needed to find them.
    """
    start = starts[-1]
    first = max(0, start - baseline_periods)
    if len(starts) < 2 or starts[-2] <= first:
        return first
    for i in range(starts[-2], first - 1, -1):
        if sum(v is not None for v in values[i:start]) >= MIN_BASELINE:
            return i
    return first


def beta_binomial_improvement(
    baseline: Sequence[Counts], current: Counts, direction: str = "increase"
) -> float:
    """P(p_current > p_baseline) (`<` for direction "decrease") with Beta(1, 1) priors.

    The baseline periods are pooled. Exact: Evan Miller's closed form ("Formulas for Bayesian
    A/B Testing", 2015) summed over the smallest posterior parameter, terms by recurrence;
    non-integer counts are rounded to whole numbers, as the closed form needs.
    """
    s_a, n_a = sum(s for s, _ in baseline), sum(n for _, n in baseline)
    s_b, n_b = current
    if not (0 <= s_a <= n_a and 0 <= s_b <= n_b):
        raise ValueError("counts must be 0 ≤ successes ≤ trials")
    a_a, b_a = 1 + round(s_a), 1 + round(n_a) - round(s_a)
    a_b, b_b = 1 + round(s_b), 1 + round(n_b) - round(s_b)
    forms = (  # P(current > baseline) four ways; each sums over its first parameter
        (a_b, lambda: _greater(a_b, b_b, a_a, b_a)),
        (a_a, lambda: 1 - _greater(a_a, b_a, a_b, b_b)),
        (b_a, lambda: _greater(b_a, a_a, b_b, a_b)),
        (b_b, lambda: 1 - _greater(b_b, a_b, b_a, a_a)),
    )
    p = min(max(min(forms, key=lambda f: f[0])[1](), 0.0), 1.0)
    return p if direction == "increase" else 1 - p


def _greater(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X1 > X2), X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), a1 a whole number: a sum of a1 terms."""
    offset = _lbeta(a2, b1 + b2) - _lbeta(a2, b2)  # log of the i = 0 term
    term = total = 1.0  # terms and their sum in units of exp(offset), rescaled as they grow
    for i in range(a1 - 1):
        term *= (a2 + i) * (b1 + i) / ((a2 + b1 + b2 + i) * (1 + i))
        total += term
        if total > 1e200:
            term, total, offset = term * 1e-200, total * 1e-200, offset + 200 * math.log(10)
    return math.exp(math.log(total) + offset)


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _bayes(
    base: Sequence[Counts], current: Counts, direction: str, rules: RuleSet, others: list[Finding]
) -> tuple[float, Finding | None]:
    """The beta-binomial evidence, with counts deflated by the baseline's overdispersion.

    With n ≈ 10,000 a period, month-to-month variation the binomial does not explain would make
    any drift "certain"; dividing every count by the Pearson dispersion φ = max(1, X² / (k − 1))
    of the baseline periods (quasi-binomial) keeps the probability honest about it.
    """
    s, n = sum(c[0] for c in base), sum(c[1] for c in base)
    pbar = s / n if n else 0.0
    phi = 1.0
    if 0 < pbar < 1 and len(base) > 1:
        x2 = sum((si - ni * pbar) ** 2 / (ni * pbar * (1 - pbar)) for si, ni in base if ni > 0)
        phi = max(1.0, x2 / (len(base) - 1))
    prob = beta_binomial_improvement(
        [(si / phi, ni / phi) for si, ni in base], (current[0] / phi, current[1] / phi), direction
    )
    kind = (
        SignalKind.improvement
        if prob >= rules.bayes_threshold
        else SignalKind.deterioration
        if 1 - prob >= rules.bayes_threshold
        else None
    )
    if kind is None:
        return prob, None
    backed = any(f.kind is kind for f in others if f.counts)
    word = "improvement" if kind is SignalKind.improvement else "deterioration"
    reason = (
        f"probability of {word} {_fmt(max(prob, 1 - prob))} (beta-binomial: "
        f"{_count(current[0])}/{_count(current[1])} vs baseline {_count(s)}/{_count(n)}"
        + (f", counts ÷ {phi:.2g} for between-period variation" if phi > 1 else "")
        + ")"
        + ("" if rules.bayes_alone or backed else "; evidence only: no chart rule agrees")
    )
    return prob, Finding(
        rule=Rule.bayes, kind=kind, reason=reason, statistic=prob,
        counts=rules.bayes_alone or backed,
    )  # fmt: skip


class _Chart:
    """The current phase against its baseline, in units of the distance to the limit."""

    def __init__(
        self, limits: Limits, base: list[float], phase: list[tuple[str, float]], better: int
    ):
        self.limits, self.better = limits, better
        self.periods = [p for p, _ in phase]
        self.xs = [v for _, v in phase]
        self.n_base = len(base)
        self.width = limits.upper - limits.centre
        self.u = [_ratio(x - limits.centre, self.width, x, limits.centre) for x in self.xs]
        ranges = [abs(b - a) for part in (base, self.xs) for a, b in itertools.pairwise(part)]
        self.sigma = sum(ranges) / len(ranges) / D2

    def kind(self, side: int) -> SignalKind:
        return SignalKind.improvement if side == self.better else SignalKind.deterioration

    def found(
        self, rule: Rule, side: int, reason: str, n: int, stat: float | None = None
    ) -> list[Finding]:
        return [Finding(rule=rule, kind=self.kind(side), reason=reason,
                        periods=self.periods[-n:], statistic=stat)]  # fmt: skip

    def span(self, n: int) -> str:
        return f"{self.periods[-n]} … {self.periods[-1]}"

    def over(self, n: int) -> str:
        return self.periods[-1] if n == 1 else f"the {n} periods {self.span(n)}"

    def check(self, rule: Rule, rs: RuleSet) -> list[Finding]:
        last = self.u[-1]
        side = (last > 0) - (last < 0)
        word = "upper" if side > 0 else "lower"
        if rule is Rule.point and _over(abs(last), 1.0):
            bound, cmp = (self.limits.upper, ">") if side > 0 else (self.limits.lower, "<")
            x = _fmt(self.xs[-1])
            why = f"{self.periods[-1]} beyond the {word} limit: {x} {cmp} {_fmt(bound)}"
            return self.found(rule, side, why, 1)
        if rule is Rule.two_of_three and _over(abs(last), 2 / 3):
            tail = zip(self.periods[-3:], self.u[-3:], strict=True)
            near = [p for p, x in tail if _over(x * side, 2 / 3)]
            if len(near) >= 2:
                why = (f"{len(near)} of the last 3 periods beyond two-thirds of the way to the "
                       f"{word} limit ({', '.join(near)})")  # fmt: skip
                return self.found(rule, side, why, 3)
        run = len(self.u) >= 7 and all(x * side > 0 for x in self.u[-7:])
        if rule is Rule.run_of_7 and side and run:
            where = "above" if side > 0 else "below"
            why = f"run of 7 periods {where} the centre line ({self.span(7)})"
            return self.found(rule, side, why, 7)
        if rule is Rule.trend_of_7 and len(self.xs) >= 7:
            steps = [_cmp(b, a) for a, b in itertools.pairwise(self.xs[-7:])]
            if abs(sum(steps)) == 6:
                way = "rising" if steps[0] > 0 else "falling"
                return self.found(rule, steps[0], f"7 periods in a row {way} ({self.span(7)})", 7)
        if rule is Rule.ewma:
            return self._ewma(rs.ewma_lambda, rs.ewma_width)
        if rule is Rule.cusum:
            return self._cusum(rs.cusum_k, rs.cusum_h)
        return []

    def _ewma(self, lam: float, width: float) -> list[Finding]:
        centre, z = self.limits.centre, self.limits.centre
        for x in self.xs:
            z = lam * x + (1 - lam) * z
        t, keep = len(self.xs), 1 - lam
        se = self.sigma * math.sqrt(
            lam / (2 - lam) * (1 - keep ** (2 * t)) + (1 - keep**t) ** 2 / self.n_base
        )
        stat = _ratio(z - centre, se, z, centre)
        if not _over(abs(stat), width):
            return []
        side = 1 if stat > 0 else -1
        word, cmp = ("upper", ">") if side > 0 else ("lower", "<")
        bound = centre + side * width * se
        why = (f"EWMA (λ={lam:g}) beyond its {word} limit: {_fmt(z)} {cmp} {_fmt(bound)} "
               f"over {self.over(t)}")  # fmt: skip
        return self.found(Rule.ewma, side, why, t, stat)

    def _cusum(self, k: float, h: float) -> list[Finding]:
        hi = lo = 0.0
        for x in self.xs:
            d = _ratio(x - self.limits.centre, self.sigma, x, self.limits.centre)
            hi, lo = max(0.0, hi + d - k), max(0.0, lo - d - k)
        stat, side = (hi, 1) if hi >= lo else (lo, -1)
        if not _over(stat, h):
            return []
        word = "upper" if side > 0 else "lower"
        why = (f"CUSUM (k={k:g}σ, h={h:g}σ) beyond its {word} decision interval: "
               f"{stat:.3g}σ over {self.over(len(self.xs))}")  # fmt: skip
        return self.found(Rule.cusum, side, why, len(self.xs), side * stat)


def _ratio(diff: float, unit: float, x: float, centre: float) -> float:
    """diff / unit; 0 when x equals the centre but for rounding, ±inf when the unit is zero."""
    if math.isclose(x, centre, rel_tol=1e-9, abs_tol=1e-12):
        return 0.0
    return diff / unit if unit > 0 else math.copysign(math.inf, diff)


def _cmp(a: float, b: float) -> int:
    """1, -1 or 0 (equal but for floating-point rounding)."""
    return 0 if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else (a > b) - (a < b)


def _over(a: float, b: float) -> bool:
    """a beyond b, not merely equal to it but for floating-point rounding."""
    return a > b and not math.isclose(a, b, rel_tol=1e-9)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _count(x: float) -> str:
    return f"{x:,.0f}" if x == round(x) else f"{x:,.1f}"
