"""SQL connector on real databases: SQLite always, PostgreSQL and MariaDB/MySQL when their URLs are set.

Every aggregate and check is compared with the pandas reference (`label_periods` + `aggregate`,
`cycles.checks.evaluate`) on the same rows. Tables get unique names and are dropped afterwards.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.base import Checks, SchemaError, Window
from connectors.registry import clear_cache, connector_class
from connectors.sql import SqlConnector
from cycles.checks import TRANSLATED, ExpectationSpec, evaluate
from cycles.declaration.model import MetricSpec
from cycles.errors import ConnectorError
from cycles.measure import aggregate, label_periods
from cycles.periods import Cadence, Period
from cycles.urls import normalise_url
from cycles.values import CheckResult, PeriodValue

SERVERS = {
    "postgresql": ("RADAR_TEST_POSTGRES_URL", "PostgreSQL"),
    "mysql": ("RADAR_TEST_MYSQL_URL", "MariaDB/MySQL"),
}


def months(first: str, n: int, timezone: str = "UTC") -> Window:
    start = Period.parse(first, Cadence.monthly)
    return Window(tuple(start + i for i in range(n)), timezone)


@dataclass
class Db:
    """A database for one test: tables it creates are dropped at teardown."""

    dialect: str
    url: str  # as a user writes it in a declaration
    engine: sa.Engine
    tables: list[sa.Table] = field(default_factory=list)
    opened: list[SqlConnector] = field(default_factory=list)

    def create(self, columns: list[sa.Column], rows: list[dict[str, Any]]) -> str:
        table = sa.Table(f"radar_{uuid.uuid4().hex[:12]}", sa.MetaData(), *columns)
        table.create(self.engine)
        self.tables.append(table)
        self.insert(table.name, rows)
        return table.name

    def insert(self, name: str, rows: list[dict[str, Any]], *, replace: bool = False) -> None:
        table = next(t for t in self.tables if t.name == name)
        with self.engine.begin() as conn:
            if replace:
                conn.execute(table.delete())
            if rows:
                conn.execute(table.insert(), rows)

    def connector(self, base_dir: Path | None = None, **config: Any) -> SqlConnector:
        config = {"url": self.url, **config}
        connector = SqlConnector(
            "src", SqlConnector.Config(**config), base_dir=base_dir or Path.cwd()
        )
        self.opened.append(connector)
        return connector


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'metrics.db'}"
    else:
        var, label = SERVERS[request.param]
        url = os.environ.get(var, "")
        if not url:
            pytest.skip(f"{var} not set: {label} connector tests skipped")
    engine = sa.create_engine(normalise_url(url))
    found = Db(request.param, url, engine)
    yield found
    for connector in found.opened:
        connector.close()
    for table in found.tables:
        table.drop(engine, checkfirst=True)
    engine.dispose()


def period_column(kind: str) -> sa.Column:
    types = {
        "date": sa.Date(),
        "timestamp": sa.DateTime(),
        "text": sa.String(40),
        "timestamptz": sa.DateTime(timezone=True),
    }
    return sa.Column("ts", types[kind])


def reference_values(
    rows: list[dict[str, Any]], metric: MetricSpec, window: Window, filter: dict | None = None
) -> list[PeriodValue]:
    frame = pd.DataFrame(rows)
    for column, wanted in (filter or {}).items():
        frame = frame[frame[column].isin(wanted if isinstance(wanted, list) else [wanted])]
    return aggregate(label_periods(frame, metric, window), metric, window)


def assert_values_equal(got: list[PeriodValue], want: list[PeriodValue]) -> None:
    assert [(v.period, v.rows) for v in got] == [(v.period, v.rows) for v in want]
    for g, w in zip(got, want, strict=True):
        for name in ("value", "numerator", "denominator"):
            a, b = getattr(g, name), getattr(w, name)
            assert (a is None and b is None) or a == pytest.approx(b), (g, w)


# -- per-period values --------------------------------------------------------------------------

STAMPS = [  # window 2026-01..2026-04: first and last moments, an empty March, rows just outside
    (datetime(2025, 12, 31, 23, 59), "a", 9.0, 9, 10),
    (datetime(2026, 1, 1), "a", 0.1, 1, 10),
    (datetime(2026, 1, 15, 12), "b", 0.3, 3, 10),
    (datetime(2026, 1, 31, 23, 30), "a", None, 2, 10),
    (datetime(2026, 2, 1), "b", 0.2, 2, 10),
    (datetime(2026, 2, 10, 8, 15), "a", None, None, 10),
    (datetime(2026, 2, 27, 23, 59, 59), "a", 0.6, 6, None),
    (datetime(2026, 4, 30, 23, 59, 59), "b", 0.5, 0, 0),
    (datetime(2026, 5, 1), "a", 9.0, 9, 10),
]  # fmt: skip
TEXTS = ["2025-12-31 23:59", "2026-01-01", "2026-01-15T12:00:00", "2026-01-31 23:30:00", "2026-02-01 00:00:00",
         "2026-02-10T08:15", "2026-02-27T23:59:59.500", "2026-04-30 23:59:59", "2026-05-01T00:00:00"]  # fmt: skip


def period_rows(kind: str) -> list[dict[str, Any]]:
    rows = []
    for (stamp, shop, v, num, den), text in zip(STAMPS, TEXTS, strict=True):
        ts = {"date": stamp.date(), "timestamp": stamp, "text": text}[kind]
        rows.append({"ts": ts, "shop": shop, "v": v, "num": num, "den": den})
    return rows


def value_columns() -> list[sa.Column]:
    return [
        sa.Column("shop", sa.String(10)),
        sa.Column("v", sa.Double()),
        sa.Column("num", sa.Integer()),
        sa.Column("den", sa.Integer()),
    ]


@pytest.mark.parametrize("kind", ["date", "timestamp", "text"])
@pytest.mark.parametrize("form", ["table", "sql", "table-filter", "sql-filter"])
def test_values_equal_the_pandas_reference(db: Db, kind: str, form: str) -> None:
    rows = period_rows(kind)
    name = db.create([period_column(kind), *value_columns()], rows)
    window, connector = months("2026-01", 4), db.connector()
    bounded = f"SELECT * FROM {name} WHERE ts >= :start AND ts < :end"  # text: compared below
    query: dict[str, Any] = (
        {"table": name}
        if form.startswith("table")
        else {"sql": bounded if kind != "text" else f"SELECT * FROM {name};"}
    )
    filter = (
        ({"shop": "a"} if form == "table-filter" else {"shop": ["a", "b"]})
        if "filter" in form
        else None
    )
    if filter:
        query["filter"] = filter
    for metric in (
        MetricSpec(connector="src", period="ts", value="v", query=query),
        MetricSpec(connector="src", period="ts", numerator="num", denominator="den", query=query),
    ):
        got = connector.measure(metric, window).values
        assert_values_equal(got, reference_values(rows, metric, window, filter))
    if kind != "text":
        assert [v.rows for v in got] == ([2, 2, 0, 0] if form == "table-filter" else [3, 3, 0, 1])
    connector.close()


@pytest.mark.parametrize("kind", ["date", "timestamp", "text"])
def test_weekly_and_quarterly_periods(db: Db, kind: str) -> None:
    rows = period_rows(kind)
    name = db.create([period_column(kind), *value_columns()], rows)
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    for first, cadence, n in (("2026-W01", Cadence.weekly, 9), ("2025-Q4", Cadence.quarterly, 3)):
        start = Period.parse(first, cadence)
        window = Window(tuple(start + i for i in range(n)))
        got = db.connector().measure(metric, window).values
        assert_values_equal(got, reference_values(rows, metric, window))
        assert sum(v.rows for v in got) >= 5


def test_sql_with_only_start_bound(db: Db) -> None:
    rows = period_rows("date")
    name = db.create([period_column("date"), *value_columns()], rows)
    metric = MetricSpec(
        connector="src",
        period="ts",
        value="v",
        query={"sql": f"SELECT ts, v FROM {name} WHERE ts >= :start"},
    )
    window = months("2026-02", 3)
    assert_values_equal(
        db.connector().measure(metric, window).values, reference_values(rows, metric, window)
    )


def test_timestamptz_is_read_in_the_outcome_timezone(db: Db) -> None:
    if db.dialect != "postgresql":
        pytest.skip("TIMESTAMP WITH TIME ZONE: PostgreSQL")
    stamps = [
        datetime(2026, 1, 31, 22, 30, tzinfo=UTC),
        datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 2, 28, 23, 30, tzinfo=UTC),
    ]
    rows = [{"ts": s, "v": float(i)} for i, s in enumerate(stamps)]
    name = db.create([period_column("timestamptz"), sa.Column("v", sa.Double())], rows)
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    counts = {}
    for zone in ("UTC", "Europe/Paris", "America/Sao_Paulo"):
        window = months("2026-01", 3, zone)
        got = db.connector().measure(metric, window).values
        assert_values_equal(got, reference_values(rows, metric, window))
        counts[zone] = [v.rows for v in got]
    assert counts == {"UTC": [2, 1, 0], "Europe/Paris": [1, 1, 1], "America/Sao_Paulo": [2, 1, 0]}


def test_sqlite_text_with_offsets_is_converted_like_pandas(tmp_path: Path) -> None:
    texts = ["2026-01-31T23:30:00-02:00", "2026-01-31T22:00:00+00:00", "2026-02-01T00:30:00+02:00", "2026-02-28T23:30:00Z",
             "2026-03-01T00:30:00+01:00", "2026-02-15 10:00", "2026-03-01", "2025-12-31T23:00:00-05:00"]  # fmt: skip
    rows = [{"ts": t, "v": float(i)} for i, t in enumerate(texts)]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tz.db'}")
    sa.Table("t", meta := sa.MetaData(), sa.Column("ts", sa.Text), sa.Column("v", sa.Float)).create(
        engine
    )
    with engine.begin() as conn:
        conn.execute(meta.tables["t"].insert(), rows)
    connector = SqlConnector(
        "src", SqlConnector.Config(url="sqlite:///tz.db"), base_dir=tmp_path
    )  # relative to the declaration
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": "t"})
    for zone in ("UTC", "Europe/Paris", "America/New_York"):
        window = months("2026-01", 2, zone)
        assert_values_equal(
            connector.measure(metric, window).values, reference_values(rows, metric, window)
        )


def test_postgres_nan_counts_as_missing(db: Db) -> None:
    if db.dialect != "postgresql":
        pytest.skip("only PostgreSQL stores NaN")
    rows = [
        {"ts": datetime(2026, 1, d), "v": v}
        for d, v in ((2, 1.0), (3, math.nan), (4, 3.0), (5, None))
    ]
    name = db.create([period_column("timestamp"), sa.Column("v", sa.Double())], rows)
    metric, window = (
        MetricSpec(connector="src", period="ts", value="v", query={"table": name}),
        months("2026-01", 1),
    )
    specs = [ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "v"}),
             ExpectationSpec(type="expect_column_mean_to_be_between", kwargs={"column": "v", "max_value": 1})]  # fmt: skip
    measured = db.connector().measure(metric, window, Checks("m", specs))
    assert measured.values[0].value == 2.0 and measured.values[0].rows == 4
    assert_checks_equal(measured.checks, evaluate(pd.DataFrame(rows), specs, metric="m"))


# -- data checks: SQL against the native evaluator ----------------------------------------------


def checker(frame: pd.DataFrame, specs: Any) -> list[CheckResult]:
    return evaluate(frame, specs, metric="m")


def assert_checks_equal(got: list[CheckResult], want: list[CheckResult]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.model_dump(exclude={"engine", "observed_value"}) == w.model_dump(
            exclude={"engine", "observed_value"}
        )
        if isinstance(w.observed_value, float):
            assert g.observed_value == pytest.approx(w.observed_value)
        else:
            assert g.observed_value == w.observed_value


CHECK_WINDOW = months("2026-01", 2)  # checks run on February's rows
CHECK_STAMPS = [
    datetime(2026, 1, 31, 23, 30),
    datetime(2026, 2, 1),
    datetime(2026, 2, 14, 9),
    datetime(2026, 2, 28, 23, 30),
    datetime(2026, 3, 1),
]
TEXT = ["a", "A", "a ", "b", "é", ""]  # case, trailing space and accents must not be collated away
NUMBERS = [n / 2 for n in range(-2, 6)]  # exact in binary: sums and means are exact too

row = st.fixed_dictionaries({
    "ts": st.sampled_from(CHECK_STAMPS),
    "v": st.none() | st.sampled_from(NUMBERS),
    "n": st.none() | st.integers(-3, 3),
    "s": st.sampled_from([None, *TEXT]),
})  # fmt: skip
check_rows = st.integers(0, 25).flatmap(lambda n: st.lists(row, min_size=n, max_size=n))
bound = st.none() | st.sampled_from([-1, 0, 0.5, 1, 2.25])
mostly = st.sampled_from([1.0, 0.75, 0.5])


@st.composite
def expectation(draw: st.DrawFn) -> ExpectationSpec:
    kind = draw(st.sampled_from(sorted(TRANSLATED)))
    column = draw(st.sampled_from(["v", "n", "s", "s", "zz"]))
    number = draw(st.sampled_from(["v", "n", "zz"]))
    if kind == "expect_column_to_exist":
        kwargs: dict[str, Any] = {"column": draw(st.sampled_from(["v", "ts", "zz"]))}
    elif kind.endswith("_null") or kind.endswith("unique"):
        kwargs = {"column": column, "mostly": draw(mostly)}
    elif kind.endswith("in_set"):
        values = (
            st.sampled_from([*TEXT, 1, 0.25, 2])
            if draw(st.booleans())
            else st.sampled_from(TEXT if column == "s" else [0, 1, 0.25, -2, 2.5])
        )
        kwargs = {
            "column": column,
            "value_set": draw(st.lists(values, max_size=4)),
            "mostly": draw(mostly),
        }
    elif kind == "expect_table_row_count_to_be_between":
        lo, hi = draw(st.none() | st.integers(0, 8)), draw(st.none() | st.integers(8, 30))
        kwargs = {"min_value": lo, "max_value": hi}
    else:
        lo, hi = draw(bound), draw(bound)
        if lo is None and hi is None:
            lo = 0
        strict = {k: draw(st.booleans()) for k in ("strict_min", "strict_max")}
        target = column if kind.endswith("values_to_be_between") else number
        kwargs = {"column": target, "min_value": lo, "max_value": hi, **strict}
        if kind.endswith("values_to_be_between"):
            kwargs["mostly"] = draw(mostly)
    return ExpectationSpec(type=kind, kwargs=kwargs)


def reference_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """February's rows as pandas holds them: floats for numbers (NaN for nulls), objects for text."""
    current = [
        r for r in rows if CHECK_WINDOW.current.start <= r["ts"].date() < CHECK_WINDOW.current.end
    ]
    ints = [r["n"] for r in current]
    return pd.DataFrame({
        "ts": pd.Series([r["ts"] for r in current], dtype="datetime64[us]"),
        "v": pd.Series([r["v"] for r in current], dtype="float64"),
        "n": pd.Series(ints, dtype="int64" if None not in ints else "float64"),
        "s": pd.Series([r["s"] for r in current], dtype="object"),
    })  # fmt: skip


