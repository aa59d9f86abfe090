"""`webhook` and `sql` actions against a real HTTP server and real databases.

PostgreSQL: RADAR_TEST_POSTGRES_URL (each test gets its own schema, dropped afterwards).
MySQL/MariaDB: RADAR_TEST_MYSQL_URL (each test gets its own database, dropped afterwards).
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from connectors.actions.base import ActionContext
from connectors.actions.sql import SqlAction, SqlConfig
from connectors.actions.webhook import WebhookAction, WebhookConfig
from connectors.registry import action_class
from cycles import secrets
from cycles.errors import ActionError
from cycles.urls import normalise_url

from httpserver import HttpTestServer, Received, Reply


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as started:
        yield started


PG_ENV = "RADAR_TEST_POSTGRES_URL"
MYSQL_ENV = "RADAR_TEST_MYSQL_URL"
KEY = "referrals/2026-10/referral-incentive/ask-promoters"


def context(tmp_path: Path, **params: Any) -> ActionContext:
    return ActionContext(
        outcome="referrals", period="2026-10", approach="referral-incentive",
        params={"incentive_usd": 20, **params}, key=KEY, base_dir=tmp_path,
    )  # fmt: skip


# -- webhook ----------------------------------------------------------------------------------------


def webhook(server: HttpTestServer, **config: Any) -> WebhookAction:
    options = {"name": "ask-promoters", "url": f"{server.url}/hooks/ask", "backoff": 0.01}
    return WebhookAction(WebhookConfig(**{**options, **config}))


def test_webhook_sends_the_rendered_payload_with_the_idempotency_key(server, tmp_path) -> None:
    server.route("/hooks/ask", Reply(201, {"reach": 42}))
    action = webhook(
        server,
        payload={"incentive_usd": "{params.incentive_usd}", "note": "{outcome} in {period}",
                 "tags": ["{approach}", 1]},
        headers={"X-Team": "growth"},
    )  # fmt: skip
    assert action.run(context(tmp_path)) == 42.0
    (request,) = server.requests
    assert request.method == "POST" and request.path == "/hooks/ask"
    assert request.body == {
        "incentive_usd": 20, "note": "referrals in 2026-10", "tags": ["referral-incentive", 1],
    }  # fmt: skip
    assert request.header("Idempotency-Key") == KEY
    assert request.header("Content-Type") == "application/json"
    assert request.header("X-Team") == "growth"


@pytest.mark.parametrize(
    ("body", "path", "reach"),
    [
        ({"result": {"sent": 7}}, "result.sent", 7.0),
        ({"results": [{"sent": 3}]}, "results.0.sent", 3.0),  # digits index lists
        ({"results": [{"sent": 3}]}, "results.1.sent", None),
        ({"reach": "seven"}, "reach", None),
        ({"reach": True}, "reach", None),
        ({"ok": True}, "reach", None),
        ("accepted", "reach", None),
        (None, "reach", None),
    ],
)
def test_webhook_reach_comes_from_the_response(
    server, tmp_path, body: Any, path: str, reach: float | None
) -> None:
    server.route("/hooks/ask", Reply(200, body))
    assert webhook(server, reach=path, method="PUT").run(context(tmp_path)) == reach
    assert server.requests[0].method == "PUT"


def test_webhook_retries_reuse_the_same_key_so_the_receiver_deduplicates(server, tmp_path) -> None:
    delivered: dict[str, int] = {}

    def receiver(request: Received) -> Reply:
        key = request.header("Idempotency-Key") or ""
        if key not in delivered:
            delivered[key] = request.body["incentive_usd"]
            return Reply(503)  # processed, but the answer is lost: the sender must retry
        return Reply(200, {"reach": 1, "replayed": True})

    server.route("/hooks/ask", receiver)
    action = webhook(server, payload={"incentive_usd": "{params.incentive_usd}"})
    assert action.run(context(tmp_path)) == 1.0
    assert [r.header("Idempotency-Key") for r in server.requests] == [KEY, KEY]
    assert delivered == {KEY: 20}


def test_webhook_retries_a_dropped_connection(server, tmp_path) -> None:
    server.route("/hooks/ask", Reply(drop=True), Reply(200, {"reach": 3}))
    assert webhook(server).run(context(tmp_path)) == 3.0
    assert [r.header("Idempotency-Key") for r in server.requests] == [KEY, KEY]


def test_webhook_client_error_is_not_retried(server, tmp_path) -> None:
    server.route("/hooks/ask", Reply(422, {"error": "unknown campaign"}))
    with pytest.raises(ActionError) as info:
        webhook(server).run(context(tmp_path))
    assert str(info.value) == (
        "action 'ask-promoters': POST /hooks/ask: HTTP 422 after 1 attempt"
        ' (body: {"error": "unknown campaign"})'
    )
    assert len(server.requests) == 1


def test_webhook_gives_up_after_retries(server, tmp_path) -> None:
    server.route("/hooks/ask", Reply(500))
    with pytest.raises(ActionError) as info:
        webhook(server, retries=2, url=f"{server.url}/hooks/ask?token=abc").run(context(tmp_path))
    assert str(info.value) == "action 'ask-promoters': POST /hooks/ask: HTTP 500 after 3 attempts"
    assert len(server.requests) == 3


def test_webhook_timeout(server, tmp_path) -> None:
    server.route("/hooks/ask", Reply(200, {}, delay=1.0))
    with pytest.raises(ActionError) as info:
        webhook(server, timeout=0.2, retries=0).run(context(tmp_path))
    assert str(info.value) == (
        "action 'ask-promoters': POST /hooks/ask: ReadTimeout (timed out) after 1 attempt"
    )


def test_webhook_secrets_never_show_in_errors_or_reprs(server, tmp_path) -> None:
    token, hook = "tok-93kd8e7f", "T0K3N-hook-55aa"
    secrets.remember(token)
    secrets.remember(hook)
    server.route(f"/hooks/{hook}", Reply(403, f"forbidden for Bearer {token}"))
    action = webhook(
        server, url=f"{server.url}/hooks/{hook}",
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    with pytest.raises(ActionError) as info:
        action.run(context(tmp_path))
    assert server.requests[0].header("Authorization") == f"Bearer {token}"
    text = str(info.value) + repr(action.config) + str(action.config)
    assert token not in text and hook not in text
    assert str(info.value) == (
        "action 'ask-promoters': POST /hooks/***: HTTP 403 after 1 attempt "
        "(body: forbidden for Bearer ***)"
    )


def test_webhook_in_a_declaration(tmp_path, monkeypatch) -> None:
    from cycles.declaration import load_yaml

    monkeypatch.setenv("RADAR_TEST_HOOK_TOKEN", "tok-from-env-1234")
    (tmp_path / "rows.csv").write_text("day,rate\n2026-01-01,0.1\n")
    path = tmp_path / "refer.yaml"
    path.write_text(
        textwrap.dedent("""\
        outcome: refer
        title: Customers refer us
        cadence: monthly
        result: {metric: rate, target: 0.3}
        metrics:
          rate: {connector: crm, period: day, value: rate}
        connectors:
          crm: {type: csv, path: rows.csv}
        approaches:
          - name: incentive
            params: {usd: 20}
            actions:
              - name: ask
                type: webhook
                url: http://127.0.0.1:9/hooks/{outcome}
                headers: {Authorization: "Bearer ${RADAR_TEST_HOOK_TOKEN}"}
                payload: {usd: "{params.usd}", period: "{period}"}
              - name: log
                type: sql
                url: sqlite:///log.db
                statement: INSERT INTO log (k) VALUES (:key)
        """)
    )
    outcome = load_yaml(path)
    ask, log = outcome.approaches[0].actions
    assert isinstance(ask, WebhookConfig) and isinstance(log, SqlConfig)
    assert ask.headers["Authorization"].get_secret_value() == "Bearer tok-from-env-1234"
    assert "tok-from-env-1234" not in repr(outcome) + outcome.model_dump_json()
    assert action_class("webhook") is WebhookAction and action_class("sql") is SqlAction


# -- sql --------------------------------------------------------------------------------------------

SETUP = [
    "CREATE TABLE customers (name VARCHAR(20) PRIMARY KEY, score INTEGER)",
    "CREATE TABLE outreach (name VARCHAR(20) PRIMARY KEY, usd INTEGER, period VARCHAR(10),"
    " idem VARCHAR(200))",
    "INSERT INTO customers VALUES ('ann', 10), ('bob', 9), ('cy', 3), ('dee', 9)",
]


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database of each kind holding `customers` and an empty `outreach`."""
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.db'}"
        engine = create_engine(url)
        drop = None
    else:
        env = PG_ENV if kind == "postgresql" else MYSQL_ENV
        base = os.environ.get(env)
        if not base:
            pytest.skip(f"{env} not set: {kind} action tests skipped")
        name = f"radar_{uuid.uuid4().hex[:12]}"
        admin = create_engine(normalise_url(base), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE {'SCHEMA' if kind == 'postgresql' else 'DATABASE'} {name}"
            )
        if kind == "postgresql":
            target = admin.url.update_query_dict({"options": f"-csearch_path={name}"})
            drop = f"DROP SCHEMA {name} CASCADE"
        else:
            target = admin.url.set(database=name)
            drop = f"DROP DATABASE {name}"
        url = target.render_as_string(hide_password=False)
        engine = create_engine(url)
    with engine.begin() as conn:
        for statement in SETUP:
            conn.exec_driver_sql(statement)
    engine.dispose()
    try:
        yield url
    finally:
        if drop:
            with admin.connect() as conn:
                conn.exec_driver_sql(drop)
            admin.dispose()


