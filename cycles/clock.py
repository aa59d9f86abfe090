"""radar's clock: the one place that reads the time a cycle's periods and due reviews are judged by.

Everything that asks "which period is current" or "is this review due" goes through `now()`.
Timestamps of what happened (stage runs, ledger rows) use the real clock.

Tests that run many months in minutes across processes (a Prefect worker's run processes) shift
this clock: `RADAR_TEST_CLOCK` names a file holding an offset in seconds, read at each call.
Without that variable the offset is zero and nothing is read. Times radar hands to Prefect
(a run scheduled for a deadline) and reads from it (a run's scheduled start) are converted with
`to_prefect` / `from_prefect`, so a shifted clock and Prefect's real one agree.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ENV_VAR = "RADAR_TEST_CLOCK"


def offset() -> timedelta:
    """How far radar's clock is ahead of the real one (zero unless a test shifts it)."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return timedelta(0)
    try:
        return timedelta(seconds=float(Path(path).read_text().strip() or 0))
    except (OSError, ValueError):
        return timedelta(0)


def now() -> datetime:
    """The current time (UTC, aware) as radar judges periods and reviews by."""
    return datetime.now(UTC) + offset()


def today_in(timezone: str) -> date:
    """Today's date in `timezone`, by radar's clock."""
    return now().astimezone(ZoneInfo(timezone)).date()


def from_prefect(when: datetime) -> datetime:
    """A time Prefect gave (a run's scheduled start) on radar's clock."""
    return when + offset()


def to_prefect(when: datetime) -> datetime:
    """A time on radar's clock as Prefect's real clock reads it (to schedule a run)."""
    return when - offset()
