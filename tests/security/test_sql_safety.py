"""SQL safety on real databases: deadlines on every wait, bound template values, exactly-once
`sql` actions. SQLite always; PostgreSQL and MariaDB/MySQL when RADAR_TEST_POSTGRES_URL and
RADAR_TEST_MYSQL_URL are set (each test gets a schema or database of its own, dropped after).

A server that never answers is a real TCP listener on 127.0.0.1 that accepts connections and
never sends a byte. Deadlines in these tests are 1 s; the only durations asserted are generous
guards against a hang.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from connectors.actions.base import ActionContext
from connectors.actions.sql import KEYS_TABLE, SqlAction, SqlConfig
from connectors.base import Window
from connectors.sql import SqlConnector, SqlQuery
from cycles.errors import ActionError, AlreadyRunning, ConnectorError, StoreError
from cycles.periods import Cadence, Period
from cycles.store import Store, db, locks
from cycles.urls import normalise_url

ROOT = Path(__file__).resolve().parents[2]
ENVS = {"postgresql": "RADAR_TEST_POSTGRES_URL", "mysql": "RADAR_TEST_MYSQL_URL"}
HANG = 60  # seconds: a call still running after this has hung (the deadlines are 1 s)
T = TypeVar("T")


def within(call: Callable[[], T], seconds: float = HANG) -> T:
    """`call()`, failing the test instead of hanging when it does not return in `seconds`."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:
            out["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"still waiting after {seconds} s: the deadline did not end the wait")
    if "error" in out:
        raise out["error"]
    return out["value"]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server accepts every connection and never sends anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()
    for conn in accepted:
        conn.close()


@dataclass
class Target:
    """A database of one kind for one test: `url` as a user writes it, `admin` to look inside."""

    kind: str
    url: str
    admin: sa.Engine

    def run(self, *statements: str) -> None:
        with self.admin.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.admin.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(sql)]

    def has_table(self, name: str) -> bool:
        with self.admin.connect() as conn:
            return sa.inspect(conn).has_table(name)


def _target(kind: str, tmp_path: Path) -> Iterator[Target]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.db'}"
        admin = sa.create_engine(url)
        yield Target(kind, url, admin)
        admin.dispose()
        return
    base = os.environ.get(ENVS[kind])
    if not base:
        pytest.skip(f"{ENVS[kind]} not set: {kind} SQL safety tests skipped")
    name = f"radar_{uuid.uuid4().hex[:12]}"
    server = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE {'SCHEMA' if kind == 'postgresql' else 'DATABASE'} {name}")
    if kind == "postgresql":
        url = server.url.update_query_dict({"options": f"-csearch_path={name}"})
        drop = f"DROP SCHEMA {name} CASCADE"
    else:
        url, drop = server.url.set(database=name), f"DROP DATABASE {name}"
    admin = sa.create_engine(url)
    try:
        yield Target(kind, url.render_as_string(hide_password=False), admin)
    finally:
        admin.dispose()
        with server.connect() as conn:
            conn.exec_driver_sql(drop)
        server.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    yield from _target(request.param, tmp_path)


@pytest.fixture(params=["postgresql", "mysql"])
def server_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """PostgreSQL or MariaDB/MySQL only: servers whose queries can be kept waiting."""
    yield from _target(request.param, tmp_path)


