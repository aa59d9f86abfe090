"""Values taken from `${NAME}` never show: not on the terminal, in the history database, in
Prefect's logs, artifacts and run states, in exported files, nor in Python logging records.

Cycles run with marker secrets (`s3cr3t-<uuid>-<role>`) wherever a declaration takes one: the
password of a `sql` connector's URL (PostgreSQL; trust auth accepts any password, so the marker
is a real password in a real URL) and a literal in its `sql:` text (SQLite has no password: there
the marker is only in the query text), an `http` connector's `Authorization` header, a webhook
action's header and payload field, and the URL of a `sql` action. A real local HTTP server proves
they were really sent. Then every output is searched for the marker's prefix, so a secret cut
short (e.g. in a quoted excerpt) counts as a leak too.

Placements that once leaked have a test each below: approach parameters and the title (history
rows, console), a query string (httpx logs request URLs), a failing `python` action (error
texts, Prefect states and tracebacks), and an error excerpt cut inside a secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")

from cycles import cli
from cycles.cli import main
from cycles.periods import Cadence, Period
from cycles.urls import normalise_url

from conftest import ROOT

try:  # tests/connectors is on sys.path only for the modules collected there
    from httpserver import HttpTestServer, Received, Reply
except ImportError:  # pragma: no cover - depends on collection order
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "connectors"))
    from httpserver import HttpTestServer, Received, Reply

PG_ENV = "RADAR_TEST_POSTGRES_URL"
CURRENT = Period.containing(date.today(), Cadence.monthly)
BOX = re.compile(r"[\s│┃║╭╮╰╯─━┏┓┗┛┡┩╇┼┬┴├┤└┘┌┐]+")


# -- the secrets and where they are searched -----------------------------------------------------


@dataclass
class Secrets:
    """One marker per test; each `${NAME}` gets `<marker>-<role>`."""

    marker: str = field(default_factory=lambda: f"s3cr3t-{uuid.uuid4().hex[:16]}")

    def __getitem__(self, role: str) -> str:
        return f"{self.marker}-{role}"


@dataclass
class Search:
    """Every text an output produced, by where it came from; `leaks()` lists the marker's hits."""

    marker: str
    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        key = where
        n = 1
        while key in self.texts:
            n += 1
            key = f"{where} #{n}"
        self.texts[key] = text

    def leaks(self) -> list[str]:
        found = []
        for where, text in self.texts.items():
            for source in (text, BOX.sub("", text)):  # rich folds long cells over lines
                at = source.find(self.marker)
                if at >= 0:
                    found.append(f"{where}: …{source[max(0, at - 160) : at + 60]!r}…")
                    break
        return found

    def assert_clean(self) -> None:
        leaks = self.leaks()
        assert not leaks, f"{len(leaks)} leak(s) of ${{NAME}} values:\n" + "\n".join(leaks)


def dump_database(url: str) -> str:
    """Every row of every table, as text."""
    engine = sa.create_engine(normalise_url(url))
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        lines = []
        with engine.connect() as conn:
            for table in meta.sorted_tables:
                lines += [f"{table.name}: {tuple(row)}" for row in conn.execute(table.select())]
        return "\n".join(lines)
    finally:
        engine.dispose()


