"""`radar history`'s read-only fast path gives exactly what `Store.cycles` gives, or None."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import test_store
from sqlalchemy import JSON, Boolean, create_engine, make_url, text

from cycles.cli import main
from cycles.demo import demo_outcome, demo_periods
from cycles.engine import run_cycle
from cycles.record import CheckSummary, CycleRecord
from cycles.store import Store, fastread, normalise_url
from cycles.store.fastread import read_cycles
from cycles.store.models import Base, UTCDateTime
from cycles.values import ApproachRef, CheckResult, DecisionKind, PeriodValue, Stage, StageRun

db_url = test_store.db_url  # an empty SQLite, PostgreSQL and MySQL/MariaDB database
_full_record, _ledger = test_store._full_record, test_store._ledger
_record, _run = test_store._record, test_store._run  # records and runs as the store tests make


def _same(fast: list[CycleRecord] | None, slow: list[CycleRecord]) -> None:
    """Equal, and of the same types throughout (1 is not 1.0, True is not 1, UTC is UTC)."""
    assert fast is not None
    assert fast == slow
    assert repr([r.model_dump() for r in fast]) == repr([r.model_dump() for r in slow])


def _fill(store: Store) -> None:
    """Every kind of row: full and sparse cycles, failures, a sign-off wait, the ledger."""
    full = _full_record()  # onboarding 2026-10: every field set
    full.checks = CheckSummary.of(
        [
            *full.checks.results,
            CheckResult(metric="m", expectation="e", success=True, observed_value=5.0),
            CheckResult(metric="m", expectation="e", success=False, observed_value=1e300),
            CheckResult(metric="m", expectation="e", success=True, observed_value="text"),
            CheckResult(metric="m", expectation="e", success=True, observed_value="12"),
            CheckResult(metric="m", expectation="e", success=True, observed_value=True),
            CheckResult(metric="m", expectation="e", success=True, observed_value=7, kwargs={}),
        ]
    )
    store.save_stage(full, _run(Stage.result))
    store.save_stage(full, _run(Stage.assessment, n=1))
    odd_zone = timezone(timedelta(hours=-5))
    store.save_stage(
        full,
        StageRun(
            stage=Stage.review,
            status="completed",
            started_at=datetime(2026, 11, 1, 7, 0, 0, 1, tzinfo=odd_zone),
            finished_at=datetime(2026, 11, 1, 12, 0, 2),  # naive: UTC
        ),
    )
    for n, (action, status) in enumerate([("send", "succeeded"), ("post", "failed"), ("ring", "")]):
        row = _ledger(full, action)
        store.begin_action(**row)
        if status:
            store.finish_action(row["key"], status=status, reach=n * 10.5 or None, error=None)
    store.skip_action(**_ledger(full, "mail"), reason="not in this approach")

    sparse = _record(period="2026-08", completed_stages=[Stage.result])  # NULLs everywhere
    store.save_stage(sparse, _run(Stage.result, n=2))
    store.save_stage(sparse, None)

    failed = _record(period="2026-09", status="failed")
    store.save_failure(failed, _run(Stage.result, "failed", "source down: ✗ " + "x" * 300, n=3))
    store.save_failure(failed, _run(Stage.result, "failed", None, n=4))

    waiting = _record(
        period="2026-11",
        status="awaiting sign-off",
        completed_stages=[Stage.result, Stage.approach, Stage.deployment, Stage.assessment],
        approach=ApproachRef(name="nudge", params={}),
        metrics={"m": [PeriodValue(period="2026-11", value=2, rows=3, numerator=2, denominator=1)]},
        result_value=0.0,
        standing=-1.5,
        extra={"proposal": {"kind": "switch"}, "n": 1.0},
    )
    store.save_stage(waiting, _run(Stage.assessment, n=5))
    now = datetime.now(UTC)
    store.save_stage(
        waiting,
        StageRun(stage=Stage.review, status="awaiting sign-off", started_at=now, finished_at=now),
    )

    other = _record(outcome="churn", period="2026-10", decision=DecisionKind.keep)
    store.save_stage(other, _run(Stage.result))
    store.begin_action(**_ledger(other, "send"))


def test_same_records_as_the_store(db_url: str) -> None:
    store = Store(db_url)
    try:
        _fill(store)
        for outcome in ("onboarding", "churn"):
            fast = read_cycles(db_url, outcome)
            _same(fast, store.cycles(outcome))
        assert [c.period for c in fast or []] == ["2026-10"]
        assert read_cycles(db_url, "nobody") == store.cycles("nobody") == []
    finally:
        store.dispose()


def test_same_records_after_real_cycles(db_url: str, tmp_path: Path) -> None:
    """The bundled example's first months, run by the engine; the last waits for a sign-off."""
    outcome = demo_outcome()
    store = Store(db_url)
    try:
        periods = demo_periods(outcome)[:4]
        for period in periods[:3]:
            run_cycle(outcome, period, store=store)
        signed = outcome.model_copy(
            update={"policy": outcome.policy.model_copy(update={"sign_off": list(DecisionKind)})}
        )
        run_cycle(signed, periods[3], store=store, sign_off=lambda cycle, proposal: None)
        slow = store.cycles(outcome.outcome)
        assert slow[-1].status == "awaiting sign-off" and slow[0].actions and slow[0].metrics
        _same(read_cycles(db_url, outcome.outcome), slow)
    finally:
        store.dispose()