@contextmanager
def blocked(target: Target, table: str) -> Iterator[None]:
    """Another connection holds `table` locked: queries on it wait until the block ends."""
    with target.admin.connect() as conn:
        if target.kind == "postgresql":
            conn.exec_driver_sql(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        else:
            conn.exec_driver_sql(f"LOCK TABLES {table} WRITE")
        try:
            yield
        finally:
            if target.kind == "mysql":
                conn.exec_driver_sql("UNLOCK TABLES")
            conn.rollback()


def context(key_period: str = "2026-10", **params: Any) -> ActionContext:
    return ActionContext(
        outcome="referrals", period=key_period, approach="incentive", params=params,
        key=f"referrals/{key_period}/incentive/log", base_dir=ROOT,
    )  # fmt: skip


def action(url: str, statement: str, **config: Any) -> SqlAction:
    return SqlAction(SqlConfig(name="log", url=url, statement=statement, **config))


def table() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


# -- 1. every wait has an end -----------------------------------------------------------------------

SILENT = {"mysql": "mysql+pymysql://root@127.0.0.1:{port}/test",
          "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:{port}/test"}  # fmt: skip


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_source_on_a_server_that_never_answers_fails_in_one_line(silent_port, kind) -> None:
    url = SILENT[kind].format(port=silent_port)
    config = SqlConnector.Config(
        url=url.replace("+pymysql", "").replace("+psycopg2", ""), timeout=1
    )
    connector = SqlConnector("crm", config, base_dir=ROOT)
    with pytest.raises(ConnectorError) as info:
        within(lambda: connector.columns(SqlQuery(table="rates")))
    connector.close()
    assert str(info.value) == f"connector 'crm': {url} did not answer within 1 s"


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_sql_action_on_a_server_that_never_answers_fails_in_one_line(silent_port, kind) -> None:
    url = SILENT[kind].format(port=silent_port).replace("@", ":pw-s3cret-42@")
    sink = action(url, "INSERT INTO log VALUES (:key)", timeout=1)
    with pytest.raises(ActionError) as info:
        within(lambda: sink.run(context()))
    shown = url.replace("pw-s3cret-42", "***")
    assert str(info.value) == f"action 'log': {shown} did not answer within 1 s"


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_history_on_a_server_that_never_answers_fails_in_one_line(
    silent_port, kind, monkeypatch
) -> None:
    monkeypatch.setenv(db.TIMEOUT_ENV, "1")
    url = SILENT[kind].format(port=silent_port)
    with pytest.raises(StoreError) as info:
        within(lambda: Store(url))
    assert str(info.value) == (
        f"history database {url} did not answer within 1 s (RADAR_DATABASE_TIMEOUT)"
    )


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan"])
def test_history_timeout_must_be_a_positive_number(value, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(db.TIMEOUT_ENV, value)
    with pytest.raises(StoreError, match=rf"^RADAR_DATABASE_TIMEOUT must be .*not '{value}'$"):
        Store(f"sqlite:///{tmp_path / 'radar.db'}")


def test_source_query_kept_waiting_ends_at_its_timeout(server_target: Target) -> None:
    name = table()
    server_target.run(f"CREATE TABLE {name} (day DATE, rate FLOAT)")
    connector = SqlConnector(
        "crm", SqlConnector.Config(url=server_target.url, timeout=1), base_dir=ROOT
    )
    query = SqlQuery(sql=f"SELECT day, rate FROM {name} WHERE day >= :start")
    with blocked(server_target, name), pytest.raises(ConnectorError) as info:
        within(lambda: connector.columns(query))
    connector.close()
    assert str(info.value).startswith("connector 'crm': ")
    assert str(info.value).endswith(" did not answer within 1 s")


def test_sql_action_kept_waiting_ends_at_its_timeout_and_runs_once_later(
    server_target: Target,
) -> None:
    name = table()
    server_target.run(f"CREATE TABLE {name} (k VARCHAR(200))")
    sink = action(server_target.url, f"INSERT INTO {name} (k) VALUES (:key)", timeout=1)
    sink.run(context("2026-09"))  # creates radar's key table before the block
    with (
        blocked(server_target, name),
        pytest.raises(ActionError, match=r"did not answer within 1 s$"),
    ):
        within(lambda: sink.run(context()))
    # nothing of the timed-out transaction stayed: the re-run runs the statement, once
    assert within(lambda: sink.run(context())) == 1.0
    assert within(lambda: sink.run(context())) == 1.0
    assert sorted(server_target.rows(f"SELECT k FROM {name}")) == [
        ("referrals/2026-09/incentive/log",), ("referrals/2026-10/incentive/log",),
    ]  # fmt: skip


def test_sqlite_history_locked_past_its_timeout_fails_in_one_line(tmp_path, monkeypatch) -> None:
    path = tmp_path / "radar.db"
    Store(f"sqlite:///{path}").dispose()
    monkeypatch.setenv(db.TIMEOUT_ENV, "1")
    store = Store(f"sqlite:///{path}")
    other = sa.create_engine(f"sqlite:///{path}")
    with other.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # another writer holds the write lock
        with pytest.raises(StoreError) as info:
            within(lambda: store.delete_outcome("nothing"))
        conn.rollback()
    other.dispose()
    store.dispose()
    assert str(info.value) == (
        f"history database sqlite:///{path}: database is locked by another connection "
        "(busy timeout 1 s) (RADAR_DATABASE_TIMEOUT)"
    )


def test_history_query_past_its_deadline_releases_the_run_lock(
    server_target: Target, monkeypatch
) -> None:
    Store(server_target.url).dispose()  # migrated first, with the default deadline
    monkeypatch.setenv(db.TIMEOUT_ENV, "1")
    outcome = f"o{uuid.uuid4().hex[:8]}"
    first, second = Store(server_target.url), Store(server_target.url)
    try:
        with (
            pytest.raises(
                StoreError, match=r"did not answer within 1 s \(RADAR_DATABASE_TIMEOUT\)$"
            ),
            first.lock(outcome, "2026-10"),
        ):
            with pytest.raises(AlreadyRunning), second.lock(outcome, "2026-10"):
                pass  # held meanwhile
            with blocked(server_target, "cycles"):
                within(lambda: first.cycles(outcome))
        with second.lock(outcome, "2026-10"):  # the next run of the period is not locked out
            pass
    finally:
        first.dispose()
        second.dispose()


LOCK_HOLDER = """\
import sys, time
from cycles.store import db, locks
engine = db.make_engine(sys.argv[1])
with locks.run_lock(engine, sys.argv[2], "2026-10"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_killed_run_releases_the_run_lock(server_target: Target) -> None:
    outcome = f"o{uuid.uuid4().hex[:8]}"
    url = normalise_url(server_target.url)
    child = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, url, outcome],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    engine = db.make_engine(url)
    try:
        assert child.stdout is not None
        assert within(child.stdout.readline) == "held\n"
        with pytest.raises(AlreadyRunning), locks.run_lock(engine, outcome, "2026-10"):
            pass
        child.kill()
        child.wait(HANG)
        with locks.run_lock(engine, outcome, "2026-10", wait=HANG):
            pass
    finally:
        child.kill()
        child.wait(HANG)
        engine.dispose()


def test_a_migration_waits_for_another_then_says_so(server_target: Target, monkeypatch) -> None:
    """The migration lock (locks.session_lock, as the run lock) is waited for up to the timeout
    less a second; then one line says another process is migrating."""
    Store(server_target.url).dispose()  # migrated first
    monkeypatch.setenv(db.TIMEOUT_ENV, "2")
    holder, engine = (db.make_engine(normalise_url(server_target.url)) for _ in range(2))
    try:
        with (
            locks.session_lock(holder, db._ADVISORY_LOCK, db._MYSQL_LOCK, 0, RuntimeError),
            pytest.raises(StoreError, match="timed out waiting for another process to finish"),
        ):
            within(lambda: db.upgrade(engine))
        db.upgrade(engine)  # released: nothing to wait for
    finally:
        holder.dispose()
        engine.dispose()


# -- 2. template values are bound, never pasted ----------------------------------------------------

PAYLOAD = "x'); DROP TABLE {victims}; --"


def test_a_payload_from_the_environment_is_stored_not_run(
    target: Target, tmp_path: Path, monkeypatch
) -> None:
    from cycles.declaration import load_yaml

    log, victims = table(), table()
    target.run(f"CREATE TABLE {log} (v VARCHAR(200))", f"CREATE TABLE {victims} (id INTEGER)")
    payload = PAYLOAD.format(victims=victims)
    monkeypatch.setenv("PAYLOAD", payload)
    (tmp_path / "rows.csv").write_text("day,rate\n2026-01-01,0.1\n")
    path = tmp_path / "refer.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        outcome: refer
        title: Customers refer us
        cadence: monthly
        result: {{metric: rate, target: 0.3}}
        metrics:
          rate: {{connector: crm, period: day, value: rate}}
        connectors:
          crm: {{type: csv, path: rows.csv}}
        approaches:
          - name: incentive
            params: {{v: "${{PAYLOAD}}"}}
            actions:
              - name: log
                type: sql
                url: "{target.url}"
                statement: "INSERT INTO {log} VALUES ('{{params.v}}')"
        """)
    )
    approach = load_yaml(path).approaches[0]
    run = ActionContext(
        outcome="refer", period="2026-10", approach="incentive", params=approach.params,
        key="refer/2026-10/incentive/log", base_dir=tmp_path,
    )  # fmt: skip
    assert SqlAction(approach.actions[0]).run(run) == 1.0
    assert target.rows(f"SELECT v FROM {log}") == [(payload,)]
    assert target.has_table(victims)


