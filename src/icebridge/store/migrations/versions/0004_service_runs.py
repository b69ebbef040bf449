"""Runs the service accepted: the request as accepted, who started it, a cancellation asked for, outcomes.

A run accepted by ``icebridge serve`` is recorded at once as ``queued`` with its request, so any
server on the same store can claim it (one conditional update), and one that was accepted but not
finished is taken up again after a restart. ``cancel_requested_at`` is how a cancellation asked of
one server reaches the server running it; ``outcomes`` keeps how each table ended in the run.

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the request, started_by, cancel_requested_at and outcomes columns, and an index on status."""
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("started_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("outcomes", sa.JSON(), nullable=True))
    op.create_index("ix_run_status", "run", ["status"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_run_status", table_name="run")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("outcomes")
        batch.drop_column("cancel_requested_at")
        batch.drop_column("started_by")
        batch.drop_column("request")
