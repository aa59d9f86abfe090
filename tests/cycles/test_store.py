"""The history store against real databases: SQLite always, PostgreSQL and MariaDB when set.

PostgreSQL: RADAR_TEST_POSTGRES_URL (each test gets its own schema, dropped afterwards).
MySQL/MariaDB: RADAR_TEST_MYSQL_URL (each test gets its own database, dropped afterwards).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)

from cycles.errors import StoreError
from cycles.record import CheckSummary, CycleRecord
from cycles.store import Store, default_url, normalise_url
from cycles.store.db import MIGRATIONS
from cycles.store.models import HEAD, ActionRow, Base
from cycles.values import (
    ActionRun,
    ApproachRef,
    CheckResult,
    DecisionKind,
    Limits,
    PeriodValue,
    SignalKind,
    Stage,
    StageRun,
)

PG_ENV = "RADAR_TEST_POSTGRES_URL"
MYSQL_ENV = "RADAR_TEST_MYSQL_URL"
T0 = datetime(2026, 10, 31, 9, 15, 30, 123456, tzinfo=UTC)


# --- fixtures -----------------------------------------------------------------------------------


def _admin(url: str, **kwargs: Any) -> Engine:
    return create_engine(normalise_url(url), isolation_level="AUTOCOMMIT", **kwargs)


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of each kind, removed after the test."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'history' / 'radar.db'}"
        return
    name = f"radar_{uuid.uuid4().hex[:12]}"
    if kind == "postgresql":
        base = os.environ.get(PG_ENV)
        if not base:
            pytest.skip(f"{PG_ENV} not set: PostgreSQL store tests skipped")
        admin = _admin(base)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
        url = admin.url.update_query_dict({"options": f"-csearch_path={name}"})
        drop = f"DROP SCHEMA {name} CASCADE"
    else:
        base = os.environ.get(MYSQL_ENV)
        if not base:
            pytest.skip(f"{MYSQL_ENV} not set: MySQL/MariaDB store tests skipped")
        admin = _admin(base)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        url = admin.url.set(database=name)
        drop = f"DROP DATABASE {name}"
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(drop)
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.dispose()


def _engine(store: Store) -> Engine:
    return store._engine


def _run(stage: Stage, status: str = "completed", error: str | None = None, n: int = 0) -> StageRun:
    start = T0 + timedelta(minutes=n)
    return StageRun(
        stage=stage,
        status=status,
        started_at=start,
        finished_at=start + timedelta(seconds=1.5),
        error=error,
    )


def _record(outcome: str = "onboarding", period: str = "2026-10", **kw: Any) -> CycleRecord:
    return CycleRecord(outcome=outcome, period=period, cadence="monthly", target=0.8, **kw)


def _full_record() -> CycleRecord:
    checks = [
        CheckResult(
            metric="activation",
            expectation="expect_column_values_to_not_be_null",
            kwargs={"column": "activated", "mostly": 0.95},
            success=True,
            element_count=120,
            unexpected_count=0,
            observed_value={"unexpected_percent": 0.0},
            engine="gx",
        ),
        CheckResult(
            metric="activation",
            expectation="expect_column_mean_to_be_between",
            kwargs={"min_value": 0, "max_value": None, "nested": {"a": [1, 2.5, "x"]}},
            success=False,
            observed_value=[0.1, None, "z"],
            message="mean out of range ✗",
        ),
        CheckResult(metric="churn", expectation="expect_table_row_count", success=True),
    ]
    return _record(
        title="Activation ≥ 80 % — new users",
        status="reviewed",
        completed_stages=list(Stage),
        decision=DecisionKind.adjust,
        reasons=["below target", "signal: improvement"],
        approach=ApproachRef(name="email-nudge", params={"delay_days": 3, "copy": {"v": "B"}}),
        next_approach=ApproachRef(name="email-nudge", params={"delay_days": 2}),
        result_metric="activation",
        result_value=0.7312345678901234,
        direction="decrease",
        standing=0.61,
        checks=CheckSummary.of(checks),
        limits=Limits(centre=0.6, lower=0.41, upper=0.79, baseline=["2026-01", "2026-02"]),
        signal=SignalKind.improvement,
        metrics={
            "zeta": [PeriodValue(period="2026-09", value=3.0, rows=4)],
            "activation": [
                PeriodValue(period="2026-09", value=0.6, rows=100, numerator=60, denominator=100),
                PeriodValue(period="2026-10", value=None, rows=0),
            ],
        },
        extra={"owner": "growth", "tags": ["a", "b"], "deep": {"x": 1, "y": None}},
    )


def _ledger(rec: CycleRecord, action: str, type: str = "webhook") -> dict[str, Any]:
    key = f"{rec.outcome}/{rec.period}/email-nudge/{action}"
    args = {"outcome": rec.outcome, "period": rec.period, "approach": "email-nudge"}
    return {"key": key, **args, "action": action, "type": type}


def _scalar(store: Store, sql: str) -> Any:
    with _engine(store).connect() as conn:
        return conn.execute(text(sql)).scalar_one()


# --- cycles ---------------------------------------------------------------------------------


def test_the_full_record_sets_every_stored_field() -> None:
    """Guards the round trip: a field added to CycleRecord must be stored (or listed here)."""
    not_stored = {"stages", "dry_run", "updated_at"}  # per invocation, or set by the store
    from_elsewhere = {"stage_runs", "actions"}  # from the stage_runs rows and the ledger
    full, default = _full_record(), _record()
    unset = [
        name
        for name in CycleRecord.model_fields
        if getattr(full, name) == getattr(default, name) and name not in not_stored
    ]
    assert set(unset) <= from_elsewhere | {"outcome", "period", "cadence", "target"}


def test_full_record_round_trips(store: Store) -> None:
    rec = _full_record()
    a = _ledger(rec, "send")
    store.begin_action(**a)
    store.finish_action(a["key"], status="succeeded", reach=412.0)
    b = _ledger(rec, "post", type="slack")
    store.skip_action(**b, reason="not in this approach")
    run = StageRun(
        stage=Stage.assessment,
        status="completed",
        started_at=datetime(2026, 10, 31, 11, 0, 0, 654321, tzinfo=timezone(timedelta(hours=2))),
        finished_at=datetime(2026, 10, 31, 9, 0, 1, 1),  # naive: taken as UTC
    )
    rec.stages = [Stage.assessment]
    store.save_stage(rec, run)

    got = store.get_cycle("onboarding", "2026-10")
    assert got is not None
    actions = [
        ActionRun(
            name="send", type="webhook", key=a["key"], status="succeeded", reach=412.0, attempts=1
        ),
        ActionRun(
            name="post",
            type="slack",
            key=b["key"],
            status="skipped",
            error="not in this approach",
            attempts=0,
        ),
    ]
    stored_run = run.model_copy(
        update={
            "started_at": datetime(2026, 10, 31, 9, 0, 0, 654321, tzinfo=UTC),
            "finished_at": datetime(2026, 10, 31, 9, 0, 1, 1, tzinfo=UTC),
        }
    )
    update = {"stages": [], "stage_runs": [stored_run], "actions": actions}
    expected = rec.model_copy(update=update)
    exclude = {"updated_at"}
    assert got.model_dump(exclude=exclude) == expected.model_dump(exclude=exclude)
    assert list(got.metrics) == ["zeta", "activation"]
    assert got.stage_runs[0].started_at.utcoffset() == timedelta(0)
    assert got.updated_at is not None and got.updated_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - got.updated_at) < timedelta(minutes=5)
    assert store.get_cycle("onboarding", "2026-11") is None


def test_upsert_across_stages_keeps_one_row(store: Store) -> None:
    rec = _record(completed_stages=[Stage.result], result_metric="activation")
    store.save_stage(rec, _run(Stage.result))
    first = store.get_cycle(rec.outcome, rec.period)
    rec.approach = ApproachRef(name="nudge", params={"n": 1})
    rec.completed_stages = [Stage.result, Stage.approach]
    store.save_stage(rec, _run(Stage.approach, n=1))
    got = store.get_cycle(rec.outcome, rec.period)
    assert first is not None and got is not None
    assert [r.stage for r in got.stage_runs] == [Stage.result, Stage.approach]
    assert got.completed_stages == [Stage.result, Stage.approach]
    assert got.approach == ApproachRef(name="nudge", params={"n": 1})
    assert got.updated_at and first.updated_at and got.updated_at >= first.updated_at
    assert _scalar(store, "SELECT count(*) FROM cycles") == 1


def test_assessment_replaces_metric_and_check_rows(store: Store) -> None:
    rec = _full_record()
    store.save_stage(rec, _run(Stage.assessment))
    rec.metrics = {"activation": [PeriodValue(period="2026-10", value=0.9, rows=10)]}
    rec.checks = CheckSummary.of([CheckResult(metric="x", expectation="e", success=False)])
    store.save_stage(rec, _run(Stage.assessment, n=1))
    got = store.get_cycle(rec.outcome, rec.period)
    assert got is not None
    assert got.metrics == rec.metrics
    assert got.checks == rec.checks
    # Stages other than the assessment leave the assessment's rows alone.
    rec.metrics, rec.checks = {}, CheckSummary()
    store.save_stage(rec, _run(Stage.review, n=2))
    got = store.get_cycle(rec.outcome, rec.period)
    assert got is not None and len(got.metrics["activation"]) == 1
    assert len(got.checks.results) == 1 and got.checks.passed == 0
    assert _scalar(store, "SELECT count(*) FROM metric_values") == 1


def test_save_failure_keeps_completed_stages(store: Store) -> None:
    rec = _record(completed_stages=[Stage.result])
    store.save_stage(rec, _run(Stage.result))
    retry = _record()  # a fresh invocation that failed in the approach stage
    store.save_failure(retry, _run(Stage.approach, "failed", "boom: no such approach", n=1))
    got = store.get_cycle(rec.outcome, rec.period)
    assert got is not None
    assert got.status == "open" and got.completed_stages == [Stage.result]
    assert [(r.stage, r.status, r.error) for r in got.stage_runs] == [
        (Stage.result, "completed", None),
        (Stage.approach, "failed", "boom: no such approach"),
    ]
    fresh = _record(period="2026-11", status="failed")
    store.save_failure(fresh, _run(Stage.result, "failed", "source down"))
    got = store.get_cycle(fresh.outcome, "2026-11")
    assert got is not None and got.status == "failed" and got.completed_stages == []


def test_a_failing_save_leaves_nothing_behind(store: Store) -> None:
    rec = _record(title="before", completed_stages=[Stage.result])
    store.save_stage(rec, _run(Stage.result))
    bad = _full_record()
    bad.title = "after"
    bad.checks = CheckSummary.of(
        [CheckResult(metric="m", expectation="e", kwargs={"x": object()}, success=True)]
    )
    with pytest.raises(StoreError, match="not JSON serializable"):
        store.save_stage(bad, _run(Stage.assessment, n=1))
    got = store.get_cycle(rec.outcome, rec.period)
    assert got is not None and got.title == "before" and len(got.stage_runs) == 1
    assert got.metrics == {} and got.checks.results == []
    bad.period = "2026-12"
    with pytest.raises(StoreError):
        store.save_stage(bad, _run(Stage.assessment))
    assert store.get_cycle(rec.outcome, "2026-12") is None
    assert _scalar(store, "SELECT count(*) FROM metric_values") == 0


def test_non_finite_numbers_are_stored_as_none(store: Store) -> None:
    rec = _record(result_value=math.nan, standing=math.inf)
    rec.metrics = {"m": [PeriodValue(period="2026-10", value=math.nan, rows=0)]}
    rec.checks = CheckSummary.of(
        [CheckResult(metric="m", expectation="e", success=True, observed_value=[math.nan, 1.0])]
    )
    store.save_stage(rec, _run(Stage.assessment))
    got = store.get_cycle(rec.outcome, rec.period)
    assert got is not None and got.result_value is None and got.standing is None
    assert got.metrics["m"][0].value is None
    assert got.checks.results[0].observed_value == [None, 1.0]


def test_cycles_ordering_light_and_outcomes(store: Store) -> None:
    for n, period in enumerate(["2026-03", "2026-01", "2026-02"]):
        rec = _record(period=period, metrics={"m": [PeriodValue(period=period, value=n)]})
        rec.checks = CheckSummary.of([CheckResult(metric="m", expectation="e", success=False)])
        store.save_stage(rec, _run(Stage.assessment, n=n))
    store.save_stage(_record(outcome="churn", period="2026-01"), _run(Stage.result))
    full = store.cycles("onboarding")
    assert [c.period for c in full] == ["2026-01", "2026-02", "2026-03"]
    assert [c.metrics["m"][0].value for c in full] == [1, 2, 0]
    assert all(len(c.stage_runs) == 1 and c.checks.failed == 1 for c in full)
    light = store.cycles("onboarding", light=True)
    assert [c.period for c in light] == ["2026-01", "2026-02", "2026-03"]
    assert all(c.stage_runs == [] and c.metrics == {} and c.checks.failed == 1 for c in light)
    assert store.cycles("nobody") == []
    assert store.outcomes() == ["churn", "onboarding"]


def test_cycles_runs_a_fixed_number_of_queries(store: Store) -> None:
    for n in range(12):
        rec = _record(period=f"2025-{n + 1:02d}", metrics={"m": [PeriodValue(period="p", value=n)]})
        store.save_stage(rec, _run(Stage.assessment))
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM" in statement.upper():
            statements.append(statement)

    event.listen(_engine(store), "before_cursor_execute", count)
    try:
        assert len(store.cycles("onboarding")) == 12
    finally:
        event.remove(_engine(store), "before_cursor_execute", count)
    assert len(statements) == 5  # cycles, stage_runs, metric_values, check_results, actions


def test_cycles_before(store: Store) -> None:
    for n, status in enumerate(["reviewed", "open", "failed", "reviewed", "open"], start=1):
        store.save_stage(_record(period=f"2026-{n:02d}", status=status), _run(Stage.result))
    before = store.cycles_before("onboarding", "2026-04")
    assert [(c.period, c.status) for c in before] == [
        ("2026-01", "reviewed"),
        ("2026-02", "open"),
        ("2026-03", "failed"),
    ]
    assert [c.period for c in store.cycles_before("onboarding", "2026-04", limit=2)] == [
        "2026-02",
        "2026-03",
    ]
    assert store.cycles_before("onboarding", "2026-01") == []
    assert before[0].stage_runs == []


def test_delete_outcome(store: Store) -> None:
    for outcome in ("onboarding", "churn"):
        for period in ("2026-01", "2026-02"):
            rec = _full_record().model_copy(update={"outcome": outcome, "period": period})
            store.save_stage(rec, _run(Stage.assessment))
            store.begin_action(**_ledger(rec, "send"))
    assert store.delete_outcome("onboarding") == 2
    assert store.delete_outcome("onboarding") == 0
    assert store.cycles("onboarding") == [] and store.outcomes() == ["churn"]
    assert store.get_action("onboarding/2026-01/email-nudge/send") is None
    assert store.get_action("churn/2026-01/email-nudge/send") is not None
    assert _scalar(store, "SELECT count(*) FROM stage_runs") == 2
    assert _scalar(store, "SELECT count(*) FROM metric_values") == 6
    assert _scalar(store, "SELECT count(*) FROM check_results") == 6


# --- the action ledger ------------------------------------------------------------------------


def test_ledger_attempts_and_final_states(store: Store) -> None:
    rec = _record()
    a = _ledger(rec, "send")
    assert store.get_action(a["key"]) is None
    assert store.begin_action(**a).attempts == 1
    second = store.begin_action(**a)
    assert (second.status, second.attempts) == ("pending", 2)
    failed = store.finish_action(a["key"], status="failed", error="HTTP 500")
    assert (failed.status, failed.error) == ("failed", "HTTP 500")
    third = store.begin_action(**a)
    assert (third.status, third.attempts, third.error) == ("pending", 3, None)
    done = store.finish_action(a["key"], status="succeeded", reach=12.5)
    assert (done.status, done.reach, done.attempts) == ("succeeded", 12.5, 3)
    assert store.begin_action(**a) == done
    assert store.skip_action(**a, reason="later") == done
    b = _ledger(rec, "post")
    skipped = store.skip_action(**b, reason="disabled")
    assert (skipped.status, skipped.error, skipped.attempts) == ("skipped", "disabled", 0)
    assert store.begin_action(**b) == skipped
    with pytest.raises(StoreError, match="no action"):
        store.finish_action("nope", status="succeeded")
    with pytest.raises(ValueError, match="status"):
        store.finish_action(a["key"], status="done")


def test_concurrent_begin_action_yields_one_row(db_url: str) -> None:
    stores = [Store(db_url), Store(db_url, migrate=False)]
    keys = [f"o/2026-10/a/act{n}" for n in range(4)]
    results: list[ActionRun] = []
    errors: list[BaseException] = []

    def worker(s: Store, barrier: threading.Barrier, key: str) -> None:
        try:
            barrier.wait()
            results.append(
                s.begin_action(
                    key=key, outcome="o", period="2026-10", approach="a", action="x", type="t"
                )
            )
        except BaseException as exc:
            errors.append(exc)

    try:
        for key in keys:
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=worker, args=(s, barrier, key)) for s in stores]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            query = select(func.count()).select_from(ActionRow).where(ActionRow.key == key)
            with _engine(stores[0]).connect() as conn:
                assert conn.execute(query).scalar_one() == 1
        assert errors == []
        assert len(results) == 8 and {r.status for r in results} == {"pending"}
        assert all(r.attempts in (1, 2) for r in results)
    finally:
        for s in stores:
            s.dispose()


# --- schema and migrations --------------------------------------------------------------------


def test_models_match_the_migration(store: Store) -> None:
    changed = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["actions"].append_column(Column("note", Integer))
    with _engine(store).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
        assert compare_metadata(context, changed) != []  # the comparison does see changes


def test_a_newer_schema_is_refused(db_url: str) -> None:
    Store(db_url).dispose()
    engine = create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision '9999', newer than this radar knows"):
        Store(db_url)


def test_dry_run_records_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="dry-run"):
        store.save_stage(_record(dry_run=True), _run(Stage.result))


def test_head_constant_is_the_newest_migration() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


def test_migration_runs_once_and_quietly(
    db_url: str, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    bare = Store(db_url, migrate=False)
    assert "cycles" not in inspect(_engine(bare)).get_table_names()
    bare.dispose()
    store = Store(db_url)
    try:
        names = set(inspect(_engine(store)).get_table_names())
        assert {"cycles", "stage_runs", "metric_values", "check_results", "actions"} <= names
        assert _scalar(store, "SELECT version_num FROM alembic_version") == HEAD
        store.save_stage(_record(), _run(Stage.result))
    finally:
        store.dispose()
    assert not [r for r in caplog.records if r.name.startswith("alembic")]
    assert capfd.readouterr().err == ""

    ddl: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SELECT", "BEGIN", "SHOW")):
            ddl.append(statement)

    event.listen(Engine, "before_cursor_execute", spy)
    try:
        again = Store(db_url)
        again.upgrade()
    finally:
        event.remove(Engine, "before_cursor_execute", spy)
    assert not [s for s in ddl if "CREATE" in s.upper() or "ALTER" in s.upper()]
    assert again.get_cycle("onboarding", "2026-10") is not None
    again.dispose()


def test_processes_opening_an_empty_database_at_once_migrate_it_once(db_url: str) -> None:
    """The first use of an empty database migrates it; racing first uses must not collide."""
    import subprocess
    import sys
    import time

    # imported first, then all opening the database at the same instant
    code = (
        "import sys, time; from cycles.store import Store; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); "
        "Store(sys.argv[1]).dispose(); print('ok')"
    )
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url, start], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]  # fmt: skip
    results = [p.communicate(timeout=120) for p in procs]
    assert [(p.returncode, out.strip()) for p, (out, _) in zip(procs, results, strict=True)] == [
        (0, "ok")
    ] * 6, [err for _, err in results]
    store = Store(db_url, migrate=False)
    try:
        assert _scalar(store, "SELECT COUNT(*) FROM alembic_version") == 1
        assert store.revision() == HEAD
    finally:
        store.dispose()


# --- URLs and errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgres://u:p@h:5432/db", "postgresql+psycopg2://u:p@h:5432/db"),
        ("mysql://root@h/db", "mysql+pymysql://root@h/db"),
        ("mariadb://root@h/db", "mysql+pymysql://root@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


def test_default_url_and_sqlite_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RADAR_DATABASE_URL", raising=False)
    assert default_url() == f"sqlite:///{tmp_path / '.radar' / 'radar.db'}"
    store = Store()
    assert (tmp_path / ".radar" / "radar.db").is_file()
    with _engine(store).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    store.dispose()
    monkeypatch.setenv("RADAR_DATABASE_URL", "sqlite:///rel/dir/h.db")
    assert default_url() == "sqlite:///rel/dir/h.db"
    store = Store()
    assert (tmp_path / "rel" / "dir" / "h.db").is_file()
    assert store.url == f"sqlite:///{tmp_path / 'rel' / 'dir' / 'h.db'}"
    store.dispose()
    monkeypatch.setenv("RADAR_DATABASE_URL", "postgres://u:pw@h/db")
    assert default_url() == "postgresql+psycopg2://u:pw@h/db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://radar:s3cr3t-pw@127.0.0.1:1/radar",
        "mysql://radar:s3cr3t-pw@127.0.0.1:1/radar",
        "postgresql://radar:s3cr3t-pw@127.0.0.1:notaport/radar",
        "nosuchdb://radar:s3cr3t-pw@127.0.0.1/radar",
    ],
)
def test_store_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        Store(url)
    message = str(caught.value)
    assert "s3cr3t-pw" not in message
    assert "\n" not in message
    if ":1/" in url:
        assert "radar:***@127.0.0.1:1/radar" in message


def test_memory_database_works() -> None:
    store = Store("sqlite://")
    store.save_stage(_record(), _run(Stage.result))
    assert [c.period for c in store.cycles("onboarding")] == ["2026-10"]
    store.dispose()
