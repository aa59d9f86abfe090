"""Sharded ticks on a real Prefect server with two process workers (`radar deploy --shards`).

40 outcomes, deployed with `radar deploy --shards 2`; their previous month is open, so each
outcome's tick reviews it and opens this month (a webhook action fires once per outcome). Two
workers take one tick run each. Worker A is killed mid-tick, with its run process, as a machine
dies; its run is marked crashed (what the heartbeat automation does after five silent minutes)
and the `radar: crashed ticks run again` automation schedules it again: worker B finishes it.
Every outcome is then recorded once, each flow run `<outcome>/<period>` exists once, and each
webhook key was delivered once (or, if it was in flight when the worker died, recorded as
resent). A second test runs a tick in this process against a counting HTTP source that
declares `concurrency: 2`: never more than two of its queries are in flight.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from conftest import months, write_monthly_csv
from prefect_server import RADAR, PrefectServer, _tree, run_cli

pytestmark = pytest.mark.slow

N = 40
AT_ONCE = [4]  # outcomes a tick runs at once: 4 on a PostgreSQL-backed server, 2 on SQLite
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
DECLARATION = """\
outcome: {name}
title: Tick {name}
cadence: monthly
result: {{metric: rate, target: 0.3}}
metrics:
  rate: {{connector: {connector}, period: day, value: rate{query}}}
connectors:
  {connector}: {source}
approaches:
  - name: incentive
    params: {{usd: 20}}
    adjust: {{usd: {{step: 10, max: 60}}}}
    actions: {actions}
"""
# the server's access log (every request it answered) in its log file
ACCESS_LOG = {
    "PREFECT_SERVER_LOGGING_LEVEL": "INFO",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "INFO",
}
ACTION = '[{name: offer, type: webhook, url: "${HOOK}/hook", payload: {period: "{period}"}}]'


class Counting:
    """A threaded local HTTP server: webhook deliveries per Idempotency-Key, and metric rows
    (GET /rows, slowly) with the most requests seen in flight at once."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, delay: float = 0.3) -> None:
        self.keys: Counter[str] = Counter()
        self.in_flight = self.most = self.served = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner.lock:
                    owner.keys[self.headers.get("Idempotency-Key", "")] += 1
                self._send({"reach": 1})

            def do_GET(self) -> None:
                with owner.lock:
                    owner.in_flight += 1
                    owner.most = max(owner.most, owner.in_flight)
                try:
                    time.sleep(delay)
                    self._send({"data": rows or []})
                finally:
                    with owner.lock:
                        owner.in_flight -= 1
                        owner.served += 1

            def _send(self, payload: Any) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def client() -> Any:
    from prefect import get_client

    return get_client(sync_client=True)


def runs_of(*flows: str) -> list[Any]:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    found, offset = [], 0
    with client() as c:
        while True:
            page = c.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(flows))),
                limit=200, offset=offset,
            )  # fmt: skip
            found += page
            offset += len(page)
            if len(page) < 200:
                return found