@pytest.fixture
def check_table(db: Db) -> tuple[Db, str, SqlConnector]:
    columns = [
        period_column("timestamp"),
        sa.Column("v", sa.Double()),
        sa.Column("n", sa.Integer()),
        sa.Column("s", sa.String(10)),
    ]
    return db, db.create(columns, []), db.connector()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=check_rows,
    specs=st.lists(expectation(), min_size=1, max_size=6),
    form=st.sampled_from(["table", "sql", "filter"]),
)
def test_checks_in_sql_equal_the_native_evaluator(
    check_table: tuple[Db, str, SqlConnector],
    rows: list[dict[str, Any]],
    specs: list[ExpectationSpec],
    form: str,
) -> None:
    """Table, query (types from the driver, or on SQLite from the values) and filtered rows."""
    db, name, connector = check_table
    db.insert(name, rows, replace=True)
    query: dict[str, Any] = {"sql": f"SELECT * FROM {name}"} if form == "sql" else {"table": name}
    if form == "filter":
        query["filter"] = {"n": [0, 1, 2]}
        rows = [r for r in rows if r["n"] in (0, 1, 2)]
    metric = MetricSpec(connector="src", period="ts", value="v", query=query)
    got = connector.measure(metric, CHECK_WINDOW, Checks("m", specs)).checks
    assert_checks_equal(got, checker(reference_frame(rows), specs))
    if form != "sql" or db.dialect != "sqlite":  # SQLite learns a query's types from its values
        assert [r.engine for r in got] == ["sql" if translatable(s) else "native" for s in specs]


