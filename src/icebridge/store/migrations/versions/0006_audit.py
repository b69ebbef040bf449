"""The audit log: who did each logged step, and the table's state before and after it.

Every event row now names its ``actor`` (the user who started its run, else the operating-system
user of the process that did the step) and, for an event about a table, the table's state as the
previous entry left it (``before``) and as it is after the step (``after``), with what the step
itself read before and after (a governance step's grants). An index on ``ts`` serves
``icebridge audit --since``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add actor, before and after to the event log, and an index on its time."""
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("actor", sa.String(255), nullable=True))
        batch.add_column(sa.Column("before", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("after", sa.JSON(), nullable=True))
    op.create_index("ix_event_ts", "event", ["ts"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_event_ts", table_name="event")
    with op.batch_alter_table("event") as batch:
        batch.drop_column("after")
        batch.drop_column("before")
        batch.drop_column("actor")
