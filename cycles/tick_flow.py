"""A shard's tick: one flow run ticks many outcomes in one warm process (`radar deploy --shards`).

The run of `radar-tick/<group>-<k>of<N>` that fires at the start of a period does, for every
outcome of its shard that has something due, the same turn as the outcome's own deployment run
(`cycles.flow.tick`): a subflow run `<outcome>/<period>` for the period it opens, whose due
reviews run as subflows `<outcome>/<earlier period>` and whose own tasks open the period. The
slot is the shard run's scheduled start, passed to each turn explicitly. Up to `concurrency`
outcomes run at once (threads; the work waits on the history, the sources and Prefect's API),
their artifacts are sent without waiting (`cycles.sending`), and no process is started per
outcome: Prefect, pandas and the rest are imported once per shard and tick, not once per cycle.

Running a shard's tick again for the same slot (a retry after its process died, a second run)
ticks only the outcomes that still have something due; each outcome keeps its own subflow's
identity across attempts, so a turn cut short is resumed in the run it began in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import copy_context
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, tags

from cycles.declaration.model import Outcome
from cycles.shards import DEFAULT_CONCURRENCY, TICK_FLOW

MAX_CONCURRENCY = 8  # the history's connection pool holds 15 (a run lock and a session each)
MAX_ATTEMPTS = 4  # a tick whose process died this often fails instead of running again


class TickFailed(RuntimeError):
    """Some outcomes' turns failed; the others are done (run the tick again to retry those)."""


def run_name() -> str:
    """`<shard>/<period>`: the shard's name and the period its slot opens."""
    from zoneinfo import ZoneInfo

    from prefect.runtime import flow_run

    from cycles import clock
    from cycles.periods import Cadence, Period

    params = flow_run.parameters
    slot = clock.from_prefect(flow_run.scheduled_start_time)
    day = slot.astimezone(ZoneInfo(params.get("timezone", "UTC"))).date()
    return f"{params['shard']}/{Period.containing(day, Cadence(params.get('cadence', 'monthly')))}"


@flow(name=TICK_FLOW, flow_run_name=run_name, persist_result=False, log_prints=False)
def radar_tick(
    shard: str,
    outcomes: dict[str, str],
    cadence: str = "monthly",
    timezone: str = "UTC",
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
) -> str:
    """Tick every outcome of the shard that has something due, `concurrency` at a time.

    `outcomes`: outcome identifier -> its declaration file (relative to the run's working
    directory). `cadence` and `timezone` only name the run.
    """
    from prefect.context import FlowRunContext
    from prefect.logging import get_run_logger
    from prefect.runtime import flow_run

    from cycles import clock, hierarchy
    from cycles.later_runs import OUTCOME_DEPLOYMENTS, DeploymentLookup
    from cycles.sending import sending

    logger = get_run_logger()
    context = FlowRunContext.get()
    attempt = context.flow_run.run_count if context and context.flow_run else 1
    if attempt > MAX_ATTEMPTS:
        raise TickFailed(f"{shard}: attempt {attempt}; it died {attempt - 1} times, giving up")
    slot = clock.from_prefect(flow_run.scheduled_start_time)
    started = time.perf_counter()
    loaded, failed = load_outcomes(outcomes)
    due = [o for o in loaded if is_due(o, slot, clock.now())]
    logger.info(
        f"{shard}: {len(due)} of {len(outcomes)} outcomes have something due at "
        f"{slot:%Y-%m-%d %H:%M} UTC (attempt {attempt}; {len(failed)} declarations failed to "
        f"load); {max(1, min(concurrency, MAX_CONCURRENCY))} at a time"
    )
    lookup = DeploymentLookup()
    token = OUTCOME_DEPLOYMENTS.set(lookup)
    try:  # the declarations' parents are read once per tick, not at each review
        with csrf_asked_once(), sending(), hierarchy.declarations_fixed():
            failed.update(run_turns(due, slot, concurrency=concurrency, dry_run=dry_run))
    finally:
        OUTCOME_DEPLOYMENTS.reset(token)
    seconds = time.perf_counter() - started
    done = len(due) - len([o for o in due if o.outcome in failed])
    summary = f"{shard}: {done} outcomes ticked in {seconds:.1f} s, {len(failed)} failed"
    if failed:
        listed = "; ".join(f"{name}: {why}" for name, why in sorted(failed.items())[:20])
        raise TickFailed(f"{summary} ({listed}); the others are done: run the tick again to retry")
    logger.info(summary)
    return summary


@contextmanager
def csrf_asked_once() -> Iterator[None]:
    """Ask the server once whether it protects against CSRF, not once per outcome.

    Prefect's client asks for a CSRF token the first time each of its clients changes
    something, and the engine makes new clients for each outcome's subflow runs and their
    tracking tasks: 3.5 of a deployed cycle's 31 API requests in bench/scheduled_cycles.py.
    When the server answers that its CSRF protection is off (Prefect's default), the clients
    of this run's turns are told so; when it is on, or the question fails, nothing changes.
    """
    from prefect.settings import PREFECT_CLIENT_CSRF_SUPPORT_ENABLED, temporary_settings

    if PREFECT_CLIENT_CSRF_SUPPORT_ENABLED.value() and not server_protects_against_csrf():
        with temporary_settings(updates={PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}):
            yield
    else:
        yield


