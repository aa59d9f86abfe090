"""Find connector and action classes by `type`, through entry points.

Built-ins register in this distribution's `pyproject.toml` exactly like third-party plugins do
(entry-point groups `radar.connectors` and `radar.actions`). The fallback table only serves a
source checkout that was never installed.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

CONNECTORS = "radar.connectors"
ACTIONS = "radar.actions"

_FALLBACK: dict[str, dict[str, str]] = {
    CONNECTORS: {
        "csv": "connectors.files:CsvConnector",
        "parquet": "connectors.files:ParquetConnector",
    },
    ACTIONS: {
        "python": "connectors.actions.python:PythonAction",
        "file": "connectors.actions.file:FileAction",
    },
}


class UnknownType(LookupError):
    """No plugin provides this type; the message lists the known ones."""


@cache
def _targets(group: str) -> dict[str, str]:
    found = dict(_FALLBACK.get(group, {}))
    for ep in entry_points(group=group):
        found[ep.name] = ep.value
    return found


def known_types(group: str) -> list[str]:
    return sorted(_targets(group))


@cache
def load(group: str, type_name: str) -> Any:
    """The class registered under `type_name` in `group`."""
    targets = _targets(group)
    if type_name not in targets:
        kind = "connector" if group == CONNECTORS else "action"
        raise UnknownType(
            f"unknown {kind} type {type_name!r} (known: {', '.join(known_types(group))}); "
            f"a plugin providing it may not be installed (entry-point group {group!r})"
        )
    module_name, _, attr = targets[type_name].partition(":")
    obj: Any = import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def connector_class(type_name: str) -> Any:
    return load(CONNECTORS, type_name)


def action_class(type_name: str) -> Any:
    return load(ACTIONS, type_name)


def clear_cache() -> None:
    """Forget discovered plugins (tests install plugins at run time)."""
    _targets.cache_clear()
    load.cache_clear()