def test_text_is_compared_byte_for_byte(check_table: tuple[Db, str, SqlConnector]) -> None:
    """MariaDB's default collation holds 'a' = 'A' = 'a '; pandas does not, nor do the checks."""
    db, name, connector = check_table
    rows = [
        {"ts": datetime(2026, 2, 2), "v": 1.0, "n": 1, "s": s} for s in ("a", "A", "a ", "é", "e")
    ]
    db.insert(name, rows, replace=True)
    specs = [ExpectationSpec(type="expect_column_values_to_be_unique", kwargs={"column": "s"}),
             ExpectationSpec(type="expect_column_values_to_be_in_set", kwargs={"column": "s", "value_set": ["a", "e"]}),
             ExpectationSpec(type="expect_column_values_to_not_be_in_set", kwargs={"column": "s", "value_set": ["A"]})]  # fmt: skip
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    checks = connector.measure(metric, CHECK_WINDOW, Checks("m", specs)).checks
    assert [(c.engine, c.unexpected_count) for c in checks] == [("sql", 0), ("sql", 3), ("sql", 1)]
    assert_checks_equal(checks, checker(reference_frame(rows), specs))


def translatable(spec: ExpectationSpec) -> bool:
    """Which generated checks the connector runs in SQL (the others read February's rows)."""
    column, values = (
        spec.kwargs.get("column"),
        [v for v in spec.kwargs.get("value_set", []) if v is not None],
    )
    if column == "zz" or not spec.type.endswith(("between", "in_set")):
        return True
    if spec.type.endswith("in_set"):
        if column == "s":
            return all(isinstance(v, str) for v in values)
        return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    return column != "s"


