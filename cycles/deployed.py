"""Entry points of Prefect deployments: `cycles.deployed.<outcome>` is that outcome's flow.

Outcomes are declared in YAML, so there is no module-level function per outcome; this module
builds the flow when Prefect looks the name up (PEP 562 `__getattr__`), at deploy time and in
the worker's run process alike. The declaration is found, in this order:
- one registered in this process (`radar deploy` registers what it deploys, from any directory);
- the file `RADAR_DECLARATION` names (`radar deploy` sets it in the deployment's job variables;
  a relative path resolves against the run's working directory), when it declares that name;
- by name, as `radar run NAME` finds it (`RADAR_FLOWS`, `./flows`, the working directory).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cycles.declaration.model import Outcome

ENV_VAR = "RADAR_DECLARATION"
_REGISTERED: dict[str, Outcome] = {}


def register(outcome: Outcome) -> None:
    """Make `cycles.deployed.<outcome>` this declaration in this process (deploy time)."""
    _REGISTERED[outcome.outcome] = outcome


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    from cycles.errors import DeclarationError
    from cycles.flow import flow_of

    try:
        outcome = _REGISTERED.get(name) or _declared(name)
    except DeclarationError as exc:
        raise AttributeError(f"no declared outcome {name!r} ({exc})") from None
    return flow_of(outcome)


def _declared(name: str) -> Outcome:
    from cycles.declaration import find, load

    path = os.environ.get(ENV_VAR)
    if path:
        outcome = load(Path(path))
        if outcome.outcome == name:
            return outcome
    return find(name)
