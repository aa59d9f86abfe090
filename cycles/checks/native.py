"""The native evaluators: GX's pandas metric code for the expectations of the table.

Each counts on the period's rows as GX's pandas metrics do and decides with `decide`, as the SQL
translations do, so every engine gives the same result. pandas and numpy load on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cycles.checks import decide
from cycles.checks.decide import Outcome

if TYPE_CHECKING:
    import pandas as pd

Evaluator = Callable[[Any, Any], Outcome]  # (the period's rows, the validated arguments)


class Unsupported(Exception):
    """The native evaluator cannot match GX on this data (a column dtype GX converts): use GX."""


# --- column map expectations: which non-null values are expected ---


def mapped(condition: Callable[[pd.Series, Any], Any]) -> Evaluator:
    """A column map expectation: nulls are skipped; `condition` marks the expected values."""

    def evaluate(frame: pd.DataFrame, a: Any) -> Outcome:
        import numpy as np

        col = frame[a.column]
        nonnull = col[col.notnull()]
        unexpected = int(np.count_nonzero(~condition(nonnull, a)))
        return decide.mapped(len(col), len(nonnull), unexpected, a.mostly)

    return evaluate


def nulls(*, want_null: bool) -> Evaluator:
    """expect_column_values_to_(not_)be_null: every row counts, nulls included."""

    def evaluate(frame: pd.DataFrame, a: Any) -> Outcome:
        col = frame[a.column]
        nonnull = int(col.notnull().sum())
        return decide.nulls(len(col), nonnull, want_null=want_null, mostly=a.mostly)

    return evaluate


def between(col: pd.Series, a: Any) -> Any:
    """GX's ColumnValuesBetween._pandas, for numeric bounds."""
    if (problem := decide.bounds_problem(a)) is not None:
        raise ValueError(problem)
    if col.dtype.kind in "mM":
        raise Unsupported("GX parses bounds for datetime columns")
    if col.dtype in [int, float]:
        lo, hi, smin, smax = a.min_value, a.max_value, a.strict_min, a.strict_max
        above = True if lo is None else (lo < col) if smin else (lo <= col)
        below = True if hi is None else (col < hi) if smax else (col <= hi)
        return above & below

    def one(value: Any) -> bool:
        if isinstance(value, str):
            raise TypeError(
                "Column values, min_value, and max_value must either be None or of the same type."
            )
        return decide.within(value, a)

    return col.map(one)


def in_set(col: pd.Series, a: Any) -> Any:
    return col.isin(a.value_set)


def not_in_set(col: pd.Series, a: Any) -> Any:
    if col.dtype.kind == "M":
        raise Unsupported("GX parses the value set for datetime columns")
    return ~col.isin(a.value_set)


def unique(col: pd.Series, a: Any) -> Any:
    return ~col.duplicated(keep=False)


def regex(col: pd.Series, a: Any) -> Any:
    return col.astype(str).str.contains(a.regex)  # as GX: numbers are matched as text


# --- table and aggregate expectations ---


def stat(name: str) -> Evaluator:
    """expect_column_<name>_to_be_between (mean, min, max) on a number column."""

    def evaluate(frame: pd.DataFrame, a: Any) -> Outcome:
        col = frame[a.column]
        if col.dtype.kind not in "biuf":  # decimals, dates, strings: GX converts or parses
            raise Unsupported(f"column dtype {col.dtype}")
        return decide.metric_between(getattr(col, name)(), a)

    return evaluate


def row_count(frame: pd.DataFrame, a: Any) -> Outcome:
    return decide.metric_between(len(frame), a)


def column_exists(frame: pd.DataFrame, a: Any) -> Outcome:
    return decide.column_exists(list(frame.columns), a)
