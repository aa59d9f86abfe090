"""Reading a declared expectation: its name and arguments, validated when the declaration loads.

The table's argument models decide first, without importing GX; GX decides what they reject, so
an unknown name or a bad argument is a declaration error, not a check GX silently skips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from cycles.checks import gx
from cycles.checks.spec import ExpectationSpec, ExpectationSpecError
from cycles.checks.table import EXPECTATIONS


def parse_expectation(item: Any) -> ExpectationSpec:
    """One YAML item ({name: {kwargs}}), {"type", "kwargs"} dict or spec, validated.

    Native argument models decide first, without importing GX; GX decides what they reject.
    """
    name, kwargs = _split(item)
    native_errors: dict[tuple[str | int, ...], str] = {}
    if (entry := EXPECTATIONS.get(name)) is not None:
        try:
            entry.args.model_validate(kwargs)
            return ExpectationSpec(type=name, kwargs=kwargs)
        except ValidationError as exc:
            native_errors = {tuple(e["loc"]): e["msg"] for e in exc.errors(include_url=False)}
    if (problem := gx.argument_problem(name, kwargs, native_errors)) is not None:
        message, loc = problem
        raise ExpectationSpecError(message, loc=(name, *loc))
    return ExpectationSpec(type=name, kwargs=kwargs)  # valid for GX: it will run through GX


def _split(item: Any) -> tuple[str, dict[str, Any]]:
    name: Any
    raw: Any
    if isinstance(item, ExpectationSpec):
        name, raw = item.type, item.kwargs
    elif not isinstance(item, Mapping):
        raise ExpectationSpecError(f"an expectation must be a mapping, got {type(item).__name__}")
    elif "type" in item and set(item) <= {"type", "kwargs"}:
        name, raw = item["type"], item.get("kwargs")
    elif len(item) == 1:
        ((name, raw),) = item.items()
    else:
        got = f"{len(item)} ({', '.join(map(str, item))})" if item else "none"
        raise ExpectationSpecError(f"an expectation must have one key, its name; got {got}")
    if not isinstance(name, str):
        raise ExpectationSpecError(f"an expectation name must be a string, got {name!r}")
    if not isinstance(raw, Mapping | None):
        kind = type(raw).__name__
        raise ExpectationSpecError(f"arguments must be a mapping, got {kind}", loc=(name,))
    if bad := [k for k in raw or {} if not isinstance(k, str)]:
        raise ExpectationSpecError(f"argument names must be strings, got {bad[0]!r}", loc=(name,))
    return name, {k: _plain(v) for k, v in (raw or {}).items()}


def _plain(value: Any) -> Any:
    """YAML containers and scalar subclasses (ruamel's ScalarFloat...) as plain Python values."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float | str) and type(value) not in (float, str):
        return float(value) if isinstance(value, float) else str(value)
    return value
