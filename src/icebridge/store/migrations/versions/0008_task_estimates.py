"""The plan's estimate on each task: how long its copy should take, and on which engine.

``status`` then shows the estimate beside the copy's actual seconds (its checkpoints').

Revision ID: 0008
Revises: 0004
Create Date: 2027-02-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add task.estimate_seconds and task.estimate_engine."""
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("estimate_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("estimate_engine", sa.String(32), nullable=True))


def downgrade() -> None:
    """Drop them again."""
    with op.batch_alter_table("task") as batch:
        batch.drop_column("estimate_engine")
        batch.drop_column("estimate_seconds")
