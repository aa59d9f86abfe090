"""Data checks in SQL: the table's translations, as one aggregate query over a period's rows.

Each expectation of `cycles.checks.table` with an SQL translation asks for a few counts (rows,
non-null values, values outside bounds or (not) in a set, repeated values) or AVG/MIN/MAX; this
module builds them, all in one SELECT over the period's rows (repeated values as a scalar
subquery over GROUP BY ... HAVING COUNT(*) > 1), and hands their values back to the translation,
which decides as the native evaluator does (`cycles.checks.decide`): success, counts, observed
value and message are the same. The rest (other expectations, arguments such as `row_condition`,
columns whose type pandas would compare or convert differently) runs through the caller's
`evaluate` on the period's rows, fetched with only the columns those checks name.

Equality is exact as in pandas: text is compared byte for byte (MySQL/MariaDB `CAST(x AS BINARY)`,
PostgreSQL `COLLATE "C"`, SQLite `COLLATE BINARY`), never through a case-insensitive collation;
PostgreSQL's floating NaN counts as null, as it does in pandas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from cycles.checks import ExpectationSpec, Outcome, check_result, gx_forced, required_columns
from cycles.checks.decide import missing_column
from cycles.checks.table import (
    EXPECTATIONS,
    Aggregate,
    Counted,
    InSet,
    NonNull,
    NotInSet,
    Outside,
    Repeated,
    Rows,
    Stat,
    native_args,
)
from cycles.values import CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from connectors.base import Checks

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
    force_gx = gx_forced()
    decided = {
        i: d for i, s in enumerate(specs) if (d := None if force_gx else pushed.translate(s))
    }
    rest = [i for i in range(len(specs)) if i not in decided]
    results: dict[int, CheckResult] = {}
    if rest:
        left = [specs[i] for i in rest]
        whole = any(s.reads_every_column for s in left)
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
    """The aggregates the translated checks ask for, over one period's rows."""

    def __init__(
        self, rows: sa.FromClause, where: list[Any], kinds: Mapping[str, str], dialect: str
    ) -> None:
        self.rows, self.where, self.kinds, self.dialect = rows, where, kinds, dialect
        self._labels: dict[str, str] = {}  # aggregate (repr) -> result label
        self._exprs: list[Any] = []
        self._add(Rows())

    def statement(self) -> sa.Select[Any]:
        return sa.select(*self._exprs).select_from(self.rows).where(*self.where)

    def translate(self, spec: ExpectationSpec) -> Outcome | Decided | None:
        """The outcome (decided now, or from the query's row), or None: not translatable."""
        entry, args = EXPECTATIONS.get(spec.type), native_args(spec)
        if entry is None or entry.sql is None or args is None:
            return None
        if (missing := missing_column(spec, self.kinds)) is not None:
            return missing
        translation = entry.sql(args, self.kinds)
        if not isinstance(translation, Counted):
            return translation
        labels = [(need, self._add(need)) for need in translation.needs]

        def decide(row: Row) -> Outcome:
            return translation.decide(*(_python(need, row[label]) for need, label in labels))

        return decide

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

    def _add(self, need: Aggregate) -> str:
        """The label of the aggregate in the query's row, added on first use."""
        key = repr(need)  # 1 and 1.0 in a value set stay apart, each bound with its own type
        if key not in self._labels:
            self._labels[key] = label = f"c{len(self._labels)}"
            self._exprs.append(self._expression(need).label(label))
        return self._labels[key]

    def _expression(self, need: Aggregate) -> Any:
        match need:
            case Rows():
                return sa.func.count()
            case NonNull(column):
                return sa.func.count(self.value(column))
            case Outside(column, lo, hi, strict_min, strict_max):
                value, inside = self.value(column), []
                if lo is not None:
                    bound = sa.literal(lo, sa.Float)
                    inside.append(value > bound if strict_min else value >= bound)
                if hi is not None:
                    bound = sa.literal(hi, sa.Float)
                    inside.append(value < bound if strict_max else value <= bound)
                return self._count(column, sa.not_(sa.and_(*inside)))
            case InSet(column, values) | NotInSet(column, values):
                member = self.key(column).in_([sa.literal(v, _literal_type(v)) for v in values])
                return self._count(column, member if isinstance(need, InSet) else sa.not_(member))
            case Repeated(column):
                return self._repeated(column)
            case Stat(column, "mean"):
                return sa.func.avg(to_float(self.value(column), self.dialect))
            case Stat(column, name):
                return getattr(sa.func, name)(self.value(column))
        raise TypeError(f"no SQL for {need!r}")

    def _count(self, column: str, condition: Any) -> Any:
        """How many non-null values of `column` meet `condition` (0 over no rows)."""
        hit = sa.case((sa.and_(self.value(column).is_not(None), condition), 1), else_=0)
        return sa.func.coalesce(sa.func.sum(hit), 0)

    def _repeated(self, column: str) -> Any:
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
        return total.scalar_subquery()


def _python(need: Aggregate, value: Any) -> Any:
    """An aggregate's value as pandas would hold it: counts as int, AVG/MIN/MAX as numbers."""
    return plain_number(value) if isinstance(need, Stat) else int(value)


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
