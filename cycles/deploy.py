"""Prefect deployments from declarations: a schedule per cadence and a campaign-ended trigger.

`deployment_spec` is the one description of an outcome's deployment; it is written into
`prefect.yaml` (for `prefect deploy --all`) and sent to Prefect's API by `radar deploy`.
With shards (`radar deploy --shards N`), `tick_spec` describes each tick deployment
`radar-tick/<group>-<k>of<N>` (`cycles.shards`), and the outcomes' own deployments keep no
schedule: each outcome is ticked once, by its shard.
"""

from __future__ import annotations

import contextlib
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cycles.declaration.model import Outcome
from cycles.deployed import ENV_VAR
from cycles.schedule import cron_of
from cycles.shards import DEFAULT_CONCURRENCY, TICK_ENTRYPOINT, TICK_FLOW, Shard
from cycles.turn import iso_duration

DEFAULT_POOL = "radar"
DEPLOY_AT_ONCE = 8  # deployments created or updated at once (a thousand outcomes in a minute)
TICK_HEARTBEAT = 60  # seconds between a tick run's heartbeats; 5 missed: it is marked crashed


def entrypoint(outcome: Outcome) -> str:
    return f"cycles.deployed.{outcome.outcome}"


def job_env(outcome: Outcome, workdir: Path) -> dict[str, str]:
    """What a run needs in its environment to find its declaration and log through Prefect:
    the declaration's path (relative to `workdir`, the runs' working directory, when it lies
    inside it), and radar's own loggers in the run's log. Secrets are not here: they belong to
    the worker's environment."""
    source = outcome.source
    assert source is not None, "a deployed outcome is declared in a file"
    try:
        path = str(source.relative_to(workdir.resolve()))
    except ValueError:
        path = str(source)
    return {ENV_VAR: path, "PREFECT_LOGGING_EXTRA_LOGGERS": "radar"}


