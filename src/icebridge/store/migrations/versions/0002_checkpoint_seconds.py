"""Checkpoint duration: how long each committed batch took, for throughput estimates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add checkpoint.seconds (null for batches recorded before it existed or settled after a crash)."""
    with op.batch_alter_table("checkpoint") as batch:
        batch.add_column(sa.Column("seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop checkpoint.seconds."""
    with op.batch_alter_table("checkpoint") as batch:
        batch.drop_column("seconds")
