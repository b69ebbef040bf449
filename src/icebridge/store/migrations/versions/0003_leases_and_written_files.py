"""Leases on tasks and runs, the work time of each task, and the ledger of files each task wrote.

A task is held by one owner (a process) until ``lease_until``; the holder heartbeats. Every file a
task writes is recorded in ``written_file`` before it is written, so a cleanup deletes only files
that this task wrote and nothing else under the destination's folders.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the lease columns and the written_file table."""
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("work_seconds", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("owner", sa.String(255), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "written_file",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("path_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name="fk_written_file_task_id_task"),
        sa.PrimaryKeyConstraint("id", name="pk_written_file"),
        sa.UniqueConstraint("task_id", "path_key", name="uq_written_file_task_id"),
    )
    op.create_index("ix_written_file_task_id", "written_file", ["task_id"])


def downgrade() -> None:
    """Drop the ledger and the lease columns."""
    op.drop_index("ix_written_file_task_id", table_name="written_file")
    op.drop_table("written_file")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("work_seconds")
        batch.drop_column("claimed_at")
        batch.drop_column("lease_until")
        batch.drop_column("owner")
