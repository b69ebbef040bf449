"""The phases of a migration, one module each.

Estate-wide phases (``inventory``, ``plan``, ``preflight``) look at many tables and take the
process's ``AppContext``. Per-table phases (``scaffold``, ``copy``, ``validate``, ``cutover``) share
one signature, ``run(work: TableWork) -> PhaseResult``: the runner hands each the table it holds
the lease of, and the phase records what it did through ``work``. Phases never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icebridge.events import Event, Note, PhaseStarted
from icebridge.model import Phase

# The markers every destination commit carries in its snapshot summary (read back on resume).
TASK_KEY = "icebridge.task"  # the source table, catalog.ns.table
SNAPSHOT_KEY = "icebridge.source-snapshot-id"  # the source snapshot the commit copies or replays
BATCH_KEY = "icebridge.batch"  # a copy's batch number
BATCHING_KEY = "icebridge.batching"  # how the copy grouped files into batches
REPLAY_KEY = "icebridge.replay"  # a sync's commit: how it replayed its source commit (files, rewrite, reload)
SOURCE_UUID_KEY = "icebridge.source-table-uuid"  # the source table's uuid: a re-created source differs

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.config import Config
    from icebridge.context import AppContext, RunScope
    from icebridge.leases import TaskCancel
    from icebridge.ledger import FileLedger
    from icebridge.store import Store, TaskRow


@dataclass(frozen=True)
class PhaseResult:
    """What a per-table phase did, in words for the run's report."""

    phase: Phase
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class TableWork:
    """One table as a phase sees it: the run holding its lease, its task row, and what is known so far."""

    scope: RunScope
    task: TaskRow  # the holder's claim; phases move it on with ``advance``
    source: Table | None
    ledger: FileLedger
    cancel: TaskCancel
    destination: Table | None = None
    snapshot_id: int | None = None  # the pinned source snapshot (None: the source had none)
    level: int | None = None  # validate up to this level only (``icebridge validate --level``)
    allow_reload: bool = False  # sync: a broken lineage is healed by a full reload instead of refused
    discard_writes: bool = False  # rollback: even though the destination received commits after cut-over

    @property
    def app(self) -> AppContext:
        return self.scope.app

    @property
    def store(self) -> Store:
        return self.scope.store

    @property
    def config(self) -> Config:
        return self.scope.config

    def advance(
        self, phase: Phase, *, files_total: int | None = None, bytes_total: int | None = None, **fields: int | None
    ) -> None:
        """Move the held task to ``phase`` (optionally setting snapshot id, rows, bytes) and say so,
        with the files and bytes the phase will work through when they are known."""
        before = Phase(self.task.phase)
        self.task = self.store.advance_task(self.task, phase, **fields)
        if Phase(phase) is not before or files_total is not None:
            self.publish(PhaseStarted(phase=str(phase), files_total=files_total, bytes_total=bytes_total))

    def publish(self, event: Event) -> None:
        """Publish an event about this table."""
        import dataclasses

        self.scope.publish(dataclasses.replace(event, task_id=self.task.id, table=self.task.source))

    def note(self, name: str, text: str, **details: Any) -> None:
        """Keep a fact about this table in the event log."""
        self.publish(Note(name=name, text=text, details=details or None))

    def require_source(self) -> Table:
        """The source table, which the runner loaded for this pipeline."""
        if self.source is None:
            raise AssertionError(f"{self.task.source}: a phase needed the source but it was not loaded")
        return self.source

    def require_destination(self) -> Table:
        """The destination table, which scaffold has made or adopted."""
        if self.destination is None:
            raise AssertionError(f"{self.task.source}: a phase needed the destination before scaffold ran")
        return self.destination
