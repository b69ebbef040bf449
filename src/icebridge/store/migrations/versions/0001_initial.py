"""Initial state schema: run, task, checkpoint, finding, validation, inventory, event.

Revision ID: 0001
Revises:
Create Date: 2024-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    """A timezone-aware timestamp column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table of the state store."""
    op.create_table(
        "run",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("config_path", sa.Text(), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("report_path", sa.Text(), nullable=True),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.PrimaryKeyConstraint("id", name="pk_run"),
    )
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("destination", sa.String(1024), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(16), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("source_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        _ts("started_at"),
        _ts("finished_at"),
        _ts("updated_at", nullable=False),
        sa.Column("archived_metadata_location", sa.Text(), nullable=True),
        _ts("archived_at"),
        sa.PrimaryKeyConstraint("id", name="pk_task"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name="fk_task_run_id_run"),
        sa.UniqueConstraint("source", name="uq_task_source"),
        sa.UniqueConstraint("destination", name="uq_task_destination"),
    )
    op.create_table(
        "checkpoint",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("source_snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("dest_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoint"),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name="fk_checkpoint_task_id_task"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name="fk_checkpoint_run_id_run"),
        sa.UniqueConstraint("task_id", "source_snapshot_id", "batch", name="uq_checkpoint_task_id"),
    )
    op.create_index("ix_checkpoint_task_id", "checkpoint", ["task_id"])
    op.create_table(
        "finding",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(1024), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fix", sa.Text(), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_finding"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name="fk_finding_run_id_run"),
    )
    op.create_index("ix_finding_run_id", "finding", ["run_id"])
    op.create_table(
        "validation",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("comparator", sa.String(64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_validation"),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name="fk_validation_task_id_task"),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name="fk_validation_run_id_run"),
    )
    op.create_index("ix_validation_task_id", "validation", ["task_id"])
    op.create_table(
        "inventory",
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        _ts("captured_at", nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_inventory"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _ts("ts", nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_event"),
    )
    op.create_index("ix_event_run_id", "event", ["run_id"])
    op.create_index("ix_event_task_id", "event", ["task_id"])


def downgrade() -> None:
    """Drop every table of the state store."""
    op.drop_index("ix_event_task_id", table_name="event")
    op.drop_index("ix_event_run_id", table_name="event")
    op.drop_table("event")
    op.drop_table("inventory")
    op.drop_index("ix_validation_task_id", table_name="validation")
    op.drop_table("validation")
    op.drop_index("ix_finding_run_id", table_name="finding")
    op.drop_table("finding")
    op.drop_index("ix_checkpoint_task_id", table_name="checkpoint")
    op.drop_table("checkpoint")
    op.drop_table("task")
    op.drop_table("run")
