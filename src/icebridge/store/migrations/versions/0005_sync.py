"""Sync and cut-over records: which destination snapshot replays which source snapshot, and each cut-over step.

``snapshot_map`` holds one row per source snapshot a task's destination holds: the destination
snapshot that carries it, the source commit's operation and how it was carried (``files``: the
file-level delta byte for byte; ``rewrite``: the affected partitions rewritten; ``copy``: the
initial copy). ``cutover_step`` holds one row per step of a table's cut-over procedure (freeze,
sync, validate, swap, archive) with what it did, so a crash resumes at the step it stopped at and
a rollback undoes the completed ones in reverse.

Revision ID: 0005
Revises: 0004
Create Date: 2027-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the snapshot_map and cutover_step tables."""
    op.create_table(
        "snapshot_map",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("source_snapshot_id", sa.BigInteger(), nullable=False),
        sa.Column("dest_snapshot_id", sa.BigInteger(), nullable=True),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("files_added", sa.Integer(), nullable=False),
        sa.Column("files_removed", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name="fk_snapshot_map_task_id_task"),
        sa.PrimaryKeyConstraint("id", name="pk_snapshot_map"),
        sa.UniqueConstraint("task_id", "source_snapshot_id", name="uq_snapshot_map_task_id"),
    )
    op.create_index("ix_snapshot_map_task_id", "snapshot_map", ["task_id"])
    op.create_table(
        "cutover_step",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name="fk_cutover_step_task_id_task"),
        sa.PrimaryKeyConstraint("id", name="pk_cutover_step"),
        sa.UniqueConstraint("task_id", "step", name="uq_cutover_step_task_id"),
    )
    op.create_index("ix_cutover_step_task_id", "cutover_step", ["task_id"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_cutover_step_task_id", table_name="cutover_step")
    op.drop_table("cutover_step")
    op.drop_index("ix_snapshot_map_task_id", table_name="snapshot_map")
    op.drop_table("snapshot_map")
