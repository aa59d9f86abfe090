"""The HTTP layer's guards, against real HTTP servers on 127.0.0.1 (no mocks).

Credentials stay on base_url's origin (next pages and redirects elsewhere are refused), every
exchange ends by its `deadline` even when a server drips bytes, bodies stop at `max_bytes`,
values filled into webhook URLs are percent-encoded, and error lines show neither the path of
a secret URL nor a secret in percent-encoded form.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest

from connectors._http import scrub
from connectors.actions.base import ActionContext
from connectors.actions.webhook import WebhookAction, WebhookConfig
from connectors.base import Window
from connectors.http import HttpConfig, HttpConnector, HttpQuery
from cycles import secrets
from cycles.errors import ActionError, ConnectorError
from cycles.periods import Cadence, Period

Handler = Callable[[BaseHTTPRequestHandler], None]
ROWS = [{"day": "2026-01-05", "rate": 0.1}, {"day": "2026-02-05", "rate": 0.2}]


@dataclass(frozen=True)
class Seen:
    method: str
    target: str  # the request target as sent: raw path and query
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class Server:
    """A ThreadingHTTPServer on 127.0.0.1:<free port>; each path answers through a handler that
    writes to the socket itself (so it can drip, stream or redirect); requests are logged."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        owner = self

        class Handle(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                route = owner.routes.get(urlsplit(self.path).path, answer(404, {"error": "none"}))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)  # a broken pipe: the client gave up, as it should

            do_POST = do_PUT = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.httpd.daemon_threads = True
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    started = Server()
    yield started
    started.stop()


other = server  # a second server: another origin (another port)