def test_untranslated_checks_run_on_the_current_period_rows_only(
    check_table: tuple[Db, str, SqlConnector],
) -> None:
    db, name, connector = check_table
    rows = [{"ts": ts, "v": 0.5, "n": 1, "s": s} for ts in CHECK_STAMPS for s in ("ab", "b")]
    db.insert(name, rows, replace=True)
    seen: list[pd.DataFrame] = []

    def spy(frame: pd.DataFrame, specs: Any, *, metric: str) -> list[CheckResult]:
        seen.append(frame)
        return evaluate(frame, specs, metric=metric)

    specs = [ExpectationSpec(type="expect_column_values_to_match_regex", kwargs={"column": "s", "regex": "^a"}),
             ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "v"}),
             ExpectationSpec(type="expect_column_values_to_not_be_null", kwargs={"column": "v", "row_condition": 'n > 0', "condition_parser": "pandas"})]  # fmt: skip
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    checks = connector.measure(metric, CHECK_WINDOW, Checks("m", specs[:2], evaluator=spy)).checks
    assert [c.engine for c in checks] == ["native", "sql"]
    assert list(seen[0].columns) == ["s"] and len(seen[0]) == 6  # February: 3 stamps x 2 rows
    assert (
        checks[0].unexpected_count == 3 and checks[0].message == "3 of 6 values not matching '^a'"
    )
    assert checks[1].success and checks[1].metric == "m"


