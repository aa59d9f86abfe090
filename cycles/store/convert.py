"""Records to rows, and the Loader of rows; rows to records is in `mapping` (re-exported)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from cycles.numbers import finite
from cycles.record import CycleRecord
from cycles.secrets import redact, redact_data, redact_deep
from cycles.store import mapping
from cycles.store.mapping import action_run as action_run  # re-exported for the Store
from cycles.store.mapping import to_record as to_record
from cycles.store.models import ActionRow, CheckResultRow, MetricValueRow, StageRunRow
from cycles.values import StageRun

CLIP = 16_000  # characters: error texts fit MySQL's 64 KB TEXT even in 4-byte UTF-8


def now() -> datetime:
    return datetime.now(UTC)


def clip(text: str | None) -> str | None:
    """`text` redacted, and cut to fit."""
    if text is None:
        return None
    text = redact(text)
    return text if len(text) <= CLIP else text[: CLIP - 1] + "…"


def cycle_fields(record: CycleRecord, status: str, completed: list[str]) -> dict[str, Any]:
    """The cycles-row columns (except outcome, period, created_at) for `record`."""
    approach, nxt = record.approach, record.next_approach
    return {
        "cadence": record.cadence,
        "title": redact(record.title),
        "status": status,
        "decision": None if record.decision is None else str(record.decision),
        "reasons": list(record.reasons),  # built from structure: see secrets.STRUCTURAL
        "approach_name": None if approach is None else approach.name,
        "approach_params": None if approach is None else redact_deep(dict(approach.params)),
        "next_approach_name": None if nxt is None else nxt.name,
        "next_approach_params": None if nxt is None else redact_deep(dict(nxt.params)),
        "result_metric": record.result_metric,
        "result_value": finite(record.result_value),
        "target": record.target,
        "direction": record.direction,
        "standing": finite(record.standing),
        "checks_passed": record.checks.passed,
        "checks_failed": record.checks.failed,
        "limits": None if record.limits is None else record.limits.model_dump(mode="json"),
        "signal": None if record.signal is None else str(record.signal),
        "completed_stages": completed,
        "extra": redact_data(record.extra.model_dump(mode="json")),
        "updated_at": now(),
    }


def stage_run_values(cycle_id: int, run: StageRun) -> dict[str, Any]:
    return {
        "cycle_id": cycle_id,
        "stage": str(run.stage),
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "error": clip(run.error),
    }


def metric_values(cycle_id: int, record: CycleRecord) -> list[dict[str, Any]]:
    """One row per (metric, period), numbered so the record's order survives."""
    series = [(metric, v) for metric, values in record.metrics.items() for v in values]
    return [
        {
            "cycle_id": cycle_id,
            "position": position,
            "metric": metric,
            "period": v.period,
            "value": finite(v.value),
            "row_count": v.rows,
            "numerator": finite(v.numerator),
            "denominator": finite(v.denominator),
        }
        for position, (metric, v) in enumerate(series)
    ]


def check_values(cycle_id: int, record: CycleRecord) -> list[dict[str, Any]]:
    return [
        {
            "cycle_id": cycle_id,
            "position": position,
            **c.model_dump(exclude={"message"}),
            "message": clip(c.message),
        }
        for position, c in enumerate(record.checks.results)
    ]


class Loader:
    """Loads the child rows of many cycles with one query per table (no N+1).

    Rows are read as plain tuples (not ORM objects): five times faster for long histories.
    """

    def __init__(
        self,
        session: Session,
        where: Callable[[Any], ColumnElement[bool]],
        outcome: str,
        period: str | None = None,
    ) -> None:
        self.session, self.where, self.outcome, self.period = session, where, outcome, period

    def _rows(self, model: Any, order: Any) -> list[Any]:
        query = select(model.__table__).where(self.where(model.cycle_id)).order_by(order)
        return list(self.session.execute(query))

    def _actions(self) -> list[Any]:
        query = select(ActionRow.__table__).where(ActionRow.outcome == self.outcome)
        if self.period is not None:
            query = query.where(ActionRow.period == self.period)
        return list(self.session.execute(query.order_by(ActionRow.id)))

    def records(self, rows: list[Any]) -> list[CycleRecord]:
        return mapping.records(
            rows,
            self._rows(StageRunRow, StageRunRow.id),
            self._rows(MetricValueRow, MetricValueRow.position),
            self._rows(CheckResultRow, CheckResultRow.position),
            self._actions(),
        )
