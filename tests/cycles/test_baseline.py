"""Seasonal and trended centre lines (cycles.baseline) against numpy's least squares, scipy's F
test, and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cycles.baseline import Spec, fit, lag1_autocorrelation, seasonality_test, spec_of
from cycles.stats import xmr_limits


def _design(index: list[int], season: int | None, trend: bool) -> np.ndarray:
    cols = [np.ones(len(index))]
    pos = np.array(index)
    if trend:
        cols.append(pos - pos.mean())
    if season:
        cols += [(pos % season == j) * 1.0 for j in range(season)]
        cols = cols[:1] + cols[1:]  # with the intercept: rank-deficient, lstsq takes care
    return np.column_stack(cols)


@pytest.mark.parametrize(("season", "trend"), [(None, False), (None, True), (12, False), (4, True)])
def test_the_line_is_least_squares(season: int | None, trend: bool) -> None:
    rng = np.random.default_rng(5)
    index = [i for i in range(100, 140) if i not in (103, 117)]  # two periods missing
    y = rng.normal(10, 2, len(index)) + (np.array(index) % 12 == 11) * 5
    line, notes = fit(index, list(y), Spec(seasonality=season, trend=trend))
    assert line is not None
    x = _design(index, season, trend)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ beta
    assert [line.centre(i) for i in index] == pytest.approx(list(fitted))
    assert line.ss == pytest.approx(float(((y - fitted) ** 2).sum()))
    assert line.df == len(index) - (1 + trend + (season - 1 if season else 0))
    # the line's own error at two later periods: x' (X'X)⁻ x against numpy's pseudo-inverse
    later = np.array([150, 151])
    xl = _design([*index, 150, 151], season, trend)[-2:]
    if trend:  # the slope's origin is the baseline's mean position, not the extended one's
        xl[:, 1] = later - np.mean(index)
    cov = xl @ np.linalg.pinv(x.T @ x) @ xl.T
    assert [line.cov(150, 150), line.cov(150, 151)] == pytest.approx(list(cov[0]), abs=1e-12)
    if season:
        assert sum(line.factor(j) for j in range(season)) == pytest.approx(0, abs=1e-9)
        assert notes[0].startswith("judged against a seasonal (additive factors")


def test_the_plain_line_is_the_xmr_chart() -> None:
    values = [9.0, 11.0, 9.5, 10.5, 12.0, 8.0, 10.0]
    line, notes = fit(list(range(7)), values)
    assert line is not None and notes == [] and line.plain
    assert line.limits(7, list("abcdefg")) == xmr_limits(values, list("abcdefg"))
    assert line.cov(7, 9) == pytest.approx(1 / 7)
    assert fit(list(range(5)), values[:5]) == (None, [])


def test_the_moving_range_of_residuals_is_scaled_back_to_the_noise() -> None:
    # residuals of 3 seasons of monthly factors vary less than the noise (by √(1 − 1/3)); the
    # scaled mean moving range / d2 estimates σ without that bias
    rng = np.random.default_rng(9)
    index = list(range(36))
    sigmas = []
    for _ in range(400):
        y = rng.normal(0, 1, 36) + 3 * np.sin(2 * np.pi * np.arange(36) / 12)
        line, _ = fit(index, list(y), Spec(seasonality=12))
        assert line is not None
        sigmas.append(line.moving_range() / 1.128)
        assert line.shrink() == pytest.approx(math.sqrt(1 - 1 / 3))
    assert np.mean(sigmas) == pytest.approx(1.0, abs=0.03)


def test_a_season_needs_two_of_each_position() -> None:
    line, notes = fit(list(range(20)), [float(i % 3) for i in range(20)], Spec(seasonality=12))
    assert line is not None and line.plain
    assert notes == [
        "seasonality 12 not applied: the baseline must hold every position of the season at least "
        "2 times (20 baseline periods, 24 needed)"
    ]


def test_seasonality_test_is_scipys_f_test() -> None:
    from scipy import stats

    rng = np.random.default_rng(1)
    index = list(range(36))
    y = rng.normal(0, 1, 36) + 2 * np.cos(2 * np.pi * np.arange(36) / 12)
    found = seasonality_test(index, list(y), 12)
    assert found is not None
    groups = [y[np.arange(36) % 12 == j] for j in range(12)]
    f, p = stats.f_oneway(*groups)
    assert (found.f, found.p) == (pytest.approx(f), pytest.approx(p))
    assert found.strong
    quiet = seasonality_test(index, list(rng.normal(0, 1, 36)), 12)
    assert quiet is not None and not quiet.strong
    assert seasonality_test(index[:20], list(y[:20]), 12) is None  # not two seasons


def test_auto_false_alarms_are_rare() -> None:
    # on noise alone, `seasonality: auto` finds a season in about 1 % of baselines or fewer
    rng = np.random.default_rng(4)
    found = 0
    for _ in range(300):
        line, _ = fit(
            list(range(36)), list(rng.normal(0, 1, 36)), spec_of("auto", False, "monthly")
        )
        assert line is not None
        found += line.season is not None
    assert found <= 6


def test_lag1_autocorrelation() -> None:
    assert lag1_autocorrelation([1.0, 2.0]) is None
    assert lag1_autocorrelation([3.0, 3.0, 3.0]) is None
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    d = np.array(x) - 3.5
    assert lag1_autocorrelation(x) == pytest.approx(float((d[:-1] * d[1:]).sum() / (d * d).sum()))
    assert lag1_autocorrelation([1.0, -1.0] * 5) == pytest.approx(-0.9)


def test_spec_of() -> None:
    assert spec_of(None, False, "monthly").plain
    assert spec_of("auto", True, "quarterly") == Spec(auto=(4,), trend=True)
    assert spec_of(12, False, "monthly") == Spec(seasonality=12)
