"""Deciding an expectation from counts: where both radar engines turn numbers into an Outcome.

The native engine counts with pandas (`native`), the SQL connector with one aggregate query
(`connectors.sql_checks`, from the table's translations); both hand their counts to these helpers,
so `mostly`, bounds, vacuous success and missing columns are decided once, as GX decides them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cycles.checks.spec import PRESENCE

if TYPE_CHECKING:
    from cycles.checks.spec import Bounds, ExistArgs, ExpectationSpec


@dataclass(frozen=True)
class Outcome:
    """What one expectation produced, whichever engine ran it: GX's result fields, as JSON."""

    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    missing_count: int | None = None
    observed_value: Any = None
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "observed_value", jsonable(self.observed_value))


def jsonable(value: Any) -> Any:
    """A JSON-serialisable Python value: numpy scalars unwrapped, NaN/NA as None, dates as ISO."""
    if value is None or type(value).__name__ in {"NAType", "NaTType"}:
        return None
    for kind in (bool, int, str):  # numpy.bool_ and numpy.int64 are not: see .item() below
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, float):  # numpy.float64 is a float subclass
        return None if math.isnan(value) else float(value)
    if isinstance(value, date):  # datetime and pandas Timestamp too
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # a numpy scalar
        return jsonable(value.item())
    return float(value) if isinstance(value, Decimal) else str(value)


def failed(problem: str) -> Outcome:
    """A check that could not be evaluated, with the first line of the reason."""
    return Outcome(False, error=f"could not evaluate: {problem}".splitlines()[0])


def missing_column(spec: ExpectationSpec, columns: Collection[str]) -> Outcome | None:
    """The failed outcome of a check naming a column the rows lack; None when all are there."""
    if spec.type in PRESENCE:
        return None
    missing = [c for c in spec.columns if c not in columns]
    return Outcome(False, error=f"column {missing[0]!r} not found") if missing else None


# --- column map expectations: counts of rows, non-null values and unexpected ones ---


def mostly_met(total: int, unexpected: int, mostly: float) -> bool:
    """GX's `mostly`: the share of expected values reaches it; vacuously true without values."""
    return total == 0 or (total - unexpected) / total >= mostly


def nulls(total: int, nonnull: int, *, want_null: bool, mostly: float) -> Outcome:
    """expect_column_values_to_(not_)be_null: every row counts, nulls included."""
    unexpected = nonnull if want_null else total - nonnull
    return Outcome(mostly_met(total, unexpected, mostly), total, unexpected)


def mapped(total: int, nonnull: int, unexpected: int, mostly: float) -> Outcome:
    """A column map expectation: nulls are skipped, and it holds vacuously without non-nulls."""
    success = mostly_met(nonnull, unexpected, mostly)
    return Outcome(success, total, unexpected, missing_count=total - nonnull)


# --- bounds ---


def bounds_problem(a: Bounds) -> str | None:
    """Why GX cannot evaluate these bounds on values, or None."""
    lo, hi = a.min_value, a.max_value
    if lo is not None and hi is not None and lo > hi:
        return "min_value cannot be greater than max_value"
    return None


def within(value: Any, a: Bounds) -> Any:
    """Whether one value lies within the bounds (each inclusive unless strict), as GX compares."""
    lo, hi = a.min_value, a.max_value
    above = lo is None or (value > lo if a.strict_min else value >= lo)
    return above and (hi is None or (value < hi if a.strict_max else value <= hi))


def metric_between(value: Any, a: Bounds) -> Outcome:
    """GX's BatchExpectation._validate_metric_value_between, for numeric bounds."""
    import pandas as pd  # GX's own test for a missing value (NaN, NA, NaT)

    if value is None or pd.isnull(value):
        return Outcome(False, observed_value=None)
    return Outcome(bool(within(value, a)), observed_value=value)


def column_exists(columns: list[str], a: ExistArgs) -> Outcome:
    """expect_column_to_exist over the columns in their order (GX's view of a table)."""
    if a.column_index:  # as in GX, column_index 0 means "anywhere"
        try:
            return Outcome(bool(columns[a.column_index] == a.column))
        except IndexError:
            return Outcome(False)
    return Outcome(a.column in columns)
