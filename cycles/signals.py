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
- glr           the generalised likelihood ratio test for a sustained shift of unknown size since
                the approach started, σ unknown: Student's t of the approach's mean against the
                baseline's (σ pooled within the baseline and within the approach's periods);
                exactly `alpha` false signals per period and direction on a stable process
- ewma_t        the EWMA of the approach's periods against limits from Student's t, σ pooled as
                for glr: at most `alpha` false signals per period and direction, for any baseline
                length (the default; bench/signal_quality.py)
and, with `bayes`, for proportions with counts: the beta-binomial probability that the period's
proportion is better than the pooled baseline's (Evan Miller's closed form).

A point beyond a limit decides the kind (DESIGN.md); otherwise findings of both kinds cancel.
Run rules count only periods of the current phase: a pattern that began in the baseline says
nothing about the current approach. σ of the EWMA and CUSUM is the mean moving range / d2 over
the baseline and the phase (moving ranges within each part: the step between them is not noise),
and the EWMA's limits include the uncertainty of the baseline mean, so that its false-signal rate
does not creep up over the periods of a phase (the classical limits assume a known mean).
glr and ewma_t take σ from the standard deviations within the baseline and within the phase
instead, with their degrees of freedom, so their false-signal rate is set by `alpha` whatever the
baseline's length, not calibrated for one. With `model` (cycles.baseline: `policy.seasonality`,
`policy.trend`) every rule judges the values less a seasonal or trended centre line fitted to
the baseline, and the line's own estimation error enters the t rules and the EWMA's limits.
A period beyond a natural process limit is named as a special cause to look into even when the
point rule is not in the set (DESIGN.md). `bench/signal_quality.py` measures every rule and
chose DEFAULT.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import Field, field_validator

from cycles.baseline import PLAIN, Fit, Spec, fit
from cycles.numbers import Direction, better_sign, fmt, is_increase
from cycles.stats import MIN_BASELINE, point_signal, t_isf, t_sf, xmr_limits
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
    glr = "glr"
    ewma_t = "ewma_t"


class RuleSet(Value):
    """Which rules make signals, and their parameters: the declaration's `policy.signals`."""

    rules: list[Rule] = Field(default_factory=lambda: [Rule.ewma_t])
    bayes: bool = False  # beta-binomial probability ≥ bayes_threshold is a signal (proportions)
    bayes_threshold: float = Field(0.95, gt=0.5, lt=1, allow_inf_nan=False)
    ewma_lambda: float = Field(0.2, gt=0, le=1, allow_inf_nan=False)  # newest period's weight
    ewma_width: float = Field(3.0, gt=0, allow_inf_nan=False)  # limits: ± width × its se
    cusum_k: float = Field(0.5, ge=0, allow_inf_nan=False)  # reference value, σ units
    cusum_h: float = Field(5.0, gt=0, allow_inf_nan=False)  # decision interval, σ units
    alpha: float = Field(0.01, gt=0, le=0.25, allow_inf_nan=False)  # glr, ewma_t: per period

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
ISSUE_7 = RuleSet.of(["point", "ewma"])  # the default before issue 13
SINGLE_POINT = RuleSet.of(["point"])
NHS = RuleSet.of(["point", "two_of_three", "run_of_7", "trend_of_7"])


class Finding(Value):
    """One rule that fired at the period under review."""

    rule: str  # a Rule, or "bayes"
    kind: SignalKind
    reason: str
    periods: list[str] = Field(default_factory=list)  # the periods that make the pattern
    statistic: float | None = None  # EWMA or CUSUM in σ units, t, or the probability


