"""The scheduled tick: one PDCA turn (DESIGN.md "The scheduled tick"). Plain functions, no I/O.

A tick is for a slot, the scheduled start of a run. It closes what ended and opens the period
holding the slot:
1. Check/Act: every earlier cycle that was opened and not yet reviewed gets its Assessment and
   Review when that review is due: `review.delay` after its period ended, or, for an outcome
   whose reviews wait for an event (`review.after_event`), at its deadline.
2. Plan/Do: the period holding the slot opens (Result, Approach, Deployment).
A review not yet due waits: for its event (the event's own run reviews it), and for a run
scheduled at the time it becomes due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cycles.declaration.model import Outcome
from cycles.periods import Period
from cycles.record import CycleRecord
from cycles.values import Stage

AWAITING_SIGN_OFF = "awaiting sign-off"
VOID = "void"


@dataclass(frozen=True)
class Review:
    """The review of one period, due now (`closing`) or at `due_at` (`waiting`)."""

    period: Period
    due_at: datetime  # when it is (or becomes) due without an event
    deadline: bool = False  # due at the deadline, because no event came (see deadline_reason)


@dataclass(frozen=True)
class Turn:
    slot: datetime  # the scheduled start the tick is for (UTC, radar's clock)
    opening: Period  # N: the period holding the slot
    closing: tuple[Review, ...]  # reviews due now, oldest period first
    waiting: tuple[Review, ...]  # reviews not due yet, each with the time a run should do it


def slot_period(outcome: Outcome, slot: datetime) -> Period:
    """The period a tick at `slot` opens: the one holding it in the outcome's timezone."""
    return Period.containing(slot.astimezone(ZoneInfo(outcome.timezone)).date(), outcome.cadence)


def reviewed(cycle: CycleRecord) -> bool:
    return Stage.review in cycle.completed_stages


def open_for_review(cycle: CycleRecord) -> bool:
    """Opened, not reviewed, and not waiting for a person or set aside."""
    return not reviewed(cycle) and cycle.status not in (AWAITING_SIGN_OFF, VOID)


def review_times(outcome: Outcome, period: Period) -> tuple[datetime | None, datetime | None]:
    """(due, deadline) of the period's review, in UTC.

    Without `review.after_event` it is due `delay` after the period ended (no deadline); with
    it, only on the event (due None) or at the deadline: `review.deadline` after the period
    ended, by default `delay` plus one period.
    """
    review, tz = outcome.review, outcome.timezone
    ended = period.ends_at(tz)
    if review is None:
        return ended, None
    if review.after_event is None:
        return ended + review.delay, None
    if review.deadline is not None:
        return None, ended + review.deadline
    return None, (period + 1).ends_at(tz) + review.delay


def plan(outcome: Outcome, cycles: Sequence[CycleRecord], slot: datetime, now: datetime) -> Turn:
    """What the tick at `slot` does at `now`, given the outcome's recorded cycles."""
    opening = slot_period(outcome, slot)
    closing: list[Review] = []
    waiting: list[Review] = []
    for cycle in sorted(cycles, key=lambda c: c.period):
        period = Period.parse(cycle.period, outcome.cadence)
        if period >= opening or not open_for_review(cycle):
            continue
        due, deadline = review_times(outcome, period)
        if due is not None:
            (closing if now >= due else waiting).append(Review(period, due))
        elif deadline is not None:
            (closing if now >= deadline else waiting).append(Review(period, deadline, True))
    return Turn(slot=slot, opening=opening, closing=tuple(closing), waiting=tuple(waiting))


def event_name(outcome: Outcome) -> str:
    return (outcome.review.after_event if outcome.review else None) or "campaign.ended"


def pending_text(outcome: Outcome, cycle: CycleRecord) -> str:
    """Why a cycle is not reviewed yet: "review of 2026-10 pending: campaign.ended + P14D"."""
    if cycle.status == AWAITING_SIGN_OFF:
        return f"review of {cycle.period} awaiting sign-off"
    review = outcome.review
    head = f"review of {cycle.period} pending"
    if review is not None and review.after_event is not None:
        return f"{head}: {review.after_event} + {iso_duration(review.delay)}"
    if review is not None and review.delay:
        period = Period.parse(cycle.period, outcome.cadence)
        due, _ = review_times(outcome, period)
        assert due is not None
        return f"{head}: due {local_time(outcome, due)} (delay {iso_duration(review.delay)})"
    return head


def deadline_reason(outcome: Outcome, period: Period) -> str:
    """The first reason of a review its event never asked for: "no campaign.ended event by ..."."""
    deadline = review_times(outcome, period)[1]
    by = local_time(outcome, deadline) if deadline is not None else "its deadline"
    return f"no {event_name(outcome)} event by {by}"


def local_time(outcome: Outcome, when: datetime) -> str:
    """2026-12-15 00:00 CET: a time as the outcome's people read it."""
    return f"{when.astimezone(ZoneInfo(outcome.timezone)):%Y-%m-%d %H:%M %Z}"


def iso_duration(span: timedelta) -> str:
    """P14D, PT10S: how declarations and prefect.yaml write durations."""
    from pydantic import TypeAdapter

    return str(TypeAdapter(timedelta).dump_python(span, mode="json"))