def deployment_spec(
    outcome: Outcome,
    *,
    pool: str = DEFAULT_POOL,
    workdir: Path | None = None,
    scheduled: bool = True,
    job_variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The deployment as `prefect.yaml` states it. Texts read from `${NAME}` stay `${NAME}`.
    `scheduled=False` (shards tick the outcome): no schedule, triggers and manual runs only.
    `job_variables` are added to every deployment's (their `env` merged)."""
    work_pool: dict[str, Any] = {"name": pool}
    if workdir is not None and outcome.source is not None:
        work_pool["job_variables"] = {"env": job_env(outcome, workdir)}
    if job_variables:
        work_pool["job_variables"] = merged(work_pool.get("job_variables", {}), job_variables)
    spec: dict[str, Any] = {
        "name": outcome.outcome,
        "description": outcome.as_written(("title",), outcome.title),
        "entrypoint": entrypoint(outcome),
        "tags": [f"outcome:{outcome.outcome}", f"cadence:{outcome.cadence.value}"],
        "work_pool": work_pool,
        "schedules": [
            {
                "cron": cron_of(outcome),
                "timezone": outcome.timezone,
                "active": outcome.schedule.active,
            }
        ]
        if scheduled or not outcome.schedule.active
        else [],
    }
    if outcome.review is not None and outcome.review.after_event is not None:
        spec["triggers"] = [trigger_spec(outcome)]
    return spec


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Job variables `extra` over `base`; their `env` dicts merged (extra wins)."""
    out = {**base, **extra}
    if "env" in base and "env" in extra:
        out["env"] = {**base["env"], **extra["env"]}
    return out


def tick_spec(
    shard: Shard,
    *,
    pool: str = DEFAULT_POOL,
    workdir: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    job_variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The tick deployment of one shard: `radar-tick/<group>-<k>of<N>` on the group's schedule,
    its outcomes' declarations as a parameter (paths relative to `workdir`, where runs work)."""
    group = shard.group
    declared = {}
    for outcome in shard.outcomes:
        assert outcome.source is not None, "a deployed outcome is declared in a file"
        path = outcome.source
        if workdir is not None:
            with contextlib.suppress(ValueError):  # outside the runs' directory: absolute
                path = outcome.source.relative_to(workdir.resolve())
        declared[outcome.outcome] = str(path)
    env = {"PREFECT_LOGGING_EXTRA_LOGGERS": "radar",
           "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(TICK_HEARTBEAT)}  # fmt: skip
    job: dict[str, Any] = merged({"env": env}, job_variables or {})
    return {
        "name": shard.name,
        "description": (
            f"The tick of {len(shard.outcomes)} {group.cadence} outcome(s) at {group.cron!r} "
            f"({group.timezone}): shard {shard.index} of {shard.count}"
        ),
        "entrypoint": TICK_ENTRYPOINT,
        "tags": ["radar:tick", f"cadence:{group.cadence}"],
        "work_pool": {"name": pool, "job_variables": job},
        "schedules": [{"cron": group.cron, "timezone": group.timezone, "active": True}],
        "parameters": {
            "shard": shard.name,
            "outcomes": declared,
            "cadence": group.cadence,
            "timezone": group.timezone,
            "concurrency": concurrency,
        },
    }


def trigger_spec(outcome: Outcome) -> dict[str, Any]:
    """`campaign.ended` for `radar.outcome.<id>` starts a review after the attribution delay.

    Each parameter is one template expression, so it keeps its JSON type; `default(none)` lets
    an event without a period or campaign through (the flow then reviews the period holding the
    event's time, `event_time`).
    """
    assert outcome.review is not None and outcome.review.after_event is not None
    return {
        "type": "event",
        "name": f"{outcome.outcome}-review-after-{outcome.review.after_event}",
        "enabled": True,
        "match": {"prefect.resource.id": f"radar.outcome.{outcome.outcome}"},
        "expect": [outcome.review.after_event],
        "schedule_after": iso_duration(outcome.review.delay),
        "parameters": {
            "period": "{{ event.payload.period | default(none) }}",
            "campaign": "{{ event.payload.campaign | default(none) }}",
            # text: a template of one expression goes through tojson, which a datetime fails
            "event_time": "{{ event.occurred.isoformat() }}",
            "review": True,
        },
    }


def prefect_yaml(
    outcomes: list[Outcome],
    *,
    pool: str = DEFAULT_POOL,
    workdir: Path | None = None,
    shards: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    job_variables: dict[str, Any] | None = None,
) -> str:
    """The `prefect.yaml` for `outcomes` (no `pull:` step: `prefect deploy` records the
    directory it runs in, where `flows/` is found); with `shards`, their tick deployments too."""
    import io

    from cycles.shards import shards as split

    scheduled = not shards
    deployments = [
        deployment_spec(o, pool=pool, workdir=workdir, scheduled=scheduled,
                        job_variables=job_variables)
        for o in outcomes
    ]  # fmt: skip
    if shards:
        deployments += [
            tick_spec(s, pool=pool, workdir=workdir, concurrency=concurrency,
                      job_variables=job_variables)
            for s in split(outcomes, shards)
        ]  # fmt: skip
    from ruamel.yaml import YAML

    document = {
        "name": "radar-cycles",
        "prefect-version": version("prefect"),
        "build": None,
        "push": None,
        "deployments": deployments,
    }
    out = io.StringIO()
    out.write(
        "# Generated by `radar deploy --write-prefect-yaml` from the declarations under flows/.\n"
        "# Deploy all with: prefect --no-prompt deploy --all   (from this directory)\n"
    )
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.dump(document, out)
    return out.getvalue()


def deploy(
    outcome: Outcome,
    *,
    pool: str = DEFAULT_POOL,
    workdir: Path,
    scheduled: bool = True,
    job_variables: dict[str, Any] | None = None,
) -> str:
    """Create or update the outcome's deployment through Prefect's API; its id."""
    return deploy_many([outcome], pool=pool, workdir=workdir, scheduled=scheduled,
                       job_variables=job_variables)[0]  # fmt: skip


def deploy_many(
    outcomes: list[Outcome],
    *,
    pool: str = DEFAULT_POOL,
    workdir: Path,
    scheduled: bool = True,
    job_variables: dict[str, Any] | None = None,
) -> list[str]:
    """Create or update the outcomes' deployments, `DEPLOY_AT_ONCE` at a time; their ids."""
    from cycles.deployed import register

    specs = []
    for outcome in outcomes:
        specs.append(deployment_spec(outcome, pool=pool, workdir=workdir, scheduled=scheduled,
                                     job_variables=job_variables))  # fmt: skip
        register(outcome)  # the entry point finds this declaration, wherever it lives
    return apply_specs(specs, pool=pool, workdir=workdir)


def deploy_tick(
    shard: Shard,
    *,
    pool: str = DEFAULT_POOL,
    workdir: Path,
    concurrency: int = DEFAULT_CONCURRENCY,
    job_variables: dict[str, Any] | None = None,
) -> str:
    """Create or update one shard's tick deployment through Prefect's API; its id."""
    spec = tick_spec(shard, pool=pool, workdir=workdir, concurrency=concurrency,
                     job_variables=job_variables)  # fmt: skip
    return apply_specs([spec], pool=pool, workdir=workdir)[0]


def apply_specs(
    specs: list[dict[str, Any]], *, pool: str, workdir: Path, at_once: int = DEPLOY_AT_ONCE
) -> list[str]:
    """Create or update each deployment spec through Prefect's API, `at_once` requests in
    flight; their ids, in order. A spec without schedules leaves its deployment without any
    (an empty list alone would keep the schedules it had: each outcome is ticked once)."""
    import asyncio

    from prefect import Flow, get_client
    from prefect.events import DeploymentEventTrigger
    from prefect.schedules import Cron
    from prefect.utilities.asyncutils import run_coro_as_sync

    runners = []
    for spec in specs:
        flow: Any = Flow.from_source(source=str(workdir), entrypoint=spec["entrypoint"])
        runners.append(
            flow.to_deployment(
                name=spec["name"],
                description=spec["description"],
                work_pool_name=pool,
                tags=spec["tags"],
                schedules=[Cron(s["cron"], timezone=s["timezone"], active=s["active"])
                           for s in spec["schedules"]],
                triggers=[DeploymentEventTrigger(**t) for t in spec.get("triggers", [])],
                parameters=spec.get("parameters") or {},
                job_variables=spec["work_pool"].get("job_variables"),
            )
        )  # fmt: skip

    async def apply_all() -> list[Any]:
        gate = asyncio.Semaphore(at_once)

        async def apply(spec: dict[str, Any], runner: Any) -> Any:
            async with gate:
                deployment_id = await runner.aapply(work_pool_name=pool)
                if not spec["schedules"]:
                    async with get_client() as client:
                        found = await client.read_deployment(deployment_id)
                        for schedule in found.schedules:
                            await client.delete_deployment_schedule(deployment_id, schedule.id)
                return deployment_id

        return list(
            await asyncio.gather(*(apply(s, r) for s, r in zip(specs, runners, strict=True)))
        )

    applied: list[Any] = run_coro_as_sync(apply_all()) or []
    return [str(i) for i in applied]


def stale_ticks(keep: set[str]) -> list[str]:
    """Delete the tick deployments not in `keep` (another N, a group that is gone): each
    outcome is ticked by one shard only. The names deleted."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deleted = []
    with get_client(sync_client=True) as client:
        ticks = FlowFilter(name=FlowFilterName(any_=[TICK_FLOW]))
        for deployment in client.read_deployments(flow_filter=ticks):
            if deployment.name not in keep:
                client.delete_deployment(deployment.id)
                deleted.append(f"{TICK_FLOW}/{deployment.name}")
    return sorted(deleted)


def ensure_pool(pool: str) -> bool:
    """Create the process work pool when it does not exist; True when it was created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            return True


def deploy_ticks(
    outcomes: list[Outcome],
    *,
    shards: int,
    pool: str = DEFAULT_POOL,
    workdir: Path,
    concurrency: int = DEFAULT_CONCURRENCY,
    job_variables: dict[str, Any] | None = None,
) -> list[str]:
    """The tick deployments of `shards` shards (none for 0), the stale ones deleted, and the
    automations that run a dead tick again; one line per thing done."""
    from cycles.recovery import ensure_tick_recovery
    from cycles.shards import shards as split

    lines, keep = [], set()
    for shard in split(outcomes, shards) if shards else []:
        deploy_tick(shard, pool=pool, workdir=workdir, concurrency=concurrency,
                    job_variables=job_variables)  # fmt: skip
        keep.add(shard.name)
        lines.append(
            f"deployed {TICK_FLOW}/{shard.name}: cron {shard.group.cron!r} "
            f"({shard.group.timezone}), {len(shard.outcomes)} outcome(s), {concurrency} at a time"
        )
    lines += [f"deleted {name} (not a shard any more)" for name in stale_ticks(keep)]
    if shards:
        names = ensure_tick_recovery(TICK_HEARTBEAT)
        lines.append(f"automations: {'; '.join(names)}")
    return lines


def ensure_connector_limits(outcomes: list[Outcome]) -> list[str]:
    """Create or update the global concurrency limit of every connector that declares
    `concurrency` (`cycles.limits`); one line each."""
    from cycles.limits import declared_limits, ensure_limits

    limits = declared_limits(outcomes)
    if limits:
        ensure_limits(limits)
    return [f"concurrency limit {name}: {slots}" for name, slots in sorted(limits.items())]