class Evidence(Value):
    """The signal at the period under review, every finding behind it, and the chart used."""

    kind: SignalKind = SignalKind.none
    findings: list[Finding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    limits: Limits | None = None
    probability: float | None = None  # beta-binomial P(improvement), when computed
    # the period beyond a natural process limit, named whether or not the point rule is in the
    # set (DESIGN.md): the point's own reason, or "special cause to look into: ..."
    special_cause: str | None = None


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
    index: Sequence[int] | None = None,
    model: Spec = PLAIN,
) -> Evidence:
    """The signal at the last period of `values` (first baseline period … period under review).

    `values[:baseline_end]` is the baseline, `values[baseline_end:]` the current phase (the
    approach's periods). `counts`, aligned with `values`, feed the beta-binomial evidence.
    `index` (each period's `Period.index`) places the periods in time and in the season; a
    seasonal or trended `model` needs it.
    """
    if len(periods) != len(values) or (counts is not None and len(counts) != len(values)):
        raise ValueError("values, periods and counts must be aligned")
    if index is not None and len(index) != len(values):
        raise ValueError("values and index must be aligned")
    if not 0 <= baseline_end < len(values):
        raise ValueError("the period under review must come after the baseline")
    if index is None and model.seasonality:
        raise ValueError("a seasonal model needs the periods' index")
    where = list(index) if index is not None else list(range(len(values)))
    points = [(p, i, None if v is None else float(v))
              for p, i, v in zip(periods, where, values, strict=True)]  # fmt: skip
    base = [(p, i, v) for p, i, v in points[:baseline_end] if v is not None]
    line, notes = fit([i for _, i, _ in base], [v for _, _, v in base], model)
    if line is None:
        return Evidence(reasons=[_too_short(len(base))])
    names = [p for p, _, _ in base]
    limits = (
        xmr_limits([v for _, _, v in base], names) if line.plain else line.limits(where[-1], names)
    )
    assert limits is not None
    value = points[-1][2]
    if value is None:
        return Evidence(limits=limits, reasons=[f"no signal: no value for {periods[-1]}", *notes])
    phase = [(p, i, v) for p, i, v in points[baseline_end:] if v is not None]
    chart = _Chart(limits, line, base, phase, better_sign(direction))
    value = chart.adjusted[-1]  # the value less the line's change since the period under review
    found = _point(value, periods[-1], limits, direction) if Rule.point in rules.rules else []
    found += [f for rule in rules.rules if rule is not Rule.point for f in chart.check(rule, rules)]
    special = _special_cause(value, limits, line, rules)
    if special and Rule.point not in rules.rules:
        notes = [special, *notes]
    probability = None
    if rules.bayes and counts is not None:
        probability, bayes = _bayes(counts, baseline_end, direction, rules)
        if isinstance(bayes, Finding):
            found.append(bayes)
        elif bayes:
            notes.append(bayes)
    evidence = _weigh(found, limits, value, rules, notes)
    return evidence.model_copy(update={"probability": probability, "special_cause": special})


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
        span = f"[{fmt(limits.lower)}, {fmt(limits.upper)}]"
        inside = point_signal(value, limits, Direction.increase) is SignalKind.none
        reasons.append(
            f"no signal ({', '.join(rules.names) or 'no rules'}): {fmt(value)} "
            f"{'within' if inside else 'beyond'} the natural process limits {span}"
        )
    return Evidence(kind=kind, findings=found, reasons=[*reasons, *notes], limits=limits)


def _special_cause(value: float, limits: Limits, line: Fit, rules: RuleSet) -> str | None:
    """The period beyond a natural process limit, named as a special cause to look into
    (DESIGN.md: whether or not the point rule is in the set)."""
    if point_signal(value, limits, Direction.increase) is SignalKind.none:
        return None
    side = "above the upper" if value > limits.upper else "below the lower"
    span = f"[{fmt(limits.lower)}, {fmt(limits.upper)}]"
    what = "" if line.plain else f" around the {line.describe()}"
    alone = (
        ""
        if Rule.point in rules.rules
        else " (a signal only with the point rule in policy.signals)"
    )
    return (
        f"special cause to look into: {fmt(value)} {side} natural process limit {span}{what}{alone}"
    )


def _too_short(count: int) -> str:
    return (
        f"no signal can be claimed: {count} baseline periods ({MIN_BASELINE} needed for XmR limits)"
    )


def _point(value: float, period: str, limits: Limits, direction: str) -> list[Finding]:
    kind = point_signal(value, limits, direction)
    if kind is SignalKind.none:
        return []
    side = "above the upper" if value > limits.upper else "below the lower"
    span = f"[{fmt(limits.lower)}, {fmt(limits.upper)}]"
    reason = f"{kind.value} signal: {fmt(value)} {side} limit {span}"
    return [Finding(rule=Rule.point, kind=kind, reason=reason, periods=[period])]


