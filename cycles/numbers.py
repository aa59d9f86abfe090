"""Numbers as radar shows, stores and compares them: one place for each rule.

Plain functions, no I/O and no pydantic (the console imports this module): the pure core, the
console, the reports, the stores and the connectors all use them.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

# -- showing and storing --------------------------------------------------------------------------


def fmt(x: float | None) -> str:
    """A number as radar prints it in reasons, tables and charts: 0.214, 20, 1.5e+06; - for none."""
    return "-" if x is None else f"{x:.4g}"


def finite(value: float | None) -> float | None:
    """`value` as a float; None for NaN and infinities, which JSON cannot spell and MySQL cannot
    store."""
    return None if value is None or not math.isfinite(value) else float(value)


def finite_data(data: Any) -> Any:
    """`data` ready for strict JSON: every float inside its dicts, lists, tuples and sets that is
    not finite becomes None (`finite`); sets and tuples become lists."""
    if isinstance(data, float):
        return finite(data)
    if isinstance(data, dict):
        return {key: finite_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple | set | frozenset):
        return [finite_data(value) for value in data]
    return data


def is_finite_number(value: Any) -> bool:
    """An int or a finite float, not a bool (which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- comparing by direction -----------------------------------------------------------------------


class Direction(StrEnum):
    """Which way a metric gets better."""

    increase = "increase"
    decrease = "decrease"


# `direction` below is a Direction or the string a record or a report keeps; anything but
# "increase" reads as decrease.


def is_increase(direction: str) -> bool:
    """Whether larger values are better."""
    return direction == Direction.increase


def better_sign(direction: str) -> int:
    """1 when larger values are better, -1 when smaller ones are."""
    return 1 if is_increase(direction) else -1


def target_sign(direction: str) -> str:
    """≥ or ≤: how a value meets its target, as reasons and charts write it."""
    return "≥" if is_increase(direction) else "≤"


def met(value: float | None, target: float, direction: str) -> bool:
    """Whether `value` meets `target` (reaching it is enough); never without a value."""
    if value is None:
        return False
    return value >= target if is_increase(direction) else value <= target


def better(a: float, b: float, direction: str) -> bool:
    """Whether `a` is strictly better than `b`."""
    return a > b if is_increase(direction) else a < b
