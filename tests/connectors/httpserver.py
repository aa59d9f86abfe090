"""A real HTTP server on 127.0.0.1 for tests: scripted replies per path, a log of requests.

    with HttpTestServer() as server:                  # or the `http_server` fixture below
        server.route("/v1/x", Reply(503), Reply(200, {"data": [...]}))
        ...  # call f"{server.url}/v1/x"
        assert server.requests[0].header("Idempotency-Key") == "..."

Replies of a path are used in order; the last one repeats. A reply may also be a callable that
takes the `Received` request and returns a `Reply` (e.g. a receiver that de-duplicates on
`Idempotency-Key`). A path without a route answers 404. Test modules in tests/connectors import
it as `from httpserver import ...` (pytest puts their directory on sys.path); `http_server` is
a ready fixture (importing a fixture trips ruff's F811, so a 3-line local fixture is simpler).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass(frozen=True)
class Reply:
    """A scripted answer: `body` is sent as JSON, unless it is str/bytes (sent as they are)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to provoke client timeouts)
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Received:
    """One request as the server saw it (`headers` keeps the case of names as sent)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when not JSON, None when empty
    at: float  # time.monotonic() on arrival

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


Script = Reply | Callable[[Received], Reply]


class HttpTestServer:
    """ThreadingHTTPServer on 127.0.0.1:<free port>, in a daemon thread."""

    def __init__(self) -> None:
        self._routes: dict[str, list[Script]] = {}
        self._log: list[Received] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._log)

    def route(self, path: str, *replies: Script) -> None:
        """Answer requests to `path` (any method, any query) with `replies` in order."""
        with self._lock:
            self._routes[path] = list(replies) or [Reply()]

    def start(self) -> HttpTestServer:
        owner = self
        self._stopping.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        serve = self._server.serve_forever  # a short poll interval makes stop() quick
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes replies that are still waiting out their delay
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HttpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        text = raw.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        received = Received(
            method=handler.command, path=parts.path, query=parse_qs(parts.query),
            headers=dict(handler.headers.items()), body=body, at=time.monotonic(),
        )  # fmt: skip
        with self._lock:
            self._log.append(received)
            script = self._routes.get(parts.path)
            step = (script.pop(0) if len(script) > 1 else script[0]) if script else None
        reply = Reply(404, {"error": f"no route for {parts.path}"}) if step is None else step
        if callable(reply):
            reply = reply(received)
        if reply.delay and self._stopping.wait(reply.delay):
            return
        if reply.drop:
            handler.close_connection = True
            return
        if isinstance(reply.body, bytes | str):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
            kind = "text/plain; charset=utf-8"
        else:
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            kind = "application/json"
        try:
            handler.send_response(reply.status)
            headers = {"Content-Type": kind, **reply.headers, "Content-Length": str(len(payload))}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before the answer


@pytest.fixture
def http_server() -> Iterator[HttpTestServer]:
    """A started `HttpTestServer`, stopped after the test."""
    with HttpTestServer() as server:
        yield server