# -- beta-binomial --------------------------------------------------------------------------------


def beta_binomial_improvement(
    baseline: Sequence[Counts], current: Counts, direction: str = Direction.increase
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
    return p if is_increase(direction) else 1 - p


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


def dispersion(base: Sequence[Counts]) -> float:
    """The baseline's Pearson dispersion φ = max(1, X² / (k − 1)) of k periods' counts around
    their pooled rate: how much more the rate varies between periods than the binomial says."""
    s, n = sum(c[0] for c in base), sum(c[1] for c in base)
    pbar = s / n if n > 0 else 0.0
    if not 0 < pbar < 1 or len(base) < 2:
        return 1.0
    x2 = sum((si - ni * pbar) ** 2 / (ni * pbar * (1 - pbar)) for si, ni in base)
    return max(1.0, x2 / (len(base) - 1))


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
    pbar, phi = s / n, dispersion(base)
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
    moved = _cmp(current[0] / current[1], pbar) * better_sign(direction)
    if p < t or moved != (1 if word == "improvement" else -1):
        why = f"< {t:g}" if p < t else f"≥ {t:g}, but the rate did not move that way"
        return prob, f"no beta-binomial signal: probability of {word} {p:.3f} {why} {detail}"
    kind = SignalKind.improvement if word == "improvement" else SignalKind.deterioration
    reason = f"{kind.value} signal: probability of {word} {p:.3f} ≥ {t:g} {detail}"
    return prob, Finding(rule="bayes", kind=kind, reason=reason, periods=[], statistic=prob)


# -- the chart rules ----------------------------------------------------------------------------


class _Chart:
    """The current phase against its baseline, in units of the distance to the limit.

    Values are the baseline's and the phase's less the fitted line's change (none for the plain
    mean): `adjusted`, judged against `limits` (the line at the period under review)."""

    def __init__(
        self,
        limits: Limits,
        line: Fit,
        base: list[tuple[str, int, float]],
        phase: list[tuple[str, int, float]],
        better: int,
    ):
        self.limits, self.line, self.better, self.n_base = limits, line, better, len(base)
        self.periods = [p for p, _, _ in phase]
        self.index = [i for _, i, _ in phase]
        centre = limits.centre
        if line.plain:
            base_x, self.xs = [v for _, _, v in base], [v for _, _, v in phase]
        else:
            base_x = [v - line.centre(i) + centre for _, i, v in base]
            self.xs = [v - line.centre(i) + centre for _, i, v in phase]
        self.adjusted = self.xs
        self.u = [_ratio(x - centre, limits.upper - centre, x, centre) for x in self.xs]
        ranges = [abs(b - a) for part in (base_x, self.xs) for a, b in itertools.pairwise(part)]
        if line.plain:
            self.sigma = sum(ranges) / len(ranges) / D2
        else:  # the baseline's residuals vary less than the noise: undo it (Fit.shrink)
            n_b = len(base_x) - 1
            total = sum(ranges[:n_b]) / line.shrink() + sum(ranges[n_b:])
            self.sigma = total / len(ranges) / D2
        # σ pooled within the baseline (residuals of the line) and within the phase, for the t rules
        resid = [x - centre for x in self.xs]
        mean = sum(resid) / len(resid)
        ss = line.ss + sum((r - mean) ** 2 for r in resid)
        self.df = line.df + len(resid) - 1
        self.pooled = math.sqrt(ss / self.df) if self.df > 0 else 0.0

    def line_var(self, weights: Sequence[float]) -> float:
        """Var(Σ w_a × line at phase period a) / σ²: the line's own error in a weighted sum."""
        if self.line.plain:
            return sum(weights) ** 2 / self.n_base
        return self.line.var(weights, self.index)

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
        if rule is Rule.glr:
            return self._glr(rs.alpha)
        if rule is Rule.ewma_t:
            return self._ewma_t(rs.ewma_lambda, rs.alpha)
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
                f"limit {fmt(bound)} ({', '.join(near)})")  # fmt: skip
        return self._found(Rule.two_of_three, side, what, 3)

    def _run_of_7(self) -> list[Finding]:
        side = _sign(self.u[-1])
        if len(self.u) < 7 or not side or not all(u * side > 0 for u in self.u[-7:]):
            return []
        where = "above" if side > 0 else "below"
        what = (
            f"run of 7 periods {where} the centre line {fmt(self.limits.centre)} ({self._span(7)})"
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
        if self.line.plain:
            se = ewma_se(self.sigma, lam, t, self.n_base)
        else:
            weights = ewma_weights(lam, t)
            noise = lam / (2 - lam) * (1 - (1 - lam) ** (2 * t))
            se = self.sigma * math.sqrt(noise + self.line_var(weights))
        stat = _ratio(z - centre, se, z, centre)
        if not _over(abs(stat), width):
            return []
        side = _sign(stat)
        word, cmp = ("upper", ">") if side > 0 else ("lower", "<")
        bound = centre + side * width * se
        what = (f"EWMA (λ={lam:g}) beyond its {word} limit: {fmt(z)} {cmp} {fmt(bound)} "
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

    def _t_test(self, rule: Rule, stat: float, alpha: float, what: str) -> list[Finding]:
        """A finding when Student's t `stat` (df `self.df`) is beyond its 1 − alpha quantile."""
        if self.df < 1 or not _over(abs(stat), t_isf(alpha, self.df)):
            return []
        side, t = _sign(stat), len(self.xs)
        p = t_sf(abs(stat), self.df)
        what += (f" over {t} period{'s' if t > 1 else ''} ({self._span(t)}), t = {stat:.3g} on "
                 f"{self.df} df, p = {_pval(p)} ≤ {alpha:g}")  # fmt: skip
        return self._found(rule, side, what, t, stat)

    def _glr(self, alpha: float) -> list[Finding]:
        centre, t = self.limits.centre, len(self.xs)
        mean = sum(self.xs) / t
        se = self.pooled * math.sqrt(1 / t + self.line_var([1 / t] * t))
        stat = _ratio(mean - centre, se, mean, centre)
        what = (f"GLR (t test) for a sustained shift since the approach started: mean "
                f"{fmt(mean)} against the centre line {fmt(centre)}")  # fmt: skip
        return self._t_test(Rule.glr, stat, alpha, what)

    def _ewma_t(self, lam: float, alpha: float) -> list[Finding]:
        centre, t = self.limits.centre, len(self.xs)
        z = ewma_path(self.xs, centre, lam)[-1]
        weights = ewma_weights(lam, t)
        se = self.pooled * math.sqrt(sum(w * w for w in weights) + self.line_var(weights))
        stat = _ratio(z - centre, se, z, centre)
        if self.df < 1:
            return []
        side = _sign(stat)
        word, cmp = ("upper", ">") if side > 0 else ("lower", "<")
        bound = centre + side * t_isf(alpha, self.df) * se
        what = f"EWMA (λ={lam:g}) beyond its {word} t limit: {fmt(z)} {cmp} {fmt(bound)}"
        return self._t_test(Rule.ewma_t, stat, alpha, what)


# -- EWMA and CUSUM -------------------------------------------------------------------------------


def ewma_path(xs: Sequence[float], start: float, lam: float) -> list[float]:
    """z_i = λ x_i + (1 − λ) z_(i−1) from z_0 = start (Montgomery eq. 9.22)."""
    path, z = [], start
    for x in xs:
        z = lam * x + (1 - lam) * z
        path.append(z)
    return path


def ewma_weights(lam: float, t: int) -> list[float]:
    """The weights of x_1 … x_t in z_t − start: λ (1 − λ)^(t − i)."""
    return [lam * (1 - lam) ** (t - i) for i in range(1, t + 1)]


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


def _pval(p: float) -> str:
    return f"{p:.2g}" if p >= 0.0001 else "< 0.0001"


def _count(x: float) -> str:
    return f"{x:,.0f}" if x == round(x) else f"{x:,.1f}"
