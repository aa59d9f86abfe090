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
from cycles.schedule import period_for
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


def build_flow(outcome: Outcome) -> Flow[..., str]:
    """The Prefect flow that advances `outcome`'s cycle; runs are named `<outcome>/<period>`."""
    tasks = stage_tasks()

    def run_name() -> str:
        from prefect.runtime import flow_run

        params = flow_run.parameters
        return (
            f"{outcome.outcome}/{which_period(outcome, params.get('period'), params.get('review'))}"
        )

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
    ) -> str:
        """Advance the cycle; without a period, the one that just ended (or, for a review, the
        current one) as of the run's scheduled start."""
        from cycles.flow_signoff import ask_sign_off

        wait_for_scheduled_start()
        record = run_cycle(
            outcome,
            which_period(outcome, period, review),
            store=history(),
            review=review,
            dry_run=dry_run,
            runner=lambda cycle, stage: tasks[stage](cycle, stage),
            sign_off=ask_sign_off,
            campaign=campaign,
        )
        if not dry_run:
            publish(record)
        # JSON text: Prefect walks a returned dict or model looking for futures, which
        # costs more than the whole review
        return record.model_dump_json()

    return cycle_flow


EARLIEST_START = timedelta(minutes=5)  # a run started earlier than this does not wait


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


def which_period(outcome: Outcome, period: str | None, review: bool | None) -> str:
    """The period asked for, else the one a deployment run is for at its scheduled start."""
    if period:
        return period
    from prefect.runtime import flow_run

    return str(period_for(outcome, flow_run.scheduled_start_time, review=bool(review)))


def publish(record: CycleRecord) -> None:
    """The review as markdown, the recent periods as a table and the XmR chart as an image,
    keyed per outcome."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    state = record.decision.value if record.decision else record.status
    create_markdown_artifact(
        key=artifact_key(record.outcome, "review"),
        markdown=redact(review_markdown(record)),
        description=f"{record.outcome}/{record.period}: {state}",
    )
    table = recent_table(record)
    if table:
        create_table_artifact(
            key=artifact_key(record.outcome, "recent"),
            table=table,
            description=f"{record.outcome}: {record.result_metric} by period, XmR limits, target",
        )
    chart = chart_markdown(record)
    if chart:
        create_markdown_artifact(
            key=artifact_key(record.outcome, "chart"),
            markdown=chart,
            description=f"{record.outcome}: XmR chart up to {record.period}",
        )


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
