"""Cut-over: freeze check, then archive the foreign entry so readers can only reach the managed table.

The source entry's metadata location is recorded in the state store *before* the entry is dropped
from the source catalog, and the drop never purges files, so ``rollback`` can always re-register it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from icebridge.errors import SourceChangedError, SourceReadOnlyError, StateError
from icebridge.model import TableRef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import Context
    from icebridge.store import TaskRow


def check_frozen(task: TaskRow, source: Table) -> None:
    """Refuse when the source has moved on since the snapshot that was copied."""
    current = source.current_snapshot()
    current_id = current.snapshot_id if current else None
    if current_id != task.source_snapshot_id:
        raise SourceChangedError(
            f"{task.source}: the source has snapshot {current_id}, newer than the copied snapshot "
            f"{task.source_snapshot_id}; run 'icebridge migrate' again before cutting over"
        )


def archive(ctx: Context, task: TaskRow, source: Table) -> TaskRow:
    """Record the source's metadata location, then drop the entry from the source catalog (files kept)."""
    task = ctx.store.set_archive(task, source.metadata_location)
    ref = TableRef.parse(task.source)
    catalog = ctx.catalogs.get(ref.catalog)
    try:
        catalog.drop_table(ref.identifier)  # drop_table never purges data or metadata files
    except NoSuchTableError:
        pass
    except ForbiddenError as exc:
        ctx.store.set_archive(task, None)  # the entry is still there: nothing was archived
        raise SourceReadOnlyError(
            f"{task.source}: catalog {ref.catalog!r} refuses to drop the entry, so it cannot be archived "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); cut-over drops the entry in the "
            f"catalog that owns the table: point catalogs.{ref.catalog} at that catalog, not at one that "
            "federates it read-only"
        ) from exc
    ctx.store.event(
        "archived",
        f"{task.source} archived from its catalog",
        task_id=task.id,
        data={"metadata_location": source.metadata_location},
    )
    return task


def restore(ctx: Context, task: TaskRow) -> TaskRow:
    """Re-register the archived source entry from its recorded metadata location."""
    if not task.archived_metadata_location:
        raise StateError(f"{task.source}: nothing archived to roll back (it was never cut over)")
    ref = TableRef.parse(task.source)
    catalog = ctx.catalogs.get(ref.catalog)
    for depth in range(1, len(ref.namespace) + 1):
        catalog.create_namespace_if_not_exists(ref.namespace[:depth])
    if catalog.table_exists(ref.identifier):
        existing = catalog.load_table(ref.identifier)
        if existing.metadata_location != task.archived_metadata_location:
            raise StateError(
                f"{task.source}: a different table now exists under that name "
                f"({existing.metadata_location}); rename or drop it, then roll back again"
            )
    else:
        catalog.register_table(ref.identifier, task.archived_metadata_location)
    ctx.store.event("restored", f"{task.source} re-registered from {task.archived_metadata_location}", task_id=task.id)
    return ctx.store.set_archive(task, None)
