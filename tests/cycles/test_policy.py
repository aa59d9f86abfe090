"""The default decision policy of DESIGN.md, rule by rule (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from cycles.declaration.model import ApproachSpec
from cycles.policy import PolicyInput, decide
from cycles.signals import Evidence, RuleSet, detect
from cycles.stats import xmr_limits
from cycles.values import ApproachRef, DecisionKind, SignalKind

INCENTIVE = ApproachSpec(
    name="incentive",
    params={"usd": 20, "channels": 2},
    adjust={"usd": {"step": 10, "max": 40}, "channels": {"step": 1, "min": 1}},
)
NUDGE = ApproachSpec(name="nudge", params={"asks": 2})
FLAT = [0.18, 0.19, 0.17, 0.18, 0.19, 0.18, 0.17, 0.18, 0.19, 0.18, 0.18, 0.17]
LIMITS = xmr_limits(FLAT)  # centre ~0.18, limits ~[0.154, 0.206]


def case(**overrides: Any) -> PolicyInput:
    base: dict[str, Any] = dict(  # noqa: C408 - keyword form reads like the model
        metric="rate", period="2026-10", direction="increase", target=0.30, value=0.185,
        previous_values=[0.18, 0.18], failed_checks=[], limits=LIMITS, baseline_count=12,
        approach=ApproachRef(name="incentive", params={"usd": 20, "channels": 2}),
        approaches=[INCENTIVE, NUDGE], adjustments_in_row=0, deployment_gaps=[],
        sustain=3, max_adjustments=3,
    )  # fmt: skip
    base.update(overrides)
    return PolicyInput(**base)


def signalled(phase: list[float], rules: list[str] | None = None, direction: str = "increase") -> Evidence:  # fmt: skip
    """What cycles.signals finds at the last of `phase`, after the FLAT baseline."""
    values = [*FLAT, *phase]
    return detect(values, [f"p{i:02d}" for i in range(len(values))], baseline_end=len(FLAT),
                  direction=direction, rules=RuleSet() if rules is None else RuleSet.of(rules))  # fmt: skip


# referrals out of 10,000 customers a month: binomial variation only, then 1,880 (+2 sd)
REFERRED = [1_800, 1_790, 1_812, 1_796, 1_805, 1_801, 1_788, 1_809, 1_798, 1_803, 1_795, 1_803]


def counted(last: int) -> Evidence:
    counts = [(float(n), 10_000.0) for n in [*REFERRED, last]]
    rates = [n / d for n, d in counts]
    return detect(rates, [f"p{i:02d}" for i in range(13)], baseline_end=12, direction="increase",
                  rules=RuleSet(rules=[], bayes=True), counts=counts)  # fmt: skip


CASES = [
    # (id, input, decision, substrings that must appear in the reasons, next approach)
    ("hold: a data check failed", case(failed_checks=["not_null on rate: 1 null"], value=0.35),
     "hold", ["data check failed: not_null on rate"], ("incentive", {"usd": 20, "channels": 2})),
    ("hold: no value for the period", case(value=None),
     "hold", ["no value of rate for 2026-10"], ("incentive", {"usd": 20, "channels": 2})),
    ("achieved: met now and the 2 periods before", case(value=0.31, previous_values=[0.2, 0.30, 0.32]),
     "achieved", ["met for 3 periods in a row"], ("incentive", {"usd": 20, "channels": 2})),
    ("keep, not achieved: one earlier period missed", case(value=0.31, previous_values=[0.29, 0.32]),
     "keep", ["target met: 0.31 ≥ 0.3"], ("incentive", {"usd": 20, "channels": 2})),
    ("keep, not achieved: an earlier period has no value", case(value=0.31, previous_values=[None, 0.32]),
     "keep", ["target met"], ("incentive", {"usd": 20, "channels": 2})),
    ("achieved with sustain 1", case(value=0.31, previous_values=[], sustain=1),
     "achieved", ["met for 1 periods"], ("incentive", {"usd": 20, "channels": 2})),
    ("keep: improvement signal below target", case(value=0.25),
     "keep", ["improvement signal: 0.25 above the upper limit"], ("incentive", {"usd": 20, "channels": 2})),
    ("no signal with fewer than 6 baseline periods", case(value=0.25, limits=xmr_limits(FLAT[:5]), baseline_count=5),
     "adjust", ["no signal can be claimed: 5 baseline periods (6 needed"], ("incentive", {"usd": 30, "channels": 1})),
    ("switch: deterioration signal", case(value=0.12),
     "switch", ["deterioration signal: 0.12 below the lower limit", "switching to nudge"], ("nudge", {"asks": 2})),
    ("switch: max_adjustments in a row without a keep", case(adjustments_in_row=3),
     "switch", ["3 adjustments in a row without a keep"], ("nudge", {"asks": 2})),
    ("no switch before max_adjustments", case(adjustments_in_row=2),
     "adjust", ["usd 20 → 30", "channels 2 → 1"], ("incentive", {"usd": 30, "channels": 1})),
    ("switch: an approach not tried yet first, wherever it is declared", case(approach=ApproachRef(name="nudge", params={"asks": 2}), value=0.1),
     "switch", ["switching to incentive (not tried yet)"], ("incentive", {"usd": 20, "channels": 2})),
    ("deterioration, no other approach: adjust", case(value=0.12, approaches=[INCENTIVE]),
     "adjust", ["deterioration signal", "no other approach is declared"], ("incentive", {"usd": 30, "channels": 1})),
    ("max_adjustments, no other approach: adjust", case(adjustments_in_row=5, approaches=[INCENTIVE]),
     "adjust", ["5 adjustments in a row", "no other approach"], ("incentive", {"usd": 30, "channels": 1})),
    ("switch: nothing left to adjust", case(approach=ApproachRef(name="incentive", params={"usd": 40, "channels": 1})),
     "switch", ["no signal (point): 0.185 within", "nothing left to adjust: usd already at its bound 40, channels already at its bound 1", "switching to nudge (not tried yet)"], ("nudge", {"asks": 2})),
    ("adjust names only the parameters that moved", case(approach=ApproachRef(name="incentive", params={"usd": 40, "channels": 2})),
     "adjust", ["channels 2 → 1"], ("incentive", {"usd": 40, "channels": 1})),
    ("switch at once: no adjustable parameters", case(approach=ApproachRef(name="nudge", params={"asks": 2})),
     "switch", ["nothing left to adjust: nudge has no adjustable parameters", "switching to incentive (not tried yet)"], ("incentive", {"usd": 20, "channels": 2})),
    ("adjust: a step never passes the bound", case(approach=ApproachRef(name="incentive", params={"usd": 35, "channels": 2})),
     "adjust", ["usd 35 → 40"], ("incentive", {"usd": 40, "channels": 1})),
    ("hold: nothing adjustable and no other approach", case(approach=ApproachRef(name="nudge", params={"asks": 2}), approaches=[NUDGE]),
     "hold", ["nothing left to adjust: nudge has no adjustable parameters", "nudge runs again unchanged"], ("nudge", {"asks": 2})),
    ("decrease: below target is met", case(direction="decrease", target=0.2, value=0.15, previous_values=[0.25, 0.3]),
     "keep", ["target met: 0.15 ≤ 0.2"], ("incentive", {"usd": 20, "channels": 2})),
    ("decrease: below the lower limit is an improvement", case(direction="decrease", target=0.1, value=0.12),
     "keep", ["improvement signal: 0.12 below the lower limit"], ("incentive", {"usd": 20, "channels": 2})),
    ("decrease: above the upper limit is a deterioration", case(direction="decrease", target=0.1, value=0.25),
     "switch", ["deterioration signal: 0.25 above the upper limit"], ("nudge", {"asks": 2})),
    ("decrease: achieved", case(direction="decrease", target=0.2, value=0.1, previous_values=[0.15, 0.19]),
     "achieved", ["met for 3 periods"], ("incentive", {"usd": 20, "channels": 2})),
    ("deployment gap: hold ahead of switch", case(value=0.12, deployment_gaps=["action ask failed"]),
     "hold", ["deployment gap: action ask failed", "not carried out as planned"], ("incentive", {"usd": 20, "channels": 2})),
    ("deployment gap: hold ahead of adjust", case(deployment_gaps=["action ask pending"]),
     "hold", ["deployment gap"], ("incentive", {"usd": 20, "channels": 2})),
    ("deployment gap does not beat keep", case(value=0.31, deployment_gaps=["action ask failed"]),
     "keep", ["target met"], ("incentive", {"usd": 20, "channels": 2})),
    ("bad data beats a met target", case(value=0.5, previous_values=[0.4, 0.4], failed_checks=["between on rate"]),
     "hold", ["approach unchanged on bad or missing data"], ("incentive", {"usd": 20, "channels": 2})),
    # signals beyond the single point (cycles.signals): rule 3 keeps, rule 4 switches, reasons name the rule
    ("keep: a run of 7 above the centre line", case(value=0.19, evidence=signalled([0.19] * 7, ["point", "run_of_7"])),
     "keep", ["improvement signal: run of 7 periods above the centre line 0.18 (p12 … p18)"], ("incentive", {"usd": 20, "channels": 2})),
    ("no run yet: 6 periods above the centre line", case(value=0.19, evidence=signalled([0.19] * 6, ["point", "run_of_7"])),
     "adjust", ["no signal (point, run_of_7): 0.19 within the natural process limits"], ("incentive", {"usd": 30, "channels": 1})),
    ("switch: the EWMA below its lower limit", case(value=0.168, evidence=signalled([0.168] * 5, ["point", "ewma"])),
     "switch", ["deterioration signal: EWMA (λ=0.2) beyond its lower limit", "switching to nudge"], ("nudge", {"asks": 2})),
    ("keep: 2 of 3 near the lower limit, decrease", case(direction="decrease", target=0.1, value=0.16, evidence=signalled([0.16, 0.18, 0.16], ["two_of_three"], direction="decrease")),
     "keep", ["improvement signal: 2 of the last 3 periods beyond two-thirds of the way to the lower limit"], ("incentive", {"usd": 20, "channels": 2})),
    ("keep: probability of improvement", case(value=0.188, evidence=counted(1_880)),
     "keep", ["improvement signal: probability of improvement 0.977 ≥ 0.95 (beta-binomial, counts 1,880/10,000 vs baseline 21,600/120,000)"], ("incentive", {"usd": 20, "channels": 2})),
    ("adjust: probability of improvement below 0.95", case(value=0.185, evidence=counted(1_850)),
     "adjust", ["no beta-binomial signal: probability of improvement 0.8", "< 0.95 (beta-binomial, counts 1,850/10,000"], ("incentive", {"usd": 30, "channels": 1})),
    ("point decides: the lower limit after a high run", case(value=0.15, evidence=signalled([0.2] * 6 + [0.15], ["point", "cusum"])),
     "switch", ["deterioration signal: 0.15 below the lower limit", "the point beyond the limit decides"], ("nudge", {"asks": 2})),
    ("conflicting signals: adjust", case(value=0.181, evidence=signalled([0.2 - 0.003 * i for i in range(7)], ["run_of_7", "trend_of_7"])),
     "adjust", ["run of 7 periods above", "7 periods in a row falling", "conflicting signals: none claimed"], ("incentive", {"usd": 30, "channels": 1})),
    ("target met with a signal: keep names both", case(value=0.31, evidence=signalled([0.31], ["point", "ewma"])),
     "keep", ["target met: 0.31 ≥ 0.3", "improvement signal: 0.31 above the upper limit"], ("incentive", {"usd": 20, "channels": 2})),
]  # fmt: skip


@pytest.mark.parametrize(
    ("inp", "kind", "reasons", "nxt"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule(
    inp: PolicyInput, kind: str, reasons: list[str], nxt: tuple[str, dict[str, Any]]
) -> None:
    decision = decide(inp)
    assert decision.kind == DecisionKind(kind), decision.reasons
    text = " | ".join(decision.reasons)
    for expected in reasons:
        assert expected in text
    assert (decision.next_approach.name, decision.next_approach.params) == nxt


def test_every_decision_has_reasons() -> None:
    for _, inp, *_ in CASES:
        assert decide(inp).reasons


def test_signal_is_reported() -> None:
    assert decide(case(value=0.25)).signal is SignalKind.improvement
    assert decide(case(value=0.12)).signal is SignalKind.deterioration
    assert decide(case(value=0.185)).signal is SignalKind.none
    assert decide(case(value=0.25, limits=None, baseline_count=0)).signal is SignalKind.none


def test_integer_parameters_stay_integers() -> None:
    nxt = decide(case()).next_approach
    assert isinstance(nxt.params["usd"], int)


def test_summary_names_the_rules() -> None:
    assert decide(case(value=0.25)).summary == "improvement signal"  # DESIGN.md's point rule
    run = decide(case(value=0.19, evidence=signalled([0.19] * 7, ["point", "run_of_7"])))
    assert run.summary == "improvement signal (run_of_7)" and run.signal is SignalKind.improvement
    down = decide(case(value=0.168, evidence=signalled([0.168] * 5, ["point", "ewma"])))
    assert down.summary == "deterioration signal (ewma)"


def test_evidence_from_detect_equals_the_single_point_rule_on_limits() -> None:
    # without evidence the policy applies DESIGN.md's rule to `limits`; detect says the same
    for value in (0.12, 0.15, 0.185, 0.2, 0.25):
        alone = decide(case(value=value))
        found = decide(case(value=value, evidence=signalled([value], ["point"])))
        assert (found.kind, found.signal) == (alone.kind, alone.signal)
        assert found.reasons == alone.reasons
