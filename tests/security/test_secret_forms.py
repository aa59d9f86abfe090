"""Secrets in every form radar produces, and redaction that never corrupts data (issue 12, 1-3).

Each case runs `radar` as a user would, against a real HTTP server on 127.0.0.1 that echoes what
it received, and searches everything radar printed and stored for the secret in any encoding.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from conftest import months, radar, write_monthly_csv


class Echo:
    """Answers every request with `status` and a body echoing the request line and headers."""

    def __init__(self) -> None:
        self.status = 401
        self.received: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                seen = {"path": self.path, "headers": dict(self.headers), "body": body}
                owner.received.append(seen)
                payload = json.dumps({"error": "no", "echo": seen}).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.server.shutdown()


def forms(secret: str, user: str = "radar") -> list[str]:
    """Every form of `secret` that must never be seen."""
    found = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    found.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    found.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return sorted(found)


def leaks(secret: str, *texts: str) -> list[str]:
    return [form for form in forms(secret) for text in texts if form in text]


HTTP_SOURCE = """\
outcome: leaky
title: Leaks nothing
cadence: monthly
result: {{metric: rate, target: 0.3}}
metrics:
  rate:
    connector: api
    period: day
    value: rate
    query: {{path: /rows, params: {{token: "${{TOKEN}}"}}, records: rows}}
connectors:
  api: {{type: http, base_url: "{base}", retries: 0}}
approaches:
  - name: incentive
    params: {{usd: 20}}
"""


@pytest.mark.parametrize(
    "secret",
    ["ab+cd/ef==", 'quo"te\\back', "grüße-pässwört"],
    ids=["percent-encoded", "json-escaped", "non-ascii"],
)
def test_a_source_echoing_its_query_leaks_no_form_of_the_secret(
    workdir: Path, echo: Echo, secret: str
) -> None:
    decl = workdir / "leaky.yaml"
    decl.write_text(HTTP_SOURCE.format(base=echo.url))
    env = {"TOKEN": secret}
    ran = radar("run", str(decl), "--period", "2025-09", "--json", cwd=workdir, env=env)
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1, ran.stderr
    assert echo.received, "the server was asked"
    debug = radar("--debug", "run", str(decl), "--period", "2025-09", cwd=workdir, env=env)
    assert "Traceback" in debug.stderr
    history = radar("history", "leaky", "--json", cwd=workdir, env=env)
    assert not leaks(secret, ran.stdout, ran.stderr, debug.stdout, debug.stderr, history.stdout)
    assert "***" in ran.stderr or "401" in ran.stderr


def test_basic_auth_credentials_leak_in_no_form(workdir: Path, echo: Echo) -> None:
    decl = workdir / "leaky.yaml"
    base = echo.url.replace("http://", "http://radar:${PW}@")
    decl.write_text(HTTP_SOURCE.format(base=base).replace('"${TOKEN}"', "plain"))
    secret = "s3cret-Pässword"
    ran = radar("run", str(decl), "--period", "2025-09", "--json", cwd=workdir, env={"PW": secret})
    assert ran.returncode == 1
    sent = echo.received[0]["headers"].get("Authorization", "")
    assert sent == "Basic " + base64.b64encode(f"radar:{secret}".encode()).decode()
    assert not leaks(secret, ran.stdout, ran.stderr)


def test_a_secret_webhook_url_shows_only_its_origin(workdir: Path, echo: Echo) -> None:
    from cycles.periods import Cadence, Period

    values = dict.fromkeys(months("2024-01", 40), 0.2)
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    decl = workdir / "hook.yaml"
    decl.write_text(
        HOOKED.format(action="{name: tell, type: webhook, url: '${HOOK_URL}', retries: 0}")
    )
    echo.status = 404
    hook = f"{echo.url}/services/T0001/B0002/hookhookhook"
    current = str(Period.containing(__import__("datetime").date.today(), Cadence.monthly))
    env = {"HOOK_URL": hook, "PIN": "1234", "TOKEN": "t0ken"}
    ran = radar("run", str(decl), "--period", current, "--json", cwd=workdir, env=env)
    assert ran.returncode == 1, ran.stderr
    assert echo.received[0]["path"] == "/services/T0001/B0002/hookhookhook"
    assert "T0001" not in ran.stderr and "B0002" not in ran.stderr
    assert "127.0.0.1" in ran.stderr  # the origin still says where it went
    history = radar("history", "hooked", "--json", cwd=workdir, env=env)
    assert "T0001" not in history.stdout


HOOKED = """\
outcome: hooked
title: Customers refer us
cadence: monthly
result: {{metric: rate, target: 0.3}}
metrics:
  rate: {{connector: crm, period: day, value: rate}}
connectors:
  crm: {{type: csv, path: data/rate.csv}}
approaches:
  - name: incentive
    params: {{usd: 20, pin: "${{PIN}}", auth: "Bearer ${{TOKEN}}"}}
    adjust: {{usd: {{step: 10, max: 60}}}}
    actions:
      - {action}
"""


@pytest.fixture
def hooked(workdir: Path) -> Path:
    values = {m: 0.2 + 0.002 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-01", 36))}
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    decl = workdir / "hooked.yaml"
    action = (
        "{name: tell, type: file, path: 'out/{period}.json', "
        "rows: [{auth: '{params.auth}', pin: '{params.pin}', usd: '{params.usd}'}]}"
    )
    decl.write_text(HOOKED.format(action=action))
    return decl


def test_redaction_never_rewrites_periods_numbers_or_reasons(workdir: Path, hooked: Path) -> None:
    env = {"PIN": "2025", "TOKEN": "null"}  # a PIN that looks like a year, a token that is JSON
    ran = radar("run", str(hooked), "--from", "2025-08", "--to", "2025-10", "--json",
                cwd=workdir, env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    cycles = json.loads(ran.stdout)  # valid JSON whatever the secrets are
    assert [c["period"] for c in cycles] == ["2025-08", "2025-09", "2025-10"]
    assert all("***" not in reason for c in cycles for reason in c["reasons"])
    assert cycles[0]["target"] == 0.3
    history = radar("history", "hooked", "--json", cwd=workdir, env=env)
    stored = json.loads(history.stdout)
    assert [c["period"] for c in stored] == ["2025-08", "2025-09", "2025-10"]
    assert [c["reasons"] for c in stored] == [c["reasons"] for c in cycles]
    # the secrets themselves are masked by their place, whatever they look like
    assert stored[-1]["approach"]["params"] == {"usd": 40, "pin": "***", "auth": "***"}


def test_partly_secret_params_are_sent_whole_in_every_period(workdir: Path, hooked: Path) -> None:
    from datetime import date

    from cycles.periods import Cadence, Period

    env = {"PIN": "42", "TOKEN": "tok-Zq9"}  # a PIN of 2 characters is a secret too
    current = Period.containing(date.today(), Cadence.monthly)
    first = radar("run", str(hooked), "--from", str(current - 3), "--to", str(current - 1),
                  cwd=workdir, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr
    ran = radar("run", str(hooked), "--json", cwd=workdir, env=env)  # opens the current period
    assert ran.returncode == 0, ran.stderr
    [sent] = json.loads((workdir / "out" / f"{current}.json").read_text())
    assert sent == {"auth": "Bearer tok-Zq9", "pin": "42", "usd": 50}
    record = json.loads(ran.stdout)
    assert record["approach"]["params"] == {"usd": 50, "pin": "***", "auth": "***"}
    assert "tok-Zq9" not in ran.stdout and '"42"' not in ran.stdout
