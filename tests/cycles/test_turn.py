"""The tick's plan: which reviews are due at a slot, which wait and until when (cycles.turn)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cycles.declaration import load
from cycles.declaration.model import Outcome, ReviewSpec
from cycles.periods import Cadence, Period
from cycles.record import CycleRecord
from cycles.turn import deadline_reason, pending_text, plan, review_times, slot_period
from cycles.values import STAGES, Stage

from conftest import ROOT

REFERRALS = load(ROOT / "flows" / "referrals" / "referrals.yaml")  # Europe/Amsterdam
SLOT = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 06:00 on Nov 1 in Amsterdam: the tick of 2026-11


def outcome(**review: Any) -> Outcome:
    spec = ReviewSpec(**review) if review else None
    return REFERRALS.model_copy(update={"review": spec})


def cycle(period: str, *, reviewed: bool = False, status: str | None = None) -> CycleRecord:
    stages = list(STAGES) if reviewed else [Stage.result, Stage.approach, Stage.deployment]
    return CycleRecord(
        outcome="referrals", period=period, cadence="monthly", target=0.3,
        completed_stages=stages, status=status or ("reviewed" if reviewed else "open"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("when", "period"),
    [
        (datetime(2026, 11, 1, 5, 0, tzinfo=UTC), "2026-11"),  # 06:00 in Amsterdam on the 1st
        (datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "2026-11"),  # already Nov 1 there
        (datetime(2026, 10, 31, 22, 30, tzinfo=UTC), "2026-10"),  # still Oct 31 there
        (datetime(2027, 1, 1, 5, 0, tzinfo=UTC), "2027-01"),
    ],
)
def test_a_tick_opens_the_period_holding_its_slot(when: datetime, period: str) -> None:
    assert str(slot_period(REFERRALS, when)) == period


def test_without_a_review_block_the_ended_period_is_reviewed_at_the_tick() -> None:
    turn = plan(outcome(), [cycle("2026-09", reviewed=True), cycle("2026-10")], SLOT, SLOT)
    assert str(turn.opening) == "2026-11"
    assert [str(r.period) for r in turn.closing] == ["2026-10"]
    assert not turn.waiting and not turn.closing[0].deadline


def test_nothing_to_close_when_the_ended_period_was_reviewed_or_never_opened() -> None:
    assert plan(outcome(), [cycle("2026-10", reviewed=True)], SLOT, SLOT).closing == ()
    assert plan(outcome(), [], SLOT, SLOT).closing == ()
    # the period being opened is never closed by its own tick, even if it has a cycle
    assert plan(outcome(), [cycle("2026-11")], SLOT, SLOT).closing == ()


def test_every_older_unreviewed_cycle_is_closed_oldest_first() -> None:
    cycles = [cycle("2026-10"), cycle("2026-08"), cycle("2026-09", reviewed=True)]
    assert [str(r.period) for r in plan(outcome(), cycles, SLOT, SLOT).closing] == [
        "2026-08",
        "2026-10",
    ]


def test_a_cycle_awaiting_sign_off_or_void_is_left_to_itself() -> None:
    cycles = [cycle("2026-09", status="awaiting sign-off"), cycle("2026-10", status="void")]
    turn = plan(outcome(), cycles, SLOT, SLOT)
    assert turn.closing == () and turn.waiting == ()


def test_a_delay_postpones_the_review_until_late_rows_can_land() -> None:
    delayed = outcome(delay=timedelta(days=3))
    cycles = [cycle("2026-10")]
    turn = plan(delayed, cycles, SLOT, SLOT)
    assert turn.closing == ()
    [waiting] = turn.waiting
    # Oct ended at midnight Nov 1 in Amsterdam (23:00 UTC), plus three days
    assert waiting.due_at == datetime(2026, 11, 3, 23, 0, tzinfo=UTC)
    assert not waiting.deadline
    later = plan(delayed, cycles, SLOT, waiting.due_at)
    assert [str(r.period) for r in later.closing] == ["2026-10"]


def test_an_event_review_waits_for_its_event_until_the_deadline() -> None:
    event = outcome(after_event="campaign.ended", delay=timedelta(days=14))
    cycles = [cycle("2026-10")]
    turn = plan(event, cycles, SLOT, SLOT)
    assert turn.closing == ()
    [waiting] = turn.waiting
    # default deadline: one period after Oct ended (Dec 1, midnight in Amsterdam) plus the delay
    assert waiting.deadline
    assert waiting.due_at == datetime(2026, 12, 15, 0, 0, tzinfo=UTC) - timedelta(hours=1)
    # the tick of December: the deadline is not there yet, still waiting
    december = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    assert plan(event, cycles, december, december).closing == ()
    # the tick of January: past the deadline, the tick reviews it itself
    january = datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    [due] = plan(event, cycles, january, january).closing
    assert due.deadline and str(due.period) == "2026-10"


def test_a_declared_deadline_counts_from_the_period_end() -> None:
    event = outcome(after_event="campaign.ended", deadline=timedelta(days=2))
    due, deadline = review_times(event, Period.parse("2026-10", Cadence.monthly))
    assert due is None
    assert deadline == datetime(2026, 11, 2, 23, 0, tzinfo=UTC)
    assert deadline_reason(event, Period.parse("2026-10", Cadence.monthly)) == (
        "no campaign.ended event by 2026-11-03 00:00 CET"
    )


def test_pending_texts_say_what_a_review_waits_for() -> None:
    assert pending_text(outcome(after_event="campaign.ended", delay=timedelta(days=14)),
                        cycle("2026-10")) == "review of 2026-10 pending: campaign.ended + P14D"  # fmt: skip
    assert pending_text(outcome(delay=timedelta(days=3)), cycle("2026-10")) == (
        "review of 2026-10 pending: due 2026-11-04 00:00 CET (delay P3D)"
    )
    assert pending_text(outcome(), cycle("2026-10", status="awaiting sign-off")) == (
        "review of 2026-10 awaiting sign-off"
    )


@pytest.mark.parametrize(
    ("review", "message"),
    [
        ({"deadline": "P3D"}, "a deadline needs after_event"),
        ({"after_event": "campaign.ended", "delay": "P14D", "deadline": "P7D"},
         "the deadline comes before the delay is over"),
        ({"delay": "-P1D"}, "delay must not be negative"),
    ],
)  # fmt: skip
def test_review_keys_are_checked(review: dict[str, Any], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        ReviewSpec.model_validate(review)