def add_files(search: Search, root: Path) -> None:
    """Every file under `root` (history database and WAL, exports, declarations), as bytes."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            search.add(f"file {path.relative_to(root)}", path.read_bytes())


def add_logging(search: Search, records: list[logging.LogRecord]) -> None:
    for record in records:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
        search.add(f"logging {record.name} {record.levelname}", text)


# -- the metric source, the HTTP server, the declaration -----------------------------------------


def rows() -> list[dict[str, Any]]:
    """Two rows a month for the 15 months before this one and this one."""
    out = []
    for k in range(15, -1, -1):
        start = (CURRENT - k).start
        for offset, rate in ((2, 0.18), (12, 0.19)):
            out.append({"day": (start + timedelta(days=offset)).isoformat(), "rate": rate})
    return out


@dataclass
class Warehouse:
    """The `sql` connector's database (metric rows, the `sql` action's table) and the history's."""

    kind: str
    url: str  # as ${RADAR_TEST_DB_URL}: with the marker as password on PostgreSQL
    table: str
    history_url: str
    down_url: str  # the same database on a port where nothing listens


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, secret: Secrets
) -> Iterator[Warehouse]:
    if request.param == "sqlite":
        path = tmp_path / "warehouse.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        _fill(engine, "rates", "outreach")
        engine.dispose()
        yield Warehouse(
            "sqlite",
            f"sqlite:///{path}",
            "rates",
            f"sqlite:///{tmp_path / 'history.db'}",
            f"postgresql://radar:{secret['dbdown']}@127.0.0.1:1/nothing",
        )
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} not set: the PostgreSQL password case is skipped")
    schema = f"radar_secrets_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    _fill(admin, f"{schema}.rates", f"{schema}.outreach")
    url = sa.make_url(base)
    try:
        yield Warehouse(
            "postgresql",
            url.set(password=secret["dbpw"]).render_as_string(hide_password=False),
            f"{schema}.rates",
            url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
                hide_password=False
            ),
            url.set(password=secret["dbdown"], port=1).render_as_string(hide_password=False),
        )
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def _fill(engine: sa.Engine, rates: str, outreach: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {rates} (day DATE, rate DOUBLE PRECISION, tag TEXT)")
        conn.exec_driver_sql(f"CREATE TABLE {outreach} (period TEXT, usd INTEGER)")
        conn.execute(sa.text(f"INSERT INTO {rates} VALUES (:day, :rate, 'x')"), rows())


@pytest.fixture
def secret() -> Secrets:
    return Secrets()


@pytest.fixture
def server(secret: Secrets) -> Iterator[HttpTestServer]:
    """Metric rows for the right bearer token; webhooks; failures that echo what they were sent."""

    def metric_rows(request: Received) -> Reply:
        if request.header("Authorization") != f"Bearer {secret['token']}":
            return Reply(401, {"error": "unknown token"})
        return Reply(200, {"data": rows()})

    def echo(status: int, header: str) -> Any:
        return lambda request: Reply(status, {"error": f"rejected {request.header(header)}"})

    with HttpTestServer() as running:
        running.route("/v1/rows", metric_rows)
        running.route("/v1/denied", echo(401, "Authorization"))
        running.route("/v1/broken", echo(500, "Authorization"))
        running.route("/hooks/ask", Reply(200, {"accepted": True, "reach": 42}))
        running.route("/hooks/fail", echo(500, "X-Hook-Secret"))
        yield running


DECLARATION = """\
outcome: {outcome}
title: Customers refer us
cadence: monthly
result: {{metric: rate, target: 0.3}}
metrics:
  rate:
    connector: api
    query: {{path: {rows_path}, records: data}}
    period: day
    value: rate
  stored:
    connector: warehouse
    query: {{sql: "SELECT day, rate FROM {table} WHERE tag <> '${{RADAR_TEST_SQL_TAG}}'"}}
    period: day
    value: rate
connectors:
  api:
    type: http
    base_url: {server}
    retries: 0
    headers: {{Authorization: "Bearer ${{RADAR_TEST_TOKEN}}"}}
  warehouse:
    type: sql
    url: "${{RADAR_TEST_DB_URL}}"
checks:
  rate:
    - expect_column_values_to_be_between: {{column: rate, min_value: 0, max_value: 1}}
  stored:
    - expect_column_values_to_not_be_null: {{column: rate}}
approaches:
  - name: incentive
    params: {{usd: 20}}
    adjust: {{usd: {{step: 10, max: 60}}}}
    actions:
      - name: ask
        type: webhook
        url: {server}{hook_path}
        retries: 0
        headers: {{X-Hook-Secret: "${{RADAR_TEST_HOOK_SECRET}}"}}
        payload: {{usd: "{{params.usd}}", period: "{{period}}", signature: "${{RADAR_TEST_HOOK_SECRET}}"}}
      - name: flag
        type: sql
        url: "${{RADAR_TEST_DB_URL}}"
        statement: "INSERT INTO {outreach} (period, usd) VALUES (:period, :usd)"
        params: {{usd: "{{params.usd}}"}}
      - name: export
        type: file
        path: exports/{{period}}.json
        rows: [{{period: "{{period}}", usd: "{{params.usd}}"}}]
  - name: nudge
    params: {{asks: 2}}
"""


def write(
    root: Path,
    outcome: str,
    server: HttpTestServer,
    warehouse: Warehouse,
    *,
    rows_path: str = "/v1/rows",
    hook_path: str = "/hooks/ask",
) -> Path:
    """The declaration `<root>/<outcome>/<outcome>.yaml`."""
    directory = root / outcome
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{outcome}.yaml"
    path.write_text(
        DECLARATION.format(
            outcome=outcome,
            server=server.url,
            rows_path=rows_path,
            hook_path=hook_path,
            table=warehouse.table,
            outreach=warehouse.table.replace("rates", "outreach"),
        )
    )
    return path


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: Secrets, warehouse: Warehouse
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "4000")
    monkeypatch.setenv("RADAR_DATABASE_URL", warehouse.history_url)
    monkeypatch.setenv("RADAR_TEST_TOKEN", secret["token"])
    monkeypatch.setenv("RADAR_TEST_HOOK_SECRET", secret["hook"])
    monkeypatch.setenv("RADAR_TEST_SQL_TAG", secret["sqltag"])
    monkeypatch.setenv("RADAR_TEST_DB_URL", warehouse.url)
    monkeypatch.setenv("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")  # main() sets it
    monkeypatch.setattr(cli, "_FLAGS", {"debug": False, "verbose": False})  # --debug sticks