def server_protects_against_csrf() -> bool:
    """False only when the API says its CSRF protection is disabled (as Prefect's client
    itself concludes, from the same answer); True when it hands out a token or cannot say."""
    import uuid

    from prefect import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        with get_client(sync_client=True) as client:
            if client.server_type.value == "CLOUD":
                return True  # Prefect Cloud: its clients never ask
            client.request("GET", "/csrf-token", params={"client": str(uuid.uuid4())})
    except PrefectHTTPStatusError as exc:
        answer = exc.response
        return not (answer.status_code == 422 and "CSRF protection is disabled" in answer.text)
    except Exception:  # no answer: the turns will say so; Prefect's own handling stays
        return True
    return True


def load_outcomes(outcomes: dict[str, str]) -> tuple[list[Outcome], dict[str, str]]:
    """The shard's declarations, and one line per outcome that failed to load."""
    from cycles.errors import error_text
    from cycles.secrets import redact

    loaded, failed = [], {}
    for name, path in sorted(outcomes.items()):
        try:
            loaded.append(load_declared(name, Path(path)))
        except Exception as exc:  # one bad declaration never stops the shard
            failed[name] = redact(error_text(exc))
    return loaded, failed


def load_declared(name: str, path: Path) -> Outcome:
    """The outcome `name` from its declaration file (a Python file may declare several)."""
    from cycles.declaration import load
    from cycles.declaration.loader import load_python
    from cycles.errors import DeclarationError

    if path.suffix == ".py":
        found = [o for o in load_python(path) if o.outcome == name]
    else:
        found = [load(path)]
    if not found or found[0].outcome != name:
        raise DeclarationError(f"{path} no longer declares {name!r}: run radar deploy again")
    return found[0]


def is_due(outcome: Outcome, slot: datetime, now: datetime) -> bool:
    """Whether the outcome's turn at `slot` has anything to do: a review due now, a waiting
    review not yet marked pending (and scheduled), or the period holding the slot not opened."""
    from cycles.engine import OPENING
    from cycles.flow import history
    from cycles.store.store import PENDING
    from cycles.turn import VOID, plan

    cycles = history().cycles(outcome.outcome, light=True)
    turn = plan(outcome, cycles, slot, now)
    if turn.closing:
        return True
    by_period = {c.period: c for c in cycles}
    if any(by_period[str(w.period)].status != PENDING for w in turn.waiting):
        return True
    opening = by_period.get(str(turn.opening))
    if opening is None:
        return True
    return opening.status != VOID and not set(OPENING) <= set(opening.completed_stages)


def run_turns(
    outcomes: list[Outcome], slot: datetime, *, concurrency: int, dry_run: bool = False
) -> dict[str, str]:
    """Each outcome's turn as a subflow of this run, `concurrency` at a time; the failures."""
    from cycles.turn import slot_period

    failed: dict[str, str] = {}
    workers = max(1, min(concurrency, MAX_CONCURRENCY))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="radar-turn") as pool:
        # each call gets its own copy of this run's context: the parent flow run, settings, the
        # artifact sender (one context cannot be entered by two threads at once)
        futures = {
            pool.submit(
                copy_context().run, turn_once, outcome, str(slot_period(outcome, slot)), slot,
                dry_run,
            ): outcome.outcome
            for outcome in outcomes
        }  # fmt: skip
        for future, name in futures.items():
            why = future.result()
            if why is not None:
                failed[name] = why
    return failed


def turn_once(outcome: Outcome, period: str, slot: datetime, dry_run: bool) -> str | None:
    """One outcome's turn subflow; None when it completed, else why it did not (one line).

    A turn whose subflow the API refused (a busy server's 503 or 429 after the client's own
    retries, no answer at all) is tried again, up to TURN_ATTEMPTS times: the turn only does
    what the history says is still due, so trying again never repeats a stage or an action.
    A refusal inside the turn (its review subflow, say) fails the turn's state instead, and
    the turn is not tried again: a second flow run of the same name would follow it.
    """
    from prefect.logging import get_run_logger

    from cycles.errors import error_text
    from cycles.flow import turn_flow_of, without_heartbeats
    from cycles.secrets import redact

    labels = [f"outcome:{outcome.outcome}", f"cadence:{outcome.cadence.value}"]
    for attempt in range(1, TURN_ATTEMPTS + 1):
        try:
            # the shard's run sends heartbeats for all its turns; a subflow's own heartbeat
            # thread would cost up to a second at each subflow's exit
            with without_heartbeats(), tags(*labels):
                state: Any = turn_flow_of(outcome)(
                    period=period, slot=slot, dry_run=dry_run, return_state=True
                )
            break
        except Exception as exc:  # the subflow could not be created or ended (the API, a bug)
            if attempt == TURN_ATTEMPTS or not api_refused(exc):
                return redact(error_text(exc))
            wait = TURN_BACKOFF_S * attempt
            get_run_logger().warning(
                f"{outcome.outcome}: the API refused its turn ({redact(error_text(exc))[:200]});"
                f" trying again in {wait:.0f} s"
            )
            time.sleep(wait)
    if state.is_completed():
        return None
    return redact(state.message or state.name or "did not complete")


TURN_ATTEMPTS = 3
TURN_BACKOFF_S = 5.0  # seconds before the second attempt; twice that before the third


def api_refused(exc: BaseException) -> bool:
    """Whether the Prefect API was too busy to answer (5xx, 429) or could not be reached."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)
