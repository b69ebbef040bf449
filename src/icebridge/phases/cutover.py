"""Cut-over: freeze check, then archive the foreign entry so readers can only reach the managed table.

The source entry's metadata location is recorded in the state store *before* the entry is dropped
from the source catalog, and the drop never purges files, so ``rollback`` can always re-register it.
Each step is a per-table phase (``run(work) -> PhaseResult``); the runner strings them together with
a final validation between ``freeze`` and ``archive``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from icebridge.catalogs import snapshot_totals
from icebridge.errors import SourceChangedError, SourceReadOnlyError, StateError
from icebridge.model import Phase, TableRef
from icebridge.phases import PhaseResult

if TYPE_CHECKING:
    from icebridge.phases import TableWork


def freeze(work: TableWork) -> PhaseResult:
    """Refuse when the source has moved on since the snapshot that was copied."""
    work.advance(Phase.CUTOVER)
    if work.source is None:  # dropped by an earlier cut-over that was interrupted before it was recorded
        if not work.task.archived_metadata_location:
            raise StateError(f"{work.task.source}: the source table is gone and nothing was archived for it")
        return PhaseResult(Phase.CUTOVER, "cut over (settled an interrupted cut-over)", {"finished": True})
    current = work.source.current_snapshot()
    current_id = current.snapshot_id if current else None
    if current_id != work.task.source_snapshot_id:
        raise SourceChangedError(
            f"{work.task.source}: the source has snapshot {current_id}, newer than the copied snapshot "
            f"{work.task.source_snapshot_id}; run 'icebridge migrate' again before cutting over"
        )
    work.snapshot_id = current_id
    return PhaseResult(Phase.CUTOVER, f"source frozen at snapshot {current_id}")


def archive(work: TableWork) -> PhaseResult:
    """Record the source's metadata location, then drop the entry from the source catalog (files kept)."""
    source = work.require_source()
    work.task = work.store.set_archive(work.task, source.metadata_location)
    ref = TableRef.parse(work.task.source)
    catalog = work.scope.catalogs.get(ref.catalog)
    try:
        catalog.drop_table(ref.identifier)  # drop_table never purges data or metadata files
    except NoSuchTableError:
        pass
    except ForbiddenError as exc:
        work.task = work.store.set_archive(work.task, None)  # the entry is still there: nothing was archived
        raise SourceReadOnlyError(
            f"{work.task.source}: catalog {ref.catalog!r} refuses to drop the entry, so it cannot be archived "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); cut-over drops the entry in the "
            f"catalog that owns the table: point catalogs.{ref.catalog} at that catalog, not at one that "
            "federates it read-only"
        ) from exc
    work.note("archived", f"{work.task.source} archived from its catalog", metadata_location=source.metadata_location)
    return PhaseResult(Phase.CUT_OVER, f"cut over; source archived ({source.metadata_location})")


def restore(work: TableWork) -> PhaseResult:
    """Re-register the archived source entry from its recorded metadata location."""
    location = work.task.archived_metadata_location
    if not location:
        raise StateError(f"{work.task.source}: nothing archived to roll back (it was never cut over)")
    ref = TableRef.parse(work.task.source)
    catalog = work.scope.catalogs.get(ref.catalog)
    for depth in range(1, len(ref.namespace) + 1):
        catalog.create_namespace_if_not_exists(ref.namespace[:depth])
    if catalog.table_exists(ref.identifier):
        existing = catalog.load_table(ref.identifier)
        if existing.metadata_location != location:
            raise StateError(
                f"{work.task.source}: a different table now exists under that name "
                f"({existing.metadata_location}); rename or drop it, then roll back again"
            )
        restored = existing
    else:
        restored = catalog.register_table(ref.identifier, location)
    work.note("restored", f"{work.task.source} re-registered from {location}")
    work.source = restored
    work.task = work.store.set_archive(work.task, None)
    held = snapshot_totals(restored)
    work.task = work.store.advance_task(work.task, Phase.ROLLED_BACK, rows=held.rows, bytes=held.bytes)
    return PhaseResult(Phase.ROLLED_BACK, f"source re-registered from {location}")
