"""One retrying HTTP exchange, shared by the `http` connector and the `webhook` action.

`send` retries what is worth retrying (5xx, 429, connection errors, timeouts, dropped
connections) with exponential backoff and jitter, honours `Retry-After`, and otherwise gives
up with ONE line that names the caller, the method and the URL path:

    connector 'crm_api': GET /v1/referrals: HTTP 503 after 4 attempts

It also bounds what a server can make radar wait for or hold: one call, retries included, ends
by its `deadline` (httpx's timeout is per read: a server dripping a byte at a time never trips
it), a body stops at `max_bytes`, and requests and redirects stay on one origin (the one the
credentials belong to). Error lines never show the query string, credentials, headers, nor any
piece of a secret URL (`url: ${HOOK_URL}` shows only its origin), and `scrub` also redacts
secrets in their percent-encoded form (an API that echoes its query string).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit

import httpx

from cycles.errors import ConnectorError, RadarError
from cycles.secrets import redact

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
BODY_EXCERPT = 160  # characters of an error response's body quoted in the message
MAX_REDIRECTS = 20
_DECODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})
_PHASES = ("connect", "read", "write", "pool")


class _Late(Exception):
    """The exchange did not end by its deadline."""


class _TooLarge(Exception):
    """The body is larger than max_bytes."""


class _Elsewhere(Exception):
    """A request or redirect to another origin; the argument says which (no path)."""


def send(
    client: httpx.Client,
    method: str,
    url: str | httpx.URL,
    *,
    what: str,
    error: type[RadarError] = ConnectorError,
    retries: int = 3,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
    deadline: float = 60.0,
    max_bytes: int = 50 * 2**20,
    origin: str | httpx.URL | None = None,
    origin_key: str = "url",
    shown: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """`client.request(method, url, **kwargs)` until a 2xx answer, else raise `error(one line)`.

    Up to `retries` retries (`retries + 1` attempts). The wait before retry n (0-based) is
    `backoff * 2**n` with jitter, at most `max_backoff`; a `Retry-After` header (seconds or an
    HTTP date) on a 429 or 5xx answer replaces it, capped at `max_backoff` too. A 4xx other than
    429, or any other non-2xx answer, fails at once. The same request (same headers, so the same
    `Idempotency-Key`) is sent on every attempt. The whole call, attempts and waits, ends within
    `deadline` seconds; a body over `max_bytes` is refused. Nothing is sent outside `origin`
    (default: the request's; `origin_key` names its key in errors): redirects, when the client
    follows them, are followed on that origin only. Errors name `shown` (default: the URL's
    path, or its origin when a secret reaches into the path).
    """
    until = time.monotonic() + deadline
    try:
        request = client.build_request(method, url, **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
        detail = f" ({exc})" if redact(str(url)) == str(url) else ""  # may quote a secret URL
        line = f"{what}: {method} {shown or target(url)}: invalid request{detail}"
        raise error(scrub(line)) from None
    where = f"{what}: {request.method} {shown or target(request.url, str(url))}"
    home = httpx.URL(str(origin)) if origin is not None else request.url
    timeouts = dict(request.extensions.get("timeout") or dict.fromkeys(_PHASES))
    attempts = 0
    while True:
        attempts += 1
        wait: float | None = None
        detail = ""
        try:
            response = _follow(client, request, home, until, timeouts, max_bytes)
        except _Late:
            late = f"no complete answer within {deadline:g} s (deadline){_after(attempts)}"
            raise error(scrub(f"{where}: {late}")) from None
        except _TooLarge:
            too_large = f"response larger than {max_bytes} bytes (max_bytes); refused"
            raise error(scrub(f"{where}: {too_large}")) from None
        except _Elsewhere as exc:
            elsewhere = f"{exc}/… is on another origin than {origin_key}"
            raise error(
                scrub(f"{where}: {elsewhere}; refused (credentials stay with their host)")
            ) from None
        except httpx.UnsupportedProtocol as exc:
            raise error(scrub(f"{where}: {exc}")) from None
        except httpx.TransportError as exc:
            problem = describe(exc)
        except httpx.HTTPError as exc:  # not worth retrying: too many redirects, bad encoding
            raise error(scrub(f"{where}: {describe(exc)}{_after(attempts)}")) from None
        else:
            if response.is_success:
                return response
            problem, detail = f"HTTP {response.status_code}", _excerpt(response)
            if response.status_code not in RETRY_STATUSES:
                raise error(scrub(f"{where}: {problem}{_after(attempts)}{detail}")) from None
            wait = retry_after(response.headers.get("Retry-After"))
        if attempts > retries:
            raise error(scrub(f"{where}: {problem}{_after(attempts)}{detail}")) from None
        if wait is None:
            wait = backoff * 2 ** (attempts - 1) * random.uniform(0.5, 1.0)
        wait = max(0.0, min(wait, max_backoff))
        if time.monotonic() + wait >= until:
            no_time = f"no time left for a retry within {deadline:g} s (deadline)"
            raise error(scrub(f"{where}: {problem}{_after(attempts)}, {no_time}{detail}"))
        sleep(wait)


def _follow(
    client: httpx.Client,
    request: httpx.Request,
    home: httpx.URL,
    until: float,
    timeouts: dict[str, float | None],
    max_bytes: int,
) -> httpx.Response:
    """The answer to `request`; redirects followed (if the client does) while on `home`'s origin."""
    if not same_origin(request.url, home):  # checked before anything is sent there
        raise _Elsewhere(origin_text(request.url))
    for _ in range(MAX_REDIRECTS + 1):
        response = _exchange(client, request, until, timeouts, max_bytes)
        if response.next_request is None or not client.follow_redirects:
            return response
        request = response.next_request
        if not same_origin(request.url, home):
            raise _Elsewhere(f"redirect to {origin_text(request.url)}")
    raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.", request=request)


def _exchange(
    client: httpx.Client,
    request: httpx.Request,
    until: float,
    timeouts: dict[str, float | None],
    max_bytes: int,
) -> httpx.Response:
    """One request and its whole body, given up at `until` (time.monotonic()) even mid-read.

    A worker thread does the I/O, so a server that drips its headers or body is dropped on time;
    the worker stops at its next chunk (its reads time out after the time that was left).
    """
    left = until - time.monotonic()
    if left <= 0:
        raise _Late
    request.extensions["timeout"] = {
        phase: left if limit is None else min(limit, left) for phase, limit in timeouts.items()
    }
    late = threading.Event()
    outcome: list[httpx.Response | BaseException] = []

    def work() -> None:
        try:
            outcome.append(_read(client, request, until, max_bytes, late))
        except BaseException as exc:  # handed over to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=work, name="radar-http", daemon=True)
    worker.start()
    worker.join(left)
    if worker.is_alive() or not outcome:
        late.set()
        raise _Late
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _read(
    client: httpx.Client,
    request: httpx.Request,
    until: float,
    max_bytes: int,
    late: threading.Event,
) -> httpx.Response:
    """Send `request` and read its decoded body: at most `max_bytes`, and not past `until`."""
    response = client.send(request, stream=True, follow_redirects=False)
    try:
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > max_bytes:
            raise _TooLarge
        body = bytearray()
        for chunk in response.iter_bytes():
            if late.is_set() or time.monotonic() > until:
                raise _Late
            body += chunk
            if len(body) > max_bytes:
                raise _TooLarge
    finally:
        response.close()
    # a copy that holds the decoded body, as `response.read()` would have
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _DECODED]
    stored = httpx.Response(
        response.status_code, headers=headers, content=bytes(body), request=request,
        extensions=response.extensions,
    )  # fmt: skip
    stored.next_request = response.next_request
    return stored


