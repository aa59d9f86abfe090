"""Regenerate the referrals sample data: `python flows/referrals/data/generate.py`.

Weekly rows per region; the monthly referral rate follows a story in which every kind of
decision appears: a flat baseline, three adjustments of an incentive that does not move the
rate, a month with a broken export (hold), a switch, a clear improvement, and the target held.
The drivers: `asks_sent` (referral asks per region and week; the newsletter's ask until the
promoter nudge doubles it, but in the nudge's first month a mailer outage sends 40 % of the
target: a deployment gap, hold) and the promoter share (flat: the nudge works by asking, not by
making more promoters).
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).parent
REGIONS = ("north", "south", "east", "west")

# monthly referral rate the rows are drawn around
STORY = {
    # baseline: flat around 18 %
    "2024-09": 0.179, "2024-10": 0.184, "2024-11": 0.176, "2024-12": 0.181,
    "2025-01": 0.186, "2025-02": 0.178, "2025-03": 0.183, "2025-04": 0.175,
    "2025-05": 0.182, "2025-06": 0.185, "2025-07": 0.177, "2025-08": 0.181,
    # referral-incentive: more dollars, same rate
    "2025-09": 0.183, "2025-10": 0.186, "2025-11": 0.180, "2025-12": 0.184,
    "2026-01": 0.179,
    # promoter-nudge: the mailer was down in its first month (few asks went out), then
    # asking the promoters works
    "2026-02": 0.181,
    "2026-03": 0.214, "2026-04": 0.246, "2026-05": 0.302, "2026-06": 0.309,
    "2026-07": 0.316, "2026-08": 0.321, "2026-09": 0.297, "2026-10": 0.308,
}  # fmt: skip
BROKEN_EXPORT = "2025-11"  # one row lost its referral_rate: the data check fails

ASKS_TARGET = 400  # asks per region and week (referrals.yaml: result.drivers)
NUDGE_STARTS = "2026-02"  # the promoter nudge asks twice a week instead of once
OUTAGE = "2026-02"  # asks_sent at 40 % of its target


def asks(label: str, rng: random.Random) -> int:
    """Referral asks sent in one region and week."""
    if label == OUTAGE:
        return round(rng.gauss(0.40 * ASKS_TARGET, 4))
    mean = 830 if label >= NUDGE_STARTS else 430
    return round(rng.gauss(mean, 20))


def weeks(year: int, month: int) -> list[date]:
    day = date(year, month, 1)
    day += timedelta(days=(7 - day.weekday()) % 7)  # first Monday
    out = []
    while day.month == month:
        out.append(day)
        day += timedelta(days=7)
    return out


def main() -> None:
    rng = random.Random(20261126)
    asks_rng = random.Random(20260801)  # its own stream: the other columns stay as they were
    rows = []
    for label, rate in STORY.items():
        year, month = map(int, label.split("-"))
        for i, week in enumerate(weeks(year, month)):
            for region in REGIONS:
                active = rng.randint(2300, 2700)
                referrers = round(active * (rate + rng.gauss(0, 0.004)))
                share = f"{referrers / active:.4f}"
                if label == BROKEN_EXPORT and i == 2 and region == "east":
                    share = ""
                promoters = round(active * rng.uniform(0.34, 0.38))
                sent = asks(label, asks_rng)
                rows.append([week.isoformat(), region, active, promoters, referrers, share, sent])
    with (HERE / "referrals.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["week", "region", "active_customers", "promoters", "referrers"]
        writer.writerow([*header, "referral_rate", "asks_sent"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
