"""Sync lag: how far each copied table is behind its source, in snapshots and in seconds.

A copied table holds the source snapshot its task pinned, or the last one a sync replayed (``sync``
moves the task's snapshot on); the source may have moved on since. The lag
is the number of source snapshots after that one on the source's current lineage, and how long the
oldest of them has waited (now minus its commit time; 0 when none waits). Reading it costs one catalog
round trip and one metadata file per table, so a caller asks for a bounded number of tables at a time.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import IceBridgeError
from icebridge.model import Phase, TableRef

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.store import TaskRow

# a destination exists and the source is live (a rolled-back table's source is live again)
COPIED = frozenset({Phase.VALIDATE, Phase.MIGRATED, Phase.CUTOVER, Phase.ROLLED_BACK})


class TableLag(BaseModel):
    """One copied table's distance from its source."""

    model_config = ConfigDict(frozen=True)

    source: str
    copied_snapshot_id: int | None
    current_snapshot_id: int | None
    snapshots_behind: int | None = Field(description="Source snapshots after the copied one (None: unknown).")
    seconds_behind: float | None = Field(description="How long the oldest uncopied source snapshot has waited.")
    error: str | None = Field(default=None, description="Why the lag could not be read.")


class LagService:
    """Reads the lag of copied tables from the store and their source catalogs."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def candidates(self) -> list[TaskRow]:
        """The tasks whose table is copied and whose source is still in its catalog, by source."""
        return [t for t in self.app.store.list_tasks() if t.source_snapshot_id is not None and Phase(t.phase) in COPIED]

    def lag(self, tasks: list[TaskRow]) -> list[TableLag]:
        """The lag of each of ``tasks`` (one catalog round trip each)."""
        return [self._one(task) for task in tasks]

    def _one(self, task: TaskRow) -> TableLag:
        copied = task.source_snapshot_id
        try:
            source = self.app.catalogs.load_table(TableRef.parse(task.source))
        except (IceBridgeError, ValueError) as exc:
            return TableLag(
                source=task.source,
                copied_snapshot_id=copied,
                current_snapshot_id=None,
                snapshots_behind=None,
                seconds_behind=None,
                error=self.app.config.redact(str(exc)),
            )
        current = source.current_snapshot()
        current_id = current.snapshot_id if current is not None else None
        waiting = []  # source snapshots after the copied one, newest first
        snapshot = current
        while snapshot is not None and snapshot.snapshot_id != copied:
            waiting.append(snapshot)
            parent = snapshot.parent_snapshot_id
            snapshot = source.snapshot_by_id(parent) if parent is not None else None
        if snapshot is None and current is not None and copied is not None:
            return TableLag(
                source=task.source,
                copied_snapshot_id=copied,
                current_snapshot_id=current_id,
                snapshots_behind=None,
                seconds_behind=None,
                error=f"the copied snapshot {copied} is not on the source's current lineage (rolled back or expired)",
            )
        seconds = max(0.0, time.time() - waiting[-1].timestamp_ms / 1000) if waiting else 0.0
        return TableLag(
            source=task.source,
            copied_snapshot_id=copied,
            current_snapshot_id=current_id,
            snapshots_behind=len(waiting),
            seconds_behind=round(seconds, 3),
        )
