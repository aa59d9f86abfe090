"""Values taken from `${NAME}` are secrets: remembered here so free text can be redacted.

Secrets are kept out of radar's data where they enter it: parameters read from the environment
are stored masked by their key, a title read from it is shown as written (`${NAME}`), connector
settings never reach a record. What is left is free text a secret may still reach (an error
from a source, a log line, a traceback): `redact` replaces every remembered secret there, in
each form radar itself produces (as written, percent-encoded, JSON-escaped, and the base64 of
`user:password` of a URL's credentials). Structured values (periods, numbers, names, keys) are
never rewritten: `redact_data` walks a JSON-like value and leaves them alone.

Python logging is covered once for all: when the first secret is remembered, a log record factory
redacts each record's message and traceback (httpx, for one, logs every request URL at INFO).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any
from urllib.parse import quote, quote_plus

_lock = threading.Lock()
_values: set[str] = set()
_forms: list[str] = []  # every form of every secret, longest first
MASK = "***"
# Shorter values match ordinary text ("2026", "yes") far more often than they leak: free text is
# not searched for them. Where they enter radar's data (parameters, titles) they are masked by
# their place instead, whatever their length.
MIN_LENGTH = 4


def remember(value: str) -> None:
    """Mark `value` as secret (free text is searched for values of at least MIN_LENGTH).

    A secret web URL (a webhook's) is secret beyond its origin: its path and query are remembered
    too, so what a server echoes of them is redacted as well."""
    if len(value) >= MIN_LENGTH:
        with _lock:
            _values.add(value)
            beyond = _beyond_origin(value)
            if beyond is not None and len(beyond) >= MIN_LENGTH:
                _values.add(beyond)
            _refresh()
        _guard_logging()


def _beyond_origin(value: str) -> str | None:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or "/" not in rest:
        return None  # a database URL's name is not the secret part: its password is
    return "/" + rest.split("/", 1)[1]


def remember_credentials(user: str, password: str) -> None:
    """A URL's `user:password`: also secret as the base64 an `Authorization: Basic` header holds."""
    if len(password) >= MIN_LENGTH:
        pair = f"{user}:{password}".encode()
        with _lock:
            _values.add(password)
            _values.add(base64.b64encode(pair).decode())
            _refresh()
        _guard_logging()


def _refresh() -> None:
    forms: set[str] = set()
    for value in _values:
        forms |= {value, quote(value, safe=""), quote(value), quote_plus(value)}
        forms |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    _forms[:] = sorted((f for f in forms if len(f) >= MIN_LENGTH), key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every remembered secret, in every form, replaced by ***."""
    if not _forms or not text:
        return text
    with _lock:
        forms = list(_forms)
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def redact_deep(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings) with every string redacted."""
    if not _forms:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_deep(v) for v in value]
    return value


# Keys whose values are structure, or text radar builds from structure alone (reasons name
# periods, approaches and numbers): never rewritten, so a secret "2026" cannot turn a period
# into "***-10". Free text under other keys (errors, messages, titles, parameters) is redacted.
STRUCTURAL = frozenset(
    {
        "outcome", "period", "cadence", "status", "decision", "stage", "stages",
        "completed_stages", "key", "name", "type", "metric", "result_metric", "expectation",
        "engine", "direction", "signal", "baseline", "approach_start", "started_at",
        "finished_at", "updated_at", "created_at", "at", "deadline", "reasons", "summary",
        "approach_reason", "pending", "moved", "moved_vs", "parent", "rule", "band",
    }
)  # fmt: skip


def redact_data(value: Any, key: str | None = None) -> Any:
    """A JSON-like value with the strings under non-structural keys redacted; numbers, keys
    and structural strings as they are, so the result is still the same data."""
    if not _forms or key in STRUCTURAL:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, key) for v in value]
    return value


def forget_all() -> None:
    with _lock:
        _values.clear()
        _forms.clear()


# -- logging ---------------------------------------------------------------------------------

_guarded = False
_formatter = logging.Formatter()


def _guard_logging() -> None:
    global _guarded
    with _lock:
        if _guarded:
            return
        _guarded = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if _forms:
            _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: leave it to the handler to report
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = _formatter.formatException(record.exc_info)
        record.exc_text = redact(text)
