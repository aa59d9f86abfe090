"""The initial history schema: cycles, stage_runs, metric_values, check_results, actions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Frozen: this file does not import the models; `test_store` checks that they still agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql
from sqlalchemy.schema import SchemaItem

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME, PERIOD, WORD, KEY = 200, 32, 32, 700
# utf8mb4_bin: exact, case-sensitive names and keys, as on PostgreSQL and SQLite.
MYSQL: dict[str, Any] = {
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mysql_engine": "InnoDB",
}


def _time() -> sa.DateTime:
    """UTC timestamps; MySQL/MariaDB need DATETIME(6) to keep microseconds."""
    return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _cycle_id(table: str) -> list[SchemaItem]:
    return [
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cycle_id"], ["cycles.id"], name=f"fk_{table}_cycle_id_cycles", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "cycles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("outcome", sa.String(NAME), nullable=False),
        sa.Column("period", sa.String(PERIOD), nullable=False),
        sa.Column("cadence", sa.String(WORD), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(WORD), nullable=False),
        sa.Column("decision", sa.String(WORD), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("approach_name", sa.String(NAME), nullable=True),
        sa.Column("approach_params", sa.JSON(), nullable=True),
        sa.Column("next_approach_name", sa.String(NAME), nullable=True),
        sa.Column("next_approach_params", sa.JSON(), nullable=True),
        sa.Column("result_metric", sa.String(NAME), nullable=False),
        sa.Column("result_value", sa.Double(), nullable=True),
        sa.Column("target", sa.Double(), nullable=False),
        sa.Column("direction", sa.String(WORD), nullable=False),
        sa.Column("standing", sa.Double(), nullable=True),
        sa.Column("checks_passed", sa.Integer(), nullable=False),
        sa.Column("checks_failed", sa.Integer(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=True),
        sa.Column("signal", sa.String(WORD), nullable=True),
        sa.Column("completed_stages", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cycles"),
        sa.UniqueConstraint("outcome", "period", name="uq_cycles_outcome_period"),
        **MYSQL,
    )
    op.create_table(
        "stage_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_cycle_id("stage_runs"),
        sa.Column("stage", sa.String(WORD), nullable=False),
        sa.Column("status", sa.String(WORD), nullable=False),
        sa.Column("started_at", _time(), nullable=False),
        sa.Column("finished_at", _time(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_stage_runs"),
        **MYSQL,
    )
    op.create_table(
        "metric_values",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_cycle_id("metric_values"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(NAME), nullable=False),
        sa.Column("period", sa.String(PERIOD), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("numerator", sa.Double(), nullable=True),
        sa.Column("denominator", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_metric_values"),
        **MYSQL,
    )
    op.create_table(
        "check_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_cycle_id("check_results"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(NAME), nullable=False),
        sa.Column("expectation", sa.String(NAME), nullable=False),
        sa.Column("kwargs", sa.JSON(), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("element_count", sa.Integer(), nullable=True),
        sa.Column("unexpected_count", sa.Integer(), nullable=True),
        sa.Column("observed_value", sa.JSON(), nullable=True),
        sa.Column("engine", sa.String(WORD), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_check_results"),
        **MYSQL,
    )
    for table in ("stage_runs", "metric_values", "check_results"):
        op.create_index(f"ix_{table}_cycle_id", table, ["cycle_id"])
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(KEY), nullable=False),
        sa.Column("outcome", sa.String(NAME), nullable=False),
        sa.Column("period", sa.String(PERIOD), nullable=False),
        sa.Column("approach", sa.String(NAME), nullable=False),
        sa.Column("action", sa.String(NAME), nullable=False),
        sa.Column("type", sa.String(NAME), nullable=False),
        sa.Column("status", sa.String(WORD), nullable=False),
        sa.Column("reach", sa.Double(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("finished_at", _time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_actions"),
        sa.UniqueConstraint("key", name="uq_actions_key"),
        **MYSQL,
    )
    op.create_index("ix_actions_outcome_period", "actions", ["outcome", "period"])


def downgrade() -> None:
    op.drop_table("actions")
    op.drop_table("check_results")
    op.drop_table("metric_values")
    op.drop_table("stage_runs")
    op.drop_table("cycles")
