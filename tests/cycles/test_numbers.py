"""cycles.numbers: the one number format, the JSON sanitiser and the comparisons by direction."""

from __future__ import annotations

import json
import math

import pytest

from cycles.numbers import (
    Direction,
    better,
    better_sign,
    finite,
    finite_data,
    fmt,
    is_finite_number,
    is_increase,
    met,
    target_sign,
)


def test_fmt_shows_four_significant_digits_and_a_dash_for_none() -> None:
    shown = [fmt(x) for x in (0.2142857, 20.0, 1_500_000.0, None)]
    assert shown == ["0.2143", "20", "1.5e+06", "-"]


def test_non_finite_numbers_become_none_everywhere_in_the_data() -> None:
    data = {"a": [math.nan, 1.5, (math.inf,)], "b": {"c": -math.inf}, "d": "nan", "e": 2}
    clean = finite_data(data)
    assert clean == {"a": [None, 1.5, [None]], "b": {"c": None}, "d": "nan", "e": 2}
    json.dumps(clean, allow_nan=False)  # strict JSON accepts it
    assert finite(math.nan) is None and finite(None) is None and finite(3) == 3.0


@pytest.mark.parametrize(
    ("value", "expected"), [(1, True), (0.5, True), (math.inf, False), (math.nan, False),
                            (True, False), ("1", False), (None, False)],
)  # fmt: skip
def test_a_finite_number_is_not_a_bool(value: object, expected: bool) -> None:
    assert is_finite_number(value) is expected


@pytest.mark.parametrize("direction", [Direction.increase, "increase"])
def test_increase_compares_upwards(direction: str) -> None:
    assert is_increase(direction) and better_sign(direction) == 1 and target_sign(direction) == "≥"
    assert met(0.3, 0.3, direction) and not met(0.29, 0.3, direction)
    assert not met(None, 0.3, direction)
    assert better(2, 1, direction) and not better(1, 1, direction)


@pytest.mark.parametrize("direction", [Direction.decrease, "decrease"])
def test_decrease_compares_downwards(direction: str) -> None:
    assert not is_increase(direction) and better_sign(direction) == -1
    assert target_sign(direction) == "≤"
    assert met(0.3, 0.3, direction) and met(0.29, 0.3, direction) and not met(0.31, 0.3, direction)
    assert better(1, 2, direction) and not better(1, 1, direction)
