"""The expectations radar evaluates itself: one entry each, and every engine reads this table.

An entry names the arguments it reads (a strict mirror of GX's model, `spec`), its native
evaluator (pandas, `native`), its SQL translation or None, and the words of its failure message.
A translation says which counts it needs (the aggregates below) for a column of a given kind, and
decides from their values with `decide`, as the native evaluator does; `connectors.sql_checks`
computes the aggregates in one SELECT. An expectation not in the table, or arguments its model
rejects, run through GX (`cycles.checks.gx`), as every check does when RADAR_CHECKS_ENGINE=gx.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from cycles.checks import decide, native
from cycles.checks.decide import Outcome
from cycles.checks.native import Evaluator
from cycles.checks.spec import (
    AggregateArgs,
    Args,
    BetweenArgs,
    ExistArgs,
    ExpectationSpec,
    MapArgs,
    RegexArgs,
    RowCountArgs,
    SetArgs,
)
from cycles.numbers import is_finite_number

# --- what a translation asks the database for, over the period's rows ---

#: Column kinds, as a source describes its columns: int, float, decimal, bool, text, date,
#: datetime, datetimetz, other (and unknown until probed).
NUMBERS = frozenset({"int", "float", "decimal"})
EXACT = NUMBERS | {"text", "date", "datetime", "datetimetz", "bool"}  # SQL `=` is pandas' `==`


class Rows(NamedTuple):
    """How many rows (COUNT(*))."""


class NonNull(NamedTuple):
    """How many values of the column are not null (a floating NaN counts as null, as in pandas)."""

    column: str


class Outside(NamedTuple):
    """How many non-null values of a number column lie outside the bounds."""

    column: str
    min_value: float | None
    max_value: float | None
    strict_min: bool
    strict_max: bool


class InSet(NamedTuple):
    """How many non-null values equal one of `values` (exactly: text byte for byte)."""

    column: str
    values: tuple[Any, ...]


class NotInSet(NamedTuple):
    """How many non-null values equal none of `values` (exactly: text byte for byte)."""

    column: str
    values: tuple[Any, ...]


class Repeated(NamedTuple):
    """How many non-null values occur more than once (every occurrence counts)."""

    column: str


class Stat(NamedTuple):
    """AVG (as a double), MIN or MAX of the column's non-null values; None without any."""

    column: str
    name: Literal["mean", "min", "max"]


Aggregate = Rows | NonNull | Outside | InSet | NotInSet | Repeated | Stat


class Counted(NamedTuple):
    """A translation: the aggregates to compute, and the outcome from their values."""

    needs: tuple[Aggregate, ...]
    decide: Callable[..., Outcome]  # called with the values of `needs`, in order


#: A translation decides at once (an Outcome), from counts, or not at all (None: this column's
#: kind would compare differently in SQL than in pandas).
Translation = Counted | Outcome | None
Translate = Callable[[Any, Mapping[str, str]], Translation]  # (arguments, kind of each column)


def _map_counts(a: MapArgs, unexpected: Aggregate | None) -> Counted:
    """A column map expectation from rows, non-null values and unexpected ones (None: none)."""
    counts: tuple[Aggregate, ...] = (Rows(), NonNull(a.column))
    if unexpected is None:
        return Counted(counts, lambda rows, nonnull: decide.mapped(rows, nonnull, 0, a.mostly))

    def done(rows: int, nonnull: int, bad: int) -> Outcome:
        return decide.mapped(rows, nonnull, bad, a.mostly)

    return Counted((*counts, unexpected), done)


def _nulls_sql(*, want_null: bool) -> Translate:
    def translate(a: MapArgs, kinds: Mapping[str, str]) -> Translation:
        def done(rows: int, nonnull: int) -> Outcome:
            return decide.nulls(rows, nonnull, want_null=want_null, mostly=a.mostly)

        return Counted((Rows(), NonNull(a.column)), done)

    return translate


def _between_sql(a: BetweenArgs, kinds: Mapping[str, str]) -> Translation:
    if kinds[a.column] not in NUMBERS:
        return None  # pandas compares, converts or rejects other types its own way
    if (problem := decide.bounds_problem(a)) is not None:
        return decide.failed(problem)
    bounds = (a.min_value, a.max_value, a.strict_min, a.strict_max)
    return _map_counts(a, Outside(a.column, *bounds))


