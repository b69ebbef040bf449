"""Typed events on one bus: what a run is doing, for everyone who watches it.

Phases, the runner and the services publish; subscribers watch: the store's event log (every event
whose ``persist`` is true becomes an ``event`` row), the terminal progress of the CLI, and — built on
the same bus — the Prometheus metrics and the live web view. A subscriber never slows or fails the
work: its errors are logged and the event goes on to the others.

``Progress`` events are increments (files and bytes just done), published often and never stored;
``TableStarted`` carries the totals they count towards.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened in a run, to one table or to the run as a whole."""

    kind: ClassVar[str] = "event"
    persist: ClassVar[bool] = True  # kept in the store's event log

    run_id: int | None = None
    task_id: int | None = None
    table: str | None = None  # the source table, ``catalog.ns.table``
    at: datetime = field(default_factory=_now)

    def message(self) -> str:
        """One line for people (the event log's message)."""
        return self.kind

    def data(self) -> dict[str, Any]:
        """The event's own fields, JSON-friendly, for the event log and the live views."""
        skip = {"run_id", "task_id", "at"}
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in skip}

    def to_dict(self) -> dict[str, Any]:
        """Everything, for a stream of events: kind, time, ids and fields."""
        return {
            "kind": event_kind(self),
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "task_id": self.task_id,
            "message": self.message(),
            **self.data(),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return _plain(asdict(value))
    return value


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run-started"
    command: str
    args: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        return f"{self.command} started"


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run-finished"
    command: str
    status: str
    summary: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        return f"{self.command} {self.status}"


@dataclass(frozen=True, kw_only=True)
class TableStarted(Event):
    """Work on a table began; ``files_total``/``bytes_total`` are what its progress counts towards."""

    kind: ClassVar[str] = "table-started"
    destination: str = ""
    phase: str = ""
    files_total: int = 0
    bytes_total: int = 0

    def message(self) -> str:
        return f"{self.table}: {self.phase} started ({self.files_total} files, {self.bytes_total} bytes)"


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(Event):
    """A table moved to another phase; a new phase may bring new totals (validation reads both sides)."""

    kind: ClassVar[str] = "phase-started"
    phase: str
    files_total: int | None = None
    bytes_total: int | None = None

    def message(self) -> str:
        return f"{self.table}: {self.phase}"


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    """Files and bytes just done (an increment), in the table's current phase."""

    kind: ClassVar[str] = "progress"
    persist: ClassVar[bool] = False
    phase: str
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True, kw_only=True)
class BatchCommitted(Event):
    kind: ClassVar[str] = "batch-committed"
    batch: int
    files: int
    rows: int
    bytes: int
    seconds: float | None = None
    dest_snapshot_id: int | None = None
    source_snapshot_id: int | None = None

    def message(self) -> str:
        return f"{self.table}: batch {self.batch} committed ({self.files} files, {self.rows} rows)"


@dataclass(frozen=True, kw_only=True)
class FileCopied(Event):
    """One file copied byte for byte, and the way its bytes went (one of ``icebridge.storage.WAYS``):
    ``server-side`` (the object store copied it), ``kernel`` (``copy_file_range``), ``user-space`` (read and
    written here where the kernel refused), ``arrow`` or ``stream`` (streamed through this process)."""

    kind: ClassVar[str] = "file-copied"
    path: str
    way: str
    bytes: int

    def message(self) -> str:
        return f"{self.table}: {self.path} copied ({self.way}, {self.bytes} bytes)"


@dataclass(frozen=True, kw_only=True)
class SnapshotReplayed(Event):
    """One source commit carried to the destination by a sync, and how (files, rewrite, reload)."""

    kind: ClassVar[str] = "snapshot-replayed"
    source_snapshot_id: int
    dest_snapshot_id: int | None
    operation: str
    how: str
    files_added: int
    files_removed: int
    bytes: int
    seconds: float | None = None

    def message(self) -> str:
        return (
            f"{self.table}: source snapshot {self.source_snapshot_id} ({self.operation}) replayed as "
            f"{self.how}: +{self.files_added} -{self.files_removed} files"
        )


@dataclass(frozen=True, kw_only=True)
class CutoverStepDone(Event):
    """One step of a table's cut-over procedure (or of its rollback) finished."""

    kind: ClassVar[str] = "cutover-step"
    step: str
    action: str  # done | undone | resumed
    detail: str

    def message(self) -> str:
        return f"{self.table}: cut-over step {self.step} {self.action}: {self.detail}"


@dataclass(frozen=True, kw_only=True)
class Retried(Event):
    kind: ClassVar[str] = "retry"
    what: str
    attempt: int
    delay: float
    error: str
    error_class: str = ""

    def message(self) -> str:
        return f"{self.what}: attempt {self.attempt} failed ({self.error}); retrying in {self.delay:.1f}s"


@dataclass(frozen=True, kw_only=True)
class Validated(Event):
    kind: ClassVar[str] = "validated"
    level: int
    comparator: str
    passed: bool
    summary: str

    def message(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return f"{self.table}: level {self.level} {self.comparator} {verdict}: {self.summary}"


@dataclass(frozen=True, kw_only=True)
class TableFinished(Event):
    kind: ClassVar[str] = "table-finished"
    status: str
    phase: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0
    outcome: str = ""
    error_class: str | None = None

    def message(self) -> str:
        return f"{self.table}: {self.status} ({self.outcome})" if self.outcome else f"{self.table}: {self.status}"


@dataclass(frozen=True, kw_only=True)
class Note(Event):
    """A fact worth keeping that has no type of its own (scaffolded, settled, archived, a statement, ...)."""

    kind: ClassVar[str] = "note"
    name: str
    text: str
    details: dict[str, Any] | None = None

    def message(self) -> str:
        return self.text

    def data(self) -> dict[str, Any]:
        return _plain(self.details) if self.details is not None else {}


def event_kind(event: Event) -> str:
    """The kind an event is logged under (a note carries its own)."""
    return event.name if isinstance(event, Note) else event.kind


Handler = Callable[[Event], None]


class EventBus:
    """Publish events to every subscriber, in the publishing thread; safe from any thread."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()

    def subscribe(self, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for every event from now on; returns the function that unsubscribes it."""
        with self._lock:
            self._handlers.append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers:
                    self._handlers.remove(handler)

        return unsubscribe

    def publish(self, event: Event) -> None:
        """Hand ``event`` to every subscriber; one that fails is logged and the others still get it."""
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", handler, event.kind)