def was_sent(server: HttpTestServer, secret: Secrets) -> None:
    """The secrets really left the process: the server saw them where they were declared."""
    seen = server.requests
    assert any(r.header("Authorization") == f"Bearer {secret['token']}" for r in seen)
    hooks = [r for r in seen if r.path == "/hooks/ask"]
    assert hooks and hooks[0].header("X-Hook-Secret") == secret["hook"]
    assert hooks[0].body["signature"] == secret["hook"]


# -- through the command line ---------------------------------------------------------------------


def test_secrets_never_show_in_cli_runs(
    env: None,
    tmp_path: Path,
    secret: Secrets,
    server: HttpTestServer,
    warehouse: Warehouse,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    search = Search(secret.marker)
    ok = str(write(tmp_path, "secretive", server, warehouse))
    current, past = str(CURRENT), [str(CURRENT - k) for k in (1, 2, 3)]

    def radar(*argv: str, code: int = 0) -> str:
        assert main(list(argv)) == code, capfd.readouterr()
        out, err = capfd.readouterr()
        search.add(f"radar {' '.join(argv)} (stdout)", out)
        search.add(f"radar {' '.join(argv)} (stderr)", err)
        return out if code == 0 else err

    radar("validate", ok)
    record = json.loads(radar("run", ok, "--period", past[2], "--json", "--no-prefect"))
    assert record["decision"] and record["checks"]["failed"] == 0
    assert [v["rows"] for v in record["metrics"]["stored"]][-1] == 2  # the warehouse answered
    radar("--verbose", "run", ok, "--period", past[1], "--no-prefect")
    radar("run", ok, "--period", past[0], "--no-prefect")
    now = json.loads(radar("run", ok, "--period", current, "--review", "--json", "--no-prefect"))
    assert {a["name"]: a["status"] for a in now["actions"]} == dict.fromkeys(
        ("ask", "flag", "export"), "succeeded"
    )
    radar("run", ok, "--period", current, "--dry-run", "--no-prefect")
    radar("run", ok, "--period", current, "--dry-run", "--json", "--no-prefect")
    radar("history", "secretive", "--json")
    radar("history", "secretive")
    was_sent(server, secret)

    # failures: a webhook answering 500, the HTTP source answering 401 and 500, each echoing
    # the secret it was sent, and the database where nothing listens
    hook = str(write(tmp_path, "hookfail", server, warehouse, hook_path="/hooks/fail"))
    err = radar("run", hook, "--period", current, "--json", "--no-prefect", code=1)
    assert "POST /hooks/fail: HTTP 500" in err and "rejected ***" in err  # the echo, redacted
    radar("--debug", "run", hook, "--period", current, "--no-prefect", code=1)
    cli._FLAGS["debug"] = False
    radar("history", "hookfail", "--json")
    radar("history", "hookfail")
    for path, status in (("/v1/denied", 401), ("/v1/broken", 500)):
        name = f"http{status}"
        broken = str(write(tmp_path, name, server, warehouse, rows_path=path))
        err = radar("run", broken, "--period", past[0], "--no-prefect", code=1)
        assert f"HTTP {status}" in err and "rejected Bearer ***" in err
        radar("--debug", "run", broken, "--period", past[0], "--json", "--no-prefect", code=1)
        cli._FLAGS["debug"] = False
    os.environ["RADAR_TEST_DB_URL"] = warehouse.down_url  # monkeypatched by `env`: restored
    down = str(write(tmp_path, "dbdown", server, warehouse))
    for argv in (["validate", down], ["run", down, "--period", past[0], "--no-prefect"]):
        err = radar(*argv, code=1)
        assert "cannot connect to" in err and ":***@127.0.0.1:1/" in err
    radar("--debug", "run", down, "--period", past[0], "--no-prefect", code=1)
    cli._FLAGS["debug"] = False

    history = dump_database(warehouse.history_url)  # on PostgreSQL: the warehouse tables too
    assert "secretive" in history and "rejected ***" in history  # the right database
    search.add("history database", history)
    add_files(search, tmp_path)
    assert any(k.startswith("file secretive/exports/") for k in search.texts)
    add_logging(search, caplog.records)
    assert any("HTTP Request: POST" in t for t in search.texts.values())  # logging was seen
    search.assert_clean()


# -- through Prefect ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[str]:
    """A test harness server; yields the path of its SQLite database."""
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        url = get_current_settings().server.database.connection_url
        assert url is not None
        yield url.get_secret_value().split(":///", 1)[1]


def prefect_texts(search: Search, flow_run_names: list[str]) -> dict[str, Any]:
    """Flows, flow and task runs with every state, logs, artifacts and events, as JSON text."""
    from prefect import get_client
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()
    EventsWorker.drain_all()
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        named = {r.name: r for r in runs}
        assert set(flow_run_names) <= set(named), sorted(named)
        for run in runs:
            search.add(f"flow run {run.name}", run.model_dump_json())
            for state in client.read_flow_run_states(run.id):
                search.add(f"flow run {run.name} state", state.model_dump_json())
        search.add("flows", "\n".join(f.model_dump_json() for f in client.read_flows()))
        for task_run in client.read_task_runs():
            search.add(f"task run {task_run.name}", task_run.model_dump_json())
            for state in client.read_task_run_states(task_run.id):
                search.add(f"task run {task_run.name} state", state.model_dump_json())
        logs, offset = [], 0
        while batch := client.read_logs(limit=200, offset=offset):
            logs += batch
            offset += len(batch)
        search.add("prefect logs", "\n".join(log.model_dump_json() for log in logs))
        artifacts = client.read_artifacts()
        search.add("artifacts", "\n".join(a.model_dump_json() for a in artifacts))
        last = named[flow_run_names[-1]].id
        deadline = time.monotonic() + 20
        while True:  # events reach the database in batches: wait for the last run's
            page = client.read_events(limit=50)
            events = list(page.events)
            while page.next_page:
                page = client.read_events_page(page.next_page)
                events += page.events
            if any(e.resource.id == f"prefect.flow-run.{last}" for e in events):
                break
            assert time.monotonic() < deadline, "the flow run's events never arrived"
            time.sleep(0.5)
        search.add("events", "\n".join(e.model_dump_json() for e in events))
    return {"runs": named, "logs": logs, "artifacts": artifacts}


@pytest.mark.slow
def test_secrets_never_show_in_prefect_runs(
    prefect_server: str,
    env: None,
    tmp_path: Path,
    secret: Secrets,
    server: HttpTestServer,
    warehouse: Warehouse,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from cycles.declaration import load
    from cycles.errors import ActionError
    from cycles.flow import run_in_flow

    caplog.set_level(logging.DEBUG)
    search = Search(secret.marker)
    outcome = f"secretive-{warehouse.kind}"
    ok = write(tmp_path, outcome, server, warehouse)
    current, past = str(CURRENT), str(CURRENT - 1)

    assert run_in_flow(load(ok), past).decision is not None
    record = run_in_flow(load(ok), current, review=True)
    assert {a.name: a.status for a in record.actions}["ask"] == "succeeded"
    hook = write(tmp_path, f"hookfail-{warehouse.kind}", server, warehouse, hook_path="/hooks/fail")
    with pytest.raises(ActionError, match=r"rejected \*\*\*"):
        run_in_flow(load(hook), current)
    argv = ["--verbose", "run", str(ok), "--period", str(CURRENT - 2), "--prefect", "--json"]
    assert main(argv) == 0
    was_sent(server, secret)

    found = prefect_texts(
        search,
        [
            f"{outcome}/{past}",
            f"{outcome}/{current}",
            f"hookfail-{warehouse.kind}/{current}",
            f"{outcome}/{CURRENT - 2}",
        ],
    )
    failed = found["runs"][f"hookfail-{warehouse.kind}/{current}"]
    assert failed.state.is_failed() and "rejected ***" in (failed.state.message or "")
    assert any("rejected ***" in log.message for log in found["logs"])  # the traceback was logged
    kinds = {a.type for a in found["artifacts"] if a.key and a.key.startswith(outcome)}
    assert kinds == {"markdown", "table"}

    out, err = capfd.readouterr()
    search.add("stdout", out)
    search.add("stderr", err)
    search.add("history database", dump_database(warehouse.history_url))
    add_files(search, tmp_path)
    for path in sorted(Path(prefect_server).parent.glob(Path(prefect_server).name + "*")):
        search.add(f"prefect database {path.name}", path.read_bytes())  # with its WAL
    add_logging(search, caplog.records)
    search.assert_clean()


# -- placements that leak today -------------------------------------------------------------------

PLAIN = """\
outcome: plain
title: {title}
cadence: monthly
result: {{metric: rate, target: 0.3}}
metrics:
  rate: {{connector: api, query: {query}, period: day, value: rate}}
connectors:
  api: {{type: http, base_url: "{server}", retries: 0, headers: {headers}}}
approaches:
  - name: incentive
    params: {params}
    adjust: {{usd: {{step: 10, max: 40}}}}
    actions: {actions}
"""


def plain(tmp_path: Path, server: HttpTestServer, **parts: str) -> str:
    fields = {
        "title": "Customers refer us",
        "query": "{path: /v1/open, records: data}",
        "params": "{usd: 20}",
        "actions": "[]",
        "headers": "{}",
        **parts,
    }
    path = tmp_path / "plain.yaml"
    path.write_text(PLAIN.format(server=server.url, **fields))
    return str(path)


@pytest.fixture
def open_server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        running.route("/v1/open", Reply(200, {"data": rows()}))
        running.route("/hooks/ask", Reply(200, {"reach": 1}))
        yield running


LONG = "value-" + "v" * 40  # a long secret: a cut inside it still shows the whole marker


@pytest.fixture
def quiet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: Secrets) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "4000")
    monkeypatch.setenv("RADAR_DATABASE_URL", f"sqlite:///{tmp_path / 'history.db'}")
    monkeypatch.setenv("RADAR_TEST_SECRET", secret[LONG])
    monkeypatch.setattr(cli, "_FLAGS", {"debug": False, "verbose": False})