def test_placeholders_are_bound_with_their_values(target: Target) -> None:
    log, victims = table(), table()
    target.run(
        f"CREATE TABLE {log} (n INTEGER, p VARCHAR(20), note VARCHAR(200), v VARCHAR(200))",
        f"CREATE TABLE {victims} (id INTEGER)",
    )
    payload = PAYLOAD.format(victims=victims)
    statement = (
        f"INSERT INTO {log} (n, p, note, v) -- {{params.v}}\n"
        f"/* {{params.v}} */ VALUES ({{params.n}}, {{period}}, 'it''s {{outcome}} in {{period}}', "
        "'{params.v}')"
    )
    sink = action(target.url, statement)
    assert sink.run(context(n=5, v=payload)) == 1.0
    assert target.rows(f"SELECT n, p, note, v FROM {log}") == [
        (5, "2026-10", "it's referrals in 2026-10", payload),
    ]
    assert target.has_table(victims)


def test_a_comment_never_receives_a_value(target: Target) -> None:
    log, victims = table(), table()
    target.run(f"CREATE TABLE {log} (n INTEGER)", f"CREATE TABLE {victims} (id INTEGER)")
    # a value in a line comment would end it at the newline; it is never put there
    breakout = f"x\nDELETE FROM {log}; DROP TABLE {victims}; --"
    sink = action(target.url, f"INSERT INTO {log} (n) VALUES (1) -- {{params.v}}")
    assert sink.run(context(v=breakout)) == 1.0
    assert target.rows(f"SELECT n FROM {log}") == [(1,)]
    assert target.has_table(victims)


