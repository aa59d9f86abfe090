"""Deployment action of the support example (`type: python` in support.yaml).

In a real deployment this would write the triage rota into the staffing tool; here it counts
the triage shifts the rota plans, so the Deployment stage records a meaningful reach.
"""

from __future__ import annotations

import calendar
from typing import Any

SHIFTS_PER_DAY = 2  # early and late


def plan_rota(context: Any, *, agents_on_triage: int, period: str) -> int:
    """Plan `agents_on_triage` agents on every weekday shift of `period`; reach = shifts."""
    year, month = map(int, period.split("-"))
    weekdays = sum(
        calendar.weekday(year, month, day) < 5
        for day in range(1, calendar.monthrange(year, month)[1] + 1)
    )
    return weekdays * SHIFTS_PER_DAY * int(agents_on_triage)
