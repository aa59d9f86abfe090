"""Advance one outcome's cycle for one period: the programmatic entry point.

`run_cycle` is what the CLI, the Prefect flow and the tests call. A `Cycle` knows which stages
are due, runs each (pure stage functions + connectors + actions), and writes each completed
stage to the history in one transaction, so a crash never leaves half a stage behind.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from connectors.base import Checks, Connector, Measurement
from connectors.registry import action_class, connector_class
from cycles import clock, drivers, hierarchy, stages
from cycles.declaration.model import Outcome
from cycles.errors import (
    ActionError,
    DataError,
    DeclarationError,
    SchemaError,
    UsageError,
    error_text,
)
from cycles.periods import Period, Window
from cycles.policy import Decision
from cycles.record import CheckSummary, CycleRecord, Proposal, Score
from cycles.score import score
from cycles.signoff import SignOff, apply_sign_off, needs_sign_off
from cycles.turn import VOID
from cycles.values import ACTION_FINAL as FINAL
from cycles.values import ActionRun, ApproachRef, Stage, StageRun

if TYPE_CHECKING:
    from cycles.store import Store

AskSignOff = Callable[["Cycle", Decision], SignOff | None]
Limit = Callable[[str], AbstractContextManager[Any]]  # a connector's name -> held per query

OPENING = (Stage.result, Stage.approach, Stage.deployment)
CLOSING = (Stage.assessment, Stage.review)


def today_in(outcome: Outcome) -> date:
    """Today's date in the outcome's timezone (radar's clock)."""
    return clock.today_in(outcome.timezone)


def parse_period(outcome: Outcome, text: str | None, today: date | None = None) -> Period:
    """`--period` text, or the period holding today; a malformed one is a usage error."""
    if text is None:
        return Period.containing(today or today_in(outcome), outcome.cadence)
    try:
        return Period.parse(text, outcome.cadence)
    except ValueError as exc:
        raise UsageError(f"--period: {exc}") from None


class Cycle:
    """One outcome's cycle for one period, as it advances through its due stages."""

    def __init__(
        self,
        outcome: Outcome,
        period: Period,
        *,
        store: Store | None,
        review: bool = False,
        dry_run: bool = False,
        today: date | None = None,
        repeat_review: bool = True,
        reason: str = "",
        limit: Limit | None = None,
    ) -> None:
        self.outcome = outcome
        self.period = period
        self.store = store
        self.review_requested = review
        # a review asked for again re-assesses (radar run --review); a deployment's review run
        # (an event, a deadline) finds the review done and leaves it
        self.repeat_review = repeat_review
        self.dry_run = dry_run or store is None
        self.today = today or today_in(outcome)
        self.history: list[CycleRecord] = []  # cycles before this one, void ones left out
        self.later: list[CycleRecord] = []  # cycles after this one (opened meanwhile)
        self.void_periods: set[str] = set()
        self.record = self._blank()
        self._connectors: dict[str, Connector] = {}
        self._measured: dict[str, Measurement] = {}
        self.signed: SignOff | None = None  # the answer to a sign-off this run asked for
        self.review_reason = reason  # why the review runs now (a deadline), first of its reasons
        self.limit = limit  # held around each query of a connector (a source's concurrency)

    def reload(self) -> None:
        """Read this cycle and the ones before it from the history (under the run lock)."""
        outcome, period = self.outcome.outcome, str(self.period)
        if self.store is not None:
            known = self.store.cycles(outcome, light=True)
            self.void_periods = {c.period for c in known if c.status == VOID}
            kept = [c for c in known if c.status != VOID]
            self.history = [c for c in kept if c.period < period]
            self.later = [c for c in kept if c.period > period]
            self.record = self.store.get_cycle(outcome, period) or self._blank()
            self.__dict__.pop("review_history", None)  # read again when the review runs
        record = self.record
        record.stages = []
        record.dry_run = self.dry_run
        record.title = self.outcome.as_written(("title",), self.outcome.title)
        record.target = self.outcome.result.target
        record.direction = self.outcome.result.direction.value
        record.result_metric = self.outcome.result.metric

    def _blank(self) -> CycleRecord:
        return CycleRecord(
            outcome=self.outcome.outcome, period=str(self.period),
            cadence=self.outcome.cadence.value, target=self.outcome.result.target,
        )  # fmt: skip

    # -- what is due ------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.period.has_ended(self.today)

    def due(self) -> list[Stage]:
        """The stages this run should execute, in order."""
        done = set(self.record.completed_stages)
        if self.record.status == VOID:
            if self.dry_run:
                return []
            void = self.record.extra.void
            reason = void.reason if void else ""
            raise UsageError(
                f"{self.outcome.outcome}/{self.period} is void ({reason}): it is kept as it was "
                "and never run again"
            )
        if Stage.review in done and self.review_requested:
            if not self.repeat_review:
                return []
            if not self.dry_run:  # a dry run records nothing, so it rewrites nothing
                self._refuse_rewriting_history()
            return list(CLOSING)  # a review asked for again re-assesses with today's data
        due = [s for s in OPENING if s not in done]
        if self.ended or self.review_requested:
            due += [s for s in CLOSING if s not in done]
        return due

    def _refuse_rewriting_history(self) -> None:
        if self.later:
            raise UsageError(
                f"--review: {self.period} was already reviewed and the cycle of "
                f"{self.later[0].period} builds on that review; re-reviewing it would rewrite "
                "history (--dry-run shows what it would decide)"
            )

    # -- running ----------------------------------------------------------------------------
    def run(self, stage: Stage) -> CycleRecord:
        """Run one stage and record it (one transaction per stage)."""
        started = datetime.now(UTC)
        clock = time.perf_counter()
        try:
            STAGE_FUNCTIONS[stage](self)
        except Exception as exc:
            error = error_text(exc)
            if self.store is not None and not self.dry_run:
                run = StageRun(
                    stage=stage, status="failed", started_at=started,
                    finished_at=datetime.now(UTC), error=error,
                )  # fmt: skip
                self.record.stage_runs.append(run)
                self.store.save_failure(self.record, run)
            raise
        finished = datetime.now(UTC)
        run = StageRun(stage=stage, status="completed", started_at=started, finished_at=finished)
        seconds = round(time.perf_counter() - clock, 4)
        self.record.extra.stage_seconds = {**self.record.extra.stage_seconds, stage.value: seconds}
        self.record.stages.append(stage)
        if stage not in self.record.completed_stages:
            self.record.completed_stages.append(stage)
        self.record.stage_runs.append(run)
        self.record.updated_at = finished
        if self.store is not None and not self.dry_run:
            self.store.save_stage(self.record, run)
        return self.record

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()

    # -- sign-off -----------------------------------------------------------------------------
    def propose(self) -> Decision:
        """What the policy decides for this assessed cycle, before any sign-off."""
        return stages.review(
            self.outcome,
            self.record,
            self.review_history,
            self.record.extra.baseline_count,
        )

    @cached_property
    def review_history(self) -> list[CycleRecord]:
        """The cycles before this one with their metric values, checks and actions: a switch
        chooses on what each approach's phases measured (cycles.choice)."""
        if self.store is None:
            return self.history
        full = self.store.cycles(self.outcome.outcome)
        return [c for c in full if c.status != VOID and c.period < str(self.period)]

    def ready_for_review(self, ask: AskSignOff | None) -> bool:
        """Whether the review may run now: no sign-off needed, or one was given.

        Without an answer the cycle waits, recorded as `awaiting sign-off` with its proposal.
        """
        proposal = self.propose()
        if not needs_sign_off(self.outcome, proposal):
            return True
        if self.record.status != "awaiting sign-off":
            self.record.status = "awaiting sign-off"
            self.record.extra.proposal = Proposal(
                decision=proposal.kind,
                reasons=proposal.reasons,
                next_approach=proposal.next_approach,
            )
            self.save_waiting()
        self.signed = ask(self, proposal) if ask is not None else None
        return self.signed is not None

    def save_waiting(self, *, new_row: bool = True) -> None:
        """Record that the review waits for a sign-off (the stage is not completed).

        `new_row=False` only updates the cycle (e.g. its `extra`), without another stage run.
        """
        if self.store is None or self.dry_run:
            return
        now = datetime.now(UTC)
        run = StageRun(
            stage=Stage.review, status="awaiting sign-off", started_at=now, finished_at=now
        )
        self.store.save_stage(self.record, run if new_row else None)

    # -- helpers ----------------------------------------------------------------------------
    def connector(self, name: str) -> Connector:
        if name not in self._connectors:
            self._connectors[name] = open_connector(self.outcome, name)
        return self._connectors[name]

    def measure(self, metric: str) -> Measurement:
        """The metric over this cycle's window, with its checks; read once per run."""
        if metric not in self._measured:
            spec = self.outcome.metrics[metric]
            checks = Checks(metric, self.outcome.checks.get(metric, []))
            try:
                with self.limit(spec.connector) if self.limit else nullcontext():
                    measured = self.connector(spec.connector).measure(spec, self.window, checks)
            except SchemaError as exc:
                raise locate_schema_error(self.outcome, metric, exc) from None
            except DataError as exc:
                raise DataError(f"metric {metric!r}: {exc}") from exc
            if self.void_periods:  # a void cycle's period counts in no baseline or signal
                void = self.void_periods - {str(self.period)}
                measured.values = [v for v in measured.values if v.period not in void]
            self._measured[metric] = measured
        return self._measured[metric]

    def children(self) -> dict[str, list[CycleRecord]]:
        """The cycles of the declared outcomes whose parent is this one, from the history."""
        names = hierarchy.declared_children(self.outcome.outcome)
        return {n: self.store.cycles(n, light=True) if self.store else [] for n in names}

    @cached_property
    def planned(self) -> tuple[ApproachRef, str]:
        """This cycle's approach as the latest review planned it (and why)."""
        return stages.choose_approach(self.outcome, self.history)

    @property
    def approach_start(self) -> Period:
        name = (self.record.approach or self.planned[0]).name
        return stages.approach_start(self.history, name, self.period)

    @cached_property
    def window(self) -> Window:
        """Baseline before the approach started, the approach's periods, and this period."""
        return stages.assessment_window(self.outcome, self.period, self.approach_start)


# -- the stages, as the engine runs them ---------------------------------------------------------


def _result(cycle: Cycle) -> None:
    measured = cycle.measure(cycle.outcome.result.metric)
    cycle.record.standing = stages.standing(measured.values, cycle.period)


def _approach(cycle: Cycle) -> None:
    approach, why = cycle.planned
    # the history keeps secret parameters masked: they stay in the declaration
    cycle.record.approach = stages.masked(cycle.outcome, approach)
    cycle.record.extra.approach_reason = why


def _deployment(cycle: Cycle) -> None:
    outcome, record = cycle.outcome, cycle.record
    assert record.approach is not None
    spec = outcome.approach(record.approach.name)
    runs: list[ActionRun] = []
    for config in spec.actions if spec else []:
        runs.append(_deploy_action(cycle, config))
    record.actions = runs
    failed = [r for r in runs if r.status == "failed"]
    if failed and not cycle.ended:
        raise ActionError(
            "deployment failed: "
            + "; ".join(f"action {r.name}: {r.error}" for r in failed)
            + " (re-run to retry; actions that succeeded are not repeated)"
        )


UNKNOWN = "after an attempt whose outcome is unknown: "  # starts a failed attempt's error


def _deploy_action(cycle: Cycle, config: Any) -> ActionRun:
    from connectors.actions.base import ActionContext

    outcome, record = cycle.outcome, cycle.record
    assert record.approach is not None
    key = stages.action_key(outcome.outcome, record.period, record.approach.name, config.name)
    ids = {
        "key": key, "outcome": outcome.outcome, "period": record.period,
        "approach": record.approach.name, "action": config.name, "type": config.type,
    }  # fmt: skip
    store = cycle.store
    known = store.get_action(key) if store else None
    if known is not None and known.status in FINAL:
        return known
    if cycle.ended:
        reason = f"period {record.period} has ended: actions of past periods are never executed"
        if store is None or cycle.dry_run:
            return ActionRun(name=config.name, type=config.type, key=key, status="skipped",
                             error=reason)  # fmt: skip
        return store.skip_action(**ids, reason=reason)
    if cycle.dry_run or store is None:
        return ActionRun(name=config.name, type=config.type, key=key, status="dry-run")
    # a pending row left by an earlier attempt (we hold the run lock, so its run is gone): its
    # outcome is unknown, it may have been delivered. It stays unknown through failed attempts
    # (their error starts with UNKNOWN): else killed, failed, then sent is `succeeded`, not resent
    unknown = known is not None and (
        known.status == "pending"
        or (known.status == "failed" and (known.error or "").startswith(UNKNOWN))
    )
    begun = store.begin_action(**ids)
    if begun.status in FINAL:
        return begun  # another run delivered it meanwhile
    context = ActionContext(
        outcome=outcome.outcome, period=record.period, approach=record.approach.name,
        params=stages.unmasked(outcome, record.approach), key=key, base_dir=outcome.base_dir,
    )  # fmt: skip
    action = action_class(config.type)(config)
    try:
        with captured_output(key):
            reach = action.run(context)
    except ActionError as exc:
        error = (UNKNOWN if unknown else "") + str(exc)
        return store.finish_action(key, status="failed", error=error)
    if unknown and not action.exactly_once:  # the sink cannot tell: say it may have seen it twice
        note = (
            "resent after an attempt whose outcome is unknown (its run ended without a record), "
            "with the same idempotency key"
        )
        return store.finish_action(key, status="resent", reach=reach, error=note)
    return store.finish_action(key, status="succeeded", reach=reach)


ACTION_LOG = logging.getLogger("radar.actions")


@contextmanager
def captured_output(key: str) -> Iterator[None]:
    """What an action prints goes to the `radar.actions` log (a Prefect run's log), never into
    radar's own output, where it would corrupt `--json`. Per thread: a shard's tick runs
    several outcomes' actions at once in one process."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with _per_thread(out, err):
            yield
    finally:
        for stream, level in ((out, logging.INFO), (err, logging.WARNING)):
            for line in stream.getvalue().splitlines():
                if line.strip():
                    ACTION_LOG.log(level, "%s: %s", key, line)


class _ThreadStream(io.TextIOBase):
    """sys.stdout or sys.stderr while actions run: a thread capturing writes to its buffer,
    every other thread to the stream that was there."""

    def __init__(self, index: int, stream: Any) -> None:
        self.index, self.stream = index, stream

    def _target(self) -> Any:
        buffers = getattr(_CAPTURE, "buffers", None)
        return buffers[self.index] if buffers else self.stream

    def write(self, text: str) -> int:
        return int(self._target().write(text) or 0)

    def flush(self) -> None:
        self._target().flush()

    def writable(self) -> bool:
        return True


_CAPTURE = threading.local()
_CAPTURE_LOCK = threading.Lock()
_CAPTURING: list[Any] = [0, None]  # threads capturing; the streams they replaced


@contextmanager
def _per_thread(out: io.StringIO, err: io.StringIO) -> Iterator[None]:
    with _CAPTURE_LOCK:
        if _CAPTURING[0] == 0:
            _CAPTURING[1] = (sys.stdout, sys.stderr)
            sys.stdout, sys.stderr = _ThreadStream(0, sys.stdout), _ThreadStream(1, sys.stderr)
        _CAPTURING[0] += 1
    _CAPTURE.buffers = (out, err)
    try:
        yield
    finally:
        _CAPTURE.buffers = None
        with _CAPTURE_LOCK:
            _CAPTURING[0] -= 1
            if _CAPTURING[0] == 0:
                sys.stdout, sys.stderr = _CAPTURING[1]


def _assessment(cycle: Cycle) -> None:
    outcome, record = cycle.outcome, cycle.record
    start = cycle.approach_start
    results, metrics = [], {}
    for name in outcome.metrics:
        measured = cycle.measure(name)
        metrics[name] = measured.values
        results.extend(measured.checks)
    record.metrics = metrics
    record.checks = CheckSummary.of(results)
    current = metrics[outcome.result.metric][-1]
    record.result_value = current.value
    limits, count, line = stages.baseline_chart(
        outcome, metrics[outcome.result.metric], cycle.period, start
    )
    record.limits = limits
    record.extra.baseline_count = count
    record.extra.discard("baseline_model")
    if line is not None:  # policy.seasonality / policy.trend: the fitted centre line
        record.extra.baseline_model = line
    record.extra.approach_start = str(start)
    record.extra.drivers = drivers.evaluate(outcome, metrics, cycle.period, start)


def _review(cycle: Cycle) -> None:
    record = cycle.record
    decision = cycle.propose()
    if cycle.signed is not None:
        assert record.approach is not None
        decision = apply_sign_off(cycle.outcome, decision, record.approach, cycle.signed)
        record.extra.sign_off = cycle.signed
        record.extra.discard("proposal")
    decision = stages.keep_plan_in_force(decision, record, cycle.later)
    if cycle.review_reason:
        decision = decision.model_copy(update={"reasons": [cycle.review_reason, *decision.reasons]})
    children = cycle.children()
    if children:  # outcomes that serve this one: their latest decisions and standing
        entries = hierarchy.children_standing(children, cycle.period)
        record.extra.children = entries
        more = hierarchy.children_reasons(entries, record.period)
        decision = decision.model_copy(update={"reasons": [*decision.reasons, *more]})
    record.status = "reviewed"
    record.extra.discard("pending")
    record.decision = decision.kind
    record.reasons = list(decision.reasons)
    record.next_approach = decision.next_approach
    record.signal = decision.signal
    record.extra.summary = decision.summary
    record.extra.effect = stages.approach_effect(cycle.outcome, record, cycle.approach_start)
    record.extra.score = Score.model_validate(score(cycle.outcome, record, cycle.history))


STAGE_FUNCTIONS: dict[Stage, Callable[[Cycle], None]] = {
    Stage.result: _result,
    Stage.approach: _approach,
    Stage.deployment: _deployment,
    Stage.assessment: _assessment,
    Stage.review: _review,
}


def preflight(outcome: Outcome) -> None:
    """Before anything runs: every source answers and has the columns the declaration names,
    and every action could run as declared (`check_actions`)."""
    from cycles.declaration.errors import key_path

    check_actions(outcome)
    connectors = {name: open_connector(outcome, name) for name in outcome.connectors}
    try:
        for name, spec in outcome.metrics.items():
            connector = connectors[spec.connector]
            query = connector.Query.model_validate(spec.query)
            try:
                connector.require_columns(query, spec, [])
                available = connector.columns(query)
            except SchemaError as exc:
                raise locate_schema_error(outcome, name, exc) from None
            if available is None:
                continue
            for i, check in enumerate(outcome.checks.get(name, [])):
                for column in check.columns:
                    if column not in available:
                        loc = ("checks", name, i, check.type, "column")
                        raise DeclarationError(
                            f"column {column!r} is not in the rows of metric {name!r} "
                            f"(columns: {', '.join(available)})",
                            file=outcome.source,
                            line=outcome.line_of(loc),
                            key=key_path(loc),
                        )
    finally:
        for connector in connectors.values():
            connector.close()


def check_actions(outcome: Outcome) -> None:
    """Every action of every approach could run as declared: a Python action's callable imports,
    a webhook's URL, an sql action's URL and driver, a file action's source (`radar validate`)."""
    from cycles.declaration.errors import key_path

    for i, approach in enumerate(outcome.approaches):
        for j, config in enumerate(approach.actions):
            try:
                action_class(config.type)(config).check(outcome.base_dir)
            except ActionError as exc:
                loc = ("approaches", i, "actions", j)
                raise DeclarationError(
                    f"action {config.name!r}: {exc}",
                    file=outcome.source,
                    line=outcome.line_of(loc),
                    key=key_path(loc),
                ) from None


def open_connector(outcome: Outcome, name: str) -> Connector:
    """An instance of the connector declared as `name`."""
    config = outcome.connectors[name]
    return connector_class(config.type)(name, config, base_dir=outcome.base_dir)


CONNECTOR_KEYS = {"path", "url", "base_url", "headers", "schema"}  # SchemaError keys of a connector
QUERY_KEYS = {"table", "sql", "filter", "records", "params"}  # ... of a metric's query


def locate_schema_error(outcome: Outcome, metric: str, exc: SchemaError) -> DeclarationError:
    """Point a missing file or column at the declaration key that names it."""
    from cycles.declaration.errors import key_path

    spec = outcome.metrics[metric]
    loc: tuple[str | int, ...]
    if exc.key in CONNECTOR_KEYS:
        loc = ("connectors", spec.connector, exc.key)
    elif exc.key in QUERY_KEYS:
        loc = ("metrics", metric, "query", exc.key)
    elif exc.key == "columns":
        loc = ("metrics", metric)
    else:
        loc = ("metrics", metric, *exc.key.split("."))

    return DeclarationError(
        str(exc), file=outcome.source, line=outcome.line_of(loc), key=key_path(loc)
    )


def run_cycle(
    outcome: Outcome,
    period: Period | str | None = None,
    *,
    store: Store | None = None,
    review: bool = False,
    dry_run: bool = False,
    today: date | None = None,
    runner: Callable[[Cycle, Stage], Any] | None = None,
    sign_off: AskSignOff | None = None,
    campaign: str | None = None,
    repeat_review: bool = True,
    reason: str = "",
    lock_wait: float = 0,
    limit: Limit | None = None,
) -> CycleRecord:
    """Advance `outcome`'s cycle for `period` through every stage that is due.

    `runner(cycle, stage)` runs one stage; the Prefect flow passes one that wraps it in a task.
    `sign_off(cycle, proposal)` asks a person about a decision `policy.sign_off` names and
    returns the answer (None: no answer yet, the cycle waits). `repeat_review=False` leaves a
    reviewed period as it is (a deployment's review run); `reason` leads the review's reasons.
    `lock_wait` is how long to wait for another run of the same period to end (0: fail at once).
    `limit(connector)` is held around each query of that connector (the Prefect layer passes
    one that takes a slot of the connector's concurrency limit).
    A period after the current one is refused unless this is a dry run.
    """
    if not isinstance(period, Period):
        period = parse_period(outcome, period, today)
    cycle = Cycle(outcome, period, store=store, review=review, dry_run=dry_run, today=today,
                  repeat_review=repeat_review, reason=reason, limit=limit)  # fmt: skip
    if not cycle.dry_run:
        refuse_future(outcome, period, cycle.today)
    try:
        with _exclusive(cycle, lock_wait):
            cycle.reload()
            if campaign:
                cycle.record.extra.campaign = campaign
            for stage in cycle.due():
                if stage is Stage.review and not cycle.ready_for_review(sign_off):
                    break
                (runner or Cycle.run)(cycle, stage)
    finally:
        cycle.close()
    return cycle.record


def refuse_future(outcome: Outcome, period: Period, today: date) -> None:
    """A period after the current one has not begun: nothing may be recorded or executed."""
    current = Period.containing(today, outcome.cadence)
    if period > current:
        raise UsageError(
            f"--period {period} has not begun: the current period of {outcome.outcome} is "
            f"{current} ({today} in {outcome.timezone}); nothing was recorded and no action ran "
            "(--dry-run shows what it would do)"
        )


def _exclusive(cycle: Cycle, wait: float = 0) -> AbstractContextManager[None]:
    """The run lock of the cycle's outcome and period (none for dry runs: they write nothing)."""
    if cycle.store is None or cycle.dry_run:
        return nullcontext()
    return cycle.store.lock(cycle.outcome.outcome, cycle.record.period, wait=wait)


__all__ = ["Cycle", "parse_period", "refuse_future", "run_cycle"]
