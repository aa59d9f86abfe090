"""SQL databases as metric sources (SQLAlchemy), with aggregation and checks pushed down.

`measure` sends one query for the whole window (per period: the row count and the mean, or the
sums of a proportion; rows are placed into periods by comparisons on the period column, so an
index on it serves) and one aggregate query for the data checks of the period under review
(`connectors.sql_checks`). Only checks it cannot translate read rows into Python: the rows of the
period under review, with only the columns those checks name.

Values are assumed numeric: pandas reads other text as NaN, the database casts it or fails. The
period column may be a DATE, a TIMESTAMP (WITH TIME ZONE: read in the outcome's timezone) or
ISO-8601 text, compared as text; in a SQLite column not declared DATE or TIMESTAMP, text ending in
`Z` or `±HH:MM` is converted to the outcome's timezone as pandas does.

Every query ends within `timeout` seconds (default 60; `connect_timeout`, default 10, to connect):
PyMySQL's read/write timeouts, PostgreSQL's `statement_timeout`, SQLite's busy timeout. A server
that never answers gives `connector 'x': <url> did not answer within 60 s`. The `sql:` text is
sent as written: `{period}` and the other action placeholders are not filled in (only `:start`
and `:end` are bound), so nothing from a template ever becomes part of it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from connectors import sql_checks as pushdown
from connectors.base import (
    Checks,
    Connector,
    ConnectorConfig,
    Measurement,
    MetricQuery,
    SchemaError,
    Window,
)
from cycles import secrets
from cycles.errors import ConnectorError
from cycles.store import db
from cycles.urls import normalise_url
from cycles.values import CheckResult, PeriodValue

if TYPE_CHECKING:
    import pandas as pd

    from cycles.declaration.model import MetricSpec
    from cycles.periods import Period


class SqlConfig(ConnectorConfig):
    type: Literal["sql"] = "sql"
    url: SecretStr  # any SQLAlchemy URL; plain postgresql://, mysql://, sqlite:/// work
    db_schema: str | None = Field(default=None, alias="schema")  # for unqualified `table`s
    connect_timeout: int = Field(default=10, gt=0)  # seconds (PostgreSQL and MySQL drivers)
    timeout: float = Field(default=60, gt=0)  # seconds any one query may take

    @field_validator("url")
    @classmethod
    def _a_url(cls, value: SecretStr) -> SecretStr:
        try:
            sa.make_url(normalise_url(value.get_secret_value()))
        except sa.exc.ArgumentError:
            message = "not a database URL (e.g. postgresql://user@host/db, sqlite:///x.db)"
            raise PydanticCustomError("sql_url", message) from None
        return value


class SqlQuery(MetricQuery):
    """`table: NAME` (`schema.name` allowed) or `sql: SELECT ...` (`:start`, `:end` bound)."""

    table: str | None = Field(default=None, min_length=1)
    sql: str | None = Field(default=None, min_length=1)
    filter: dict[str, Any] = Field(default_factory=dict)  # {column: value or [values]}

    @model_validator(mode="after")
    def _one_source(self) -> SqlQuery:
        if (self.table is None) == (self.sql is None):
            both = "not both" if self.table else "one is needed"
            raise PydanticCustomError(
                "sql_query", f"give `table: NAME` or `sql: SELECT ...` ({both})"
            )
        return self


@dataclass
class _Source:
    """A table or a query, and the kind of each of its columns, in the source's order."""

    kinds: dict[str, str]  # int | float | decimal | bool | text | date | datetime[tz] | other
    table: sa.TableClause | None = None
    sql: str = ""
    params: tuple[str, ...] = ()  # "start" and/or "end"

    def rows(self, window: Window | None = None) -> sa.FromClause:
        if self.table is not None:
            return self.table
        bounds = {"start": window.start, "end": window.end} if window else {}
        binds = [sa.bindparam(p, bounds.get(p, date.today()), sa.Date) for p in self.params]
        clause = sa.text(self.sql).bindparams(*binds)
        return clause.columns(*(sa.column(c) for c in self.kinds)).subquery("q")