def rows(url: str, sql: str = "SELECT name, usd, period, idem FROM outreach ORDER BY name") -> list:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


INSERT = (
    "INSERT INTO outreach (name, usd, period, idem) "
    "SELECT name, :usd, :period, :key FROM customers WHERE score >= :min_score"
)


def test_sql_inserts_with_bound_params_and_reports_rowcount(db_url: str, tmp_path: Path) -> None:
    config = SqlConfig(
        name="flag-promoters", url=db_url, statement=INSERT,
        params={"usd": "{params.incentive_usd}", "min_score": 9},
    )  # fmt: skip
    assert SqlAction(config).run(context(tmp_path)) == 3.0
    assert rows(db_url) == [(n, 20, "2026-10", KEY) for n in ("ann", "bob", "dee")]
    update = SqlConfig(
        name="raise", url=db_url, params={"usd": 30, "who": "nobody"},
        statement="UPDATE outreach SET usd = :usd WHERE name = :who AND period = :period",
    )  # fmt: skip
    assert SqlAction(update).run(context(tmp_path)) == 0.0


def test_sql_runs_in_one_transaction(db_url: str, tmp_path: Path) -> None:
    # the second customer collides with a row already there: nothing of the statement stays
    seed = SqlConfig(name="seed", url=db_url,
                     statement="INSERT INTO outreach (name, usd) VALUES ('bob', 1)")  # fmt: skip
    assert SqlAction(seed).run(context(tmp_path)) == 1.0
    config = SqlConfig(name="flag", url=db_url, statement=INSERT, params={"usd": 5, "min_score": 9})
    with pytest.raises(ActionError, match=r"^action 'flag': .*(IntegrityError|UniqueViolation)"):
        SqlAction(config).run(context(tmp_path))
    assert rows(db_url) == [("bob", 1, None, None)]