@pytest.mark.parametrize(
    ("statement", "what"),
    [
        ("INSERT INTO log_{period} VALUES (1)", "a name or type"),
        ('INSERT INTO log ("{params.v}") VALUES (1)', "a quoted name"),
        ("SELECT 1::{params.v}", "a name or type"),
        ("SELECT E'{params.v}'", "a prefixed literal"),
    ],
)
def test_a_placeholder_that_would_build_sql_is_refused(statement, what, tmp_path) -> None:
    sink = action(f"sqlite:///{tmp_path / 'never.db'}", statement)
    if what == "a prefixed literal":
        sink = action("postgresql://postgres@127.0.0.1:1/never", statement)
    with pytest.raises(ActionError) as info:
        sink.run(context(v="text"))
    assert f"would be part of {what}: placeholders are bound as values" in str(info.value)
    assert str(info.value).startswith("action 'log': statement: {")
    with pytest.raises(ActionError, match=rf"^statement: .* would be part of {what}"):
        sink.check(tmp_path)  # `radar validate` says so before anything runs
    assert not (tmp_path / "never.db").exists()


def test_source_sql_is_sent_as_written(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    target = sa.create_engine(url)
    with target.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (day DATE, rate FLOAT)")
        conn.exec_driver_sql("INSERT INTO t VALUES ('2026-10-03', 0.5)")
    target.dispose()
    connector = SqlConnector("crm", SqlConnector.Config(url=url), base_dir=tmp_path)
    query = SqlQuery(sql="SELECT day, rate, '{period}' AS tag FROM t WHERE day >= :start")
    window = Window((Period.parse("2026-10", Cadence.monthly),), "UTC")
    frame = connector.fetch(query, window, ["day", "tag"])
    connector.close()
    assert list(frame["tag"]) == ["{period}"]


# -- 3. exactly once ----------------------------------------------------------------------------------


def test_a_rerun_after_a_crash_does_not_repeat_the_statement(target: Target, tmp_path) -> None:
    log = table()
    target.run(
        f"CREATE TABLE {log} (k VARCHAR(200), usd INTEGER)",
    )
    statement = f"INSERT INTO {log} (k, usd) VALUES (:key, {{params.usd}}), (:key, {{params.usd}})"
    history = Store(f"sqlite:///{tmp_path / 'radar.db'}")
    run = context(usd=20)
    ids = {"key": run.key, "outcome": run.outcome, "period": run.period,
           "approach": run.approach, "action": "log", "type": "sql"}  # fmt: skip
    try:
        assert history.begin_action(**ids).status == "pending"
        assert action(target.url, statement).run(run) == 2.0
        # killed here: the statement committed, the ledger was never told
        again = history.begin_action(**ids)
        assert (again.status, again.attempts) == ("pending", 2)
        reach = action(target.url, statement).run(run)  # the re-run
        assert history.finish_action(run.key, status="succeeded", reach=reach).reach == 2.0
    finally:
        history.dispose()
    assert target.rows(f"SELECT k, usd FROM {log}") == [(run.key, 20)] * 2
    assert target.rows(f"SELECT reach FROM {KEYS_TABLE}") == [(2.0,)]
    # another period's key is another action run
    assert action(target.url, statement).run(context("2026-11", usd=30)) == 2.0
    assert len(target.rows(f"SELECT k FROM {log}")) == 4


def test_a_failed_statement_leaves_no_mark(target: Target) -> None:
    log = table()
    target.run(
        f"CREATE TABLE {log} (k VARCHAR(200) PRIMARY KEY)", f"INSERT INTO {log} VALUES ('a')"
    )
    sink = action(target.url, f"INSERT INTO {log} (k) VALUES ('b'), ('a')")
    with pytest.raises(ActionError, match=r"^action 'log': .*(IntegrityError|UniqueViolation)"):
        sink.run(context())
    assert target.rows(f"SELECT COUNT(*) FROM {KEYS_TABLE}") == [(0,)]
    target.run(f"DELETE FROM {log}")
    assert sink.run(context()) == 2.0
    assert sink.run(context()) == 2.0
    assert sorted(target.rows(f"SELECT k FROM {log}")) == [("a",), ("b",)]


def test_two_runs_of_one_key_at_once_insert_once(target: Target) -> None:
    log = table()
    target.run(f"CREATE TABLE {log} (k VARCHAR(200))")
    slow = {  # the statement takes a while, so the second run arrives while the first holds it
        "postgresql": f"INSERT INTO {log} (k) SELECT :key FROM (SELECT pg_sleep(0.5)) AS s",
        "mysql": f"INSERT INTO {log} (k) SELECT :key FROM (SELECT SLEEP(0.5)) AS s",
        "sqlite": f"INSERT INTO {log} (k) VALUES (:key)",
    }[target.kind]
    start = threading.Barrier(2)
    reaches: list[float | None] = []

    def run() -> None:
        start.wait()
        reaches.append(action(target.url, slow, timeout=HANG).run(context()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
    assert not any(thread.is_alive() for thread in threads)
    assert reaches == [1.0, 1.0]
    assert target.rows(f"SELECT k FROM {log}") == [(context().key,)]


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_radar_history_on_a_server_that_never_answers_ends_with_one_line(
    silent_port, kind, tmp_path
) -> None:
    from conftest import radar

    url = SILENT[kind].format(port=silent_port)
    env = {"RADAR_DATABASE_URL": url, db.TIMEOUT_ENV: "1"}
    ran = radar("history", "refer", cwd=tmp_path, env=env, timeout=60)  # hang guard
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1, ran.stderr
    assert "did not answer within 1 s" in ran.stderr