def test_none_unless_the_database_is_at_head(db_url: str) -> None:
    assert read_cycles(db_url, "onboarding") is None  # nothing there yet: the Store migrates
    if db_url.startswith("sqlite"):
        assert not Path(make_url(db_url).database or "").parent.exists()  # nothing created
    Store(db_url).dispose()
    assert read_cycles(db_url, "onboarding") == []
    engine = create_engine(normalise_url(db_url))
    try:
        for old in ("0000", "9999"):
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": old})
            assert read_cycles(db_url, "onboarding") is None
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version"))
        assert read_cycles(db_url, "onboarding") is None
    finally:
        engine.dispose()


def test_reading_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'radar.db'}"
    store = Store(url)
    _fill(store)
    store.dispose()

    def files() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in tmp_path.iterdir()}

    before = files()
    assert read_cycles(url, "onboarding")
    assert files() == before


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///{tmp}/radar.db?mode=ro&uri=true",
        "sqlite:///file:{tmp}/radar.db",
        "sqlite+aiosqlite:///{tmp}/radar.db",
        "postgresql+psycopg://postgres@127.0.0.1/test",
        "postgresql+asyncpg://postgres@127.0.0.1/test",
        "postgresql://u:pw@127.0.0.1:1/radar",
        "postgresql://u:pw@127.0.0.1:notaport/radar",
        "postgresql://u@h1,h2/radar",
        "postgresql://u@/radar?host=h1&host=h2",
        "mysql://root@127.0.0.1:1/radar",
        "mysql://root@127.0.0.1/radar?local_infile=1",
        "mysql+mysqldb://root@127.0.0.1/radar",
        "oracle://u@h/db",
        "not a url",
    ],
)
def test_none_for_what_it_cannot_read(url: str, tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'radar.db'}"
    Store(sqlite).dispose()  # a database at HEAD, which only the URLs above would reach
    assert read_cycles(sqlite, "x") == []
    assert read_cycles(url.format(tmp=tmp_path), "x") is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///rel/dir/h.db",
        "sqlite:////abs/h%20x.db",
        "postgresql+psycopg2://u:p%40ss/w?rd@h:5433/db?options=-csearch_path%3Ds&sslmode=disable",
        "postgresql+psycopg2://u:pa/ss@h/db",
        "postgresql+psycopg2:///db?host=/var/run/postgresql",
        "postgresql+psycopg2://u@[::1]:5432/db",
        "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4",
        "mysql+pymysql://root:@localhost/test?unix_socket=/run/mysqld/mysqld.sock",
    ],
)
def test_urls_are_read_as_sqlalchemy_reads_them(url: str) -> None:
    ours = fastread.parse_url(url)
    theirs = make_url(url)
    assert ours is not None
    name, parts, options = ours
    assert name == theirs.drivername
    assert parts == {
        "username": theirs.username,
        "password": theirs.password,
        "host": theirs.host,
        "port": theirs.port,
        "database": theirs.database,
    }
    assert options == dict(theirs.query)


def test_decoded_columns_are_the_models_types() -> None:
    def columns(kind: type) -> set[str]:
        return {
            column.name
            for table in Base.metadata.tables.values()
            for column in table.columns
            if isinstance(column.type, kind)
        }

    assert columns(JSON) == fastread.JSON_COLUMNS
    assert columns(UTCDateTime) == fastread.TIME_COLUMNS
    assert columns(Boolean) == fastread.BOOL_COLUMNS


def _history(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["history", *args]) == 0
    return capsys.readouterr().out


def test_cli_history_prints_the_same_with_or_without_the_fast_path(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RADAR_DATABASE_URL", db_url)
    store = Store()
    try:
        _fill(store)
    finally:
        store.dispose()

    def no_store(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast path should have answered")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "cycles", no_store)
        fast = [_history("onboarding", *flag, capsys=capsys) for flag in ([], ["--json"])]
    monkeypatch.setattr(fastread, "read_cycles", lambda url, outcome: None)
    slow = [_history("onboarding", *flag, capsys=capsys) for flag in ([], ["--json"])]
    assert fast == slow
    periods = ["2026-08", "2026-09", "2026-10", "2026-11"]
    assert [c["period"] for c in json.loads(fast[1])] == periods