def test_column_index_counts_in_the_source_column_order(db: Db) -> None:
    name = db.create([period_column("date"), *value_columns()], period_rows("date"))
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    specs = [
        ExpectationSpec(type="expect_column_to_exist", kwargs={"column": c, "column_index": i})
        for c, i in (("v", 2), ("v", 1), ("ts", 9))
    ]
    checks = db.connector().measure(metric, months("2026-01", 1), Checks("m", specs)).checks
    assert [c.success for c in checks] == [True, False, False]
    assert checks[1].message == "column 'v' not at index 1"


# -- push-down ----------------------------------------------------------------------------------


def test_measure_receives_aggregates_not_rows(db: Db) -> None:
    """24 periods of a 100k-row table: one GROUP BY row per period, one row of checks."""
    start, rows = datetime(2024, 1, 1), []
    for i in range(100_000):
        rows.append(
            {
                "ts": start + timedelta(minutes=10 * i + i % 7),
                "v": (i % 100) / 100,
                "num": i % 3,
                "den": 1,
                "shop": "ab"[i % 2],
            }
        )
    name = db.create([period_column("timestamp"), *value_columns()], rows)
    connector = db.connector()
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    window = months("2024-01", 24)
    specs = [ExpectationSpec(type=t, kwargs=k) for t, k in (
        ("expect_column_values_to_not_be_null", {"column": "v"}),
        ("expect_column_values_to_be_between", {"column": "v", "min_value": 0, "max_value": 1}),
        ("expect_column_values_to_be_in_set", {"column": "shop", "value_set": ["a", "b"]}),
        ("expect_column_values_to_be_unique", {"column": "ts"}),
    )]  # fmt: skip
    connector.columns(connector.Query(table=name))  # reflection first: then only the work
    statements: list[tuple[str, Any]] = []

    def record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        statements.append((statement, parameters))

    def fail(*args: Any) -> None:
        raise AssertionError("measure fetched rows")

    engine = connector._engine_now()
    sa.event.listen(engine, "before_cursor_execute", record)
    connector._frame = fail  # type: ignore[method-assign]
    measured = connector.measure(metric, window, Checks("m", specs))
    sa.event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 2, statements  # the window's GROUP BY, the period's checks
    received = 0
    with engine.connect() as conn:  # the same statements again: how many rows they return
        for statement, parameters in statements:
            received += len(conn.exec_driver_sql(statement, parameters).fetchall())
    assert received <= 24 + 1
    assert sum(v.rows for v in measured.values) == sum(
        1 for r in rows if r["ts"] < datetime(2026, 1, 1)
    )
    assert all(c.engine == "sql" and c.success for c in measured.checks), measured.checks
    assert measured.checks[0].element_count == measured.values[-1].rows


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://radar:S3cret-pw!@127.0.0.1:9/metrics",
        "mysql://radar:S3cret-pw!@127.0.0.1:9/metrics",
    ],
)
def test_unreachable_database_is_one_line_without_the_password(url: str) -> None:
    connector = SqlConnector("warehouse", SqlConnector.Config(url=url), base_dir=Path.cwd())
    with pytest.raises(ConnectorError) as info:
        connector.columns(connector.Query(table="t"))
    message = str(info.value)
    assert "S3cret-pw!" not in message and "\n" not in message
    assert (
        message.startswith("connector 'warehouse': cannot connect to ")
        and ":***@127.0.0.1:9" in message
    )


