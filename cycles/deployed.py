"""Entry points of Prefect deployments: `cycles.deployed.<outcome>` is that outcome's flow.

Outcomes are declared in YAML, so there is no module-level function per outcome; this module
builds the flow when Prefect looks the name up (PEP 562 `__getattr__`), at deploy time and in
the worker's run process alike.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from cycles.declaration import find
    from cycles.errors import DeclarationError
    from cycles.flow import flow_of

    try:
        outcome = find(name)
    except DeclarationError as exc:
        raise AttributeError(f"no declared outcome {name!r} ({exc})") from None
    return flow_of(outcome)
