"""Improvement signals beyond the single point: run rules, EWMA, CUSUM and beta-binomial evidence.

`detect` judges the period under review (the last value of the series) against the baseline
before the current phase (approach), causally: it looks only at data up to that period, so the
same call made each period is what the policy would have seen then. Every finding is directional
(improvement or deterioration, per `direction`) and carries a reason naming its rule.

Rules (switch them on in a `RuleSet`, the declaration's `policy.signals`):
- point         the period beyond a natural process limit, mean ± 2.66 × mean moving range of
                the baseline (DESIGN.md; Wheeler, "Understanding Variation")
- two_of_three  2 of the last 3 periods beyond two-thirds of the way to one limit, the period
                under review one of them (Western Electric rule 2, "2 of 3 beyond 2σ"; NHS
                England "Making Data Count": "2 of 3 close to a limit"; NHSRplotthedots counts
                only points inside the limits, but a point beyond one is a signal already)
- run_of_7      7 periods in a row on one side of the centre line; a point on it breaks the run
- trend_of_7    7 periods in a row each above (below) the one before; a tie breaks the trend
- ewma          exponentially weighted moving average beyond ± width standard errors
                (Montgomery, "Introduction to Statistical Quality Control", ch. 9.2)
- cusum         tabular CUSUM beyond its decision interval h, reference value k, in σ units
                (Montgomery ch. 9.1)
and, with `bayes`, for proportions with counts: the beta-binomial probability that the period's
proportion is better than the pooled baseline's (Evan Miller's closed form).

A point beyond a limit decides the kind (DESIGN.md); otherwise findings of both kinds cancel.
Run rules count only periods of the current phase: a pattern that began in the baseline says
nothing about the current approach. σ of the EWMA and CUSUM is the mean moving range / d2 over
the baseline and the phase (moving ranges within each part: the step between them is not noise),
and the EWMA's limits include the uncertainty of the baseline mean, so that its false-signal rate
does not creep up over the periods of a phase (the classical limits assume a known mean).
`bench/signal_quality.py` measures every rule and chose DEFAULT.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import Field, field_validator

from cycles.stats import MIN_BASELINE, point_signal, xmr_limits
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


class RuleSet(Value):
    """Which rules make signals, and their parameters: the declaration's `policy.signals`."""

    rules: list[Rule] = Field(default_factory=lambda: [Rule.point, Rule.ewma])
    bayes: bool = False  # beta-binomial probability ≥ bayes_threshold is a signal (proportions)
    bayes_threshold: float = Field(0.95, gt=0.5, lt=1, allow_inf_nan=False)
    ewma_lambda: float = Field(0.2, gt=0, le=1, allow_inf_nan=False)  # newest period's weight
    ewma_width: float = Field(3.0, gt=0, allow_inf_nan=False)  # limits: ± width × its se
    cusum_k: float = Field(0.5, ge=0, allow_inf_nan=False)  # reference value, σ units
    cusum_h: float = Field(5.0, gt=0, allow_inf_nan=False)  # decision interval, σ units

    @field_validator("rules")
    @classmethod
    def _once_each(cls, rules: list[Rule]) -> list[Rule]:
        return list(dict.fromkeys(rules))

    @classmethod
    def of(cls, names: Iterable[str], **params: float | bool) -> RuleSet:
        return cls(rules=[Rule(n) for n in names], **params)

    @property
    def names(self) -> list[str]:
        return [str(r) for r in self.rules] + (["bayes"] if self.bayes else [])


DEFAULT = RuleSet()
SINGLE_POINT = RuleSet.of(["point"])
NHS = RuleSet.of(["point", "two_of_three", "run_of_7", "trend_of_7"])


class Finding(Value):
    """One rule that fired at the period under review."""

    rule: str  # a Rule, or "bayes"
    kind: SignalKind
    reason: str
    periods: list[str] = Field(default_factory=list)  # the periods that make the pattern
    statistic: float | None = None  # EWMA or CUSUM in σ units, or the probability


