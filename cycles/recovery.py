"""A tick whose process died runs again: two Prefect automations `radar deploy --shards` keeps.

A worker (a machine, a container, a pod) that dies mid-tick leaves its shard's run `Running`
on the server with no process behind it. Tick runs send a heartbeat every `heartbeat` seconds:
1. `radar: silent ticks crash`: a `radar-tick` run with no heartbeat (and no end) for five
   heartbeats is marked `Crashed` (Prefect's own recipe for zombie runs, for ticks only);
2. `radar: crashed ticks run again`: a crashed `radar-tick` run is set `Scheduled` again. Any
   worker of the pool picks it up; it keeps its scheduled start, so it is the tick of the same
   slot, and it ticks only the outcomes that still have something due (`cycles.tick_flow`).
A tick that dies `cycles.tick_flow.MAX_ATTEMPTS` times fails instead of crashing again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cycles.shards import TICK_FLOW

SILENT = "radar: silent ticks crash"
RETRY = "radar: crashed ticks run again"
MISSED = 5  # heartbeats missed before a tick is taken for dead


def automations(heartbeat: int) -> list[Any]:
    """The two automations, for ticks that beat every `heartbeat` seconds."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    runs = ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]})
    ticks = ResourceSpecification(
        {"prefect.resource.role": "flow", "prefect.resource.name": TICK_FLOW}
    )
    silent = Automation(
        name=SILENT,
        description="A radar tick run that stopped sending heartbeats is marked crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=runs,
            match_related=ticks,
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=heartbeat * MISSED),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {heartbeat * MISSED} s: its process died",
            )
        ],
    )
    retry = Automation(
        name=RETRY,
        description="A crashed radar tick run is scheduled again, for the same slot.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match=runs,
            match_related=ticks,
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                name="AwaitingRetry",
                message="its process died: the tick runs again for the same slot",
                force=True,
            )
        ],
    )
    return [silent, retry]


def ensure_tick_recovery(heartbeat: int) -> list[str]:
    """Create the automations, or update them to this shape; their names."""
    from prefect.automations import Automation

    names = []
    for wanted in automations(heartbeat):
        try:
            found: Any = Automation.read(name=wanted.name)  # sync here (Prefect's dispatch)
        except ValueError:
            wanted.create()
        else:
            wanted.id = found.id
            wanted.update()
        names.append(wanted.name)
    return names
