"""The Prefect layer: one flow per outcome, one task per RADAR stage. Thin on purpose.

Everything here wraps `cycles.engine`; the stages themselves know nothing of Prefect.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from prefect import Flow, Task, flow, tags, task
from prefect.cache_policies import NO_CACHE

from cycles.artifacts import artifact_key, recent_table, review_markdown
from cycles.declaration.model import Outcome
from cycles.engine import Cycle, parse_period, run_cycle
from cycles.record import CycleRecord
from cycles.secrets import redact
from cycles.values import Stage


def _run_stage(cycle: Cycle, stage: Stage) -> None:
    cycle.run(stage)


@cache
def stage_tasks() -> dict[Stage, Task[..., None]]:
    """One task per stage, named after it so the Prefect UI reads like the RADAR cycle."""
    return {
        stage: task(  # type: ignore[call-overload]  # NO_CACHE's class is not in the stubs' union
            _run_stage,
            name=stage.value,
            task_run_name=stage.value,
            cache_policy=NO_CACHE,
            persist_result=False,
        )
        for stage in Stage
    }


def history() -> Any:
    """The history store of `RADAR_DATABASE_URL` (or `.radar/` here), one per URL and process."""
    from cycles.store import default_url

    return _store(default_url())


@cache
def _store(url: str) -> Any:
    from cycles.store import Store

    return Store(url)


LOCK_WAIT = 600.0  # seconds a deployment run waits for another run of the same period to end


def build_flow(outcome: Outcome) -> Flow[..., str]:
    """The Prefect flow that advances `outcome`'s cycle; runs are named `<outcome>/<period>`.

    A run with neither `period` nor `review` is the tick of the period holding its scheduled
    start (`cycles.turn`): the reviews that are due run first, each as a subflow run named
    after its period (`review_flow`), then the period opens in the run itself.
    """
    review_flow = build_review_flow(outcome)

    def run_name() -> str:
        from prefect.runtime import flow_run

        return f"{outcome.outcome}/{which_period(outcome, flow_run.parameters)}"

    @flow(
        name=outcome.outcome,
        flow_run_name=run_name,
        description=outcome.title,
        persist_result=False,
        log_prints=False,
    )
    def cycle_flow(
        period: str | None = None,
        review: bool = False,
        dry_run: bool = False,
        campaign: str | None = None,
        event_time: str | None = None,
        deadline: bool = False,
    ) -> str:
        """Without `period` and `review`: the tick of the period holding the run's scheduled
        start (review what is due, open the period). Otherwise that period's cycle; a review
        without a period is for the period holding `event_time` (the event that asked for it),
        else the scheduled start. `deadline`: no event came in time, review anyway."""
        from cycles.sending import sending

        wait_for_scheduled_start()
        with sending():  # the run ends once its artifacts are sent
            if period is None and not review:
                record = tick(outcome, review_flow, dry_run=dry_run)
            else:
                record = advance(
                    outcome,
                    which_period(outcome, {"period": period, "review": review,
                                           "event_time": event_time}),
                    review=review,
                    dry_run=dry_run,
                    campaign=campaign,
                    deadline=deadline,
                )  # fmt: skip
        # JSON text: Prefect walks a returned dict or model looking for futures, which
        # costs more than the whole review
        return record.model_dump_json()

    return cycle_flow


# Subflows radar calls itself, with parameters it made: no pydantic model per call to validate
# them, and radar's version as theirs instead of a hash of this file read at each flow built
# (together a fifth of a shard tick's CPU per outcome)
SUBFLOW_OPTIONS: dict[str, Any] = {"validate_parameters": False, "version": "radar-cycles"}


def build_review_flow(outcome: Outcome) -> Flow[..., str]:
    """The subflow a tick runs for each due review: a flow run named `<outcome>/<period>`
    holding that period's remaining stages (Assessment and Review)."""

    @flow(
        name=outcome.outcome,
        flow_run_name=outcome.outcome + "/{period}",
        description=outcome.title,
        persist_result=False,
        log_prints=False,
        **SUBFLOW_OPTIONS,
    )
    def review_flow(period: str, deadline: bool = False) -> str:
        with untagged_tasks():
            record = advance(outcome, period, review=True, deadline=deadline, in_tick=True)
        return record.model_dump_json()

    return review_flow