class Evidence(Value):
    """The signal at the period under review, every finding behind it, and the chart used."""

    kind: SignalKind = SignalKind.none
    findings: list[Finding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    limits: Limits | None = None
    probability: float | None = None  # beta-binomial P(improvement), when computed


def single_point(
    value: float | None, period: str, limits: Limits | None, direction: str, baseline_count: int
) -> Evidence:
    """DESIGN.md's single-point rule alone, from the XmR limits (what `detect` does with it)."""
    if limits is None:
        return Evidence(reasons=[_too_short(baseline_count)])
    if value is None:
        return Evidence(limits=limits, reasons=[f"no signal: no value for {period}"])
    found = _point(value, period, limits, direction)
    return _weigh(found, limits, value, SINGLE_POINT)


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

    `values[:baseline_end]` is the baseline, `values[baseline_end:]` the current phase (the
    approach's periods). `counts`, aligned with `values`, feed the beta-binomial evidence.
    """
    if len(periods) != len(values) or (counts is not None and len(counts) != len(values)):
        raise ValueError("values, periods and counts must be aligned")
    if not 0 <= baseline_end < len(values):
        raise ValueError("the period under review must come after the baseline")
    pairs = [(p, None if v is None else float(v)) for p, v in zip(periods, values, strict=True)]
    base = [(p, v) for p, v in pairs[:baseline_end] if v is not None]
    limits = xmr_limits([v for _, v in base], [p for p, _ in base])
    if limits is None:
        return Evidence(reasons=[_too_short(len(base))])
    value = pairs[-1][1]
    if value is None:
        return Evidence(limits=limits, reasons=[f"no signal: no value for {periods[-1]}"])
    phase = [(p, v) for p, v in pairs[baseline_end:] if v is not None]
    chart = _Chart(limits, [v for _, v in base], phase, 1 if direction == "increase" else -1)
    found = _point(value, periods[-1], limits, direction) if Rule.point in rules.rules else []
    found += [f for rule in rules.rules if rule is not Rule.point for f in chart.check(rule, rules)]
    notes, probability = [], None
    if rules.bayes and counts is not None:
        probability, bayes = _bayes(counts, baseline_end, direction, rules)
        if isinstance(bayes, Finding):
            found.append(bayes)
        elif bayes:
            notes.append(bayes)
    evidence = _weigh(found, limits, value, rules, notes)
    return evidence.model_copy(update={"probability": probability})


def _weigh(
    found: list[Finding], limits: Limits, value: float, rules: RuleSet, notes: Sequence[str] = ()
) -> Evidence:
    """One kind from the findings: the point's if it fired, else theirs if they agree."""
    kinds = {f.kind for f in found}
    point = next((f.kind for f in found if f.rule == Rule.point), None)
    kind = point or (kinds.pop() if len(kinds) == 1 else SignalKind.none)
    reasons = [f.reason for f in found if f.kind is kind or kind is SignalKind.none]
    if len({f.kind for f in found}) > 1:
        reasons.append(
            "conflicting signals: none claimed"
            if kind is SignalKind.none
            else f"the point beyond the limit decides: {kind.value} (other rules disagree)"
        )
    if not found:
        span = f"[{_fmt(limits.lower)}, {_fmt(limits.upper)}]"
        inside = point_signal(value, limits, "increase") is SignalKind.none
        reasons.append(
            f"no signal ({', '.join(rules.names) or 'no rules'}): {_fmt(value)} "
            f"{'within' if inside else 'beyond'} the natural process limits {span}"
        )
    return Evidence(kind=kind, findings=found, reasons=[*reasons, *notes], limits=limits)


def _too_short(count: int) -> str:
    return (
        f"no signal can be claimed: {count} baseline periods ({MIN_BASELINE} needed for XmR limits)"
    )


def _point(value: float, period: str, limits: Limits, direction: str) -> list[Finding]:
    kind = point_signal(value, limits, direction)
    if kind is SignalKind.none:
        return []
    side = "above the upper" if value > limits.upper else "below the lower"
    span = f"[{_fmt(limits.lower)}, {_fmt(limits.upper)}]"
    reason = f"{kind.value} signal: {_fmt(value)} {side} limit {span}"
    return [Finding(rule=Rule.point, kind=kind, reason=reason, periods=[period])]


# -- beta-binomial --------------------------------------------------------------------------------


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
        (b_a, lambda: _greater(b_a, a_a, b_b, a_b)),  # P(1 - X_a > 1 - X_b)
        (b_b, lambda: 1 - _greater(b_b, a_b, b_a, a_a)),
    )
    p = min(max(min(forms, key=lambda f: f[0])[1](), 0.0), 1.0)
    return p if direction == "increase" else 1 - p


def _greater(a1: int, b1: int, a2: int, b2: int) -> float:
    """P(X1 > X2), X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), a1 a whole number: a sum of a1 terms.

    Term i is B(a2 + i, b1 + b2) / ((b1 + i) B(1 + i, b1) B(a2, b2)) (Evan Miller).
    """
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
    counts: Sequence[Counts | None], baseline_end: int, direction: str, rules: RuleSet
) -> tuple[float | None, Finding | str | None]:
    """The beta-binomial evidence, with counts deflated by the baseline's overdispersion.

    With n ≈ 10,000 a period, month-to-month variation the binomial does not explain would make
    any drift "certain"; dividing every count by the Pearson dispersion φ = max(1, X² / (k − 1))
    of the baseline periods (quasi-binomial) keeps the probability honest about it.
    """
    base = [(float(s), float(n)) for s, n in (c for c in counts[:baseline_end] if c)]
    current = None if counts[-1] is None else (float(counts[-1][0]), float(counts[-1][1]))
    if current is None or not base:
        return None, None
    if not all(0 <= s <= n < math.inf and n > 0 for s, n in [*base, current]):
        return None, "beta-binomial not computed: counts are not successes out of trials"
    s, n = sum(c[0] for c in base), sum(c[1] for c in base)
    pbar, phi = s / n, 1.0
    if 0 < pbar < 1 and len(base) > 1:
        x2 = sum((si - ni * pbar) ** 2 / (ni * pbar * (1 - pbar)) for si, ni in base)
        phi = max(1.0, x2 / (len(base) - 1))
    prob = beta_binomial_improvement(
        [(si / phi, ni / phi) for si, ni in base], (current[0] / phi, current[1] / phi), direction
    )
    detail = (
        f"(beta-binomial, counts {_count(current[0])}/{_count(current[1])} vs baseline "
        f"{_count(s)}/{_count(n)}"
        + (f", counts ÷ {phi:.3g} for between-period variation" if phi > 1 else "")
        + ")"
    )
    t, word = rules.bayes_threshold, "improvement" if prob >= 0.5 else "deterioration"
    p = max(prob, 1 - prob)
    # the rate itself must have moved that way: with 0 successes in each period, the smaller
    # current period's wider posterior alone would make P(improvement) ≥ 0.95
    moved = _cmp(current[0] / current[1], pbar) * (1 if direction == "increase" else -1)
    if p < t or moved != (1 if word == "improvement" else -1):
        why = f"< {t:g}" if p < t else f"≥ {t:g}, but the rate did not move that way"
        return prob, f"no beta-binomial signal: probability of {word} {p:.3f} {why} {detail}"
    kind = SignalKind.improvement if word == "improvement" else SignalKind.deterioration
    reason = f"{kind.value} signal: probability of {word} {p:.3f} ≥ {t:g} {detail}"
    return prob, Finding(rule="bayes", kind=kind, reason=reason, periods=[], statistic=prob)


