"""Which period a deployment run is for, and the default schedule per cadence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cycles.declaration import load
from cycles.schedule import DEFAULT_CRON, cron_of, period_for

from conftest import ROOT

OUTCOME = load(ROOT / "flows" / "referrals" / "referrals.yaml")  # monthly, Europe/Amsterdam


@pytest.mark.parametrize(
    ("when", "review", "period"),
    [
        (
            datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
            False,
            "2026-10",
        ),  # 06:00 in Amsterdam on the 1st
        (
            datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
            False,
            "2026-10",
        ),  # already Nov 1 in Amsterdam
        (datetime(2026, 10, 31, 22, 30, tzinfo=UTC), False, "2026-09"),  # still Oct 31 there
        (datetime(2026, 11, 20, 9, 0, tzinfo=UTC), True, "2026-11"),  # a review: the current period
        (datetime(2027, 1, 1, 5, 0, tzinfo=UTC), False, "2026-12"),
    ],
)
def test_period_for_a_run(when: datetime, review: bool, period: str) -> None:
    assert str(period_for(OUTCOME, when, review=review)) == period


def test_cron_per_cadence_and_override() -> None:
    assert cron_of(OUTCOME) == DEFAULT_CRON[OUTCOME.cadence] == "0 6 1 * *"
    weekly = OUTCOME.model_copy(update={"cadence": "weekly"})
    assert cron_of(weekly) == "0 6 * * 1"
    custom = OUTCOME.model_copy(
        update={"schedule": OUTCOME.schedule.model_copy(update={"cron": "30 7 2 * *"})}
    )
    assert cron_of(custom) == "30 7 2 * *"
