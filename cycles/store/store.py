"""Store: cycle history and the action ledger, kept in any SQLAlchemy database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cycles.errors import StoreError
from cycles.numbers import finite
from cycles.record import CycleRecord, Void
from cycles.secrets import redact, redact_deep
from cycles.store import convert, db, locks
from cycles.store.models import ActionRow, CheckResultRow, CycleRow, MetricValueRow, StageRunRow
from cycles.urls import default_url, normalise_url
from cycles.values import ACTION_FINAL, STAGES, ActionRun, Stage, StageRun

T = TypeVar("T")
FINISHED = ("succeeded", "resent", "failed", "skipped")
FINAL = ACTION_FINAL  # an action in one of these states never runs again
PENDING = "review pending"  # a cycle whose period ended and whose review waits (cycles.turn)
_NO_SYNC = {"synchronize_session": False}


class Store:
    """The history database. Each public method is one transaction; failures are StoreErrors."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        raw = normalise_url(url) if url is not None else default_url()
        self._engine = db.make_engine(raw)
        self._writer = self._engine.execution_options(**{db.WRITE: True})
        self.url: str = db.display(self._engine)
        if migrate:
            with db.translate(self._engine):
                if db.needs_upgrade(self._engine):
                    db.upgrade(self._engine)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def revision(self) -> str | None:
        """The schema's Alembic revision (None for an empty database)."""
        with db.translate(self._engine), self._engine.connect() as conn:
            return db.current_revision(conn)

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (a no-op when it is there already)."""
        with db.translate(self._engine):
            db.upgrade(self._engine)

    @contextmanager
    def lock(self, outcome: str, period: str, *, wait: float = 0) -> Iterator[None]:
        """Only one run of an outcome's period at a time: the second waits up to `wait` seconds
        for the first to end, then raises AlreadyRunning."""
        with db.translate(self._engine), locks.run_lock(self._engine, outcome, period, wait):
            yield

    def dispose(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with db.translate(self._engine), Session(self._engine) as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def _retrying(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one write transaction; retry once if a concurrent insert won a race."""
        with db.translate(self._engine):
            try:
                with self._write() as session:
                    return work(session)
            except IntegrityError:
                with self._write() as session:
                    return work(session)

    # --- cycles -----------------------------------------------------------------------------

    def get_cycle(self, outcome: str, period: str) -> CycleRecord | None:
        """The full record: stage runs, check results, metric values and ledger actions."""
        with self._read() as s:
            row = s.execute(
                select(CycleRow.__table__).where(
                    CycleRow.outcome == outcome, CycleRow.period == period
                )
            ).one_or_none()
            if row is None:
                return None
            return convert.Loader(s, lambda col: col == row.id, outcome, period).records([row])[0]

    def cycles(self, outcome: str, *, light: bool = False) -> list[CycleRecord]:
        """Every cycle of `outcome`, oldest period first; `light` skips the child rows."""
        query = select(CycleRow.__table__).where(CycleRow.outcome == outcome)
        with self._read() as s:
            rows = list(s.execute(query.order_by(CycleRow.period)))
            if light or not rows:
                return [convert.to_record(row) for row in rows]
            ids = select(CycleRow.id).where(CycleRow.outcome == outcome).scalar_subquery()
            return convert.Loader(s, lambda col: col.in_(ids), outcome).records(rows)

    def cycles_before(
        self, outcome: str, period: str, limit: int | None = None
    ) -> list[CycleRecord]:
        """Light records of the cycles before `period` (the newest `limit`), newest last."""
        query = (
            select(CycleRow.__table__)
            .where(CycleRow.outcome == outcome, CycleRow.period < period)
            .order_by(CycleRow.period.desc())
            .limit(limit)
        )
        with self._read() as s:
            return [convert.to_record(row) for row in reversed(list(s.execute(query)))]

    def outcomes(self) -> list[str]:
        """The outcomes that have at least one cycle, sorted."""
        with self._read() as s:
            return list(s.scalars(select(CycleRow.outcome).distinct().order_by(CycleRow.outcome)))

    def save_stage(self, record: CycleRecord, run: StageRun | None) -> None:
        """Upsert the cycle and append the run (if any); an assessment also replaces values and
        checks."""
        _not_dry(record)

        def work(s: Session) -> None:
            cycle_id = _upsert(s, record, record.status, [str(x) for x in record.completed_stages])
            if run is None:
                return
            s.execute(insert(StageRunRow).values(convert.stage_run_values(cycle_id, run)))
            if run.stage == Stage.assessment:
                for model in (MetricValueRow, CheckResultRow):
                    query = delete(model).where(model.cycle_id == cycle_id)
                    s.execute(query, execution_options=_NO_SYNC)
                values = convert.metric_values(cycle_id, record)
                checks = convert.check_values(cycle_id, record)
                for model, rows in ((MetricValueRow, values), (CheckResultRow, checks)):
                    if rows:
                        s.execute(insert(model), rows)

        self._retrying(work)

    def save_failure(self, record: CycleRecord, run: StageRun) -> None:
        """Upsert the cycle (failed unless stages completed before) and append the failed run."""
        _not_dry(record)

        def work(s: Session) -> None:
            stored = s.scalar(
                select(CycleRow.completed_stages).where(
                    CycleRow.outcome == record.outcome, CycleRow.period == record.period
                )
            )
            done = set(stored or ()) | {str(x) for x in record.completed_stages}
            completed = [str(stage) for stage in STAGES if stage in done]
            status = record.status if record.status != "failed" else "open"
            cycle_id = _upsert(s, record, status if completed else "failed", completed)
            s.execute(insert(StageRunRow).values(convert.stage_run_values(cycle_id, run)))

        self._retrying(work)

    def mark_pending(self, outcome: str, period: str, why: str) -> bool:
        """Mark an opened, unreviewed cycle `review pending`, with why (`extra.pending`); False
        when it is reviewed, void or waiting for a sign-off meanwhile (then nothing changes)."""

        def work(s: Session) -> bool:
            row = _locked_row(s, outcome, period)
            if row is None or row.status not in ("open", "failed", PENDING):
                return False
            if "review" in (row.completed_stages or []):
                return False
            row.status = PENDING
            row.extra = {**(row.extra or {}), "pending": redact(why)}
            row.updated_at = convert.now()
            return True

        return self._retrying(work)

    def void_cycle(self, outcome: str, period: str, reason: str) -> CycleRecord:
        """Set a recorded cycle aside: status `void`, with the reason and what it was before.

        The cycle and its stage runs stay; nothing else changes. StoreError when there is none.
        """

        def work(s: Session) -> bool:
            row = _locked_row(s, outcome, period)
            if row is None:
                return False
            if row.status != "void":
                void = Void(reason=reason, at=convert.now().isoformat(), status=row.status)
                row.extra = {**(row.extra or {}), "void": redact_deep(void.model_dump(mode="json"))}
                row.status = "void"
                row.updated_at = convert.now()
            return True

        if not self._retrying(work):
            raise StoreError(f"no cycle {outcome}/{period} is recorded in {self.url}")
        found = self.get_cycle(outcome, period)
        assert found is not None
        return found

    def delete_outcome(self, outcome: str) -> int:
        """Remove the outcome's cycles, their child rows and its ledger rows; count the cycles."""

        def work(s: Session) -> int:
            ids = select(CycleRow.id).where(CycleRow.outcome == outcome).scalar_subquery()
            for model in (StageRunRow, MetricValueRow, CheckResultRow):
                s.execute(delete(model).where(model.cycle_id.in_(ids)), execution_options=_NO_SYNC)
            gone = s.execute(
                delete(CycleRow).where(CycleRow.outcome == outcome), execution_options=_NO_SYNC
            )
            s.execute(
                delete(ActionRow).where(ActionRow.outcome == outcome), execution_options=_NO_SYNC
            )
            return int(gone.rowcount)  # type: ignore[attr-defined]

        return self._retrying(work)

    # --- the action ledger ------------------------------------------------------------------

    def get_action(self, key: str) -> ActionRun | None:
        with self._read() as s:
            row = s.scalars(select(ActionRow).where(ActionRow.key == key)).one_or_none()
            return None if row is None else convert.action_run(row)

    def begin_action(
        self, *, key: str, outcome: str, period: str, approach: str, action: str, type: str
    ) -> ActionRun:
        """Mark `key` pending (attempts + 1). A succeeded or skipped action comes back unchanged."""
        now = convert.now()
        retry = (
            update(ActionRow)
            .where(ActionRow.key == key, ActionRow.status.not_in(FINAL))
            .values(
                attempts=ActionRow.attempts + 1,
                status="pending",
                reach=None,
                error=None,
                started_at=now,
                finished_at=None,
            )
        )
        with db.translate(self._engine):
            try:
                with self._write() as s:
                    s.execute(retry, execution_options=_NO_SYNC)
                    row = s.scalars(select(ActionRow).where(ActionRow.key == key)).one_or_none()
                    if row is None:
                        row = ActionRow(
                            key=key,
                            outcome=outcome,
                            period=period,
                            approach=approach,
                            action=action,
                            type=type,
                            status="pending",
                            attempts=1,
                            started_at=now,
                        )
                        s.add(row)
                        s.flush()
                    return convert.action_run(row)
            except IntegrityError:  # another process inserted the key first: its row decides
                pass
        return self._must_get(key)

    def finish_action(
        self, key: str, *, status: str, reach: float | None = None, error: str | None = None
    ) -> ActionRun:
        """Record how an action begun with `begin_action` ended."""
        if status not in FINISHED:
            raise ValueError(f"finish_action status must be one of {FINISHED}, not {status!r}")
        query = (
            update(ActionRow)
            .where(ActionRow.key == key)
            .values(
                status=status,
                reach=finite(reach),
                error=convert.clip(error),
                finished_at=convert.now(),
            )
        )

        def work(s: Session) -> int:
            done = s.execute(query, execution_options=_NO_SYNC)
            return int(done.rowcount)  # type: ignore[attr-defined]

        if not self._retrying(work):
            raise StoreError(f"history database {self.url}: no action {key!r} was begun")
        return self._must_get(key)

    def skip_action(
        self,
        *,
        key: str,
        outcome: str,
        period: str,
        approach: str,
        action: str,
        type: str,
        reason: str,
    ) -> ActionRun:
        """Record `key` as skipped (the reason goes in `error`) unless it already has a row."""
        fields = {
            "key": key,
            "outcome": outcome,
            "period": period,
            "approach": approach,
            "action": action,
            "type": type,
            "status": "skipped",
            "attempts": 0,
            "error": convert.clip(reason),
        }

        def work(s: Session) -> None:
            if s.scalar(select(ActionRow.id).where(ActionRow.key == key)) is None:
                s.execute(insert(ActionRow).values(**fields, finished_at=convert.now()))

        self._retrying(work)
        return self._must_get(key)

    def _must_get(self, key: str) -> ActionRun:
        found = self.get_action(key)
        if found is None:  # pragma: no cover - only if the row is deleted concurrently
            raise StoreError(f"history database {self.url}: action {key!r} vanished")
        return found


def _locked_row(s: Session, outcome: str, period: str) -> CycleRow | None:
    """The cycle row of `outcome`/`period`, locked until the transaction ends; None if none."""
    return s.scalars(
        select(CycleRow)
        .where(CycleRow.outcome == outcome, CycleRow.period == period)
        .with_for_update()
    ).one_or_none()


def _upsert(s: Session, record: CycleRecord, status: str, completed: list[str]) -> int:
    """Insert or update the cycle row (locked for the transaction); return its id."""
    fields = convert.cycle_fields(record, status, completed)
    row = _locked_row(s, record.outcome, record.period)
    if row is None:
        created = fields["updated_at"]
        row = CycleRow(outcome=record.outcome, period=record.period, created_at=created, **fields)
        s.add(row)
    else:
        for name, value in fields.items():
            setattr(row, name, value)
    s.flush()
    return row.id


def _not_dry(record: CycleRecord) -> None:
    if record.dry_run:
        raise ValueError("dry-run records are never stored: check `record.dry_run` first")