# -- the chart rules ----------------------------------------------------------------------------


class _Chart:
    """The current phase against its baseline, in units of the distance to the limit."""

    def __init__(
        self, limits: Limits, base: list[float], phase: list[tuple[str, float]], better: int
    ):
        self.limits, self.better, self.n_base = limits, better, len(base)
        self.periods = [p for p, _ in phase]
        self.xs = [v for _, v in phase]
        self.u = [_ratio(x - limits.centre, limits.upper - limits.centre, x, limits.centre)
                  for x in self.xs]  # fmt: skip
        ranges = [abs(b - a) for part in (base, self.xs) for a, b in itertools.pairwise(part)]
        self.sigma = sum(ranges) / len(ranges) / D2

    def check(self, rule: Rule, rs: RuleSet) -> list[Finding]:
        if rule is Rule.two_of_three:
            return self._two_of_three()
        if rule is Rule.run_of_7:
            return self._run_of_7()
        if rule is Rule.trend_of_7:
            return self._trend_of_7()
        if rule is Rule.ewma:
            return self._ewma(rs.ewma_lambda, rs.ewma_width)
        if rule is Rule.cusum:
            return self._cusum(rs.cusum_k, rs.cusum_h)
        return []

    def _found(
        self, rule: Rule, side: int, what: str, n: int, stat: float | None = None
    ) -> list[Finding]:
        kind = SignalKind.improvement if side == self.better else SignalKind.deterioration
        return [Finding(rule=rule, kind=kind, reason=f"{kind.value} signal: {what}",
                        periods=self.periods[-n:], statistic=stat)]  # fmt: skip

    def _span(self, n: int) -> str:
        return self.periods[-1] if n == 1 else f"{self.periods[-n]} … {self.periods[-1]}"

    def _two_of_three(self) -> list[Finding]:
        side = _sign(self.u[-1])
        tail = zip(self.periods[-3:], self.u[-3:], strict=True)
        near = [p for p, u in tail if _over(u * side, 2 / 3)]
        if not side or near[-1:] != self.periods[-1:] or len(near) < 2:
            return []
        word = "upper" if side > 0 else "lower"
        bound = self.limits.upper if side > 0 else self.limits.lower
        what = (f"{len(near)} of the last 3 periods beyond two-thirds of the way to the {word} "
                f"limit {_fmt(bound)} ({', '.join(near)})")  # fmt: skip
        return self._found(Rule.two_of_three, side, what, 3)

    def _run_of_7(self) -> list[Finding]:
        side = _sign(self.u[-1])
        if len(self.u) < 7 or not side or not all(u * side > 0 for u in self.u[-7:]):
            return []
        where = "above" if side > 0 else "below"
        what = (
            f"run of 7 periods {where} the centre line {_fmt(self.limits.centre)} ({self._span(7)})"
        )
        return self._found(Rule.run_of_7, side, what, 7)

    def _trend_of_7(self) -> list[Finding]:
        steps = [_cmp(b, a) for a, b in itertools.pairwise(self.xs[-7:])]
        if len(steps) < 6 or abs(sum(steps)) != 6:
            return []
        way = "rising" if steps[0] > 0 else "falling"
        return self._found(
            Rule.trend_of_7, steps[0], f"7 periods in a row {way} ({self._span(7)})", 7
        )

    def _ewma(self, lam: float, width: float) -> list[Finding]:
        centre, t = self.limits.centre, len(self.xs)
        z = ewma_path(self.xs, centre, lam)[-1]
        se = ewma_se(self.sigma, lam, t, self.n_base)
        stat = _ratio(z - centre, se, z, centre)
        if not _over(abs(stat), width):
            return []
        side = _sign(stat)
        word, cmp = ("upper", ">") if side > 0 else ("lower", "<")
        bound = centre + side * width * se
        what = (f"EWMA (λ={lam:g}) beyond its {word} limit: {_fmt(z)} {cmp} {_fmt(bound)} "
                f"over {t} period{'s' if t > 1 else ''} ({self._span(t)})")  # fmt: skip
        return self._found(Rule.ewma, side, what, t, stat)

    def _cusum(self, k: float, h: float) -> list[Finding]:
        hi, lo = cusum_path(self.xs, self.limits.centre, self.sigma, k)[-1]
        stat, side = (hi, 1) if hi >= lo else (lo, -1)
        if not _over(stat, h):
            return []
        word, t = ("upper" if side > 0 else "lower"), len(self.xs)
        what = (f"CUSUM (k={k:g}σ, h={h:g}σ) beyond its {word} decision interval: "
                f"{stat:.3g}σ over {t} period{'s' if t > 1 else ''} ({self._span(t)})")  # fmt: skip
        return self._found(Rule.cusum, side, what, t, side * stat)