class SqlConnector(Connector):
    type = "sql"
    Config = SqlConfig
    Query = SqlQuery
    config: SqlConfig

    def __init__(self, name: str, config: ConnectorConfig, *, base_dir: Path) -> None:
        super().__init__(name, config, base_dir=base_dir)
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._sources: dict[tuple[str | None, str | None], _Source] = {}

    def columns(self, query: Any) -> list[str]:
        return list(self._source(query).kinds)

    def fetch(self, query: Any, window: Window, columns: Sequence[str]) -> pd.DataFrame:
        """The window's rows, `columns` only; the first of them is the period column."""
        source = self._source(query)
        self._require(source, [*columns, *query.filter], key="columns")
        rows = source.rows(window)
        periods = _Periods(rows.c[columns[0]], source.kinds[columns[0]], self.dialect, window)
        return self._frame(rows, [periods.range(), *self._filters(query, rows)], columns)

    def measure(
        self, metric: MetricSpec, window: Window, checks: Checks | None = None
    ) -> Measurement:
        query = self.Query.model_validate(metric.query)
        self.require_columns(query, metric, [])
        source = self._source(query)
        self._require(source, list(query.filter), key="query")
        rows = source.rows(window)
        filters = self._filters(query, rows)
        periods = _Periods(rows.c[metric.period], source.kinds[metric.period], self.dialect, window)
        values = self._values(rows, metric, window, periods, filters)
        results: list[CheckResult] = []
        if checks and checks.expectations:
            where = [*periods.exactly(window.current), *filters]
            self._probe_kinds(source, rows, checks.columns)
            pushed = pushdown.CheckQuery(rows, where, source.kinds, self.dialect)
            frame = functools.partial(self._frame, rows, where)
            results = pushdown.period_checks(checks, pushed, self._one, frame)
        return Measurement(values=values, checks=results)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def _values(
        self, rows: Any, metric: MetricSpec, window: Window, periods: _Periods, filters: list[Any]
    ) -> list[PeriodValue]:
        """Per period, in one GROUP BY: the row count and the mean, or the two sums."""
        mean = metric.value is not None
        names = [metric.value] if mean else [metric.numerator, metric.denominator]
        numbers = [self._number(rows.c[name]).label(f"v{i}") for i, name in enumerate(names)]
        inner = sa.select(periods.bucket().label("p"), *numbers).select_from(rows)
        w = inner.where(periods.range(), *filters).subquery("w")
        stat = sa.func.avg if mean else sa.func.sum
        stmt = sa.select(w.c.p, sa.func.count(), *(stat(w.c[f"v{i}"]) for i in range(len(names))))
        with self._connection() as conn:
            found = {r[0]: r[1:] for r in conn.execute(stmt.group_by(w.c.p)) if r[0] is not None}
        out = []
        for index, period in enumerate(window.periods):
            count, *sums = found.get(str(period) if periods.by_month else index, (0, None, None))
            first, second = (*(_float(s) for s in sums), None)[:2]
            value = first if mean else first / second if first is not None and second else None
            extra = {} if mean else {"numerator": first, "denominator": second}
            out.append(PeriodValue(period=str(period), value=value, rows=int(count), **extra))
        return out

    def _number(self, column: Any) -> Any:
        number = pushdown.to_float(column, self.dialect)
        if self.dialect == "postgresql":  # pandas holds NaN as missing: so does the mean here
            return sa.func.nullif(number, sa.cast(sa.literal("NaN"), sa.Double))
        return number

    # -- sources and rows -----------------------------------------------------------------------

    def _source(self, query: Any) -> _Source:
        key = (query.table, query.sql)
        if key not in self._sources:
            self._sources[key] = self._table(query.table) if query.table else self._query(query.sql)
        return self._sources[key]

    def _table(self, name: str) -> _Source:
        prefix, _, table = name.rpartition(".")
        schema = prefix or self.config.db_schema or None
        with self._connection() as conn:
            try:
                found = sa.inspect(conn).get_columns(table, schema=schema)
            except sa.exc.NoSuchTableError:
                message = f"table {name!r} not found in connector {self.name!r} ({self.where})"
                raise SchemaError(message, key="table") from None
        kinds = {c["name"]: pushdown.kind_of_type(c["type"]) for c in found}
        return _Source(kinds, table=sa.table(table, *(sa.column(c) for c in kinds), schema=schema))

    def _query(self, sql: str) -> _Source:
        """Its columns from the query run with `WHERE false LIMIT 0`; kinds from the driver."""
        sql = sql.strip().rstrip(";").strip()
        params = tuple(sa.text(sql).compile().params)
        if extra := [p for p in params if p not in ("start", "end")]:
            what = f"the sql names :{extra[0]}; only :start and :end are bound"
            raise ConnectorError(f"connector {self.name!r}: {what}")
        found = _Source({}, sql=sql, params=params)
        sub = sa.text(sql).bindparams(*(sa.bindparam(p, date.today(), sa.Date) for p in params))
        stmt: sa.Select[Any] = sa.select(sa.literal_column("*"))
        stmt = stmt.select_from(sub.columns().subquery("q"))
        with self._connection() as conn:
            result = conn.execute(stmt.where(sa.false()).limit(0))
            names, described = list(result.keys()), result.cursor.description or []
        codes = [d[1] for d in described] if len(described) == len(names) else [None] * len(names)
        found.kinds = {
            n: pushdown.kind_of_code(self.dialect, c) for n, c in zip(names, codes, strict=True)
        }
        return found

    def _probe_kinds(self, source: _Source, rows: Any, columns: list[str]) -> None:
        """Query columns without a type code (SQLite): the kind of their first non-null value."""
        unknown = [c for c in dict.fromkeys(columns) if source.kinds.get(c) == "unknown"]
        if unknown:
            firsts = [sa.select(rows.c[c]).where(rows.c[c].is_not(None)).limit(1) for c in unknown]
            found = self._one(sa.select(*(f.scalar_subquery() for f in firsts)))
            source.kinds.update(
                {c: pushdown.kind_of_value(v) for c, v in zip(unknown, found.values(), strict=True)}
            )

    def _require(self, source: _Source, columns: Sequence[str], *, key: str) -> None:
        for column in columns:
            if column not in source.kinds:
                raise SchemaError(
                    f"column {column!r} not found in connector {self.name!r} "
                    f"(columns: {', '.join(source.kinds)})",
                    key=key,
                )

    def _filters(self, query: Any, rows: Any) -> list[Any]:
        """`filter: {column: value | [values]}` as `=`, IN or IS NULL, with bound values."""
        found = []
        for column, expected in query.filter.items():
            values = expected if isinstance(expected, list) else [expected]
            present, col = [v for v in values if v is not None], rows.c[column]
            either = [col.in_(present)] if present else []
            either += [col.is_(None)] if len(present) < len(values) else []
            found.append(sa.or_(*either) if either else sa.false())
        return found

    def _frame(self, rows: Any, where: list[Any], columns: Sequence[str]) -> pd.DataFrame:
        import pandas as pd

        names = list(dict.fromkeys(columns))
        stmt = sa.select(*(rows.c[c] for c in names)).select_from(rows).where(*where)
        with self._connection() as conn:
            return pd.read_sql(stmt, conn)

    def _one(self, stmt: sa.Select[Any]) -> dict[str, Any]:
        with self._connection() as conn:
            return dict(conn.execute(stmt).mappings().one())

    # -- the database ---------------------------------------------------------------------------

    @functools.cached_property
    def url(self) -> sa.URL:
        """The normalised URL; a relative SQLite path is relative to the declaration."""
        url = sa.make_url(normalise_url(self.config.url.get_secret_value()))
        database = url.database or ""
        relative = not database.startswith("file:") and not Path(database).is_absolute()
        if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and relative:
            url = url.set(database=str(self.base_dir / database))
        return url

    @property
    def where(self) -> str:
        """The URL with its password masked: what messages show."""
        return self.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    def _engine_now(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                url, options = self.url, {}
                database = url.database or ""
                local = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
                if local and not database.startswith("file:") and not Path(database).is_file():
                    raise SchemaError(f"database file not found: {database}", key="url")
                if args := db.timeout_args(url, *self._deadlines):
                    options["connect_args"] = args
                try:
                    self._engine = sa.create_engine(url, pool_pre_ping=True, **options)
                except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
                    raise ConnectorError(self._say(f"cannot use {self.where}", exc)) from exc
            return self._engine

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """A connection; failures become one-line ConnectorErrors that never show the password."""
        engine = self._engine_now()
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise ConnectorError(
                self._late(exc) or self._say(f"cannot connect to {self.where}", exc)
            ) from exc
        try:
            with conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise ConnectorError(self._late(exc) or self._say("query failed", exc)) from exc

    @property
    def _deadlines(self) -> tuple[float, float]:
        """(per query, to connect) in seconds."""
        timeout = self.config.timeout
        return timeout, float(min(self.config.connect_timeout, timeout))

    def _late(self, exc: BaseException) -> str | None:
        """`connector 'x': <url> did not answer within N s` when a deadline ran out."""
        late = db.said_late(exc, self.where, *self._deadlines)
        return None if late is None else secrets.redact(f"connector {self.name!r}: {late}")

    def _say(self, what: str, exc: BaseException) -> str:
        lines = db.driver_lines(exc, code=False)
        first = lines[0] if lines else type(db.driver_exception(exc)).__name__
        message = f"connector {self.name!r}: {what}: {first}"
        password = str(self.url.password or "")
        if len(password) >= 4:
            message = message.replace(password, secrets.MASK)
        return secrets.redact(message)


class _Periods:
    """Rows into the window's periods, `[start, end)` on the period column as `label_periods`.

    Bounds are bound parameters of the column's type: dates, timestamps, aware timestamps in the
    outcome's timezone, or ISO text (compared as text). A row's period is found by a balanced tree
    of CASE expressions over the bounds: about log2(periods) comparisons per row.
    """

    def __init__(self, column: Any, kind: str, dialect: str, window: Window) -> None:
        self.column, self.window, self.zone = column, window, ZoneInfo(window.timezone)
        self.text, self.inline = dialect == "sqlite" or kind == "text", dialect == "sqlite"
        # SQLite text not declared as DATE/TIMESTAMP may hold offsets: those compare in UTC
        self.offsets = dialect == "sqlite" and kind not in ("date", "datetime", "datetimetz")
        self.days = sorted({p.start for p in window.periods} | {p.end for p in window.periods})
        self.kind = kind
        self.local: dict[date, Any] = {}  # bound parameters by day, made once
        self.utc: dict[date, Any] = {}

    def _at(self, day: date) -> Any:
        """The bound parameter of midnight starting `day`, in the column's type."""
        if day not in self.local:
            self.local[day] = self._bind(day, self.kind)
        return self.local[day]

    def _utc(self, day: date) -> Any:
        """SQLite: that midnight as `YYYY-MM-DD HH:MM:SS` in UTC, as datetime() gives it."""
        if day not in self.utc:
            instant = datetime.combine(day, time(), self.zone).astimezone(UTC)
            stamp = instant.strftime("%Y-%m-%d %H:%M:%S")
            self.utc[day] = sa.bindparam(None, stamp, sa.String, literal_execute=True)
        return self.utc[day]

    def _bind(self, day: date, kind: str) -> Any:
        if self.text:  # SQLite: inline, a bound value is converted to the column affinity per row
            return sa.bindparam(None, day.isoformat(), sa.String, literal_execute=self.inline)
        if kind == "datetimetz":
            return sa.bindparam(None, datetime.combine(day, time(), self.zone), sa.DateTime(True))
        if kind == "datetime":
            return sa.bindparam(None, datetime.combine(day, time()), sa.DateTime)
        return sa.bindparam(None, day, sa.Date)

    def range(self, period: Period | None = None) -> Any:
        """Index-friendly bounds holding every row of the window or period (SQLite: a day wider)."""
        start, end = (period.start, period.end) if period else (self.window.start, self.window.end)
        if self.offsets:
            start, end = start - timedelta(days=1), end + timedelta(days=1)
        return sa.and_(self.column >= self._at(start), self.column < self._at(end))

    def exactly(self, period: Period) -> list[Any]:
        """Conditions holding exactly the rows of `period`."""
        col = self.column
        naive = sa.and_(col >= self._at(period.start), col < self._at(period.end))
        if not self.offsets:
            return [naive]
        utc, aware = sa.func.datetime(col), self._aware()
        shifted = sa.and_(utc >= self._utc(period.start), utc < self._utc(period.end))
        either = sa.or_(sa.and_(aware, shifted), sa.and_(sa.not_(aware), naive))
        return [self.range(period), either]

    @property
    def by_month(self) -> bool:
        """SQLite ISO text in months: the month is the first 7 characters (cheaper than CASE)."""
        return self.inline and not self.offsets and self.window.current.cadence == "monthly"

    def bucket(self) -> Any:
        """The row's period: its index in the window (or its text, `by_month`), else NULL."""
        if self.by_month:
            return sa.func.substr(self.column, 1, 7)
        index = {(p.start, p.end): i for i, p in enumerate(self.window.periods)}
        labels = [index.get(pair) for pair in itertools.pairwise(self.days)]
        if not self.offsets:
            return _search(self.column, [self._at(d) for d in self.days[1:-1]], labels)
        guarded = [None, *labels, None]  # the range is a day wider on either side
        naive = _search(self.column, [self._at(d) for d in self.days], guarded)
        aware = _search(sa.func.datetime(self.column), [self._utc(d) for d in self.days], guarded)
        return sa.case((self._aware(), aware), else_=naive)

    def _aware(self) -> Any:
        """Text ending in Z, ±HH:MM or ±HHMM after a time: what pandas parses as aware."""
        col, signs = self.column, ("+", "-")
        ends = sa.or_(sa.func.substr(col, -6, 1).in_(signs), sa.func.substr(col, -5, 1).in_(signs))
        return sa.and_(sa.func.length(col) > 16, sa.or_(ends, sa.func.substr(col, -1) == "Z"))


def _search(x: Any, bounds: list[Any], labels: list[int | None]) -> Any:
    """labels[i] where bounds[i-1] <= x < bounds[i]: a balanced tree of CASE expressions."""
    if len(labels) == 1:
        return sa.null() if labels[0] is None else sa.literal_column(str(labels[0]), sa.Integer)
    mid = len(labels) // 2
    low = _search(x, bounds[: mid - 1], labels[:mid])
    return sa.case((x < bounds[mid - 1], low), else_=_search(x, bounds[mid:], labels[mid:]))


def _float(value: Any) -> float | None:
    value = pushdown.plain_number(value)
    return None if value is None else float(value)