def build_turn_flow(outcome: Outcome) -> Flow[..., str]:
    """One outcome's tick as a subflow of a shard's tick run (`cycles.tick_flow`): the turn for
    an explicit `slot` (the shard run's scheduled start, on radar's clock), in a flow run named
    `<outcome>/<period>` for the period it opens, its due reviews as subflows of it, as the
    outcome's own deployment run does it (`tick`)."""
    review_flow = build_review_flow(outcome)

    def turn(period: str, slot: datetime, dry_run: bool = False) -> str:
        from cycles.turn import slot_period

        opens = str(slot_period(outcome, slot))
        if opens != period:  # the run's name would say another period
            raise ValueError(f"{outcome.outcome}: the slot {slot} opens {opens}, not {period}")
        with untagged_tasks():
            record = tick(outcome, review_flow, dry_run=dry_run, slot=slot, deployed=True)
        return record.model_dump_json()

    # Prefect keys the task run that tracks a subflow in its parent by the function's name and
    # a counter: a name per outcome keeps each outcome's key the same whatever order a shard's
    # threads call them in, so a retried shard run finds each outcome's own earlier run
    turn.__qualname__ = turn.__name__ = f"turn_{outcome.outcome}"
    return flow(
        name=outcome.outcome,
        flow_run_name=outcome.outcome + "/{period}",
        description=outcome.title,
        persist_result=False,
        log_prints=False,
        **SUBFLOW_OPTIONS,
    )(turn)


@contextmanager
def untagged_tasks() -> Iterator[None]:
    """Stage tasks without the run's tags: Prefect asks the server for tag concurrency slots
    for every task run with a tag (two requests each), and no tag limit applies to stages."""
    from prefect.context import TagsContext

    with TagsContext(current_tags=set()):
        yield


def advance(
    outcome: Outcome,
    period: str,
    *,
    review: bool = False,
    dry_run: bool = False,
    campaign: str | None = None,
    deadline: bool = False,
    in_tick: bool = False,
    deployed: bool | None = None,
) -> CycleRecord:
    """One period's due stages as tasks of the current flow run; publish and log the result.

    A deployment's run (a schedule, an event, a deadline, the UI, a shard's tick) waits for
    another run of the same period and never re-reviews a reviewed period: a repeated or late
    trigger changes nothing. Runs started in-process (`radar run --prefect`) behave as `radar
    run`. `deployed` None: whether this flow run belongs to a deployment.
    """
    from cycles.flow_signoff import ask_sign_off, defer_sign_off
    from cycles.limits import connector_limit
    from cycles.turn import deadline_reason

    tasks = stage_tasks()
    if deployed is None:
        deployed = in_tick or from_deployment()
    the_period = parse_period(outcome, period)
    record = run_cycle(
        outcome,
        the_period,
        store=history(),
        review=review,
        dry_run=dry_run,
        runner=lambda cycle, stage: tasks[stage](cycle, stage),
        sign_off=defer_sign_off if in_tick else ask_sign_off,
        campaign=campaign,
        repeat_review=not deployed,
        reason=deadline_reason(outcome, the_period) if deadline else "",
        lock_wait=LOCK_WAIT if deployed else 0,
        limit=connector_limit(outcome),
    )
    log_cycle(record)
    if not dry_run and record.stages:
        publish(record)
        if Stage.review in record.stages and record.decision is not None:
            emit_reviewed(record)
    return record


REVIEWED = "radar.cycle.reviewed"


def emit_reviewed(record: CycleRecord) -> None:
    """`radar.cycle.reviewed` for `radar.outcome.<outcome>`: the decision, period and approaches
    as resource labels (what an automation matches on), the reasons in the payload."""
    from prefect.events import emit_event

    from cycles.secrets import redact_data

    approach = record.approach.name if record.approach else ""
    nxt = record.next_approach.name if record.next_approach else ""
    emit_event(
        event=REVIEWED,
        resource={
            "prefect.resource.id": f"radar.outcome.{record.outcome}",
            "prefect.resource.name": record.outcome,
            "radar.decision": record.decision.value if record.decision else "",
            "radar.period": record.period,
            "radar.approach": approach,
            "radar.next-approach": nxt,
        },
        payload=redact_data(
            {
                "outcome": record.outcome,
                "title": record.title,
                "period": record.period,
                "decision": record.decision.value if record.decision else None,
                "reasons": list(record.reasons),
                "approach": record.approach.model_dump() if record.approach else None,
                "next_approach": (
                    record.next_approach.model_dump() if record.next_approach else None
                ),
                "result_value": record.result_value,
                "target": record.target,
            }
        ),
    )