# -- EWMA and CUSUM -------------------------------------------------------------------------------


def ewma_path(xs: Sequence[float], start: float, lam: float) -> list[float]:
    """z_i = λ x_i + (1 − λ) z_(i−1) from z_0 = start (Montgomery eq. 9.22)."""
    path, z = [], start
    for x in xs:
        z = lam * x + (1 - lam) * z
        path.append(z)
    return path


def ewma_se(sigma: float, lam: float, t: int, n_base: int | None = None) -> float:
    """Standard error of z_t − start, `start` the mean of `n_base` baseline values (None: known).

    Montgomery eq. 9.24: σ √(λ / (2 − λ) · (1 − (1 − λ)^2t)). An estimated start adds
    (1 − (1 − λ)^t)² σ² / n_base: z_t − start = Σ w_i (x_i − μ) − (1 − (1 − λ)^t)(start − μ).
    """
    keep = 1 - lam
    var = lam / (2 - lam) * (1 - keep ** (2 * t))
    if n_base:
        var += (1 - keep**t) ** 2 / n_base
    return sigma * math.sqrt(var)


def cusum_path(
    xs: Sequence[float], centre: float, sigma: float, k: float
) -> list[tuple[float, float]]:
    """Tabular CUSUM (C+_i, C−_i) in σ units, from 0 (Montgomery eq. 9.2–9.3, K = kσ):
    C+_i = max(0, x_i − (μ0 + K) + C+_(i−1)), C−_i = max(0, (μ0 − K) − x_i + C−_(i−1))."""
    path, hi, lo = [], 0.0, 0.0
    for x in xs:
        d = _ratio(x - centre, sigma, x, centre)
        hi, lo = max(0.0, hi + d - k), max(0.0, lo - d - k)
        path.append((hi, lo))
    return path


def _ratio(diff: float, unit: float, x: float, centre: float) -> float:
    """diff / unit; 0 when x equals the centre but for rounding, ±inf when the unit is zero."""
    if math.isclose(x, centre, rel_tol=1e-9, abs_tol=1e-12):
        return 0.0
    return diff / unit if unit > 0 else math.copysign(math.inf, diff)


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


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