def run_and_search(
    tmp_path: Path,
    secret: Secrets,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    declaration: str,
    *argv: str,
) -> Search:
    """`radar run` (readable, then --json), `radar history`; search everything they left."""
    caplog.set_level(logging.DEBUG)
    search = Search(secret.marker)
    for extra in ([], ["--json"]):
        main(["run", declaration, *argv, *extra, "--no-prefect"])
    main(["history", "plain"])
    out, err = capfd.readouterr()
    search.add("stdout", out)
    search.add("stderr", err)
    search.add("history database", dump_database(f"sqlite:///{tmp_path / 'history.db'}"))
    add_logging(search, caplog.records)
    return search


def test_secret_in_an_approach_parameter(
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    open_server: HttpTestServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    decl = plain(tmp_path, open_server, params="{usd: 20, coupon: '${RADAR_TEST_SECRET}'}")
    run_and_search(
        tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT - 1)
    ).assert_clean()


def test_a_secret_parameter_planned_by_a_review_is_used_whole(
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    open_server: HttpTestServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The history keeps `***` for the secret; the next cycle takes it from the declaration."""
    actions = (
        "[{name: ask, type: webhook, url: '%s/hooks/ask', payload: {coupon: '{params.coupon}'}}]"
    )
    decl = plain(
        tmp_path, open_server, params="{usd: 20, coupon: '${RADAR_TEST_SECRET}'}",
        actions=actions % open_server.url,
    )  # fmt: skip
    run_and_search(tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT - 1))
    search = run_and_search(tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT))
    [sent] = [r for r in open_server.requests if r.path == "/hooks/ask"]
    assert sent.body["coupon"] == secret[LONG]
    search.assert_clean()


def test_secret_in_the_title(
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    open_server: HttpTestServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    decl = plain(tmp_path, open_server, title="'Refer us ${RADAR_TEST_SECRET}'")
    run_and_search(
        tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT - 1)
    ).assert_clean()


def test_secret_in_a_query_string(
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    open_server: HttpTestServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    query = "{path: /v1/open, records: data, params: {api_key: '${RADAR_TEST_SECRET}'}}"
    actions = f"[{{name: ask, type: webhook, url: '{open_server.url}/hooks/ask?sig=${{RADAR_TEST_SECRET}}'}}]"
    decl = plain(tmp_path, open_server, query=query, actions=actions)
    search = run_and_search(
        tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT), "--review"
    )
    assert open_server.requests[0].query["api_key"] == [secret[LONG]]  # it was used
    search.assert_clean()


def test_secret_in_a_failing_python_action(
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    open_server: HttpTestServer,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "deliver.py").write_text(
        "def ask(context, token):\n    raise RuntimeError(f'login refused for {token}')\n"
    )
    actions = "[{name: ask, type: python, callable: 'deliver:ask', kwargs: {token: '${RADAR_TEST_SECRET}'}}]"
    decl = plain(tmp_path, open_server, actions=actions)
    search = run_and_search(tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT))
    assert "login refused for ***" in search.texts["stderr"]  # it was used, and stderr redacts
    search.assert_clean()


def test_secret_cut_off_in_an_error_excerpt(
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with HttpTestServer() as echoing:
        # the excerpt's 160 characters end inside the secret, after its marker
        echoing.route(
            "/v1/open", lambda r: Reply(401, "x" * 110 + f" {r.header('Authorization')} rejected")
        )
        decl = plain(tmp_path, echoing, headers="{Authorization: 'Bearer ${RADAR_TEST_SECRET}'}")
        search = run_and_search(tmp_path, secret, capfd, caplog, decl, "--period", str(CURRENT - 1))
    assert "HTTP 401" in search.texts["stderr"]
    search.assert_clean()


@pytest.mark.slow
def test_secret_in_a_failing_python_action_under_prefect(
    prefect_server: str,
    quiet_env: None,
    tmp_path: Path,
    secret: Secrets,
    open_server: HttpTestServer,
) -> None:
    from cycles.declaration import load
    from cycles.errors import ActionError
    from cycles.flow import run_in_flow

    (tmp_path / "deliver.py").write_text(
        "def ask(context, token):\n    raise RuntimeError(f'login refused for {token}')\n"
    )
    actions = "[{name: ask, type: python, callable: 'deliver:ask', kwargs: {token: '${RADAR_TEST_SECRET}'}}]"
    with pytest.raises(ActionError, match="login refused"):
        run_in_flow(load(plain(tmp_path, open_server, actions=actions)), str(CURRENT))
    search = Search(secret.marker)
    prefect_texts(search, [f"plain/{CURRENT}"])
    search.assert_clean()