def wait_for(what: str, probe: Any, timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def this_month() -> str:
    return f"{datetime.now(UTC):%Y-%m}"


def last_month() -> str:
    from cycles.periods import Cadence, Period

    return str(Period.parse(this_month(), Cadence.monthly) - 1)


def rows_csv(path: Path) -> None:
    write_monthly_csv(path, {m: 0.2 + 0.002 * (i % 3) for i, m in enumerate(months("2025-01", 24))
                             if m <= last_month()})  # fmt: skip


def csv_outcomes(directory: Path, names: list[str]) -> dict[str, str]:
    """Outcomes reading their own monthly CSV, without actions: name -> declaration file."""
    outcomes = {}
    for name in names:
        rows_csv(directory / name / "rate.csv")
        path = directory / f"{name}.yaml"
        path.write_text(DECLARATION.format(
            name=name, connector="crm", query="", actions="[]",
            source=f"{{type: csv, path: {directory / name / 'rate.csv'}}}",
        ))  # fmt: skip
        outcomes[name] = str(path)
    return outcomes


@contextmanager
def fresh_database() -> Iterator[str | None]:
    """A new PostgreSQL database on RADAR_TEST_POSTGRES_URL's server (None without one): a
    SQLite-backed Prefect server answers 503 to several runs writing at once, and its client
    backs off 2 s each time."""
    import sqlalchemy as sa

    from cycles.urls import normalise_url

    base = os.environ.get("RADAR_TEST_POSTGRES_URL")
    if not base:
        yield None
        return
    url = sa.engine.make_url(normalise_url(base))
    name = f"radar_ticks_{os.getpid()}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.SQLAlchemyError:
        admin.dispose()
        yield None  # no right to create one: SQLite
        return
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    root = tmp_path_factory.mktemp("ticks")
    with fresh_database() as database:
        asyncpg = database.replace("+psycopg2", "+asyncpg", 1) if database else None
        AT_ONCE[0] = 4 if database else 2  # a SQLite server: fewer writers at once
        with PrefectServer.start(root / "prefect", database_url=asyncpg,
                                 server_env=ACCESS_LOG) as started, \
                started.settings():  # fmt: skip
            yield started
            drain()  # before the server stops: this process's flows' logs and events


def drain() -> None:
    """Send what Prefect's log and event workers hold (as prefect_test_harness does)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain_workers() -> None:
        try:
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        except RuntimeError:  # never started
            pass
        result = EventsWorker.drain_all()
        if inspect.isawaitable(result):
            await result

    run_coro_as_sync(drain_workers())


def test_two_workers_split_the_tick_and_a_killed_ones_outcomes_are_not_lost(
    server: PrefectServer, tmp_path: Path
) -> None:
    from prefect.states import Crashed, Scheduled

    from cycles.declaration import load
    from cycles.engine import run_cycle
    from cycles.store import Store

    hooks = Counting()
    project = tmp_path / "project"
    names = [f"t{i:02d}" for i in range(N)]
    for name in names:
        directory = project / "flows" / name
        rows_csv(directory / "data" / "rate.csv")
        (directory / f"{name}.yaml").write_text(DECLARATION.format(
            name=name, connector="crm", query="", source="{type: csv, path: data/rate.csv}",
            actions=ACTION,
        ))  # fmt: skip
    history = f"sqlite:///{project / 'history.db'}"
    env = server.env(RADAR_DATABASE_URL=history, HOOK=hooks.url)
    # last month was opened by last month's tick (its action delivered then, with its own key)
    store = Store(history)
    first = date.fromisoformat(f"{last_month()}-01")
    os.environ["HOOK"] = hooks.url
    try:
        for name in names:
            outcome = load(project / "flows" / name / f"{name}.yaml")
            run_cycle(outcome, last_month(), store=store, today=first)
    finally:
        del os.environ["HOOK"]
    store.dispose()

    done = run_cli([RADAR, "deploy", "--shards", "2", "--concurrency", str(AT_ONCE[0])], env=env,
                   cwd=project, timeout=180)  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "deployed radar-tick/monthly-1of2" in done.stdout, done.stdout
    assert "radar: crashed ticks run again" in done.stdout
    with client() as c:
        own = c.read_deployment_by_name("t00/t00")
        assert own.schedules == []  # with shards, the outcome's own deployment has no schedule
        ticks = [c.read_deployment_by_name(f"radar-tick/monthly-{k}of2") for k in (1, 2)]
    shard = {name: k for k, t in enumerate(ticks) for name in t.parameters["outcomes"]}
    assert sorted(shard) == names and set(shard.values()) == {0, 1}  # no overlap, none left out

    with server.worker(env=env, cwd=project, args=["--limit", "1"], name="a") as a, \
            server.worker(env=env, cwd=project, args=["--limit", "1"], name="b"):  # fmt: skip
        with client() as c:
            ids = [c.create_flow_run_from_deployment(
                t.id, parameters={}, state=Scheduled(scheduled_time=datetime.now(UTC))).id
                for t in ticks]  # fmt: skip

        def a_runs() -> Any:  # the tick run in worker A's process, once it is under way
            for pid in _tree(a.proc.pid) - {a.proc.pid}:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                found = [e for e in environ if e.startswith(b"PREFECT__FLOW_RUN_ID=")]
                if found:
                    return found[0].split(b"=", 1)[1].decode(), pid
            return None

        run_id, _ = wait_for("worker A's tick run", a_runs, 120, every=0.3)
        killed_shard = [str(i) for i in ids].index(run_id)
        mine = [n for n in names if shard[n] == killed_shard]

        watch = Store(history)

        def some_done() -> bool:
            reviewed = [c for n in mine for c in watch.cycles(n, light=True)
                        if c.period == last_month() and c.status == "reviewed"]  # fmt: skip
            return len(reviewed) >= 3

        wait_for("a few outcomes of worker A's shard", some_done, 120, every=0.3)
        for pid in _tree(a.proc.pid):  # the machine dies: worker and run process at once
            os.kill(pid, signal.SIGKILL)
        with client() as c:
            # what `radar: silent ticks crash` does after five missed heartbeats
            c.set_flow_run_state(run_id, Crashed(message="killed by the test"), force=True)

        def finished() -> list[Any]:
            with client() as c:
                found = [c.read_flow_run(i) for i in ids]
            return found if all(r.state_type.value in FINAL for r in found) else []

        runs = wait_for("both tick runs to end (the crashed one run again by B)", finished, 150)
    assert [r.state_type.value for r in runs] == ["COMPLETED", "COMPLETED"], [
        (r.name, r.state_name, r.state.message) for r in runs
    ]
    assert runs[killed_shard].run_count == 2  # the automation scheduled it again

    # every outcome recorded once: last month reviewed, this month opened
    store = Store(history)
    for name in names:
        cycles = {c.period: c for c in store.cycles(name)}
        stages = Counter(r.stage.value for r in cycles[last_month()].stage_runs
                         if r.status == "completed")  # fmt: skip
        assert stages == Counter(["result", "approach", "deployment", "assessment", "review"])
        stages = Counter(r.stage.value for r in cycles[this_month()].stage_runs
                         if r.status == "completed")  # fmt: skip
        assert stages == Counter(["result", "approach", "deployment"]), name
        [action] = cycles[this_month()].actions
        key = f"{name}/{this_month()}/incentive/offer"
        assert hooks.keys[key] == 1 or action.status == "resent", (key, hooks.keys[key])
    # each period's flow run once, completed (a cut-short turn resumed in its own run)
    by_name = Counter(r.name for r in runs_of(*names))
    assert by_name == Counter({f"{n}/{p}": 1 for n in names for p in (last_month(), this_month())})


def test_a_connector_limit_holds_across_a_ticks_outcomes(
    server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect import get_client

    from cycles.tick_flow import radar_tick

    rows = [{"day": f"{m}-10", "rate": 0.2} for m in months("2025-01", 24) if m <= this_month()]
    source = Counting(rows, delay=0.4)
    names = [f"c{i}" for i in range(6)]
    outcomes = {}
    for name in names:
        path = tmp_path / f"{name}.yaml"
        path.write_text(DECLARATION.format(
            name=name, connector="slow_api", query=", query: {path: /rows, records: data}",
            source=f"{{type: http, base_url: '{source.url}', concurrency: 2}}", actions="[]",
        ))  # fmt: skip
        outcomes[name] = str(path)
    monkeypatch.setenv("RADAR_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")
    state = radar_tick(shard="limit-test", outcomes=outcomes, concurrency=6, return_state=True)
    assert state.is_completed(), state.message
    assert source.served == len(names)  # one query each (the opening's Result)
    assert source.most == 2, source.most  # six outcomes at once, two queries at the source
    with get_client(sync_client=True) as c:
        limit = c.read_global_concurrency_limit_by_name("radar-connector-slow_api")
    assert limit.limit == 2 and limit.active_slots == 0


def test_a_tick_asks_the_server_about_csrf_once_not_per_outcome(
    server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cycles.tick_flow import radar_tick, server_protects_against_csrf

    assert server_protects_against_csrf() is False  # Prefect's default: no CSRF protection
    names = [f"x{i}" for i in range(8)]
    outcomes = csv_outcomes(tmp_path, names)
    monkeypatch.setenv("RADAR_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")

    def asked() -> int:
        return server.log.read_text(errors="replace").count('"GET /api/csrf-token?')

    before = asked()
    state = radar_tick(shard="csrf-test", outcomes=outcomes, concurrency=2, return_state=True)
    assert state.is_completed(), state.message
    assert len(runs_of(*names)) == len(names)  # each outcome's turn ran as its own flow run
    # without the question, the clients the engine makes for each outcome's subflow runs and
    # tracking tasks ask (12 here); with it, only the question and the clients the tick run
    # made before it (its engine's, its log and event workers')
    assert asked() - before <= 4


def test_a_server_that_protects_against_csrf_keeps_its_tokens(
    server: PrefectServer, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_CLIENT_CSRF_SUPPORT_ENABLED

    from cycles.tick_flow import csrf_asked_once, server_protects_against_csrf

    with csrf_asked_once():  # the module's server has no CSRF protection
        assert PREFECT_CLIENT_CSRF_SUPPORT_ENABLED.value() is False
    assert PREFECT_CLIENT_CSRF_SUPPORT_ENABLED.value() is True  # only for the tick's turns
    with (
        PrefectServer.start(
            tmp_path / "csrf", server_env={"PREFECT_SERVER_API_CSRF_PROTECTION_ENABLED": "true"}
        ) as protected,
        protected.settings(),
    ):
        assert server_protects_against_csrf() is True
        with csrf_asked_once():
            assert PREFECT_CLIENT_CSRF_SUPPORT_ENABLED.value() is True


def test_a_turn_the_api_refused_is_tried_again(
    server: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy server's 503 (what Prefect's SQLite-backed server answers under load, after the
    client's own retries) when a turn's subflow is created: the turn runs again, once."""
    import httpx
    from prefect.client.base import PrefectHttpxAsyncClient
    from prefect.exceptions import PrefectHTTPStatusError

    from cycles import tick_flow
    from cycles.store import Store

    names = ["r0", "r1", "r2"]
    outcomes = csv_outcomes(tmp_path, names)
    history = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("RADAR_DATABASE_URL", history)
    monkeypatch.setattr(tick_flow, "TURN_BACKOFF_S", 0.1)
    refused: list[str] = []
    send = PrefectHttpxAsyncClient.send

    async def busy_once(self: Any, request: httpx.Request, *args: Any, **kwargs: Any) -> Any:
        # the first tracking task run of a turn's subflow: the server is busy
        if request.method == "POST" and request.url.path.endswith("/task_runs/") and not refused:
            refused.append(request.url.path)
            answer = httpx.Response(503, request=request, json={"exception_message": "busy"})
            raise PrefectHTTPStatusError.from_httpx_error(
                httpx.HTTPStatusError("503 Service Unavailable", request=request, response=answer)
            )
        return await send(self, request, *args, **kwargs)

    monkeypatch.setattr(PrefectHttpxAsyncClient, "send", busy_once)
    state = tick_flow.radar_tick(
        shard="busy-test", outcomes=outcomes, concurrency=1, return_state=True
    )
    assert refused  # the server did refuse a turn
    assert state.is_completed(), state.message
    store = Store(history)
    for name in names:  # every outcome ticked: this month opened, once
        [cycle] = [c for c in store.cycles(name) if c.period == this_month()]
        assert Counter(r.stage.value for r in cycle.stage_runs if r.status == "completed") == (
            Counter(["result", "approach", "deployment"])
        )
    assert Counter(r.name for r in runs_of(*names)) == Counter(f"{n}/{this_month()}" for n in names)