def test_missing_table_column_and_bad_sql(db: Db) -> None:
    name = db.create([period_column("date"), *value_columns()], period_rows("date"))
    connector, window = db.connector(), months("2026-01", 1)
    with pytest.raises(SchemaError, match="table 'radar_nope' not found") as info:
        connector.measure(
            MetricSpec(connector="src", period="ts", value="v", query={"table": "radar_nope"}),
            window,
        )
    assert info.value.key == "table"
    for keys, key in (({"period": "when", "value": "v"}, "period"), ({"period": "ts", "value": "rate"}, "value"),
                      ({"period": "ts", "numerator": "num", "denominator": "d"}, "denominator")):  # fmt: skip
        with pytest.raises(SchemaError, match="not found in connector 'src'") as info:
            connector.measure(MetricSpec(connector="src", query={"table": name}, **keys), window)
        assert info.value.key == key
    with pytest.raises(SchemaError) as info:
        connector.measure(
            MetricSpec(
                connector="src",
                period="ts",
                value="v",
                query={"table": name, "filter": {"region": "x"}},
            ),
            window,
        )
    assert info.value.key == "query"
    with pytest.raises(ConnectorError, match=r"^connector 'src': query failed: ") as failed:
        connector.columns(connector.Query(sql=f"SELEC ts FROM {name}"))
    assert "\n" not in str(failed.value)
    with pytest.raises(ConnectorError, match="only :start and :end are bound"):
        connector.columns(connector.Query(sql=f"SELECT * FROM {name} WHERE ts > :since"))


