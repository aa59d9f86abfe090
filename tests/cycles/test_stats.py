"""XmR limits and point signals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cycles.stats import MIN_BASELINE, point_signal, xmr_limits
from cycles.values import SignalKind

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def test_worked_example() -> None:
    # Wheeler, "Understanding Variation", XmR basics: mean 10, moving ranges of 2 -> limits 10 ± 5.32
    values = [9, 11, 9, 11, 9, 11, 9, 11]
    limits = xmr_limits(values)
    assert limits is not None
    assert limits.centre == pytest.approx(10)
    assert limits.moving_range == pytest.approx(2)
    assert (limits.lower, limits.upper) == pytest.approx((10 - 5.32, 10 + 5.32))


def test_needs_six_values_and_skips_missing() -> None:
    assert xmr_limits([1.0] * (MIN_BASELINE - 1)) is None
    assert xmr_limits([1.0, None, 2.0, 1.0, None, 2.0, 1.0]) is None
    limits = xmr_limits([1.0, None, 2.0, 1.0, 2.0, 1.0, 2.0], ["a", "b", "c", "d", "e", "f", "g"])
    assert limits is not None and limits.baseline == ["a", "c", "d", "e", "f", "g"]


def test_signal_direction() -> None:
    limits = xmr_limits([9, 11, 9, 11, 9, 11])
    assert point_signal(16, limits, "increase") is SignalKind.improvement
    assert point_signal(16, limits, "decrease") is SignalKind.deterioration
    assert point_signal(4, limits, "decrease") is SignalKind.improvement
    assert point_signal(12, limits, "increase") is SignalKind.none
    assert point_signal(None, limits, "increase") is SignalKind.none
    assert point_signal(100, None, "increase") is SignalKind.none


@given(st.lists(FINITE, min_size=MIN_BASELINE, max_size=40))
def test_limits_contain_the_centre(values: list[float]) -> None:
    limits = xmr_limits(values)
    assert limits is not None
    assert limits.lower <= limits.centre <= limits.upper


@given(st.lists(FINITE, min_size=MIN_BASELINE, max_size=40), FINITE)
def test_shifting_values_shifts_the_limits(values: list[float], shift: float) -> None:
    a, b = xmr_limits(values), xmr_limits([v + shift for v in values])
    assert a is not None and b is not None
    assert b.centre == pytest.approx(a.centre + shift, abs=1e-6)
    assert b.upper - b.lower == pytest.approx(a.upper - a.lower, abs=1e-6)


@given(FINITE, st.integers(min_value=MIN_BASELINE, max_value=30))
def test_constant_series_gives_no_signal(value: float, n: int) -> None:
    limits = xmr_limits([value] * n)
    assert point_signal(value, limits, "increase") is SignalKind.none
