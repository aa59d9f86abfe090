"""Periods: parsing, [start, end) bounds and arithmetic for each cadence."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cycles.periods import Cadence, Period

DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


@pytest.mark.parametrize(
    ("text", "cadence", "start", "end"),
    [
        ("2026-10", "monthly", date(2026, 10, 1), date(2026, 11, 1)),
        ("2026-12", "monthly", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026-Q4", "quarterly", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-Q1", "quarterly", date(2026, 1, 1), date(2026, 4, 1)),
        ("2026-W43", "weekly", date(2026, 10, 19), date(2026, 10, 26)),
        ("2026-W01", "weekly", date(2025, 12, 29), date(2026, 1, 5)),
        ("2020-W53", "weekly", date(2020, 12, 28), date(2021, 1, 4)),
    ],
)
def test_bounds(text: str, cadence: str, start: date, end: date) -> None:
    period = Period.parse(text, cadence)
    assert (period.start, period.end, str(period)) == (start, end, text)


@pytest.mark.parametrize(
    ("text", "cadence"),
    [("2026-13", "monthly"), ("2026-10", "weekly"), ("2026-W54", "weekly"), ("2025-W53", "weekly"),
     ("2026-Q0", "quarterly"), ("26-10", "monthly"), ("", "monthly")],
)  # fmt: skip
def test_malformed(text: str, cadence: str) -> None:
    with pytest.raises(ValueError, match=r"expected e\.g\."):
        Period.parse(text, cadence)


def test_before_and_arithmetic() -> None:
    p = Period.parse("2026-02", "monthly")
    assert [str(x) for x in p.before(3)] == ["2025-11", "2025-12", "2026-01"]
    assert str(p + 11) == "2027-01" and (p - 1) < p
    assert [str(x) for x in Period.parse("2026-W01", "weekly").before(2)] == [
        "2025-W51",
        "2025-W52",
    ]


@given(DAYS, st.sampled_from(list(Cadence)))
def test_containing_holds_the_day(day: date, cadence: Cadence) -> None:
    period = Period.containing(day, cadence)
    assert period.start <= day < period.end
    assert Period.parse(str(period), cadence) == period
    assert (period + 1).start == period.end and (period - 1).end == period.start


@given(DAYS, st.sampled_from(list(Cadence)))
def test_has_ended(day: date, cadence: Cadence) -> None:
    period = Period.containing(day, cadence)
    assert not period.has_ended(day)
    assert period.has_ended(period.end) and not period.has_ended(period.end - timedelta(days=1))


@given(DAYS, st.sampled_from(list(Cadence)))
def test_labels_sort_like_periods(day: date, cadence: Cadence) -> None:
    period = Period.containing(day, cadence)
    if cadence is not Cadence.weekly:  # ISO week labels sort by ISO year, which is what they show
        assert str(period) < str(period + 1)


@pytest.mark.parametrize(
    ("text", "cadence"),
    [("0001-01", "monthly"), ("9999-12", "monthly"), ("1899-12", "monthly"), ("3000-01", "monthly"),
     ("0000-Q1", "quarterly"), ("9999-Q4", "quarterly"), ("0001-W01", "weekly"), ("9999-W52", "weekly")],
)  # fmt: skip
def test_years_out_of_range(text: str, cadence: str) -> None:
    with pytest.raises(ValueError, match=r"the year must be 1900-2999 \(expected e\.g\."):
        Period.parse(text, cadence)


@pytest.mark.parametrize("cadence", list(Cadence))
def test_the_widest_window_stays_within_dates(cadence: Cadence) -> None:
    """The first and last periods that parse, reaching back as far as a declaration allows."""
    from cycles.declaration.model import PolicySpec

    bounds = PolicySpec.model_json_schema()["properties"]
    reach = bounds["baseline_periods"]["maximum"] + bounds["sustain"]["maximum"]
    first = Period.containing(date(1900, 1, 1), cadence)  # 1900-W01 starts on 1900-01-01
    last = Period.containing(date(2999, 12, 28), cadence)  # in the last ISO week of 2999
    assert Period.parse(str(first), cadence) == first and Period.parse(str(last), cadence) == last
    assert (first - reach).start < first.start < last.end <= date(3000, 1, 31)
    assert [str(p) for p in (first - reach).before(1)]  # labels too: no year out of range
