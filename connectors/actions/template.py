"""Placeholders in action settings: `{params.NAME}`, `{period}`, `{outcome}`, `{approach}`,
`{action}` and `{key}` are filled in per cycle. `${NAME}` is an environment reference the
declaration loader fills in, never a placeholder."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_.]*)\}")  # {period}, {params.x}; not JSON
FIELDS = ("period", "outcome", "approach", "action", "key")  # besides params.NAME


def render(template: Any, *, params: dict[str, Any], **fields: Any) -> Any:
    """Fill `{params.NAME}`, `{period}`, `{outcome}` ... in strings, recursively.

    A string that is one placeholder and nothing else keeps the value's type (a number stays a
    number in a JSON payload).
    """
    if isinstance(template, dict):
        return {k: render(v, params=params, **fields) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, params=params, **fields) for v in template]
    if not isinstance(template, str):
        return template

    def lookup(name: str) -> Any:
        if name.startswith("params."):
            return params[name[len("params.") :]]
        return fields[name]

    whole = PLACEHOLDER.fullmatch(template)
    if whole:
        return lookup(whole.group(1))
    return PLACEHOLDER.sub(lambda m: str(lookup(m.group(1))), template)
