"""Deployment actions of the referrals example (`type: python` in referrals.yaml).

In a real deployment these would call the CRM; here they count who would be reached, from the
sample data, so the Deployment stage records a meaningful reach.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "referrals.csv"


def _latest_promoters() -> int:
    with DATA.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    last_week = max(row["week"] for row in rows)
    return sum(int(row["promoters"]) for row in rows if row["week"] == last_week)


def offer_incentive(context: Any, *, incentive_usd: float, period: str) -> int:
    """Offer every promoter the incentive for referrals made in `period`; reach = promoters."""
    return _latest_promoters()


def ask_promoters(context: Any, *, asks_per_week: int, period: str) -> int:
    """Ask promoters for a referral `asks_per_week` times a week; reach = asks sent."""
    return _latest_promoters() * int(asks_per_week)