def same_origin(url: httpx.URL, home: httpx.URL) -> bool:
    """Same scheme, host and port (a default port and none are the same)."""
    return (url.scheme, url.host, url.port) == (home.scheme, home.host, home.port)


def origin_text(url: httpx.URL) -> str:
    """`scheme://host[:port]` of `url`, without credentials."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def target(url: str | httpx.URL, *written: str) -> str:
    """What an error line names of a request URL: its path, or `scheme://host/…` when a secret
    reaches into the path from outside it (`url: ${HOOK_URL}`: then the path is the secret).

    `written` are other spellings of the same URL (as rendered, before httpx normalised it).
    """
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"
    for text in {str(url), *written}:
        for form in {text, unquote(text)}:
            if _spills(form):
                return f"{origin_text(parsed)}/…"
    return parsed.path or "/"


def _spills(text: str) -> bool:
    """Whether a secret in `text` (a URL) straddles its path and what comes before or after."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return True  # cannot tell where the path is: show none of it
    start = text.index("//") + 2 + len(parts.netloc) if parts.netloc else 0
    end = start + len(parts.path)
    if text[start:end] != parts.path:
        return True  # an odd spelling: show no path rather than guess
    pieces = (text[:start], text[start:end], text[end:])
    return redact(text) != "".join(redact(piece) for piece in pieces)


def scrub(text: str) -> str:
    """`redact(text)`, also for secrets percent-encoded in it (`quote`, `quote_plus` forms):
    where one is found, the decoded text is shown, redacted."""
    text = redact(text)
    for decode in (unquote, unquote_plus):
        plain = decode(text)
        if redact(plain) != plain:
            text = redact(plain)
    return text


def url_path(url: str | httpx.URL) -> str:
    """The path of `url`: no scheme, credentials, host or query string."""
    try:
        return httpx.URL(str(url)).path or "/"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


MISSING = object()  # what `dig` finds where a path leads nowhere


def dig(body: Any, path: str) -> Any:
    """The value at dotted key path `path` of a JSON body (digits index lists), or MISSING."""
    node = body
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdecimal() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def describe(exc: httpx.HTTPError) -> str:
    """`ReadTimeout (timed out)`: the error class and its message, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__} ({text})" if text else type(exc).__name__


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _after(attempts: int) -> str:
    return f" after {attempts} attempt{'s' if attempts != 1 else ''}"


def _excerpt(response: httpx.Response) -> str:
    """` (body: ...)`: the start of an error answer's body, on one line (often says why)."""
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, LookupError, httpx.HTTPError):
        return ""
    text = scrub(text)  # before the cut, which could leave the start of a secret
    if not text:
        return ""
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return f" (body: {text})"
