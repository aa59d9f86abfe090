"""When deployments run: a cron per cadence. Each run at the start of a period is that period's
tick (`cycles.turn`): it reviews what ended and opens the new period."""

from __future__ import annotations

from cycles.declaration.model import Outcome
from cycles.periods import Cadence

# At the start of each period (06:00 in the outcome's timezone): the tick reviews the period that
# just ended and opens the new one, so its actions run on the first day.
DEFAULT_CRON = {
    Cadence.weekly: "0 6 * * 1",  # Mondays
    Cadence.monthly: "0 6 1 * *",  # the 1st of each month
    Cadence.quarterly: "0 6 1 1,4,7,10 *",  # the 1st of each quarter
}


def cron_of(outcome: Outcome) -> str:
    return outcome.schedule.cron or DEFAULT_CRON[outcome.cadence]
