"""When deployments run: a cron per cadence, and which period a run is for."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from cycles.declaration.model import Outcome
from cycles.periods import Cadence, Period

# Shortly after each period closes (06:00 in the outcome's timezone), so late rows have landed.
DEFAULT_CRON = {
    Cadence.weekly: "0 6 * * 1",  # Mondays
    Cadence.monthly: "0 6 1 * *",  # the 1st of each month
    Cadence.quarterly: "0 6 1 1,4,7,10 *",  # the 1st of each quarter
}


def cron_of(outcome: Outcome) -> str:
    return outcome.schedule.cron or DEFAULT_CRON[outcome.cadence]


def period_for(outcome: Outcome, when: datetime, *, review: bool) -> Period:
    """The period a deployment run started at `when` is for, when none was given.

    A scheduled run reviews the period that just ended; a review asked for (a campaign ended)
    is for the period holding `when`.
    """
    local = when.astimezone(ZoneInfo(outcome.timezone)).date()
    holding = Period.containing(local, outcome.cadence)
    return holding if review else holding - 1
