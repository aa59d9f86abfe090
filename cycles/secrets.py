"""Values taken from `${NAME}` are secrets: remembered here so every output can redact them.

Outputs redact at their boundary (JSON, console, history rows, artifacts, error texts). Python
logging is covered once for all: when the first secret is remembered, a log record factory
redacts each record's message and traceback (httpx, for one, logs every request URL at INFO).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

_lock = threading.Lock()
_values: set[str] = set()
MASK = "***"


def remember(value: str) -> None:
    """Mark `value` as secret (values shorter than 4 characters are too common to redact)."""
    if len(value) >= 4:
        with _lock:
            _values.add(value)
        _guard_logging()


def redact(text: str) -> str:
    """`text` with every remembered secret replaced by ***."""
    if not _values or not text:
        return text
    with _lock:
        values = sorted(_values, key=len, reverse=True)
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_deep(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings) with every string redacted."""
    if not _values:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_deep(v) for v in value]
    return value


def forget_all() -> None:
    with _lock:
        _values.clear()


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
        if _values:
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
