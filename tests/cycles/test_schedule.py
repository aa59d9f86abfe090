"""The default schedule per cadence: one tick at the start of each period."""

from __future__ import annotations

from cycles.declaration import load
from cycles.schedule import DEFAULT_CRON, cron_of

from conftest import ROOT

OUTCOME = load(ROOT / "flows" / "referrals" / "referrals.yaml")  # monthly, Europe/Amsterdam


def test_cron_per_cadence_and_override() -> None:
    assert cron_of(OUTCOME) == DEFAULT_CRON[OUTCOME.cadence] == "0 6 1 * *"
    weekly = OUTCOME.model_copy(update={"cadence": "weekly"})
    assert cron_of(weekly) == "0 6 * * 1"
    custom = OUTCOME.model_copy(
        update={"schedule": OUTCOME.schedule.model_copy(update={"cron": "30 7 2 * *"})}
    )
    assert cron_of(custom) == "30 7 2 * *"
