"""Choosing an approach on evidence (cycles.choice) and the switch rules of issue 14."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from cycles.choice import (
    Choice,
    PhaseEffect,
    Posterior,
    phase_effects,
    posteriors,
    probability_best,
    seed_of,
    thompson,
)
from cycles.declaration.model import ApproachSpec, PolicySpec
from cycles.policy import PolicyInput, decide
from cycles.record import CheckSummary, CycleRecord
from cycles.signals import D2
from cycles.stats import xmr_limits
from cycles.values import ApproachRef, DecisionKind, PeriodValue

BASE = [0.18, 0.19, 0.17, 0.18, 0.19, 0.18, 0.17, 0.18, 0.19, 0.18, 0.18, 0.17]
BASE_PERIODS = [f"2024-{m:02d}" for m in range(1, 13)]


def cycle(
    period: str,
    approach: str,
    value: float | None,
    *,
    params: dict[str, Any] | None = None,
    decision: str | None = "adjust",
    failed: int = 0,
    baseline: list[str] = BASE_PERIODS,
    values: dict[str, float] | None = None,
) -> CycleRecord:
    """A reviewed cycle whose limits are the XmR limits of `values` over `baseline`."""
    known = dict(zip(BASE_PERIODS, BASE, strict=True)) | (values or {})
    if value is not None:
        known[period] = value
    limits = xmr_limits([known[p] for p in baseline], baseline)
    return CycleRecord(
        outcome="refer", period=period, cadence="monthly", target=0.3,
        approach=ApproachRef(name=approach, params=params or {}), result_value=value,
        decision=None if decision is None else DecisionKind(decision),
        checks=CheckSummary(failed=failed), limits=limits,
        metrics={"rate": [PeriodValue(period=p, value=v) for p, v in sorted(known.items())]},
    )  # fmt: skip


# -- phases ---------------------------------------------------------------------------------------


def test_a_phase_is_an_unbroken_run_of_one_approach() -> None:
    history = [cycle("2025-01", "a", 0.2), cycle("2025-02", "a", 0.2), cycle("2025-03", "b", 0.2),
               cycle("2025-04", "a", 0.2, decision=None)]  # fmt: skip
    phases = phase_effects(history, "rate")
    assert [(p.approach, p.first, p.last, p.periods) for p in phases] == [
        ("a", "2025-01", "2025-02", 2), ("b", "2025-03", "2025-03", 1),
        ("a", "2025-04", "2025-04", 1),
    ]  # fmt: skip


def test_the_effect_is_the_phase_mean_against_its_baseline_with_the_xmr_sigma() -> None:
    history = [cycle("2025-01", "a", 0.21), cycle("2025-02", "a", 0.23)]
    (phase,) = phase_effects(history, "rate")
    centre = sum(BASE) / len(BASE)
    # moving ranges within the baseline and within the phase, not the step between them
    ranges = [abs(b - a) for a, b in itertools.pairwise(BASE)] + [0.02]
    sigma = sum(ranges) / len(ranges) / D2
    assert phase.model == "normal"
    assert phase.effect == pytest.approx(0.22 - centre)
    assert phase.sigma == pytest.approx(sigma)
    assert phase.variance == pytest.approx(sigma**2 * (1 / 2 + 1 / 12))


def test_periods_on_bad_data_or_not_carried_out_are_not_judged() -> None:
    history = [
        cycle("2025-01", "a", 0.21),
        cycle("2025-02", "a", 0.5, failed=1, decision="hold"),  # a data check failed
        cycle("2025-03", "a", None, decision="hold"),  # no value
        cycle("2025-04", "a", 0.9, decision="hold"),  # a deployment gap (judged below)
    ]
    (phase,) = phase_effects(history, "rate", judged=lambda c: c.period != "2025-04")
    assert phase.periods == 1
    assert phase.effect == pytest.approx(0.21 - sum(BASE) / 12)
    (none,) = phase_effects(history[1:3], "rate")
    assert none.periods == 0 and none.effect is None


def test_an_approach_is_not_measured_against_its_own_periods() -> None:
    # b's baseline (the 12 periods before it) holds 6 periods of a: only the other 6 count
    a_periods = [f"2025-0{m}" for m in range(1, 7)]
    values = dict.fromkeys(a_periods, 0.25)
    baseline = [*BASE_PERIODS[6:], *a_periods]
    history = [cycle(p, "a", 0.25, values=values) for p in a_periods]
    history.append(cycle("2025-07", "a", 0.26, baseline=baseline, values=values))
    phases = phase_effects(history, "rate")
    assert phases[0].periods == 7
    # the last phase cycle's limits (a's own periods in them) are left out of a's baseline
    assert phases[0].effect == pytest.approx(sum([0.25] * 6 + [0.26]) / 7 - sum(BASE[6:]) / 6)


def test_a_returning_approach_takes_the_parameters_of_its_last_keep_else_its_last() -> None:
    history = [
        cycle("2025-01", "a", 0.2, params={"usd": 20}),
        cycle("2025-02", "a", 0.25, params={"usd": 30}, decision="keep"),
        cycle("2025-03", "a", 0.2, params={"usd": 30}, decision="adjust"),
        cycle("2025-04", "a", 0.2, params={"usd": 40}, decision="switch"),
        cycle("2025-05", "b", 0.2, params={"asks": 1}, decision="adjust"),
        cycle("2025-06", "b", 0.2, params={"asks": 2}, decision="switch"),
    ]
    a, b = phase_effects(history, "rate")
    assert a.params == {"usd": 30} and b.params == {"asks": 2}


def test_a_proportion_with_counts_uses_the_beta_binomial() -> None:
    counts = {p: (1_800.0 + 10 * (i % 3), 10_000.0) for i, p in enumerate(BASE_PERIODS)}
    counts["2025-01"] = (2_000.0, 10_000.0)
    record = cycle("2025-01", "a", 0.2)
    record.metrics = {
        "rate": [PeriodValue(period=p, value=s / n, numerator=s, denominator=n)
                 for p, (s, n) in counts.items()]
    }  # fmt: skip
    (phase,) = phase_effects([record], "rate", proportion=True)
    assert phase.model == "beta-binomial"
    pooled = sum(s for p, (s, _) in counts.items() if p != "2025-01") / 120_000
    assert phase.effect == pytest.approx(2_001 / 10_002 - (pooled * 120_000 + 1) / 120_002)
    assert phase.variance is not None and 0 < phase.variance < 1e-4


# -- posteriors, draws, the probability of being best -----------------------------------------------


def measured(name: str, effect: float, variance: float, periods: int = 3) -> PhaseEffect:
    return PhaseEffect(approach=name, first="2025-01", last="2025-03", periods=periods,
                       params={}, effect=effect, variance=variance, sigma=1.0)  # fmt: skip


def test_posteriors_combine_phases_with_a_prior_on_no_effect() -> None:
    posts = posteriors(["a", "b"], [measured("a", 1.0, 0.5), measured("a", 2.0, 0.5)])
    precision = 1 / 4 + 2 / 0.5  # prior sd 2σ, σ = 1
    assert posts["a"].mean == pytest.approx((1.0 / 0.5 + 2.0 / 0.5) / precision)
    assert posts["a"].sd == pytest.approx(math.sqrt(1 / precision))
    assert (posts["a"].phases, posts["a"].periods) == (2, 6)
    assert (posts["b"].mean, posts["b"].sd, posts["b"].phases) == (0.0, 2.0, 0)


def test_probability_of_being_best() -> None:
    same = [Posterior(approach="a", mean=0, sd=1), Posterior(approach="b", mean=0, sd=1)]
    assert probability_best(same, 1) == pytest.approx({"a": 0.5, "b": 0.5}, abs=1e-6)
    two = [Posterior(approach="a", mean=1, sd=1), Posterior(approach="b", mean=0, sd=1)]
    expected = 0.5 * (1 + math.erf(1 / math.sqrt(2) / math.sqrt(2)))  # Φ(1/√2)
    assert probability_best(two, 1)["a"] == pytest.approx(expected, abs=1e-6)
    assert probability_best(two, -1)["b"] == pytest.approx(expected, abs=1e-6)  # decrease
    three = [*two, Posterior(approach="c", mean=-3, sd=0.5)]
    assert sum(probability_best(three, 1).values()) == pytest.approx(1)


def test_thompson_draws_are_seeded_and_follow_the_probability_of_being_best() -> None:
    two = [Posterior(approach="a", mean=1, sd=1), Posterior(approach="b", mean=0, sd=1)]
    seed = seed_of("refer", "2026-10")
    assert seed == seed_of("refer", "2026-10") != seed_of("refer", "2026-11")
    assert thompson(two, 1, seed) == thompson(two, 1, seed)
    picks = [thompson(two, 1, seed_of("refer", f"p{i}")) for i in range(2_000)]
    assert picks.count("a") / 2_000 == pytest.approx(probability_best(two, 1)["a"], abs=0.04)


# -- the policy -------------------------------------------------------------------------------------

A = ApproachSpec(name="a", params={"usd": 20}, adjust={"usd": {"step": 10, "max": 40}})
B = ApproachSpec(name="b", params={"asks": 2})
C = ApproachSpec(name="c", params={"k": 1})
LIMITS = xmr_limits(BASE, BASE_PERIODS)


def switching(**overrides: Any) -> PolicyInput:
    """A period of `b` (nothing to adjust, no signal): rule 4 switches."""
    base: dict[str, Any] = dict(  # noqa: C408 - keyword form reads like the model
        metric="rate", period="2026-10", direction="increase", target=0.3, value=0.18,
        limits=LIMITS, baseline_count=12, approach=ApproachRef(name="b", params={"asks": 2}),
        approaches=[A, B, C], outcome="refer",
    )  # fmt: skip
    base.update(overrides)
    return PolicyInput(**base)


def phase(name: str, effect: float, params: dict[str, Any] | None = None) -> PhaseEffect:
    return PhaseEffect(approach=name, first="2026-01", last="2026-03", periods=3,
                       params=params or {}, effect=effect, variance=1e-6, sigma=0.01)  # fmt: skip


def test_an_approach_not_tried_yet_comes_first_whatever_the_evidence() -> None:
    decision = decide(switching(phases=[phase("a", 0.05), phase("b", 0.0)]))
    assert decision.kind is DecisionKind.switch
    assert decision.next_approach == ApproachRef(name="c", params={"k": 1})
    assert "switching to c (not tried yet)" in decision.reasons


def test_every_approach_tried_the_choice_is_on_evidence() -> None:
    phases = [phase("a", 0.05, {"usd": 30}), phase("c", -0.02), phase("b", 0.0)]
    decision = decide(switching(phases=phases))
    assert decision.kind is DecisionKind.switch
    assert decision.next_approach == ApproachRef(name="a", params={"usd": 30})
    text = " | ".join(decision.reasons)
    assert "nothing left to adjust: b has no adjustable parameters" in text
    assert "every approach tried: choosing on evidence" in text
    assert "a: +0.0499 ± 0.001 over 1 phase, 3 periods; P(best) 1.00" in text  # shrunk a little
    assert "b (current): " in text and "c: -0.02" in text
    assert "Thompson draw (seed refer/2026-10) picks a" in text
    returns = "switching to a with the parameters of its best phase (2026-01 … 2026-03, effect "
    assert f"{returns}+0.05): usd=30" in text
    assert decision.summary == "no signal, nothing left to adjust; a on evidence"
    assert decide(switching(phases=phases)) == decision  # the same period decides the same


def test_the_current_approach_drawn_again_stays() -> None:
    phases = [phase("a", -0.05), phase("c", -0.02), phase("b", 0.03)]
    decision = decide(switching(phases=phases))
    assert decision.kind is DecisionKind.hold
    assert decision.next_approach == ApproachRef(name="b", params={"asks": 2})
    assert "b stays as it is" in decision.reasons
    assert decision.summary.endswith("b stays on evidence")


def test_decrease_chooses_the_lowest_effect() -> None:
    phases = [phase("a", 0.05), phase("c", -0.02), phase("b", 0.0)]
    decision = decide(switching(phases=phases, direction="decrease", target=0.1))
    assert decision.next_approach.name == "c"


def test_choice_order_holds_once_every_approach_was_tried() -> None:
    phases = [phase("a", 0.05), phase("c", -0.02), phase("b", 0.0)]
    decision = decide(switching(phases=phases, choice=Choice.order, value=0.1))
    assert decision.kind is DecisionKind.hold
    assert decision.next_approach == ApproachRef(name="b", params={"asks": 2})
    assert decision.reasons[-1].startswith("every approach tried")
    assert "deterioration signal" in decision.reasons[1]  # still says why it would switch
    assert decision.summary == "deterioration signal; every approach tried"


def test_an_adjust_names_only_what_moved() -> None:
    inp = switching(approach=ApproachRef(name="a", params={"usd": 30}), approaches=[A, B])
    decision = decide(inp)
    assert decision.kind is DecisionKind.adjust
    assert "usd 30 → 40" in decision.reasons
    assert not any("bound" in r for r in decision.reasons)


def test_policy_choice_is_declared() -> None:
    assert PolicySpec().choice is Choice.evidence
    assert PolicySpec.model_validate({"choice": "order"}).choice is Choice.order
    with pytest.raises(ValueError, match="choice"):
        PolicySpec.model_validate({"choice": "random"})
