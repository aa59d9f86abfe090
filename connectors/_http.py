"""One retrying HTTP call, shared by the `http` connector and the `webhook` action.

`send` retries what is worth retrying (5xx, 429, connection errors, timeouts, dropped
connections) with exponential backoff and jitter, honours `Retry-After`, and otherwise gives
up with ONE line that names the caller, the method and the URL path, and never the query
string, the credentials or the headers (they may hold secrets):

    connector 'crm_api': GET /v1/referrals: HTTP 503 after 4 attempts
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from cycles.errors import ConnectorError, RadarError
from cycles.secrets import redact

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
BODY_EXCERPT = 160  # characters of an error response's body quoted in the message


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
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> httpx.Response:
    """`client.request(method, url, **kwargs)` until a 2xx answer, else raise `error(one line)`.

    Up to `retries` retries (`retries + 1` attempts). The wait before retry n (0-based) is
    `backoff * 2**n` with jitter, at most `max_backoff`; a `Retry-After` header (seconds or an
    HTTP date) on a 429 or 5xx answer replaces it, capped at `max_backoff` too. A 4xx other than
    429, or any other non-2xx answer, fails at once. The same request (same headers, so the same
    `Idempotency-Key`) is sent on every attempt.
    """
    try:
        request = client.build_request(method, url, **kwargs)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, TypeError, ValueError) as exc:
        raise error(redact(f"{what}: {method} {url_path(url)}: invalid request ({exc})")) from None
    where = f"{what}: {request.method} {url_path(request.url)}"
    attempts = 0
    while True:
        attempts += 1
        wait: float | None = None
        detail = ""
        try:
            response = client.send(request)
        except httpx.UnsupportedProtocol as exc:
            raise error(redact(f"{where}: {exc}")) from None
        except httpx.TransportError as exc:
            problem = describe(exc)
        except httpx.HTTPError as exc:  # not worth retrying: too many redirects, bad encoding
            raise error(redact(f"{where}: {describe(exc)}{_after(attempts)}")) from None
        else:
            if response.is_success:
                return response
            problem, detail = f"HTTP {response.status_code}", _excerpt(response)
            if response.status_code not in RETRY_STATUSES:
                raise error(redact(f"{where}: {problem}{_after(attempts)}{detail}")) from None
            wait = retry_after(response.headers.get("Retry-After"))
        if attempts > retries:
            raise error(redact(f"{where}: {problem}{_after(attempts)}{detail}")) from None
        if wait is None:
            wait = backoff * 2 ** (attempts - 1) * random.uniform(0.5, 1.0)
        sleep(max(0.0, min(wait, max_backoff)))


def url_path(url: str | httpx.URL) -> str:
    """The path of `url`: no scheme, credentials, host or query string."""
    try:
        return httpx.URL(str(url)).path or "/"
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid URL>"


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
    text = redact(text)  # before the cut, which could leave the start of a secret
    if not text:
        return ""
    if len(text) > BODY_EXCERPT:
        text = text[:BODY_EXCERPT] + "..."
    return f" (body: {text})"
