"""Regenerate the leads sample data: `python flows/leads/data/generate.py`.

Weekly rows per channel; the monthly lead conversion follows a story: a flat baseline around
18 %, a one-hour callback that moves nothing (adjust), a 45-minute callback that lifts the rate
(keep) to a plateau near 22 %, short of the 25 % target; then a competitor's launch takes one
month below the old baseline's lower limit (a special cause named in the reasons; with the
point rule in `policy.signals`, a deterioration that switches to live sales demos), and in the
next month a CRM migration leaves most leads uncontacted (`leads_contacted` at a third of its
target: a deployment gap, hold).
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).parent
CHANNELS = ("web", "events")

# monthly lead conversion the rows are drawn around
STORY = {
    # baseline: flat around 18 %
    "2024-09": 0.178, "2024-10": 0.183, "2024-11": 0.176, "2024-12": 0.181,
    "2025-01": 0.185, "2025-02": 0.179, "2025-03": 0.182, "2025-04": 0.177,
    "2025-05": 0.184, "2025-06": 0.180, "2025-07": 0.178, "2025-08": 0.182,
    # fast-callback: 60 minutes moves nothing, 45 minutes lifts the rate to a plateau
    "2025-09": 0.181,
    "2025-10": 0.204, "2025-11": 0.213, "2025-12": 0.218, "2026-01": 0.221,
    "2026-02": 0.219, "2026-03": 0.223, "2026-04": 0.220, "2026-05": 0.222,
    "2026-06": 0.218, "2026-07": 0.221, "2026-08": 0.217,
    # a competitor's launch: below the old baseline
    "2026-09": 0.158,
    # the CRM migration leaves most leads uncontacted
    "2026-10": 0.171,
}  # fmt: skip
CONTACTED = 0.92  # share of leads contacted within a day, as a rule
MIGRATION = "2026-10"  # leads_contacted at a third of its target


def weeks(year: int, month: int) -> list[date]:
    day = date(year, month, 1)
    day += timedelta(days=(7 - day.weekday()) % 7)  # first Monday
    out = []
    while day.month == month:
        out.append(day)
        day += timedelta(days=7)
    return out


def main() -> None:
    rng = random.Random(20261202)
    rows = []
    for label, rate in STORY.items():
        year, month = map(int, label.split("-"))
        contacted_share = 0.30 if label == MIGRATION else CONTACTED
        for week in weeks(year, month):
            for channel in CHANNELS:
                leads = rng.randint(520, 640)
                converted = round(leads * (rate + rng.gauss(0, 0.004)))
                contacted = round(leads * min(1.0, contacted_share + rng.gauss(0, 0.01)))
                rows.append([week.isoformat(), channel, leads, contacted, converted])
    with (HERE / "leads.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["week", "channel", "qualified_leads", "contacted_1d", "converted"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
