"""Data checks in SQL: one aggregate query over a period's rows, the native evaluator's results.

Each translated expectation becomes a few aggregates (COUNT, SUM(CASE ...), AVG, MIN, MAX, and for
uniqueness a scalar subquery over GROUP BY ... HAVING COUNT(*) > 1), all in one SELECT over the
period's rows. From the row it returns, the `Outcome` the native pandas evaluator (`cycles.checks`)
would compute is built with its own helpers, so success, counts, observed value and message are
the same. The rest (other expectations, arguments such as `row_condition`, columns whose type
pandas would compare or convert differently) runs through the caller's `evaluate` on the period's
rows, fetched with only the columns those checks name.

Equality is exact as in pandas: text is compared byte for byte (MySQL/MariaDB `CAST(x AS BINARY)`,
PostgreSQL `COLLATE "C"`, SQLite `COLLATE BINARY`), never through a case-insensitive collation;
PostgreSQL's floating NaN counts as null, as it does in pandas.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# The native evaluator's own helpers, so that both engines build results from the same code.
from cycles._gx import WHOLE_TABLE, Outcome
from cycles.checks import (
    ENGINE_ENV,
    ExpectationSpec,
    check_result,
    metric_between,
    native_args,
    required_columns,
)
from cycles.values import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from connectors.base import Checks

NUMBERS = frozenset({"int", "float", "decimal"})
_EXACT = NUMBERS | {"text", "date", "datetime", "datetimetz", "bool"}  # SQL `=` is pandas' `==`
TRANSLATED = frozenset(
    f"expect_{name}"
    for name in (
        "column_to_exist",
        "column_values_to_not_be_null",
        "column_values_to_be_null",
        "column_values_to_be_between",
        "column_values_to_be_in_set",
        "column_values_to_not_be_in_set",
        "column_values_to_be_unique",
        "table_row_count_to_be_between",
        "column_mean_to_be_between",
        "column_min_to_be_between",
        "column_max_to_be_between",
    )
)
Row = Mapping[str, Any]
Decided = Callable[[Row], Outcome]  # the outcome, from the row of the checks query


def period_checks(
    checks: Checks,
    pushed: CheckQuery,
    one_row: Callable[[sa.Select[Any]], Row],
    frame: Callable[[list[str]], pd.DataFrame],
) -> list[CheckResult]:
    """Translated checks in one query (`one_row`); the rest evaluated in Python on `frame(cols)`."""
    specs = checks.expectations
    force_gx = os.environ.get(ENGINE_ENV, "").strip().lower() == "gx"
    decided = {
        i: d for i, s in enumerate(specs) if (d := None if force_gx else pushed.translate(s))
    }
    rest = [i for i in range(len(specs)) if i not in decided]
    results: dict[int, CheckResult] = {}
    if rest:
        left = [specs[i] for i in rest]
        whole = any(
            s.type in WHOLE_TABLE or {"row_condition", "column_index"} & set(s.kwargs) for s in left
        )
        named = list(pushed.kinds) if whole else required_columns(left)
        rows = frame([c for c in named if c in pushed.kinds])
        results.update(zip(rest, checks.evaluate(rows, left), strict=True))
    if decided:
        row = one_row(pushed.statement()) if any(callable(d) for d in decided.values()) else {}
        for index, done in decided.items():
            outcome = done(row) if callable(done) else done
            results[index] = check_result(specs[index], checks.metric, "sql", outcome)
    return [results[i] for i in range(len(specs))]


class CheckQuery:
    """The aggregate expressions of the translated checks, over one period's rows."""

    def __init__(
        self, rows: sa.FromClause, where: list[Any], kinds: Mapping[str, str], dialect: str
    ) -> None:
        self.rows, self.where, self.kinds, self.dialect = rows, where, kinds, dialect
        self._labels: dict[str, str] = {}  # expression key -> result label
        self._exprs: list[Any] = [sa.func.count().label(self._label("rows"))]

    def statement(self) -> sa.Select[Any]:
        return sa.select(*self._exprs).select_from(self.rows).where(*self.where)

    def translate(self, spec: ExpectationSpec) -> Outcome | Decided | None:
        """The outcome (decided now, or from the query's row), or None: not translatable."""
        args: Any = native_args(spec)
        if args is None or spec.type not in TRANSLATED:
            return None
        if spec.type == "expect_column_to_exist":
            return _column_exists(list(self.kinds), args)
        if missing := [c for c in spec.columns if c not in self.kinds]:
            return Outcome(False, error=f"column {missing[0]!r} not found")
        rows = self._label("rows")
        if spec.type == "expect_table_row_count_to_be_between":
            return lambda row: metric_between(int(row[rows]), args)
        column, kind = args.column, self.kinds[args.column]
        if spec.type.endswith("_null"):
            return self._nulls(column, args, want_null=spec.type.endswith("to_be_null"))
        if spec.type.endswith("unique"):
            return self._map(column, args, self._unique(column)) if kind in _EXACT else None
        if spec.type.endswith("in_set"):
            return self._in_set(column, kind, args, negate="not_be_in" in spec.type)
        if kind not in NUMBERS:
            return None  # pandas compares, converts or rejects other types its own way
        if spec.type.endswith("values_to_be_between"):
            return self._between(column, args)
        stat = spec.type.split("_")[2]  # mean | min | max
        value = self.value(column)
        expr = (
            sa.func.avg(to_float(value, self.dialect))
            if stat == "mean"
            else getattr(sa.func, stat)(value)
        )
        label = self._add(f"{stat}:{column}", expr)
        return lambda row: metric_between(plain_number(row[label]), args)

    # -- expressions ----------------------------------------------------------------------------

    def value(self, column: str) -> Any:
        """The column, PostgreSQL's NaN as null (pandas holds NaN as a missing value)."""
        col, kind = self.rows.c[column], self.kinds.get(column)
        if self.dialect == "postgresql" and kind in ("float", "decimal"):
            nan = sa.cast(sa.literal("NaN"), sa.Double if kind == "float" else sa.Numeric)
            return sa.func.nullif(col, nan)
        return col

    def key(self, column: str) -> Any:
        """The column, compared byte for byte when it holds text."""
        col = self.value(column)
        if self.kinds.get(column) != "text":
            return col
        if self.dialect in ("mysql", "mariadb"):
            return sa.cast(col, mysql.BINARY())
        return {"postgresql": sa.collate(col, "C"), "sqlite": sa.collate(col, "BINARY")}.get(
            self.dialect, col
        )

    def _label(self, key: str) -> str:
        return self._labels.setdefault(key, f"c{len(self._labels)}")

    def _add(self, key: str, expr: Any) -> str:
        if key not in self._labels:
            self._exprs.append(expr.label(self._label(key)))
        return self._labels[key]

    def _nonnull(self, column: str) -> str:
        return self._add(f"nonnull:{column}", sa.func.count(self.value(column)))

    def _count(self, key: str, column: str, condition: Any) -> str:
        """How many non-null values of `column` meet `condition` (0 over no rows)."""
        hit = sa.case((sa.and_(self.value(column).is_not(None), condition), 1), else_=0)
        return self._add(key, sa.func.coalesce(sa.func.sum(hit), 0))

    def _unique(self, column: str) -> str:
        key = self.key(column)
        repeated = (
            sa.select(sa.func.count().label("n"))
            .select_from(self.rows)
            .where(*self.where, key.is_not(None))
            .group_by(key)
            .having(sa.func.count() > 1)
            .subquery("repeated")
        )
        total = sa.select(sa.func.coalesce(sa.func.sum(repeated.c.n), 0)).correlate(None)
        return self._add(f"unique:{column}", total.scalar_subquery())

    # -- outcomes, as cycles.checks computes them -----------------------------------------------

    def _nulls(self, column: str, args: Any, *, want_null: bool) -> Decided:
        rows, nonnull = self._label("rows"), self._nonnull(column)

        def decide(row: Row) -> Outcome:
            total, present = int(row[rows]), int(row[nonnull])
            unexpected = present if want_null else total - present
            return Outcome(
                total == 0 or (total - unexpected) / total >= args.mostly, total, unexpected
            )

        return decide

    def _map(self, column: str, args: Any, unexpected: str | None) -> Decided:
        """A column map expectation: nulls are skipped, vacuous success without non-nulls."""
        rows, nonnull = self._label("rows"), self._nonnull(column)

        def decide(row: Row) -> Outcome:
            total, considered = int(row[rows]), int(row[nonnull])
            bad = 0 if unexpected is None else int(row[unexpected])
            success = considered == 0 or (considered - bad) / considered >= args.mostly
            return Outcome(success, total, bad, missing_count=total - considered)

        return decide

    def _between(self, column: str, args: Any) -> Outcome | Decided:
        lo, hi, value = args.min_value, args.max_value, self.value(column)
        if lo is not None and hi is not None and lo > hi:
            return Outcome(
                False, error="could not evaluate: min_value cannot be greater than max_value"
            )
        inside = []
        if lo is not None:
            bound = sa.literal(lo, sa.Float)
            inside.append(value > bound if args.strict_min else value >= bound)
        if hi is not None:
            bound = sa.literal(hi, sa.Float)
            inside.append(value < bound if args.strict_max else value <= bound)
        key = f"between:{column}:{lo}:{hi}:{args.strict_min}:{args.strict_max}"
        return self._map(column, args, self._count(key, column, sa.not_(sa.and_(*inside))))

    def _in_set(self, column: str, kind: str, args: Any, *, negate: bool) -> Decided | None:
        values = [v for v in args.value_set if v is not None]  # never equal to a non-null value
        if kind == "text":
            comparable = all(isinstance(v, str) for v in values)
        else:  # Decimal == float differs between Python and SQL: decimals are left to pandas
            comparable = kind in ("int", "float") and all(_finite_number(v) for v in values)
        if not comparable:
            return None  # pandas' isin across types differs from SQL's coercions
        if not values:  # nothing is in an empty set
            return self._map(column, args, None if negate else self._nonnull(column))
        member = self.key(column).in_([sa.literal(v, _literal_type(v)) for v in values])
        key = f"{'not_in' if negate else 'in'}:{column}:{values!r}"
        return self._map(
            column, args, self._count(key, column, member if negate else sa.not_(member))
        )


