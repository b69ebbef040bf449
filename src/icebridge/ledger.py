"""The ledger of files a task writes: recorded before they are written, the only files a cleanup deletes.

Every file a task writes into its destination — copied data files, rewritten data files, manifests,
manifest lists, table metadata — is recorded in the state store before the write starts. A cleanup
(``FileLedger.sweep``) then deletes exactly the recorded files that no commit references, and
nothing else, whatever else lies in the destination's folders. A write or a delete inside a source
location is refused outright, so even a wrong configuration cannot reach a source's files.

While a task runs, its ledger is the *active* ledger of its worker thread: the FileIO of every table
the task loads through a catalog is bound to it (``bind``), and so are the FileIOs PyIceberg opens to
write table metadata at commit time, so files written inside PyIceberg are recorded too.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from icebridge.errors import LocationOverlapError, UnrecordedFileError
from icebridge.locations import Place, first_overlap, normalize

if TYPE_CHECKING:
    from pyiceberg.io import FileIO, OutputFile
    from pyiceberg.table import Table

    from icebridge.store import Store

_ACTIVE: contextvars.ContextVar[FileLedger | None] = contextvars.ContextVar("icebridge_ledger", default=None)


class FileLedger:
    """The files one task wrote, kept in the store under the task's id."""

    def __init__(
        self, store: Store, task_id: int, run_id: int | None, owner: str, protected: Iterable[Place] = ()
    ) -> None:
        self._store = store
        self.task_id = task_id
        self._run_id = run_id
        self._owner = owner
        self._protected = list(protected)
        self._mine: set[str] = set()

    def guard(self, path: str, action: str) -> None:
        """Refuse ``action`` on a path inside a source location."""
        clash = first_overlap(path, self._protected)
        if clash is not None:
            raise LocationOverlapError(
                f"refusing to {action} {path}: it lies inside {clash.owner} ({clash.location}); "
                "IceBridge never changes a source's files — give the destination its own location"
            )

    def record(self, paths: Iterable[str]) -> None:
        """Record files about to be written (before the first byte); paths inside a source are refused."""
        new = []
        for path in paths:
            self.guard(path, "write")
            key = normalize(path)
            if key not in self._mine:
                new.append(path)
        if new:
            self._store.record_written(self.task_id, self._run_id, self._owner, new)
            self._mine.update(normalize(p) for p in new)

    def owned(self, paths: Iterable[str]) -> set[str]:
        """Those of ``paths`` this task recorded as written by it (in this run or an earlier attempt)."""
        paths = list(paths)
        known = self._store.written_among(self.task_id, [p for p in paths if normalize(p) not in self._mine])
        return {p for p in paths if normalize(p) in self._mine or p in known}

    def owns(self, path: str) -> bool:
        """Whether this task (in this run or an earlier attempt) recorded ``path`` as written by it."""
        return normalize(path) in self._mine or self._store.is_written(self.task_id, path)

    def check_delete(self, path: str) -> None:
        """A delete is allowed only of a file this task recorded."""
        self.guard(path, "delete")
        if not self.owns(path):
            raise UnrecordedFileError(
                f"refusing to delete {path}: this task did not write it (it is not in its ledger)"
            )

    def sweep(self, destination: Table, referenced: set[str]) -> list[str]:
        """Delete the recorded files that no commit of ``destination`` references; settle the ledger.

        Referenced files belong to the table from now on and leave the ledger; unreferenced ones are
        leftovers of attempts that did not commit (a crash, a conflict, an interrupt) and are deleted.
        """
        from icebridge.storage import delete_file

        io = unbound(destination.io)
        wanted = {normalize(p) for p in referenced}
        recorded = self._store.written_files(self.task_id)
        removed = []
        for path in recorded:
            if normalize(path) in wanted:
                continue
            self.guard(path, "delete")
            delete_file(io, path)
            removed.append(path)
        self._store.forget_written(self.task_id, recorded)
        self._mine.clear()
        return removed

    @contextmanager
    def active(self) -> Iterator[FileLedger]:
        """Make this the ledger of the current thread: table FileIOs opened meanwhile record their writes."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)


def active() -> FileLedger | None:
    """The ledger of the task running in this thread, if any."""
    return _ACTIVE.get()


class _Recording:
    """Mixed into a FileIO class: every new output is recorded first, every delete checked first."""

    _icebridge_ledger: FileLedger

    def new_output(self, location: str) -> OutputFile:
        self._icebridge_ledger.record([location])
        return super().new_output(location)  # type: ignore[misc, no-any-return]

    def delete(self, location: Any) -> None:
        path = location if isinstance(location, str) else location.location
        self._icebridge_ledger.check_delete(path)
        super().delete(location)  # type: ignore[misc]


_RECORDING_CLASSES: dict[type, type] = {}


def bind(io: FileIO, ledger: FileLedger | None = None) -> FileIO:
    """``io`` recording into ``ledger`` (default: the active one); the same object when there is none.

    The bound object is an instance of a subclass of ``io``'s own class with the same state, so code
    that asks ``isinstance(io, PyArrowFileIO)`` (the fast copy paths, DuckDB's scan) still sees one.
    """
    ledger = ledger if ledger is not None else active()
    if ledger is None:
        return io
    base = _plain_class(io)
    cls = _RECORDING_CLASSES.get(base)
    if cls is None:
        cls = type(f"Recording{base.__name__}", (_Recording, base), {})
        _RECORDING_CLASSES[base] = cls
    bound: Any = object.__new__(cls)
    bound.__dict__.update(io.__dict__)
    bound._icebridge_ledger = ledger
    return cast("FileIO", bound)


def _plain_class(io: FileIO) -> type:
    return next(c for c in type(io).__mro__ if not issubclass(c, _Recording))


def unbound(io: FileIO) -> FileIO:
    """``io`` without recording (for reading, or for deletes the ledger itself has checked)."""
    if not isinstance(io, _Recording):
        return io
    plain: Any = object.__new__(_plain_class(io))
    plain.__dict__.update({k: v for k, v in io.__dict__.items() if k != "_icebridge_ledger"})
    return cast("FileIO", plain)