def test_sql_errors_never_show_the_password(db_url: str, tmp_path: Path) -> None:
    password = "pw-s3cret/7@x"
    url = make_url(normalise_url(db_url))
    if url.get_backend_name() != "sqlite":
        db_url = url.set(password=password).render_as_string(hide_password=False)
    config = SqlConfig(name="flag", url=db_url, statement="DELETE FROM no_such_table")
    with pytest.raises(ActionError) as info:
        SqlAction(config).run(context(tmp_path))
    message = str(info.value)
    assert password not in message and "s3cret" not in message and "\n" not in message
    assert message.startswith("action 'flag': ")
    assert "no_such_table" in message or "Access denied" in message  # MySQL checks passwords


def test_sql_connection_errors_never_show_the_password(tmp_path: Path) -> None:
    with HttpTestServer() as server:
        port = server.url.rsplit(":", 1)[1]  # free again once the server stops
    config = SqlConfig(name="flag", url=f"postgresql://crm:pw-s3cret-99@127.0.0.1:{port}/crm",
                       statement="SELECT 1")  # fmt: skip
    with pytest.raises(ActionError) as info:
        SqlAction(config).run(context(tmp_path))
    message = str(info.value)
    assert message.startswith(
        f"action 'flag': postgresql+psycopg2://crm:***@127.0.0.1:{port}/crm: OperationalError: "
    )
    assert "pw-s3cret-99" not in message + repr(config)
    bad = SqlConfig(name="flag", url="not a url pw-s3cret-99", statement="SELECT 1")
    with pytest.raises(ActionError) as info:
        SqlAction(bad).run(context(tmp_path))
    assert str(info.value) == "action 'flag': url is not a valid SQLAlchemy URL"


def test_sql_relative_sqlite_path_is_relative_to_the_declaration(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    config = SqlConfig(name="log", url="sqlite:///db/log.db",
                       statement="CREATE TABLE log AS SELECT :key AS k, :approach AS a")  # fmt: skip
    SqlAction(config).run(context(tmp_path))
    assert rows(f"sqlite:///{tmp_path / 'db' / 'log.db'}", "SELECT k, a FROM log") == [
        (KEY, "referral-incentive")
    ]


def test_sql_missing_bound_parameter_is_one_line(tmp_path: Path) -> None:
    config = SqlConfig(name="log", url="sqlite://", statement="SELECT :nope")
    with pytest.raises(ActionError) as info:
        SqlAction(config).run(context(tmp_path))
    assert str(info.value) == (
        "action 'log': sqlite://: InvalidRequestError: "
        "A value is required for bind parameter 'nope'"
    )
