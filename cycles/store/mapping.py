"""Rows to records, free of SQLAlchemy: shared by the Store and the read-only fast path.

A row is anything with the table's columns as attributes (a SQLAlchemy Row, an ORM object, a
named tuple), its values already decoded: JSON parsed, timestamps timezone-aware UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from cycles.record import CheckSummary, CycleRecord, RecordExtra
from cycles.values import ActionRun, ApproachRef, CheckResult, Limits, PeriodValue, Stage, StageRun


def records(
    cycles: Iterable[Any],
    stage_runs: Iterable[Any],
    metric_values: Iterable[Any],
    check_results: Iterable[Any],
    actions: Iterable[Any],
) -> list[CycleRecord]:
    """Full records of one outcome's cycle rows; each child list in its table's order.

    Child rows order: stage runs by id, metric values and check results by position, ledger
    actions by id (matched to cycles by period).
    """
    runs, values, checks = _by_cycle(stage_runs), _by_cycle(metric_values), _by_cycle(check_results)
    ledger: dict[str, list[ActionRun]] = defaultdict(list)
    for row in actions:
        ledger[row.period].append(action_run(row))
    return [
        to_record(
            row,
            stage_runs=[_stage_run(r) for r in runs[row.id]],
            metrics=_metrics(values[row.id]),
            checks=[_check(c) for c in checks[row.id]],
            actions=ledger[row.period],
        )
        for row in cycles
    ]


def _by_cycle(rows: Iterable[Any]) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.cycle_id].append(row)
    return groups


def to_record(row: Any, **children: Any) -> CycleRecord:
    """A CycleRecord from a cycles row; `children` may give stage_runs, checks, metrics, actions."""
    checks = children.pop("checks", [])
    return CycleRecord(
        outcome=row.outcome,
        period=row.period,
        cadence=row.cadence,
        title=row.title,
        status=row.status,
        completed_stages=row.completed_stages,
        decision=row.decision,
        reasons=row.reasons,
        approach=_ref(row.approach_name, row.approach_params),
        next_approach=_ref(row.next_approach_name, row.next_approach_params),
        result_metric=row.result_metric,
        result_value=row.result_value,
        target=row.target,
        direction=row.direction,
        standing=row.standing,
        checks=CheckSummary(passed=row.checks_passed, failed=row.checks_failed, results=checks),
        limits=None if row.limits is None else Limits.model_validate(row.limits),
        signal=row.signal,
        updated_at=row.updated_at,
        extra=RecordExtra.stored(row.extra),  # each value read when first asked for
        **children,
    )


def _ref(name: str | None, params: dict[str, Any] | None) -> ApproachRef | None:
    return None if name is None else ApproachRef(name=name, params=params or {})


def action_run(row: Any) -> ActionRun:
    return ActionRun(
        name=row.action,
        type=row.type,
        key=row.key,
        status=row.status,
        reach=row.reach,
        error=row.error,
        attempts=row.attempts,
    )


def _stage_run(r: Any) -> StageRun:
    return StageRun(
        stage=Stage(r.stage),
        status=r.status,
        started_at=r.started_at,
        finished_at=r.finished_at,
        error=r.error,
    )


def _check(c: Any) -> CheckResult:
    return CheckResult(
        metric=c.metric,
        expectation=c.expectation,
        kwargs=c.kwargs,
        success=c.success,
        element_count=c.element_count,
        unexpected_count=c.unexpected_count,
        observed_value=c.observed_value,
        engine=c.engine,
        message=c.message,
    )


def _metrics(rows: list[Any]) -> dict[str, list[PeriodValue]]:
    metrics: dict[str, list[PeriodValue]] = {}
    for r in rows:
        metrics.setdefault(r.metric, []).append(
            PeriodValue(
                period=r.period,
                value=r.value,
                rows=r.row_count,
                numerator=r.numerator,
                denominator=r.denominator,
            )
        )
    return metrics
