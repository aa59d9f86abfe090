"""Regenerate the referrals sample data: `python flows/referrals/data/generate.py`.

Weekly rows per region; the monthly referral rate follows a story in which every kind of
decision appears: a flat baseline, three adjustments of an incentive that does not move the
rate, a month with a broken export (hold), a switch, a clear improvement, and the target held.
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
    # promoter-nudge: asking the promoters works
    "2026-02": 0.214, "2026-03": 0.246, "2026-04": 0.302, "2026-05": 0.309,
    "2026-06": 0.316, "2026-07": 0.321, "2026-08": 0.297, "2026-09": 0.308,
    "2026-10": 0.312,
}  # fmt: skip
BROKEN_EXPORT = "2025-11"  # one row lost its referral_rate: the data check fails


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
                rows.append([week.isoformat(), region, active, promoters, referrers, share])
    with (HERE / "referrals.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["week", "region", "active_customers", "promoters", "referrers", "referral_rate"]
        )
        writer.writerows(rows)


if __name__ == "__main__":
    main()
