"""Regenerate the support sample data: `python flows/support/data/generate.py`.

Weekly rows per team; the monthly share of tickets answered within 4 hours follows a story: a
flat baseline around 79 %, a triage rota of 2 and then 3 agents that moves nothing (adjust),
4 agents that lift the share (keep) past the 90 % target (achieved), a summer dip while people
are on holiday (keep: still an improvement on the baseline), and the target held again.
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).parent
TEAMS = ("email", "chat", "phone")

# monthly share of tickets answered within 4 hours the rows are drawn around
STORY = {
    # baseline: flat around 79 %
    "2024-09": 0.791, "2024-10": 0.784, "2024-11": 0.796, "2024-12": 0.781,
    "2025-01": 0.789, "2025-02": 0.794, "2025-03": 0.786, "2025-04": 0.792,
    "2025-05": 0.783, "2025-06": 0.790, "2025-07": 0.787, "2025-08": 0.793,
    # triage-rota: 2 agents, then 3 move nothing; 4 agents lift the share
    "2025-09": 0.788, "2025-10": 0.792,
    "2025-11": 0.842, "2025-12": 0.868, "2026-01": 0.884, "2026-02": 0.903,
    "2026-03": 0.911, "2026-04": 0.914,
    # summer: holidays thin the rota, the share dips below the target, then recovers
    "2026-05": 0.906, "2026-06": 0.893, "2026-07": 0.881, "2026-08": 0.902,
    "2026-09": 0.912, "2026-10": 0.917,
}  # fmt: skip


def weeks(year: int, month: int) -> list[date]:
    day = date(year, month, 1)
    day += timedelta(days=(7 - day.weekday()) % 7)  # first Monday
    out = []
    while day.month == month:
        out.append(day)
        day += timedelta(days=7)
    return out


def main() -> None:
    rng = random.Random(20261201)
    rows = []
    for label, share in STORY.items():
        year, month = map(int, label.split("-"))
        for week in weeks(year, month):
            for team in TEAMS:
                tickets = rng.randint(380, 460)
                answered = round(tickets * min(1.0, share + rng.gauss(0, 0.006)))
                rows.append([week.isoformat(), team, tickets, answered])
    with (HERE / "support.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["week", "team", "tickets", "answered_4h"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
