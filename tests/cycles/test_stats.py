"""XmR limits and point signals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cycles.stats import MIN_BASELINE, betainc, f_sf, point_signal, t_isf, t_sf, xmr_limits
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


# -- Student's t and Fisher's F (the t rules, effects, seasonality) against scipy -----------------


@pytest.mark.parametrize("df", [1, 2, 3, 5, 6.5, 11, 35, 300])
def test_t_distribution_against_scipy(df: float) -> None:
    from scipy import stats

    for t in (-6.0, -2.7, -0.3, 0.0, 0.5, 1.0, 2.718, 4.0, 12.0):
        assert t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-14)
    for p in (0.4, 0.05, 0.01, 0.001, 1e-6):
        assert t_isf(p, df) == pytest.approx(stats.t.isf(p, df), rel=1e-9)
    assert t_isf(0.9, df) == pytest.approx(-t_isf(0.1, df))


def test_f_distribution_and_incomplete_beta_against_scipy() -> None:
    from scipy import special, stats

    for d1, d2 in ((11, 12), (11, 24), (1, 5), (51, 60)):
        for f in (0.2, 1.0, 3.0, 10.0):
            assert f_sf(f, d1, d2) == pytest.approx(stats.f.sf(f, d1, d2), rel=1e-9, abs=1e-15)
    for a, b, x in ((0.5, 0.5, 0.3), (6.0, 0.5, 0.9), (30.0, 25.0, 0.55), (2.0, 3.0, 1.0)):
        assert betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-10)