def _set_sql(*, inside: bool) -> Translate:
    """expect_column_values_to_(not_)be_in_set, where SQL compares as pandas' isin does."""

    def translate(a: SetArgs, kinds: Mapping[str, str]) -> Translation:
        kind = kinds[a.column]
        values = tuple(v for v in a.value_set if v is not None)  # never equal to a non-null value
        if kind == "text":
            comparable = all(isinstance(v, str) for v in values)
        else:  # Decimal == float differs between Python and SQL: decimals are left to pandas
            comparable = kind in ("int", "float") and all(is_finite_number(v) for v in values)
        if not comparable:
            return None  # pandas' isin across types differs from SQL's coercions
        if not values:  # nothing is in an empty set
            return _map_counts(a, NonNull(a.column) if inside else None)
        return _map_counts(a, NotInSet(a.column, values) if inside else InSet(a.column, values))

    return translate


def _unique_sql(a: MapArgs, kinds: Mapping[str, str]) -> Translation:
    return _map_counts(a, Repeated(a.column)) if kinds[a.column] in EXACT else None


def _stat_sql(name: Literal["mean", "min", "max"]) -> Translate:
    def translate(a: AggregateArgs, kinds: Mapping[str, str]) -> Translation:
        if kinds[a.column] not in NUMBERS:
            return None
        return Counted((Stat(a.column, name),), lambda value: decide.metric_between(value, a))

    return translate


def _row_count_sql(a: RowCountArgs, kinds: Mapping[str, str]) -> Translation:
    return Counted((Rows(),), lambda rows: decide.metric_between(rows, a))


def _exists_sql(a: ExistArgs, kinds: Mapping[str, str]) -> Translation:
    return decide.column_exists(list(kinds), a)  # the source's columns, in their order


# --- the table ---


class Expectation(NamedTuple):
    """One expectation radar evaluates itself."""

    args: type[Args]  # the arguments it reads
    native: Evaluator
    sql: Translate | None
    text: str  # what the unexpected values are, or the aggregate's name; formatted with the args


#: expectation name -> Expectation(arguments, native evaluator, SQL translation, message words)
EXPECTATIONS: dict[str, Expectation] = {
    "expect_column_to_exist": Expectation(ExistArgs, native.column_exists, _exists_sql, ""),
    "expect_column_values_to_not_be_null": Expectation(
        MapArgs, native.nulls(want_null=False), _nulls_sql(want_null=False), "are null"
    ),
    "expect_column_values_to_be_null": Expectation(
        MapArgs, native.nulls(want_null=True), _nulls_sql(want_null=True), "are not null"
    ),
    "expect_column_values_to_be_between": Expectation(
        BetweenArgs, native.mapped(native.between), _between_sql, "{bounds}"
    ),
    "expect_column_values_to_be_in_set": Expectation(
        SetArgs, native.mapped(native.in_set), _set_sql(inside=True), "not in {value_set}"
    ),
    "expect_column_values_to_not_be_in_set": Expectation(
        SetArgs, native.mapped(native.not_in_set), _set_sql(inside=False), "in {value_set}"
    ),
    "expect_column_values_to_be_unique": Expectation(
        MapArgs, native.mapped(native.unique), _unique_sql, "repeated"
    ),
    "expect_column_values_to_match_regex": Expectation(
        RegexArgs, native.mapped(native.regex), None, "not matching {regex}"
    ),
    "expect_table_row_count_to_be_between": Expectation(
        RowCountArgs, native.row_count, _row_count_sql, "row count"
    ),
    "expect_column_mean_to_be_between": Expectation(
        AggregateArgs, native.stat("mean"), _stat_sql("mean"), "mean"
    ),
    "expect_column_min_to_be_between": Expectation(
        AggregateArgs, native.stat("min"), _stat_sql("min"), "min"
    ),
    "expect_column_max_to_be_between": Expectation(
        AggregateArgs, native.stat("max"), _stat_sql("max"), "max"
    ),
}
NATIVE_EXPECTATIONS: frozenset[str] = frozenset(EXPECTATIONS)
TRANSLATED: frozenset[str] = frozenset(n for n, e in EXPECTATIONS.items() if e.sql is not None)


def native_args(spec: ExpectationSpec) -> Args | None:
    """The spec's arguments as its table entry reads them; None: not in the table, or GX's."""
    entry = EXPECTATIONS.get(spec.type)
    try:
        return entry.args.model_validate(spec.kwargs) if entry is not None else None
    except ValidationError:
        return None