def to_float(expr: Any, dialect: str) -> Any:
    """`expr` as a double: AVG and SUM of integers must not round (MySQL DECIMAL, PG numeric)."""
    if dialect in ("mysql", "mariadb"):
        return expr + sa.literal_column("0e0")  # CAST AS DOUBLE needs MySQL 8.0.17/MariaDB 10.4
    return sa.cast(expr, sa.Double)


def plain_number(value: Any) -> Any:
    """A database number as pandas would hold it: Decimal as float, NaN as None."""
    value = float(value) if isinstance(value, Decimal) else value
    return None if isinstance(value, float) and math.isnan(value) else value


def kind_of_type(kind: Any) -> str:
    """int | float | decimal | bool | text | date | datetime | datetimetz | other."""
    if isinstance(kind, sa.DateTime):
        return "datetimetz" if kind.timezone else "datetime"
    pairs: list[tuple[type, str]] = [(sa.Boolean, "bool"), (sa.Integer, "int"), (sa.Float, "float")]
    pairs += [(sa.Numeric, "decimal"), (sa.Date, "date"), (sa.CHAR, "other"), (sa.String, "text")]
    return next((name for cls, name in pairs if isinstance(kind, cls)), "other")  # CHAR(n) pads


# Result type codes of the default drivers: psycopg2 gives type OIDs, pymysql FIELD_TYPE numbers.
_CODES: dict[str, dict[str, tuple[int, ...]]] = {
    "postgresql": {"int": (20, 21, 23, 26), "float": (700, 701), "decimal": (1700,), "bool": (16,),
                   "text": (25, 1043, 19), "date": (1082,), "datetime": (1114,),
                   "datetimetz": (1184,)},
    "mysql": {"int": (1, 2, 3, 8, 9, 13), "float": (4, 5), "decimal": (0, 246), "datetime": (7, 12),
              "date": (10, 14), "text": (15, 247, 252, 253, 254)},
}  # fmt: skip