def answer(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    """A handler that sends `body` (JSON, or bytes as they are) at once."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        sent = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        for name, value in {**sent, **(headers or {})}.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(payload)

    return handle


def drip(stop: threading.Event, *, headers_too: bool = False) -> Handler:
    """A handler that sends one byte every 0.2 s, of the body (or of a header that never ends)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        if headers_too:
            h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        else:
            h.send_response(200)
            h.send_header("Content-Length", "1000")
            h.end_headers()
        for _ in range(300):  # a minute at most
            h.wfile.write(b"a")
            h.wfile.flush()
            if stop.wait(0.2):
                return

    return handle


def stream(h: BaseHTTPRequestHandler) -> None:
    """An endless body without Content-Length (HTTP/1.0: the body ends when the socket does)."""
    h.send_response(200)
    h.end_headers()
    chunk = b"[" + b"0," * 32_000
    for _ in range(2_000):  # 128 MB at most
        h.wfile.write(chunk)


def window() -> Window:
    start = Period.parse("2026-01", Cadence.monthly)
    return Window(tuple(start + i for i in range(3)))


def source(base_url: str, tmp_path: Path, **config: Any) -> HttpConnector:
    options = {"base_url": base_url, "backoff": 0.01, "timeout": 5, "retries": 0, **config}
    return HttpConnector("crm_api", HttpConfig(**options), base_dir=tmp_path)


def fetch(connector: HttpConnector, **query: Any) -> Any:
    try:
        return connector.fetch(HttpQuery(**{"path": "/v1/rows", **query}), window(), ["day"])
    finally:
        connector.close()


def hook(url: str, **config: Any) -> WebhookAction:
    options = {"name": "ask", "url": url, "backoff": 0.01, "retries": 0, **config}
    return WebhookAction(WebhookConfig(**options))


def context(tmp_path: Path, **params: Any) -> ActionContext:
    return ActionContext(
        outcome="referrals", period="2026-10", approach="incentive", params=params,
        key="referrals/2026-10/incentive/ask", base_dir=tmp_path,
    )  # fmt: skip


def no_trace_of(secret: str, text: str) -> bool:
    """Neither `secret` nor its percent-encoded forms nor an 8-character piece of it."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)}
    return not any(f in text for f in forms | pieces)


# -- credentials stay with their origin ------------------------------------------------------------


CREDENTIALS = {"Authorization": "Bearer tok-5e8a1c9d", "X-Api-Key": "key-77c2e0b4"}


@pytest.mark.parametrize("how", ["body next", "Link header"])
def test_a_next_page_on_another_origin_is_refused(server, other, tmp_path, how: str) -> None:
    elsewhere = f"{other.url}/steal?page=2"
    page = {"items": ROWS, "next": elsewhere} if how == "body next" else {"items": ROWS}
    link = {"Link": f'<{elsewhere}>; rel="next"'} if how == "Link header" else {}
    server.routes["/v1/rows"] = answer(200, page, link)
    base = server.url.replace("http://", "http://robot:pw-91f3b2@")
    connector = source(base, tmp_path, headers=CREDENTIALS)
    with pytest.raises(ConnectorError) as info:
        fetch(connector, records="items", params={"api_key": "par-4d4e1f"})
    assert str(info.value) == (
        f"connector 'crm_api': next page {other.url}/… is on another origin than base_url; "
        "refused (credentials stay with their host)"
    )
    assert other.seen == []  # nothing at all went there
    (first,) = server.seen
    assert first.header("X-Api-Key") == "key-77c2e0b4" and first.header("Authorization")


def test_credentials_follow_pages_and_redirects_on_the_same_origin(server, tmp_path) -> None:
    server.routes["/v1/rows"] = answer(200, {"items": ROWS[:1], "next": f"{server.url}/v1/p2"})
    server.routes["/v1/p2"] = answer(302, {}, {"Location": "/v1/p3"})
    server.routes["/v1/p3"] = answer(200, {"items": ROWS[1:], "next": None})
    frame = fetch(source(server.url.replace("//", "//robot:pw-91f3b2@"), tmp_path), records="items")
    assert frame["day"].tolist() == [r["day"] for r in ROWS]
    assert [urlsplit(s.target).path for s in server.seen] == ["/v1/rows", "/v1/p2", "/v1/p3"]
    # user:pw@ of base_url reaches every page of its origin, also an absolute next URL
    assert {s.header("Authorization") for s in server.seen} == {"Basic cm9ib3Q6cHctOTFmM2Iy"}


def test_a_redirect_to_another_origin_is_refused(server, other, tmp_path) -> None:
    server.routes["/v1/rows"] = answer(307, {}, {"Location": f"{other.url}/v1/rows?x=1"})
    with pytest.raises(ConnectorError) as info:
        fetch(source(server.url, tmp_path, headers=CREDENTIALS))
    assert str(info.value) == (
        f"connector 'crm_api': GET /v1/rows: redirect to {other.url}/… is on another origin "
        "than base_url; refused (credentials stay with their host)"
    )
    assert other.seen == []


def test_a_webhook_follows_no_redirect(server, other, tmp_path) -> None:
    server.routes["/hooks/ask"] = answer(308, {}, {"Location": f"{other.url}/hooks/ask"})
    action = hook(f"{server.url}/hooks/ask", headers=CREDENTIALS)
    with pytest.raises(ActionError) as info:
        action.run(context(tmp_path))
    assert str(info.value) == "action 'ask': POST /hooks/ask: HTTP 308 after 1 attempt (body: {})"
    assert other.seen == [] and len(server.seen) == 1


# -- deadlines ---------------------------------------------------------------------------------------


def test_a_source_dripping_its_body_is_stopped_at_the_deadline(server, tmp_path) -> None:
    server.routes["/v1/rows"] = drip(server.stopping)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        fetch(source(server.url, tmp_path, deadline=1, retries=2))  # timeout (per read) is 5 s
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: no complete answer within 1 s (deadline) after 1 attempt"
    )
    assert time.monotonic() - started < 30  # a hang guard, not a timing claim


def test_a_webhook_dripping_its_headers_is_stopped_at_the_deadline(server, tmp_path) -> None:
    server.routes["/hooks/ask"] = drip(server.stopping, headers_too=True)
    started = time.monotonic()
    with pytest.raises(ActionError) as info:
        hook(f"{server.url}/hooks/ask", deadline=1.5).run(context(tmp_path))
    assert str(info.value) == (
        "action 'ask': POST /hooks/ask: no complete answer within 1.5 s (deadline) after 1 attempt"
    )
    assert time.monotonic() - started < 30


def test_retries_end_within_the_deadline(server, tmp_path) -> None:
    server.routes["/v1/rows"] = answer(503, {"error": "busy"}, {"Retry-After": "20"})
    with pytest.raises(ConnectorError) as info:
        fetch(source(server.url, tmp_path, deadline=2, retries=5))
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: HTTP 503 after 1 attempt, no time left for a retry "
        'within 2 s (deadline) (body: {"error": "busy"})'
    )
    assert len(server.seen) == 1


def test_defaults() -> None:
    http = HttpConfig(base_url="http://127.0.0.1")
    webhook = WebhookConfig(name="a", url="http://127.0.0.1")
    assert (http.deadline, http.max_bytes, http.timeout) == (60, 50 * 2**20, 10)
    assert (webhook.deadline, webhook.max_bytes, webhook.timeout) == (30, 2**20, 10)


# -- size ----------------------------------------------------------------------------------------------


def test_a_declared_length_over_max_bytes_is_refused_before_reading(server, tmp_path) -> None:
    server.routes["/v1/rows"] = answer(200, b"[]", {"Content-Length": str(10**9)})
    with pytest.raises(ConnectorError) as info:
        fetch(source(server.url, tmp_path, max_bytes=1000))
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: response larger than 1000 bytes (max_bytes); refused"
    )


@pytest.mark.parametrize("how", ["endless", "gzip"])
def test_a_body_over_max_bytes_is_cut_off_while_streaming(server, tmp_path, how: str) -> None:
    packed = gzip.compress(b"[" + b"0," * 2_000_000 + b"0]")  # 4 MB unpacked, a few KB packed
    gz = answer(200, packed, {"Content-Encoding": "gzip"})
    server.routes["/v1/rows"] = stream if how == "endless" else gz
    with pytest.raises(ConnectorError) as info:
        fetch(source(server.url, tmp_path, max_bytes=1_000_000))
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: response larger than 1000000 bytes (max_bytes); refused"
    )


def test_a_webhook_answer_over_max_bytes_is_refused(server, tmp_path) -> None:
    server.routes["/hooks/ask"] = answer(200, {"reach": 1, "log": "x" * 2000})
    with pytest.raises(ActionError, match=r"POST /hooks/ask: response larger than 1024 bytes"):
        hook(f"{server.url}/hooks/ask", max_bytes=1024).run(context(tmp_path))


# -- webhook URLs ----------------------------------------------------------------------------------


def test_values_in_a_webhook_url_are_percent_encoded(server, tmp_path) -> None:
    server.routes["/hooks/a%2F..%2Fb%3Fx%3D1/ask"] = answer(200, {"reach": 2})
    server.routes["/hooks/%2E%2E/ask"] = answer(200, {"reach": 3})
    url = f"{server.url}/hooks/{{params.user}}/ask?who={{params.user}}&p={{period}}"
    assert hook(url).run(context(tmp_path, user="a/../b?x=1")) == 2.0
    assert hook(url).run(context(tmp_path, user="..")) == 3.0
    first, second = server.seen
    assert urlsplit(first.target).path == "/hooks/a%2F..%2Fb%3Fx%3D1/ask"
    assert parse_qs(urlsplit(first.target).query) == {"who": ["a/../b?x=1"], "p": ["2026-10"]}
    assert urlsplit(second.target).path == "/hooks/%2E%2E/ask"  # not a dot segment


# -- what error lines show ------------------------------------------------------------------------


def test_a_secret_webhook_url_shows_only_its_origin(server, tmp_path) -> None:
    url = f"{server.url}/services/T0001/B0002/hook"
    secrets.remember(url)  # as the loader does for `url: ${HOOK_URL}`
    server.routes["/services/T0001/B0002/hook"] = answer(404, b"no such hook")
    with pytest.raises(ActionError) as info:
        hook(url).run(context(tmp_path))
    assert len(server.seen) == 1  # it was sent
    assert str(info.value) == (
        f"action 'ask': POST {server.url}/…: HTTP 404 after 1 attempt (body: no such hook)"
    )
    assert "T0001" not in info.value.args[0] and "services" not in info.value.args[0]


def test_a_secret_base_url_shows_only_the_declared_path(server, tmp_path) -> None:
    base = f"{server.url}/tenant-0c5d7a31"
    secrets.remember(base)
    server.routes["/tenant-0c5d7a31/v1/rows"] = answer(500, {"error": "down"})
    with pytest.raises(ConnectorError) as info:
        fetch(source(base, tmp_path))
    assert info.value.args[0] == (
        'connector \'crm_api\': GET /v1/rows: HTTP 500 after 1 attempt (body: {"error": "down"})'
    )


def test_a_secret_echoed_percent_encoded_is_redacted(server, tmp_path) -> None:
    key = "k3y/9f+e&x=1 z"  # every character a query string encodes
    secrets.remember(key)

    def echo(h: BaseHTTPRequestHandler) -> None:
        query = urlsplit(h.path).query
        answer(401, f"bad key in {query} (also {quote_plus(key)})".encode())(h)

    server.routes["/v1/rows"] = echo
    with pytest.raises(ConnectorError) as info:
        fetch(source(server.url, tmp_path), params={"api_key": key})
    assert "api_key" in server.seen[0].target  # it was sent
    raw = info.value.args[0]  # before RadarError's own redaction
    assert no_trace_of(key, raw), raw
    assert raw.startswith("connector 'crm_api': GET /v1/rows: HTTP 401 after 1 attempt (body:")
    assert "api_key=***" in raw


def test_scrub_catches_each_encoded_form() -> None:
    secret = "s3cr3t/v@lue+with space"
    secrets.remember(secret)
    for form in (secret, quote(secret, safe=""), quote(secret), quote_plus(secret)):
        text = scrub(f"echo: token={form}; done 100%")
        assert no_trace_of(secret, text) and "***" in text, text
    assert scrub("nothing secret: a%20b") == "nothing secret: a%20b"  # untouched otherwise
