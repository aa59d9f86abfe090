"""`radar` as the crash test runs it: it SIGKILLs itself some time into a stage, when asked to.

The watcher (`test_crash_safety.Driver`) writes "<stage> <delay>" to the file named by
`RADAR_CRASH_KILL_FILE` before that stage opens; when it does, a timer thread SIGKILLs this
process `delay` seconds later. A stage that lasts a few milliseconds (Approach, Review) is hit
that way far more surely than by polling the history from another process. Everything else is
`python -m cycles.cli` unchanged.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from cycles.cli import main
from cycles.engine import Cycle
from cycles.record import CycleRecord
from cycles.values import Stage

KILL_FILE = os.environ.get("RADAR_CRASH_KILL_FILE")
_run_stage = Cycle.run


def _delay_for(stage: Stage) -> float | None:
    """The delay the watcher asked for in `stage`, if it named that stage."""
    if not KILL_FILE:
        return None
    try:
        target, delay = Path(KILL_FILE).read_text().split()
    except (OSError, ValueError):
        return None
    return float(delay) if target == stage.value else None


def run_stage(cycle: Cycle, stage: Stage) -> CycleRecord:
    delay = _delay_for(stage)
    if delay is not None:
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
    return _run_stage(cycle, stage)


if __name__ == "__main__":
    Cycle.run = run_stage  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
