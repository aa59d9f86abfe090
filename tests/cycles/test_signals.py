"""Signals beyond the single point: each rule against worked examples with known answers,
the beta-binomial against closed forms and numerical integration, properties, and the simulation.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cycles.declaration import load_yaml
from cycles.errors import DeclarationError
from cycles.signals import (
    DEFAULT,
    ISSUE_7,
    NHS,
    SINGLE_POINT,
    Evidence,
    Rule,
    RuleSet,
    beta_binomial_improvement,
    cusum_path,
    detect,
    ewma_path,
    ewma_se,
)
from cycles.values import SignalKind

from conftest import ROOT, months, write_declaration, write_monthly_csv

# A baseline with centre 0 and mean moving range 2: limits ±5.32 (2.66 × 2); two-thirds of the
# way to a limit is ±3.547. Phases below are in these units.
BASE = [-1.0, 1.0] * 3
CLOSE, INSIDE = 4.5, 1.0  # beyond two-thirds of the way to the upper limit; well inside it
ALL = RuleSet.of(list(Rule))
KIND = {SignalKind.improvement: 1, SignalKind.deterioration: -1, SignalKind.none: 0}


def judge(
    phase: list[float], rules: RuleSet, direction: str = "increase", base: list[float] = BASE
) -> list[int]:
    """What `detect` claims at each review of the phase, seeing only the data up to it:
    1 improvement, -1 deterioration, 0 none."""
    values = [*base, *phase]
    periods = [f"p{i:02d}" for i in range(len(values))]
    out = []
    for end in range(len(base) + 1, len(values) + 1):
        evidence = detect(values[:end], periods[:end], baseline_end=len(base),
                          direction=direction, rules=rules)  # fmt: skip
        out.append(KIND[evidence.kind])
    return out


# -- the single point (DESIGN.md) ------------------------------------------------------------------


def test_point_beyond_a_limit() -> None:
    # DESIGN.md / Wheeler, "Understanding Variation": limits = mean ± 2.66 × mean moving range
    # = 0 ± 5.32 here; on the limit is not beyond it
    assert judge([5.33], SINGLE_POINT) == [1]
    assert judge([5.32], SINGLE_POINT) == [0]
    assert judge([-5.4], SINGLE_POINT) == [-1]
    assert judge([5.33], SINGLE_POINT, "decrease") == [-1]
    assert judge([-5.4], SINGLE_POINT, "decrease") == [1]
    reason = detect([*BASE, 6.0], list("abcdefg"), baseline_end=6, direction="increase",
                    rules=SINGLE_POINT).reasons  # fmt: skip
    assert reason == ["improvement signal: 6 above the upper limit [-5.32, 5.32]"]


def test_the_point_decides_when_rules_disagree() -> None:
    # 6 periods near the upper limit build a CUSUM far above h; the 7th falls below the lower
    # limit: the CUSUM still says improvement, DESIGN.md's point rule deterioration, and decides
    phase = [CLOSE] * 6 + [-6.0]
    assert judge(phase, RuleSet.of(["cusum"]))[-1] == 1
    evidence = detect([*BASE, *phase], [f"p{i}" for i in range(13)],
                      baseline_end=6, direction="increase", rules=ALL)  # fmt: skip
    assert evidence.kind is SignalKind.deterioration
    assert {f.rule for f in evidence.findings} >= {"point", "cusum"}
    assert any("point beyond the limit decides" in r for r in evidence.reasons)


def test_conflicting_rules_claim_nothing() -> None:
    # 7 falling periods all above the centre line: a run of 7 up, a trend of 7 down
    falling = [4.0 - 0.5 * i for i in range(7)]
    assert judge(falling, RuleSet.of(["run_of_7"]))[-1] == 1
    assert judge(falling, RuleSet.of(["trend_of_7"]))[-1] == -1
    evidence = detect([*BASE, *falling], [f"p{i}" for i in range(13)], baseline_end=6,
                      direction="increase", rules=RuleSet.of(["run_of_7", "trend_of_7"]))  # fmt: skip
    assert evidence.kind is SignalKind.none
    assert evidence.reasons[-1] == "conflicting signals: none claimed"


# -- run rules (NHS England "Making Data Count") ---------------------------------------------------
# The expected flags are the NHS-R community's own test cases for its "Making Data Count" charts
# (NHSRplotthedots, tests/testthat/test-ptd_calculate_point_type.R), read causally: the period
# under review shows a signal when it completes (or continues) the pattern.

RUN_OF_7 = [
    # ptd_seven_point_one_side_mean(c(rep(1, 6), -1)) == 0, 0, 0, 0, 0, 0, 0
    ([1] * 6 + [-1], [0] * 7),
    # ptd_seven_point_one_side_mean(c(rep(1, 8), -1)) == 0, 0, 0, 0, 0, 0, 1, 1, 0
    ([1] * 8 + [-1], [0] * 6 + [1, 1, 0]),
    # ptd_seven_point_one_side_mean(c(rep(-1, 8), 1)) == 0, 0, 0, 0, 0, 0, 1, 1, 0 (below)
    ([-1] * 8 + [1], [0] * 6 + [-1, -1, 0]),
    # a point on the mean has sign 0 there: it breaks the run
    ([1] * 3 + [0] + [1] * 6, [0] * 10),
    ([1] * 3 + [0] + [1] * 7, [0] * 10 + [1]),
]


@pytest.mark.parametrize(("sides", "expected"), RUN_OF_7)
def test_run_of_7(sides: list[int], expected: list[int]) -> None:
    assert judge([float(s) for s in sides], RuleSet.of(["run_of_7"])) == expected


def test_run_counts_only_periods_of_the_phase() -> None:
    # the baseline ends with 5 periods above its centre line (0.4); 2 more in the phase are 7 in a
    # row, but a pattern that began before the approach says nothing about it
    base = [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert judge([1.0, 1.0], RuleSet.of(["run_of_7"]), base=base) == [0, 0]
    assert judge([1.0] * 7, RuleSet.of(["run_of_7"]), base=base)[-1] == 1


TREND_OF_7 = [
    # ptd_seven_point_trend(1:6) == 0 x 6
    (list(range(1, 7)), [0] * 6),
    # ptd_seven_point_trend(c(1:3, 3:6)) == 0 x 7: a tie breaks the trend
    ([1, 2, 3, 3, 4, 5, 6], [0] * 7),
    # ptd_seven_point_trend(1:7) == 0, 0, 0, 0, 0, 0, 1
    (list(range(1, 8)), [0] * 6 + [1]),
    # ptd_seven_point_trend(c(2, 1:7, 3)) == 0, 0, 0, 0, 0, 0, 0, 1, 0
    ([2, *range(1, 8), 3], [0] * 7 + [1, 0]),
    # ptd_seven_point_trend(7:1) == 0, 0, 0, 0, 0, 0, -1
    (list(range(7, 0, -1)), [0] * 6 + [-1]),
    # ptd_seven_point_trend(c(2, 7:1, 3)) == 0, 0, 0, 0, 0, 0, 0, -1, 0
    ([2, *range(7, 0, -1), 3], [0] * 7 + [-1, 0]),
]


@pytest.mark.parametrize(("ys", "expected"), TREND_OF_7)
def test_trend_of_7(ys: list[int], expected: list[int]) -> None:
    phase = [0.5 * y - 2 for y in ys]  # inside the limits: only the trend can fire
    assert judge(phase, RuleSet.of(["trend_of_7"])) == expected
    assert judge([-y for y in phase], RuleSet.of(["trend_of_7"]), "decrease") == expected


TWO_OF_THREE = [
    # which periods are close to the upper limit (1) -> the signal, from NHSRplotthedots'
    # ptd_two_in_three cases: c(0, 0, 1, 0, 1, 0, 0) flags periods 3 and 5, so the signal
    # shows at 5; c(0, 0, 1, 1, 0, 0, 0) at 4; c(1, 0, 0, 1) none; c(1, 0, 0, 1, 1) at 5
    ([0, 0, 1, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0, 0]),
    ([0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]),
    ([1, 0, 0, 1], [0, 0, 0, 0]),
    ([1, 0, 0, 1, 1], [0, 0, 0, 0, 1]),
    # the second period of a phase: 2 of its (only) 2 periods
    ([1, 1], [0, 1]),
]


@pytest.mark.parametrize(("close", "expected"), TWO_OF_THREE)
def test_two_of_three(close: list[int], expected: list[int]) -> None:
    phase = [CLOSE if c else INSIDE for c in close]
    assert judge(phase, RuleSet.of(["two_of_three"])) == expected
    below = [-x for x in phase]  # the same pattern at the lower limit: a deterioration
    assert judge(below, RuleSet.of(["two_of_three"])) == [-e for e in expected]


def test_two_of_three_counts_a_point_beyond_the_limit() -> None:
    # Western Electric Statistical Quality Control Handbook (1956), rule 2: "two out of three
    # successive points in zone A or beyond" (beyond 2σ, i.e. two-thirds of the way to the limit)
    assert judge([6.0, CLOSE], RuleSet.of(["two_of_three"])) == [0, 1]
    assert judge([6.0, CLOSE], SINGLE_POINT) == [1, 0]
    # the period under review must be one of the two
    assert judge([CLOSE, CLOSE, INSIDE], RuleSet.of(["two_of_three"])) == [0, 1, 0]
    reason = detect([*BASE, INSIDE, CLOSE, CLOSE], list("abcdefghi"), baseline_end=6,
                    direction="increase", rules=RuleSet.of(["two_of_three"])).reasons[0]  # fmt: skip
    assert reason == (
        "improvement signal: 2 of the last 3 periods beyond two-thirds of the way to the upper "
        "limit 5.32 (h, i)"
    )


# -- EWMA and CUSUM (Montgomery) -------------------------------------------------------------------
# Montgomery, "Introduction to Statistical Quality Control" (6th ed.), Table 9.1: 20 observations
# from N(10, 1), then 10 after the mean shifted to 11. Example 9.1 charts them with a tabular CUSUM
# (μ0 = 10, σ = 1, k = 0.5, h = 5) and tabulates C+ in Table 9.2; Example 9.2 with an EWMA
# (λ = 0.1, L = 2.7).
TABLE_9_1 = [9.45, 7.99, 9.29, 11.66, 12.16, 10.18, 8.04, 11.46, 9.20, 10.34,
             9.03, 11.47, 10.51, 9.40, 10.08, 9.37, 10.62, 10.31, 8.52, 10.84,
             10.90, 9.33, 12.29, 11.50, 10.60, 11.08, 10.38, 11.62, 11.31, 10.52]  # fmt: skip
TABLE_9_2_UPPER = [0.0, 0.0, 0.0, 1.16, 2.82, 2.50, 0.04, 1.00, 0.0, 0.0,
                   0.0, 0.97, 0.98, 0.0, 0.0, 0.0, 0.12, 0.0, 0.0, 0.34,
                   0.74, 0.0, 1.79, 2.79, 2.89, 3.47, 3.35, 4.47, 5.28]  # fmt: skip


def test_cusum_against_montgomery_example_9_1() -> None:
    path = cusum_path(TABLE_9_1, centre=10.0, sigma=1.0, k=0.5)
    assert [round(hi, 2) for hi, _ in path[:29]] == TABLE_9_2_UPPER
    first = next(i for i, (hi, _) in enumerate(path, 1) if hi > 5)
    assert first == 29  # "the CUSUM signals at sample 29"
    assert max(lo for _, lo in path) < 5


def test_ewma_against_montgomery_example_9_2() -> None:
    z = ewma_path(TABLE_9_1, start=10.0, lam=0.1)
    assert z[:2] == pytest.approx([9.945, 9.7495])  # z_1 = 0.1 · 9.45 + 0.9 · 10, ...
    upper = [10 + 2.7 * ewma_se(1.0, 0.1, t) for t in range(1, 31)]
    assert upper[0] == pytest.approx(10.27)  # 2.7 · √(0.1 / 1.9 · (1 − 0.9²)) = 0.27
    assert upper[-1] == pytest.approx(10 + 2.7 * math.sqrt(0.1 / 1.9), abs=1e-3)  # ≈ 10.62
    beyond = [t for t in range(1, 31) if z[t - 1] > upper[t - 1]]
    assert beyond == [29, 30]  # z_29 = 10.6468 > 10.6187, z_28 = 10.5731 is not


def test_ewma_se_includes_the_baseline_mean() -> None:
    # z_t − mean(baseline) for N(0, 1) data: the closed form against 40,000 simulated series
    rng = np.random.default_rng(7)
    n_base, lam, t = 12, 0.2, 5
    x = rng.standard_normal((40_000, n_base + t))
    start = x[:, :n_base].mean(1)
    z = start.copy()
    for j in range(n_base, n_base + t):
        z = lam * x[:, j] + (1 - lam) * z
    assert np.std(z - start) == pytest.approx(ewma_se(1.0, lam, t, n_base), rel=0.02)
    assert ewma_se(1.0, lam, t, n_base) > ewma_se(1.0, lam, t)


def test_ewma_and_cusum_in_detect() -> None:
    # a worked example by hand: BASE (centre 0, moving ranges 2, 2, 2, 2, 2), then 3, 3, 3, 3.
    # σ = mean moving range / 1.128 within the baseline and within the phase (the step between
    # them is not noise): (5 × 2 + 3 × 0) / 8 / 1.128 = 1.1082
    sigma = 10 / 8 / 1.128
    d = 3 / sigma  # each period, in σ units
    cusum = 4 * (d - 0.5)  # C+ after 4 periods, k = 0.5: 8.83 > h = 5
    z = 3 * (1 - 0.8**4)  # EWMA from the centre, λ = 0.2
    se = sigma * math.sqrt(0.2 / 1.8 * (1 - 0.8**8) + (1 - 0.8**4) ** 2 / 6)  # + baseline mean
    values, periods = [*BASE, 3.0, 3.0, 3.0, 3.0], months("2025-01", 10)
    for rules, statistic in ((RuleSet.of(["cusum"]), cusum), (RuleSet.of(["ewma"]), z / se)):
        evidence = detect(values, periods, baseline_end=6, direction="increase", rules=rules)
        assert evidence.kind is SignalKind.improvement
        assert evidence.findings[0].statistic == pytest.approx(statistic)
        assert evidence.findings[0].periods == periods[6:]
    assert detect(
        values, periods, baseline_end=6, direction="increase", rules=RuleSet.of(["ewma"])
    ).reasons == [
        f"improvement signal: EWMA (λ=0.2) beyond its upper limit: {z:.4g} > {3 * se:.4g} over "
        "4 periods (2025-07 … 2025-10)"
    ]
    # period by period: at the 2nd, C+ = 3.06 and the EWMA 2.47 se; at the 3rd, 5.61 and 3.32
    assert judge([3.0] * 3, RuleSet.of(["cusum"])) == [0, 0, 1]
    assert judge([3.0] * 3, RuleSet.of(["ewma"])) == [0, 0, 1]


# -- the t rules: glr and ewma_t (issue 13) --------------------------------------------------------
# Worked by hand: BASE has mean 0 and sum of squares 6 (5 df); the phase 3, 3, 3, 3 has no spread
# of its own (3 more df): σ pooled = √(6 / 8). Student's t quantiles from scipy.


def test_glr_worked_example() -> None:
    from scipy import stats

    sigma = math.sqrt(6 / 8)
    se = sigma * math.sqrt(1 / 4 + 1 / 6)  # the phase's mean and the baseline's, both estimated
    t = 3 / se
    values, periods = [*BASE, 3.0, 3.0, 3.0, 3.0], months("2025-01", 10)
    evidence = detect(values, periods, baseline_end=6, direction="increase",
                      rules=RuleSet.of(["glr"]))  # fmt: skip
    assert evidence.kind is SignalKind.improvement
    assert evidence.findings[0].statistic == pytest.approx(t)
    assert evidence.reasons[0] == (
        "improvement signal: GLR (t test) for a sustained shift since the approach started: mean "
        f"3 against the centre line 0 over 4 periods (2025-07 … 2025-10), t = {t:.3g} on 8 df, "
        f"p = {stats.t.sf(t, 8):.2g} ≤ 0.01"
    )
    # one period: t = x / (s √(1 + 1/6)) on 5 df; a signal just beyond the 99 % quantile
    bound = stats.t.isf(0.01, 5) * math.sqrt(6 / 5) * math.sqrt(1 + 1 / 6)
    assert judge([bound * 1.0001], RuleSet.of(["glr"])) == [1]
    assert judge([bound * 0.9999], RuleSet.of(["glr"])) == [0]
    assert judge([-bound * 1.0001], RuleSet.of(["glr"]), "decrease") == [1]
    assert judge([bound * 0.9999], RuleSet.of(["glr"], alpha=0.05)) == [1]


def test_ewma_t_worked_example() -> None:
    from scipy import stats

    weights = [0.2 * 0.8**k for k in (3, 2, 1, 0)]  # the 4 periods' weights in the EWMA
    z = 3 * sum(weights)
    se = math.sqrt(6 / 8) * math.sqrt(sum(w * w for w in weights) + sum(weights) ** 2 / 6)
    values, periods = [*BASE, 3.0, 3.0, 3.0, 3.0], months("2025-01", 10)
    evidence = detect(values, periods, baseline_end=6, direction="increase")  # the default
    assert [f.rule for f in evidence.findings] == ["ewma_t"]
    assert evidence.findings[0].statistic == pytest.approx(z / se)
    bound = stats.t.isf(0.01, 8) * se
    assert evidence.reasons[0] == (
        f"improvement signal: EWMA (λ=0.2) beyond its upper t limit: {z:.4g} > {bound:.4g} over 4 "
        f"periods (2025-07 … 2025-10), t = {z / se:.3g} on 8 df, p = {stats.t.sf(z / se, 8):.2g} "
        "≤ 0.01"
    )
    # its first period is the glr's: the same test
    for x in (2.5, 3.5, -4.0):
        assert judge([x], DEFAULT) == judge([x], RuleSet.of(["glr"]))


def test_t_rules_make_alpha_false_signals_whatever_the_baseline() -> None:
    # at the first review both are Student's t on n − 1 df: exactly alpha per direction, for a
    # baseline of 6 or 24 periods (the moving-range rules are calibrated for 12)
    rng = np.random.default_rng(3)
    for n in (6, 24):
        x = rng.standard_normal((4000, n + 1))
        claims = 0
        for row in x[:400]:
            kind = detect(list(row), [f"p{i:02d}" for i in range(n + 1)], baseline_end=n,
                          direction="increase").kind  # fmt: skip
            claims += kind is not SignalKind.none
        base = x[:, :n]
        t = (x[:, n] - base.mean(1)) / (base.std(1, ddof=1) * math.sqrt(1 + 1 / n))
        from scipy import stats

        q = stats.t.isf(0.01, n - 1)
        assert np.mean(np.abs(t) > q) == pytest.approx(0.02, abs=0.006)  # both directions
        assert claims == int(np.sum(np.abs(t[:400]) > q))


def test_a_point_beyond_a_limit_is_named_without_the_point_rule() -> None:
    # DESIGN.md: named as a special cause to look into, whether or not the point rule is in the
    # set; here the default's EWMA also claims the improvement
    evidence = detect([*BASE, 6.0], list("abcdefg"), baseline_end=6, direction="increase")
    assert evidence.kind is SignalKind.improvement
    assert evidence.special_cause == (
        "special cause to look into: 6 above the upper natural process limit [-5.32, 5.32] (a "
        "signal only with the point rule in policy.signals)"
    )
    assert evidence.reasons[-1] == evidence.special_cause
    # with no rule that fires, it is still named, and it claims nothing
    quiet = detect([*BASE, -6.0], list("abcdefg"), baseline_end=6, direction="increase",
                   rules=RuleSet.of(["run_of_7"]))  # fmt: skip
    assert quiet.kind is SignalKind.none
    assert any(
        r.startswith("special cause to look into: -6 below the lower") for r in quiet.reasons
    )
    inside = detect([*BASE, 5.0], list("abcdefg"), baseline_end=6, direction="increase")
    assert inside.special_cause is None


def test_the_review_names_a_special_cause_its_decision_left_out() -> None:
    # a target met decides keep on "target met" alone; the point below the lower limit must
    # still be named (DESIGN.md), once, whether the point rule found it or not
    from cycles.policy import Decision
    from cycles.stages import named
    from cycles.values import ApproachRef, DecisionKind

    keep = Decision(kind=DecisionKind.keep, reasons=["target met: -6 ≤ -5"],
                    next_approach=ApproachRef(name="a"))  # fmt: skip
    for rules in (DEFAULT, ISSUE_7):
        evidence = detect([*BASE, -6.0], list("abcdefg"), baseline_end=6, direction="increase",
                          rules=rules)  # fmt: skip
        assert evidence.special_cause is not None
        reasons = named(keep, evidence, None).reasons
        assert reasons[0] == "target met: -6 ≤ -5"
        assert reasons[1] == evidence.special_cause
        assert (
            named(keep.model_copy(update={"reasons": reasons}), evidence, None).reasons == reasons
        )
    # already named by the point rule's own finding: nothing added
    shown = detect([*BASE, -6.0], list("abcdefg"), baseline_end=6, direction="increase",
                   rules=SINGLE_POINT)  # fmt: skip
    adjust = keep.model_copy(update={"reasons": shown.reasons})
    assert named(adjust, shown, None).reasons == shown.reasons


# -- seasonal and trended centre lines (policy.seasonality, policy.trend) -------------------------
# Three years of months with a December peak of +0.10 on a level of 0.20, noise ± 0.004.
_RNG = random.Random(13)
NOISE = [round(_RNG.gauss(0, 0.004), 4) for _ in range(60)]  # seeded, not seasonal


def _seasonal(years: int, first: str = "2023-01") -> tuple[list[float], list[str], list[int]]:
    from cycles.periods import Period

    periods = months(first, 12 * years + 1)
    index = [Period.parse(p, "monthly").index for p in periods]
    values = [0.2 + (0.1 if i % 12 == 11 else 0.0) + NOISE[k] for k, i in
              enumerate(index)]  # fmt: skip
    return values, periods, index


def test_a_december_peak_is_a_signal_only_without_seasonality() -> None:
    from cycles.baseline import Spec

    values, periods, index = _seasonal(3)  # 2023-01 … 2026-01: review 2025-12, then 2026-01
    december = periods.index("2025-12")
    series, names, where = values[: december + 1], periods[: december + 1], index[: december + 1]
    plain = detect(series, names, baseline_end=december - 1, direction="increase", index=where)
    assert plain.kind is SignalKind.improvement  # the seasonal peak alone
    seasonal = detect(series, names, baseline_end=december - 1, direction="increase",
                      index=where, model=Spec(seasonality=12))  # fmt: skip
    assert seasonal.kind is SignalKind.none, seasonal.reasons
    assert seasonal.limits is not None
    assert seasonal.limits.centre == pytest.approx(0.3, abs=0.005)  # December's centre line
    assert "judged against a seasonal (additive factors, 12 periods) centre line" in " ".join(
        seasonal.reasons
    )
    # a real rise on top of the season is still seen: December + 0.05
    lifted = detect([*series[:-1], series[-1] + 0.05], names, baseline_end=december - 1,
                    direction="increase", index=where, model=Spec(seasonality=12))  # fmt: skip
    assert lifted.kind is SignalKind.improvement
    # auto finds the season, and says so
    auto = detect(series, names, baseline_end=december - 1, direction="increase", index=where,
                  model=Spec(auto=(12,)))  # fmt: skip
    assert auto.kind is SignalKind.none
    assert any(r.startswith("seasonality auto: a seasonal pattern of 12 periods") for r in
               auto.reasons)  # fmt: skip


def test_a_trend_is_a_signal_only_without_trend() -> None:
    from cycles.baseline import Spec

    values = [0.2 + 0.002 * i + NOISE[i] / 4 for i in range(19)]  # a steady climb
    periods = months("2025-01", 19)
    # the XmR chart calls the 19th period of a climb a signal (the baseline's moving ranges see
    # little of the climb); the default's σ pooled from the spread does not, but names the point
    plain = detect(values, periods, baseline_end=18, direction="increase", rules=SINGLE_POINT)
    assert plain.kind is SignalKind.improvement
    default = detect(values, periods, baseline_end=18, direction="increase")
    assert default.kind is SignalKind.none and default.special_cause is not None
    for rules in (SINGLE_POINT, DEFAULT):
        trended = detect(values, periods, baseline_end=18, direction="increase", rules=rules,
                         model=Spec(trend=True))  # fmt: skip
        assert trended.kind is SignalKind.none, trended.reasons
        assert trended.special_cause is None
        assert trended.limits is not None
        assert trended.limits.centre == pytest.approx(0.2 + 0.002 * 18, abs=0.001)  # extrapolated
    assert "judged against a trended centre line fitted to the baseline" in trended.reasons


# -- beta-binomial ---------------------------------------------------------------------------------


def test_beta_binomial_closed_forms() -> None:
    # With Beta(1, 1) priors: X ~ Beta(a, 1) against Y ~ Beta(1, 1) gives P(X > Y) = E[X] = a/(a+1)
    assert beta_binomial_improvement([(0, 0)], (3, 3)) == pytest.approx(4 / 5)
    assert beta_binomial_improvement([(0, 0)], (0, 3)) == pytest.approx(1 / 5)  # Beta(1, 4)
    assert beta_binomial_improvement([(3, 3)], (0, 0)) == pytest.approx(1 / 5)
    assert beta_binomial_improvement([(0, 0)], (0, 0)) == pytest.approx(1 / 2)
    # the same counts either side: 1/2 by symmetry
    assert beta_binomial_improvement([(30, 100)], (30, 100)) == pytest.approx(1 / 2)
    assert beta_binomial_improvement([(10, 50), (20, 50)], (30, 100)) == pytest.approx(1 / 2)


def _integrated(baseline: tuple[int, int], current: tuple[int, int]) -> float:
    """P(p_current > p_baseline) by numerical integration: ∫ f_current(x) F_baseline(x) dx."""
    from scipy import integrate, stats

    a = stats.beta(1 + baseline[0], 1 + baseline[1] - baseline[0])
    b = stats.beta(1 + current[0], 1 + current[1] - current[0])
    lo, hi = min(a.ppf(1e-12), b.ppf(1e-12)), max(a.isf(1e-12), b.isf(1e-12))
    value, _ = integrate.quad(lambda x: b.pdf(x) * a.cdf(x), lo, hi, limit=200, epsabs=1e-12)
    return float(value)


@pytest.mark.parametrize(
    ("baseline", "current"),
    [((12, 100), (20, 100)), ((120, 1000), (150, 1000)), ((5, 40), (1, 60)),
     ((24_000, 120_000), (2_150, 10_000)), ((24_000, 120_000), (1_930, 10_000)),
     ((2, 3), (900, 1000))],
)  # fmt: skip
def test_beta_binomial_against_numerical_integration(
    baseline: tuple[int, int], current: tuple[int, int]
) -> None:
    # Evan Miller, "Formulas for Bayesian A/B Testing" (2015): the closed-form sum, and the same
    # probability integrated numerically with scipy
    exact = beta_binomial_improvement([baseline], current)
    assert exact == pytest.approx(_integrated(baseline, current), abs=1e-7)
    assert beta_binomial_improvement([baseline], current, "decrease") == pytest.approx(1 - exact)


def _counts(rates: list[float], n: int = 10_000) -> list[tuple[float, float] | None]:
    return [(round(r * n), n) for r in rates]


def test_bayes_evidence_in_detect() -> None:
    base = [0.200, 0.201, 0.199, 0.200, 0.202, 0.198, 0.200, 0.201, 0.199, 0.200, 0.201, 0.199]
    rates = [*base, 0.208]
    periods = months("2025-01", 13)
    counts = _counts(rates)
    only = RuleSet(rules=[], bayes=True)
    evidence = detect(rates, periods, baseline_end=12, direction="increase", rules=only,
                      counts=counts)  # fmt: skip
    expected = beta_binomial_improvement([c for c in counts[:12] if c], (2080, 10_000))
    assert evidence.probability == pytest.approx(expected)
    assert evidence.kind is SignalKind.improvement and expected >= 0.95
    assert evidence.reasons == [
        f"improvement signal: probability of improvement {expected:.3f} ≥ 0.95 (beta-binomial, "
        "counts 2,080/10,000 vs baseline 24,000/120,000)",
        # beyond the limits too, without the point rule: named, not a signal by itself
        "special cause to look into: 0.208 above the upper natural process limit [0.1954, "
        "0.2046] (a signal only with the point rule in policy.signals)",
    ]
    # for a "decrease" metric the same counts are a deterioration
    worse = detect(rates, periods, baseline_end=12, direction="decrease", rules=only, counts=counts)
    assert worse.kind is SignalKind.deterioration
    assert "probability of deterioration" in worse.reasons[0]
    # bayes is off unless switched on, and needs counts
    assert detect(rates, periods, baseline_end=12, direction="increase", rules=RuleSet(rules=[]),
                  counts=counts).kind is SignalKind.none  # fmt: skip
    assert detect(rates, periods, baseline_end=12, direction="increase", rules=only).probability is None  # fmt: skip


def test_bayes_deflates_counts_by_the_baselines_overdispersion() -> None:
    # month-to-month swings of ±0.01 at n = 10,000 are ~2.5 binomial sd: φ ≫ 1
    base = [0.19, 0.21] * 6
    rates = [*base, 0.208]
    counts = _counts(rates)
    only = RuleSet(rules=[], bayes=True)
    evidence = detect(rates, months("2025-01", 13), baseline_end=12, direction="increase",
                      rules=only, counts=counts)  # fmt: skip
    plain = beta_binomial_improvement([c for c in counts[:12] if c], (2080, 10_000))
    assert plain > 0.95 > (evidence.probability or 0)
    assert evidence.kind is SignalKind.none
    assert "counts ÷ " in evidence.reasons[-1] and "< 0.95" in evidence.reasons[-1]


def test_bayes_skips_counts_that_are_not_successes_out_of_trials() -> None:
    rates = [0.2] * 12 + [0.3]
    counts = [(200.0, 1000.0)] * 12 + [(1300.0, 1000.0)]
    evidence = detect(rates, months("2025-01", 13), baseline_end=12, direction="increase",
                      rules=RuleSet(rules=[], bayes=True), counts=counts)  # fmt: skip
    assert evidence.kind is SignalKind.none and evidence.probability is None
    assert "beta-binomial not computed" in evidence.reasons[-1]


# -- properties ------------------------------------------------------------------------------------

QUARTERS = st.integers(min_value=-400, max_value=400).map(lambda i: i / 4)  # exact in binary
SERIES = st.lists(QUARTERS, min_size=7, max_size=24)


def _detect(values: list[float], baseline_end: int, direction: str = "increase") -> Evidence:
    periods = [f"p{i:02d}" for i in range(len(values))]
    return detect(values, periods, baseline_end=baseline_end, direction=direction, rules=ALL)


@given(SERIES, st.integers(min_value=6, max_value=20))
def test_limits_contain_the_centre_line(values: list[float], end: int) -> None:
    end = min(end, len(values) - 1)
    limits = _detect(values, end).limits
    assert limits is not None
    assert limits.lower <= limits.centre <= limits.upper


@given(SERIES, st.integers(min_value=6, max_value=20), st.integers(-10_000, 10_000))
def test_shifting_all_values_shifts_the_limits(values: list[float], end: int, shift: int) -> None:
    end = min(end, len(values) - 1)
    a, b = _detect(values, end), _detect([v + shift for v in values], end)
    assert a.limits is not None and b.limits is not None
    assert b.limits.centre == pytest.approx(a.limits.centre + shift, abs=1e-6)
    assert b.limits.upper == pytest.approx(a.limits.upper + shift, abs=1e-6)
    assert b.limits.lower == pytest.approx(a.limits.lower + shift, abs=1e-6)
    assert b.kind is a.kind
    assert [f.rule for f in b.findings] == [f.rule for f in a.findings]


@given(SERIES, st.integers(min_value=6, max_value=20))
def test_mirroring_the_values_and_the_direction_changes_nothing(values: list[float], end: int) -> None:  # fmt: skip
    end = min(end, len(values) - 1)
    a, b = _detect(values, end), _detect([-v for v in values], end, "decrease")
    assert b.kind is a.kind
    assert [f.rule for f in b.findings] == [f.rule for f in a.findings]


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(7, 30),
       st.integers(6, 29))  # fmt: skip
def test_a_constant_series_gives_no_signal(value: float, n: int, end: int) -> None:
    end = min(end, n - 1)
    counts = [(round(abs(value)) % 1000, 1000.0)] * n
    evidence = detect([value] * n, [f"p{i:02d}" for i in range(n)], baseline_end=end,
                      direction="increase", rules=ALL.model_copy(update={"bayes": True}),
                      counts=counts)  # fmt: skip
    assert evidence.kind is SignalKind.none and evidence.findings == []


# -- the declaration -------------------------------------------------------------------------------


def _declare(workdir: Path, signals: str) -> Path:
    write_monthly_csv(workdir / "data" / "rate.csv", dict.fromkeys(months("2025-01", 14), 0.2))
    decl = write_declaration(workdir)
    decl.write_text(decl.read_text() + signals)
    return decl


def test_policy_signals_keys(workdir: Path) -> None:
    assert load_yaml(_declare(workdir, "")).policy.signals == DEFAULT
    decl = _declare(workdir, "  signals:\n    rules: [point, run_of_7, run_of_7]\n"
                             "    bayes: true\n    bayes_threshold: 0.99\n")  # fmt: skip
    signals = load_yaml(decl).policy.signals
    assert signals.rules == [Rule.point, Rule.run_of_7] and signals.bayes
    assert signals.bayes_threshold == 0.99


@pytest.mark.parametrize(
    ("signals", "marker", "key", "message"),
    [("  signals:\n    rules: [point, run_of_8]\n", "rules:", "policy.signals.rules[1]",
      "Input should be 'point', 'two_of_three', 'run_of_7', 'trend_of_7', 'ewma', 'cusum', 'glr' "
      "or 'ewma_t'"),
     ("  signals: {bayes_threshold: 0.4}\n", "signals:", "policy.signals.bayes_threshold",
      "greater than 0.5"),
     ("  signals:\n    ewma_width: .inf\n", "ewma_width", "policy.signals.ewma_width",
      "finite number"),
     ("  signals:\n    bayes: true\n    rulez: [point]\n", "rulez", "policy.signals.rulez",
      "unknown key")],
)  # fmt: skip
def test_bad_signals_are_located_declaration_errors(
    workdir: Path, signals: str, marker: str, key: str, message: str
) -> None:
    decl = _declare(workdir, signals)
    text = decl.read_text()
    line = text[: text.index(marker)].count("\n") + 1
    with pytest.raises(DeclarationError) as info:
        load_yaml(decl)
    assert str(info.value).startswith(f"{decl}:{line}: {key}: "), str(info.value)
    assert message in str(info.value)


# -- the simulation (bench/signal_quality.py, on fewer series) -------------------------------------


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location(
        "signal_quality", ROOT / "bench" / "signal_quality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_simulation_on_fewer_series() -> None:
    bench = _bench()
    stable, shifted = bench.normal_series(400, seed=11)
    default = bench.quality(bench.rule_signal(DEFAULT), stable, shifted)
    before = bench.quality(bench.rule_signal(ISSUE_7), stable, shifted)
    # the full run (50,000 series): 0.95 % false per period and direction, 2σ within 3: 72 %
    assert 0.005 <= default.false_dir <= 0.015
    assert default.caught[2.0][1] >= 0.62
    assert default.caught[2.0][1] >= before.caught[2.0][1] + 0.03
    assert default.caught[1.0][2] > before.caught[1.0][2]
    # the vectorised rules of the bench are the module's, plain and seasonal
    wrong, made = bench.cross_check(np.vstack([stable[:4], shifted[2.0][:4]]), [DEFAULT, NHS, ALL])
    assert made == 3 * 8 * 12 and wrong == 0
    s_stable, s_shifted, line = bench.seasonal_series(300, seed=12)
    wrong, made = bench.cross_check(s_stable[:3], [DEFAULT, ALL], b=bench.SEASON_BASE, line=line)
    assert made == 2 * 3 * 12 and wrong == 0
    seasonal = bench.quality(bench.rule_signal(DEFAULT, line), s_stable, s_shifted)
    plain = bench.quality(bench.rule_signal(SINGLE_POINT, bench.Line(line.base, line.phase)),
                          s_stable, s_shifted)  # fmt: skip
    assert seasonal.false_dir <= 0.015 and seasonal.caught[2.0][1] >= 0.6
    assert plain.worst > 0.02  # the plain chart calls seasonal peaks signals