def kind_of_code(dialect: str, code: Any) -> str:
    """The kind of a query's column from the driver's type code ("unknown": probe the values)."""
    if dialect == "sqlite":
        return "unknown"
    table = _CODES.get("mysql" if dialect == "mariadb" else dialect, {})
    return next((kind for kind, codes in table.items() if code in codes), "other")


def kind_of_value(value: Any) -> str:
    """The kind of a query's column from its first non-null value (SQLite declares none)."""
    if value is None:
        return "unknown"  # no value yet: asked again next time
    if isinstance(value, datetime):
        return "datetimetz" if value.tzinfo else "datetime"
    pairs = (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (Decimal, "decimal"),
        (str, "text"),
        (date, "date"),
    )
    return next((name for cls, name in pairs if isinstance(value, cls)), "other")


def _literal_type(value: Any) -> Any:
    """Each value bound with its own type: one inferred type for the list would round 2.5 to 2."""
    return (
        sa.String
        if isinstance(value, str)
        else sa.Float
        if isinstance(value, float)
        else sa.BigInteger
    )


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _column_exists(columns: list[str], args: Any) -> Outcome:
    """As the native evaluator, over the source's columns in their order (GX's view of a table)."""
    if args.column_index:  # as in GX, column_index 0 means "anywhere"
        try:
            return Outcome(bool(columns[args.column_index] == args.column))
        except IndexError:
            return Outcome(False)
    return Outcome(args.column in columns)
