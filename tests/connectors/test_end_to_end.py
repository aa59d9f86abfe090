"""A metric in PostgreSQL and a webhook action, end to end through `radar run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from cycles.periods import Cadence, Period

from httpserver import HttpTestServer, Received, Reply

PG = os.environ.get("RADAR_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(
    not PG, reason="RADAR_TEST_POSTGRES_URL not set: end-to-end PostgreSQL test skipped"
)


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


@pytest.fixture
def table() -> Iterator[str]:
    import sqlalchemy as sa

    name = f"referrals_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg2://", 1))  # type: ignore[union-attr]
    current = Period.containing(date.today(), Cadence.monthly)
    rows = []
    for k in range(14, 0, -1):  # 14 past months, two rows each
        start = (current - k).start
        for offset, rate in ((2, 0.18), (12, 0.19)):
            rows.append({"day": start + timedelta(days=offset), "rate": rate})
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {name} (day date NOT NULL, rate double precision)"))
        conn.execute(sa.text(f"INSERT INTO {name} (day, rate) VALUES (:day, :rate)"), rows)
    yield name
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def test_postgres_metric_and_webhook_once(
    tmp_path: Path, server: HttpTestServer, table: str
) -> None:
    def receiver(request: Received) -> Reply:
        return Reply(200, {"accepted": True, "reach": 42})

    server.route("/hooks/ask", receiver)
    (tmp_path / "refer.yaml").write_text(f"""\
outcome: refer
title: Customers refer us
cadence: monthly
result: {{metric: rate, target: 0.3}}
metrics:
  rate: {{connector: warehouse, period: day, value: rate, query: {{table: {table}}}}}
connectors:
  warehouse: {{type: sql, url: "${{RADAR_E2E_DB}}"}}
checks:
  rate:
    - expect_column_values_to_be_between: {{column: rate, min_value: 0, max_value: 1}}
approaches:
  - name: incentive
    params: {{usd: 20}}
    adjust: {{usd: {{step: 10, max: 40}}}}
    actions:
      - name: ask
        type: webhook
        url: {server.url}/hooks/ask
        headers: {{Authorization: "Bearer ${{RADAR_E2E_TOKEN}}"}}
        payload: {{usd: "{{params.usd}}", period: "{{period}}"}}
""")
    env = {**os.environ, "RADAR_E2E_DB": PG, "RADAR_E2E_TOKEN": "tok-e2e-9f8e7d"}
    env.pop("PREFECT_API_URL", None)
    env["RADAR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'history.db'}"

    def radar(*args: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "cycles.cli", "run", "refer.yaml", "--json", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True, check=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "tok-e2e-9f8e7d" not in proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    period = str(Period.containing(date.today(), Cadence.monthly))
    opened = radar()
    assert opened["period"] == period
    assert opened["stages"] == ["result", "approach", "deployment"]
    assert [(a["name"], a["status"], a["reach"]) for a in opened["actions"]] == [
        ("ask", "succeeded", 42.0)
    ]
    assert opened["standing"] == pytest.approx(0.185)

    again = radar()
    assert again["stages"] == []
    reviewed = radar("--review")
    assert (
        reviewed["stages"] == ["assessment", "review"] and reviewed["decision"] == "hold"
    )  # no rows yet this month

    [request] = server.requests
    assert request.header("Idempotency-Key") == f"refer/{period}/incentive/ask"
    assert request.header("Authorization") == "Bearer tok-e2e-9f8e7d"
    assert request.body == {"usd": 20, "period": period}

    past = radar("--period", str(Period.parse(period, Cadence.monthly) - 1))
    assert past["decision"] == "adjust" and past["actions"][0]["status"] == "skipped"
    assert len(server.requests) == 1  # a past period's action is never executed