def tick(
    outcome: Outcome,
    review_flow: Flow[..., str],
    *,
    dry_run: bool = False,
    slot: datetime | None = None,
    deployed: bool | None = None,
) -> CycleRecord:
    """One PDCA turn for `slot` (default: this run's scheduled start): due reviews (subflows),
    then open the period."""
    from prefect.logging import get_run_logger
    from prefect.runtime import flow_run

    from cycles import clock
    from cycles.later_runs import schedule_review
    from cycles.turn import plan

    if slot is None:
        slot = clock.from_prefect(flow_run.scheduled_start_time)
    turn = plan(outcome, history().cycles(outcome.outcome, light=True), slot, clock.now())
    logger = get_run_logger()
    for due in turn.closing:
        review_flow(period=str(due.period), deadline=due.deadline)
    for waiting in turn.waiting:
        scheduled = None if dry_run else schedule_review(outcome, waiting)
        if not dry_run:
            mark_pending(outcome, waiting)
        logger.info(
            f"review of {waiting.period} is not due yet: "
            + (f"a run is scheduled for {waiting.due_at:%Y-%m-%d %H:%M} UTC"
               if scheduled else "no deployment to schedule it on")
            + (f" (the deadline; {outcome.review.after_event} reviews it before)"
               if waiting.deadline and outcome.review else "")
        )  # fmt: skip
    return advance(outcome, str(turn.opening), dry_run=dry_run, deployed=deployed)


def mark_pending(outcome: Outcome, review: Any) -> None:
    """The history shows the waiting review as pending, with why and until when."""
    from cycles.turn import local_time, pending_text

    cycle = history().get_cycle(outcome.outcome, str(review.period))
    if cycle is not None:
        why = f"{pending_text(outcome, cycle)} (by {local_time(outcome, review.due_at)})"
        history().mark_pending(outcome.outcome, str(review.period), why)


def log_cycle(record: CycleRecord) -> None:
    """The run's log says what the cycle did: the stages, the decision and its reasons."""
    from prefect.logging import get_run_logger

    from cycles.console import approach_text

    logger = get_run_logger()
    name = f"{record.outcome}/{record.period}"
    if not record.stages:
        done = ", ".join(s.value for s in record.completed_stages) or "none"
        logger.info(f"{name}: nothing was due (stages done: {done})")
        return
    ran = ", ".join(s.value for s in record.stages)
    if record.decision is None:
        logger.info(redact(f"{name}: {ran}; approach {approach_text(record.approach)}; "
                           f"{record.status}"))  # fmt: skip
        return
    reasons = "; ".join(record.reasons)
    logger.info(
        redact(
            f"{name}: {ran}; decision {record.decision.value}: {reasons}; next approach "
            f"{approach_text(record.next_approach)}"
        )
    )


EARLIEST_START = timedelta(minutes=5)  # a run started earlier than this does not wait


def from_deployment() -> bool:
    """Whether the current flow run belongs to a Prefect deployment (read from its context:
    prefect.runtime would ask the server for an in-process run)."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    return run is not None and run.deployment_id is not None


def wait_for_scheduled_start() -> None:
    """A worker submits scheduled runs up to `PREFECT_WORKER_PREFETCH_SECONDS` (10 s) early; a
    cycle acts at its scheduled time, not before (a sign-off deadline run would otherwise find the
    deadline not yet passed and wait for an answer itself). Runs started in-process (no
    deployment) never wait: their expected start is their creation on a server's clock."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None  # read here: prefect.runtime asks the server
    if run is None or run.deployment_id is None or run.expected_start_time is None:
        return
    early = run.expected_start_time - datetime.now(UTC)
    if timedelta(0) < early <= EARLIEST_START:
        time.sleep(early.total_seconds())


def which_period(outcome: Outcome, params: dict[str, Any]) -> str:
    """The period a run is for: the one asked for; for a review without one, the period holding
    the event that asked for it (or the scheduled start); for a tick, the period holding its
    scheduled start."""
    from cycles import clock
    from cycles.turn import slot_period

    if params.get("period"):
        return str(params["period"])
    event_time = params.get("event_time") if params.get("review") else None
    if event_time:
        when = datetime.fromisoformat(str(event_time).replace("Z", "+00:00"))
    else:
        from prefect.runtime import flow_run

        when = flow_run.scheduled_start_time
    return str(slot_period(outcome, clock.from_prefect(when)))


def publish(record: CycleRecord) -> None:
    """The review as markdown, the recent periods as a table and the XmR chart as an image,
    keyed per outcome, attached to this flow run: handed to the run's artifact sender
    (`cycles.sending`) when one is open, else sent now. A run that only opened its period
    publishes the review alone: the table and the chart change when a period is assessed."""
    from prefect import get_client

    from cycles import sending

    requests = artifact_requests(record)
    sender = sending.current()
    if sender is not None:
        for request in requests:
            sender.send(request)
        return
    with get_client(sync_client=True) as client:
        for request in requests:
            client.create_artifact(artifact=request)


