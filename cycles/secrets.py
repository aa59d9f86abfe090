"""Values taken from `${NAME}` are secrets: remembered here so every output can redact them."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_values: set[str] = set()
MASK = "***"


def remember(value: str) -> None:
    """Mark `value` as secret (values shorter than 4 characters are too common to redact)."""
    if len(value) >= 4:
        with _lock:
            _values.add(value)


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


def forget_all() -> None:
    with _lock:
        _values.clear()