def test_columns_of_tables_views_and_queries(db: Db) -> None:
    name = db.create([period_column("date"), *value_columns()], [])
    schema = {"sqlite": "main", "postgresql": "public", "mysql": db.engine.url.database}[db.dialect]
    connector = db.connector()
    assert connector.columns(connector.Query(table=name)) == ["ts", "shop", "v", "num", "den"]
    assert connector.columns(connector.Query(table=f"{schema}.{name}")) == [
        "ts",
        "shop",
        "v",
        "num",
        "den",
    ]
    assert db.connector(schema=schema).columns(connector.Query(table=name))[0] == "ts"
    assert connector.columns(
        connector.Query(sql=f"SELECT v AS rate, ts FROM {name} WHERE ts >= :start ;")
    ) == ["rate", "ts"]


def test_config_and_query_validation(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        SqlConnector.Query(table="t", sql="SELECT 1")
    with pytest.raises(ValidationError, match="one is needed"):
        SqlConnector.Query()
    with pytest.raises(ValidationError, match="not a database URL"):
        SqlConnector.Config(url="nonsense")
    config = SqlConnector.Config(url="postgresql://u:pw12345@h/db")
    assert "pw12345" not in repr(config) and "pw12345" not in str(config.model_dump())
    missing = SqlConnector("src", SqlConnector.Config(url="sqlite:///gone.db"), base_dir=tmp_path)
    with pytest.raises(SchemaError, match="database file not found") as info:
        missing.columns(missing.Query(table="t"))
    assert info.value.key == "url" and not (tmp_path / "gone.db").exists()


def test_registered_as_sql() -> None:
    clear_cache()
    assert connector_class("sql") is SqlConnector


def test_fetch_reads_the_window_and_the_columns_asked_for(db: Db) -> None:
    rows = period_rows("timestamp")
    name = db.create([period_column("timestamp"), *value_columns()], rows)
    connector = db.connector()
    frame = connector.fetch(
        connector.Query(table=name, filter={"shop": "a"}), months("2026-01", 2), ["ts", "v"]
    )
    assert list(frame.columns) == ["ts", "v"]
    got = sorted(pd.to_datetime(frame["ts"]).dt.to_pydatetime())
    want = [
        r["ts"]
        for r in rows
        if r["shop"] == "a" and datetime(2026, 1, 1) <= r["ts"] < datetime(2026, 3, 1)
    ]
    if db.dialect == "sqlite":  # a day wider, for text with offsets; label_periods drops the rest
        assert set(want) <= set(got) and all(
            datetime(2025, 12, 31) <= t < datetime(2026, 3, 2) for t in got
        )
    else:
        assert got == want


def test_close_then_use_again(db: Db) -> None:
    name = db.create([period_column("date"), *value_columns()], period_rows("date"))
    connector = db.connector()
    query = connector.Query(table=name)
    assert connector.columns(query)
    connector.close()
    connector.close()
    metric = MetricSpec(connector="src", period="ts", value="v", query={"table": name})
    assert connector.measure(metric, months("2026-01", 1)).values[0].rows == 3
    connector.close()