def artifact_requests(record: CycleRecord) -> list[Any]:
    """The cycle's artifacts as Prefect API requests for the current flow run."""
    import json

    from prefect.artifacts import TableArtifact
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run_id = context.flow_run.id if context and context.flow_run else None
    state = record.decision.value if record.decision else record.status
    requests = [
        ArtifactCreate(
            key=artifact_key(record.outcome, "review"),
            type="markdown",
            data=redact(review_markdown(record)),
            description=f"{record.outcome}/{record.period}: {state}",
            flow_run_id=run_id,
        )
    ]
    if not {Stage.assessment, Stage.review} & set(record.stages):
        return requests
    table = recent_table(record)
    if table:
        requests.append(
            ArtifactCreate(
                key=artifact_key(record.outcome, "recent"),
                type="table",
                data=json.dumps(TableArtifact._sanitize(table)),  # NaN as null, as Prefect does
                description=f"{record.outcome}: {record.result_metric} by period, XmR limits, "
                "target",
                flow_run_id=run_id,
            )
        )
    chart = chart_markdown(record)
    if chart:
        requests.append(
            ArtifactCreate(
                key=artifact_key(record.outcome, "chart"),
                type="markdown",
                data=chart,
                description=f"{record.outcome}: XmR chart up to {record.period}",
                flow_run_id=run_id,
            )
        )
    return requests


def chart_markdown(record: CycleRecord) -> str | None:
    """The outcome's chart up to this cycle as markdown with an inline SVG image, drawn in Python
    (a few ms; vl-convert's JavaScript engine would take 1 s); None, with a warning, on failure."""
    from cycles.report import build_report
    from cycles.report.svg import artifact_markdown

    try:
        earlier = history().cycles(record.outcome, light=True)
        cycles = [c for c in earlier if c.period != record.period]
        return artifact_markdown(build_report([*cycles, record]))
    except Exception as exc:  # a chart is not worth failing a reviewed cycle for
        from prefect.logging import get_run_logger

        get_run_logger().warning(f"no chart for {record.outcome}: {redact(str(exc))}")
        return None


def run_in_flow(
    outcome: Outcome,
    period: str | None,
    *,
    review: bool = False,
    dry_run: bool = False,
    today: date | None = None,
    tagged: bool = True,
) -> CycleRecord:
    """Run one cycle through its Prefect flow in this process and return the record.

    `tagged` adds the `outcome:` and `cadence:` tags. Every task run of a tagged flow run asks
    the server for tag concurrency slots; the demo's temporary SQLite server answers some of
    those writes with 503 (and a 2 s client back-off), so the demo runs untagged.
    """
    label = str(parse_period(outcome, period, today))
    labels = [f"outcome:{outcome.outcome}", f"cadence:{outcome.cadence.value}"] if tagged else []
    with without_heartbeats(), tags(*labels):
        data = flow_of(outcome)(period=label, review=review, dry_run=dry_run)
    return CycleRecord.model_validate_json(data)


_FLOWS: dict[int, tuple[Outcome, Flow[..., str]]] = {}


def flow_of(outcome: Outcome) -> Flow[..., str]:
    """The outcome's flow, built once per declaration object."""
    if id(outcome) not in _FLOWS:
        _FLOWS[id(outcome)] = (outcome, build_flow(outcome))  # holds the outcome: ids stay unique
    return _FLOWS[id(outcome)][1]


_TURN_FLOWS: dict[int, tuple[Outcome, Flow[..., str]]] = {}


def turn_flow_of(outcome: Outcome) -> Flow[..., str]:
    """The outcome's turn subflow for a shard's tick (`build_turn_flow`), built once."""
    if id(outcome) not in _TURN_FLOWS:
        _TURN_FLOWS[id(outcome)] = (outcome, build_turn_flow(outcome))
    return _TURN_FLOWS[id(outcome)][1]


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """No flow-run heartbeats for runs the calling process watches itself.

    Heartbeats let a server notice a worker's crashed run; in-process, the terminal sees the
    crash. Prefect joins the heartbeat thread at every flow exit, which costs up to 1 s per run.
    """
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    flows = settings.flows.model_copy(update={"heartbeat_frequency": None})
    quiet = settings.model_copy(update={"flows": flows})
    with SettingsContext(profile=get_settings_context().profile, settings=quiet):
        yield
