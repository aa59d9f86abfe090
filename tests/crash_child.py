"""`radar` as the crash test runs it: it SIGKILLs itself some time into a stage, when asked to.

The watcher (`test_crash_safety.Driver`) writes "<stage> <delay>" to the file named by
`RADAR_CRASH_KILL_FILE` before that stage opens; when it does, a timer thread SIGKILLs this
process `delay` seconds later. A stage that lasts a few milliseconds (Approach, Review) is hit
that way far more surely than by polling the history from another process.

A second line "plans <plan> ..." asks instead for a kill at a point inside the Deployment stage,
the first of these that this run reaches (the stage timer is then not armed):
- `after:<action>`: once the action has acted, before the ledger records it (`finish_action`);
- `in:<action>@<delay>`: `delay` seconds after the ledger marked the action pending;
- `mid:<action>`: inside a `file` action, right after its first rename (of its two);
- `flight:<action>` is not for this process: the watcher kills it while the receiver holds the
  webhook's request.
Before it kills itself for a plan, the process writes the plan's name to `<kill file>.fired`.
Everything else is `python -m cycles.cli` unchanged.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import connectors.actions.file as file_action
from cycles.cli import main
from cycles.engine import Cycle
from cycles.record import CycleRecord
from cycles.store import Store
from cycles.values import Stage

KILL_FILE = os.environ.get("RADAR_CRASH_KILL_FILE")
_run_stage = Cycle.run
_begin_action, _finish_action = Store.begin_action, Store.finish_action
_replace = file_action._replace
_running: list[str] = []  # the action being run (file actions: for `mid:`)


def _request() -> tuple[str, float, dict[str, str]] | None:
    """The watcher's request: the stage, the delay, and the plans by name (name -> argument)."""
    if not KILL_FILE:
        return None
    try:
        first, *rest = Path(KILL_FILE).read_text().splitlines()
        target, delay = first.split()
    except (OSError, ValueError):
        return None
    plans = {}
    for line in rest:
        if line.startswith("plans "):
            for plan in line.split()[1:]:
                name, _, argument = plan.partition("@")
                plans[name] = argument
    return target, float(delay), plans


def _plans() -> dict[str, str]:
    request = _request()
    return request[2] if request else {}


def _fire(plan: str) -> None:
    Path(f"{KILL_FILE}.fired").write_text(plan)
    os.kill(os.getpid(), signal.SIGKILL)


def run_stage(cycle: Cycle, stage: Stage) -> CycleRecord:
    request = _request()
    if request is not None and request[0] == stage.value and not request[2]:
        timer = threading.Timer(request[1], os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    return _run_stage(cycle, stage)


def begin_action(store: Store, **ids: Any) -> Any:
    run = _begin_action(store, **ids)
    _running[:] = [ids["action"]]
    plan = f"in:{ids['action']}"
    delay = _plans().get(plan)
    if delay and run.status == "pending":
        timer = threading.Timer(float(delay), _fire, (plan,))
        timer.daemon = True
        timer.start()
    return run


def finish_action(store: Store, key: str, **result: Any) -> Any:
    plan = f"after:{key.rsplit('/', 1)[-1]}"
    if plan in _plans():
        _fire(plan)
    return _finish_action(store, key, **result)


def replace(target: Path, write: Any) -> None:
    _replace(target, write)
    plan = f"mid:{_running[0]}" if _running else ""
    if plan in _plans():
        _fire(plan)


if __name__ == "__main__":
    Cycle.run = run_stage  # type: ignore[method-assign]
    Store.begin_action = begin_action  # type: ignore[method-assign]
    Store.finish_action = finish_action  # type: ignore[method-assign]
    file_action._replace = replace
    sys.exit(main(sys.argv[1:]))
