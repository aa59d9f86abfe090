"""The history schema as typed SQLAlchemy models. Migration 0001 creates exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from cycles.store.revision import HEAD as HEAD  # the newest migration

# Lengths keep every indexed column within MariaDB's 3072-byte utf8mb4 key limit.
NAME = 200  # outcome, metric, approach and action names
PERIOD = 32
WORD = 32  # statuses, kinds, cadences, engines
KEY = 700  # "<outcome>/<period>/<approach>/<action>"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# utf8mb4_bin: exact, case-sensitive names and keys, as on PostgreSQL and SQLite.
MYSQL: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC, returned timezone-aware (UTC) on every database.

    SQLite and MySQL keep no zone, so values are written as naive UTC and read back as UTC.
    MySQL gets microsecond precision (DATETIME(6)); its default would drop fractions.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - drivers return datetimes
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def Json() -> JSON:
    """Portable JSON; Python None is SQL NULL."""
    return JSON(none_as_null=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CycleRow(Base):
    """One outcome's cycle for one period: the scalar and JSON fields of a CycleRecord."""

    __tablename__ = "cycles"
    __table_args__ = (UniqueConstraint("outcome", "period"), MYSQL)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    outcome: Mapped[str] = mapped_column(String(NAME))
    period: Mapped[str] = mapped_column(String(PERIOD))
    cadence: Mapped[str] = mapped_column(String(WORD))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(WORD))
    decision: Mapped[str | None] = mapped_column(String(WORD))
    reasons: Mapped[list[str]] = mapped_column(Json())
    approach_name: Mapped[str | None] = mapped_column(String(NAME))
    approach_params: Mapped[dict[str, Any] | None] = mapped_column(Json())
    next_approach_name: Mapped[str | None] = mapped_column(String(NAME))
    next_approach_params: Mapped[dict[str, Any] | None] = mapped_column(Json())
    result_metric: Mapped[str] = mapped_column(String(NAME))
    result_value: Mapped[float | None] = mapped_column(Double)
    target: Mapped[float] = mapped_column(Double)
    direction: Mapped[str] = mapped_column(String(WORD))
    standing: Mapped[float | None] = mapped_column(Double)
    checks_passed: Mapped[int] = mapped_column(Integer)
    checks_failed: Mapped[int] = mapped_column(Integer)
    limits: Mapped[dict[str, Any] | None] = mapped_column(Json())
    signal: Mapped[str | None] = mapped_column(String(WORD))
    completed_stages: Mapped[list[str]] = mapped_column(Json())
    extra: Mapped[dict[str, Any]] = mapped_column(Json())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _cycle_fk() -> Mapped[int]:
    return mapped_column(Integer, ForeignKey("cycles.id", ondelete="CASCADE"), index=True)


class StageRunRow(Base):
    """One run of one stage of a cycle, completed or failed; appended, never updated."""

    __tablename__ = "stage_runs"
    __table_args__ = (MYSQL,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[int] = _cycle_fk()
    stage: Mapped[str] = mapped_column(String(WORD))
    status: Mapped[str] = mapped_column(String(WORD))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class MetricValueRow(Base):
    """A metric's value in one period, as the cycle's last assessment used it."""

    __tablename__ = "metric_values"
    __table_args__ = (MYSQL,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[int] = _cycle_fk()
    position: Mapped[int] = mapped_column(Integer)  # keeps the record's metric and period order
    metric: Mapped[str] = mapped_column(String(NAME))
    period: Mapped[str] = mapped_column(String(PERIOD))
    value: Mapped[float | None] = mapped_column(Double)
    row_count: Mapped[int] = mapped_column(Integer)
    numerator: Mapped[float | None] = mapped_column(Double)
    denominator: Mapped[float | None] = mapped_column(Double)


class CheckResultRow(Base):
    """One data check's outcome in the cycle's last assessment."""

    __tablename__ = "check_results"
    __table_args__ = (MYSQL,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[int] = _cycle_fk()
    position: Mapped[int] = mapped_column(Integer)
    metric: Mapped[str] = mapped_column(String(NAME))
    expectation: Mapped[str] = mapped_column(String(NAME))
    kwargs: Mapped[dict[str, Any]] = mapped_column(Json())
    success: Mapped[bool] = mapped_column(Boolean)
    element_count: Mapped[int | None] = mapped_column(Integer)
    unexpected_count: Mapped[int | None] = mapped_column(Integer)
    observed_value: Mapped[Any] = mapped_column(Json(), nullable=True)
    engine: Mapped[str] = mapped_column(String(WORD))
    message: Mapped[str | None] = mapped_column(Text)


class ActionRow(Base):
    """The idempotency ledger: one row per action key, independent of the cycles table."""

    __tablename__ = "actions"
    __table_args__ = (Index(None, "outcome", "period"), MYSQL)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(KEY), unique=True)
    outcome: Mapped[str] = mapped_column(String(NAME))
    period: Mapped[str] = mapped_column(String(PERIOD))
    approach: Mapped[str] = mapped_column(String(NAME))
    action: Mapped[str] = mapped_column(String(NAME))
    type: Mapped[str] = mapped_column(String(NAME))
    status: Mapped[str] = mapped_column(String(WORD))
    reach: Mapped[float | None] = mapped_column(Double)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
