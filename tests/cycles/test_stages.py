"""Choosing the approach when reviews lag behind the periods they judge (cycles.stages)."""

from __future__ import annotations

from datetime import timedelta

from cycles.declaration import load
from cycles.declaration.model import ReviewSpec
from cycles.policy import Decision
from cycles.record import CycleRecord
from cycles.stages import choose_approach, keep_plan_in_force
from cycles.values import STAGES, ApproachRef, DecisionKind, Stage

from conftest import ROOT

OUTCOME = load(ROOT / "flows" / "referrals" / "referrals.yaml").model_copy(
    update={"review": ReviewSpec(after_event="campaign.ended", delay=timedelta(days=14))}
)
INCENTIVE = ApproachRef(name="referral-incentive", params={"incentive_usd": 20})
NUDGE = ApproachRef(name="promoter-nudge", params={"asks_per_week": 2})


def opened(period: str, approach: ApproachRef) -> CycleRecord:
    return CycleRecord(
        outcome="referrals", period=period, cadence="monthly", target=0.3, approach=approach,
        completed_stages=[Stage.result, Stage.approach, Stage.deployment],
    )  # fmt: skip


def reviewed(period: str, approach: ApproachRef, nxt: ApproachRef, kind: str) -> CycleRecord:
    record = opened(period, approach)
    record.completed_stages = list(STAGES)
    record.status, record.decision, record.next_approach = "reviewed", DecisionKind(kind), nxt
    return record


def test_the_first_cycle_takes_the_first_declared_approach() -> None:
    approach, why = choose_approach(OUTCOME, [])
    assert approach == INCENTIVE and why.startswith("first cycle of referrals")


def test_before_any_review_the_approach_in_force_is_carried_over() -> None:
    approach, why = choose_approach(OUTCOME, [opened("2026-10", NUDGE)])
    assert approach == NUDGE
    assert why == (
        "the approach in force, carried over; review of 2026-10 pending: campaign.ended + P14D"
    )


def test_the_latest_review_plans_even_when_later_reviews_are_pending() -> None:
    history = [
        reviewed("2026-09", INCENTIVE, NUDGE, "switch"),  # landed while 2026-10 ran incentive
        opened("2026-10", INCENTIVE),
    ]
    approach, why = choose_approach(OUTCOME, history)
    assert approach == NUDGE
    assert why == (
        "planned by the 2026-09 review (switch); review of 2026-10 pending: campaign.ended + P14D"
    )


def test_a_late_review_never_undoes_the_plan_a_later_period_runs() -> None:
    # 2026-10 ran incentive (carried over); 2026-11 already runs the nudge the 2026-09 review chose
    judged = opened("2026-10", INCENTIVE)
    bumped = ApproachRef(name="referral-incentive", params={"incentive_usd": 30})
    proposal = Decision(kind=DecisionKind.adjust, reasons=["no signal"], next_approach=bumped)
    kept = keep_plan_in_force(proposal, judged, [opened("2026-11", NUDGE)])
    assert kept.kind is DecisionKind.adjust  # what the review found about its own period
    assert kept.next_approach == NUDGE
    assert kept.reasons[-1] == (
        "promoter-nudge already runs in 2026-11, planned while this review was pending: it stays "
        "planned (this review judged referral-incentive in 2026-10)"
    )
    # the later period runs the same approach: the review plans as usual
    same = keep_plan_in_force(proposal, judged, [opened("2026-11", INCENTIVE)])
    assert same == proposal
    assert keep_plan_in_force(proposal, judged, []) == proposal
