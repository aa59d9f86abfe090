"""Periods of a cadence: `2026-W43` (ISO week), `2026-10` (month), `2026-Q4` (quarter).

A period is the half-open interval `[start, end)` of dates; rows belong to the period whose
interval holds their timestamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import total_ordering
from zoneinfo import ZoneInfo


class Cadence(StrEnum):
    weekly = "weekly"
    monthly = "monthly"
    quarterly = "quarterly"


_PATTERNS = {
    Cadence.weekly: re.compile(r"^(\d{4})-W(\d{2})$"),
    Cadence.monthly: re.compile(r"^(\d{4})-(\d{2})$"),
    Cadence.quarterly: re.compile(r"^(\d{4})-Q([1-4])$"),
}
_EXAMPLES = {Cadence.weekly: "2026-W43", Cadence.monthly: "2026-10", Cadence.quarterly: "2026-Q4"}
# Years a period may be named in: far enough from 1 and 9999 that a window reaching back the
# declaration's largest baseline (and forward one period) stays within Python's dates.
FIRST_YEAR, LAST_YEAR = 1900, 2999


@total_ordering
@dataclass(frozen=True, slots=True)
class Period:
    """One period of a cadence; `index` counts periods from an origin so arithmetic is cheap."""

    cadence: Cadence
    index: int

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, cadence: Cadence | str) -> Period:
        """Parse `text` as a period of `cadence`; ValueError names the expected form."""
        cadence = Cadence(cadence)
        expected = f"(expected e.g. {_EXAMPLES[cadence]})"
        match = _PATTERNS[cadence].match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a {cadence.value} period {expected}")
        year, part = int(match.group(1)), int(match.group(2))
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"{text!r}: the year must be {FIRST_YEAR}-{LAST_YEAR} {expected}")
        if cadence is Cadence.monthly:
            if not 1 <= part <= 12:
                raise ValueError(f"{text!r}: month must be 01-12 {expected}")
            return cls(cadence, year * 12 + part - 1)
        if cadence is Cadence.quarterly:
            return cls(cadence, year * 4 + part - 1)
        weeks_in_year = date(year, 12, 28).isocalendar().week
        if not 1 <= part <= weeks_in_year:
            raise ValueError(f"{text!r}: {year} has ISO weeks 01-{weeks_in_year:02d} {expected}")
        return cls.containing(date.fromisocalendar(year, part, 1), cadence)

    @classmethod
    def containing(cls, day: date, cadence: Cadence | str) -> Period:
        """The period of `cadence` whose `[start, end)` holds `day`."""
        cadence = Cadence(cadence)
        if cadence is Cadence.monthly:
            return cls(cadence, day.year * 12 + day.month - 1)
        if cadence is Cadence.quarterly:
            return cls(cadence, day.year * 4 + (day.month - 1) // 3)
        return cls(cadence, (day - _WEEK_ORIGIN).days // 7)

    # -- bounds -------------------------------------------------------------------------------
    @property
    def start(self) -> date:
        if self.cadence is Cadence.monthly:
            return date(self.index // 12, self.index % 12 + 1, 1)
        if self.cadence is Cadence.quarterly:
            return date(self.index // 4, (self.index % 4) * 3 + 1, 1)
        return _WEEK_ORIGIN + timedelta(weeks=self.index)

    @property
    def end(self) -> date:
        """First day after the period (exclusive bound)."""
        return (self + 1).start

    def has_ended(self, today: date) -> bool:
        return today >= self.end

    def starts_at(self, timezone: str) -> datetime:
        """The period's first instant (midnight local time in `timezone`), in UTC."""
        local = datetime.combine(self.start, time(0), tzinfo=ZoneInfo(timezone))
        return local.astimezone(UTC)

    def ends_at(self, timezone: str) -> datetime:
        """The first instant after the period, in UTC."""
        return (self + 1).starts_at(timezone)

    # -- arithmetic ---------------------------------------------------------------------------
    def __add__(self, n: int) -> Period:
        return Period(self.cadence, self.index + n)

    def __sub__(self, n: int) -> Period:
        return Period(self.cadence, self.index - n)

    def before(self, n: int) -> list[Period]:
        """The `n` periods before this one, oldest first."""
        return [self - k for k in range(n, 0, -1)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        if other.cadence is not self.cadence:
            raise ValueError("cannot compare periods of different cadences")
        return self.index < other.index

    # -- text ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        if self.cadence is Cadence.monthly:
            return f"{self.index // 12:04d}-{self.index % 12 + 1:02d}"
        if self.cadence is Cadence.quarterly:
            return f"{self.index // 4:04d}-Q{self.index % 4 + 1}"
        iso = self.start.isocalendar()
        return f"{iso.year:04d}-W{iso.week:02d}"

    def __repr__(self) -> str:
        return f"Period({str(self)!r})"


# A Monday: weekly indices count whole weeks from here.
_WEEK_ORIGIN = date(1, 1, 1)  # 0001-01-01 is a Monday in the proleptic Gregorian calendar


@dataclass(frozen=True)
class Window:
    """The periods a metric is asked for: the baseline and, last, the period under review."""

    periods: tuple[Period, ...]
    timezone: str = "UTC"  # timezone-aware timestamps are read in the outcome's timezone

    @property
    def current(self) -> Period:
        return self.periods[-1]

    @property
    def start(self) -> date:
        return self.periods[0].start

    @property
    def end(self) -> date:
        return self.periods[-1].end
