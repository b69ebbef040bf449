"""Cut-over: an ordered procedure of steps, each recorded, so a crash resumes at the step it stopped at.

freeze writers (the table's governance adapter: on Unity Catalog write privileges are revoked) →
quiet period (no source snapshot arrives for ``cutover.quiet_seconds``) → final sync → final
validation → governance swap → archive the foreign entry. The runner strings the steps together and
records each in the store as it starts and when it is done (with what it did), skipping the ones
done by an earlier, interrupted run. The source entry's metadata location is recorded *before* the
entry is dropped from the source catalog, and the drop never purges files, so ``rollback`` can
always re-register it.

Rollback undoes the completed steps in reverse (archive, swap, freeze), each from its record; it
refuses when the destination received commits after cut-over (naming their snapshot ids) unless
told to discard them, in which case the destination's current snapshot is set back to the last one
IceBridge made (nothing is deleted).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pyiceberg.exceptions import ForbiddenError, NoSuchTableError

from icebridge.catalogs import snapshot_totals
from icebridge.errors import (
    CopyInterrupted,
    DestinationWrittenError,
    QuietPeriodError,
    SourceChangedError,
    SourceReadOnlyError,
    StateError,
)
from icebridge.governance import GovernanceStep, governance_for
from icebridge.model import Phase, TableRef
from icebridge.phases import TASK_KEY, PhaseResult

if TYPE_CHECKING:
    from icebridge.phases import TableWork

STEPS = ("freeze", "quiet", "sync", "validate", "swap", "archive")  # in order; the runner records each


def settle(work: TableWork) -> PhaseResult:
    """Start the cut-over; a source an interrupted cut-over already dropped is settled as cut over."""
    work.advance(Phase.CUTOVER)
    if work.source is None:  # dropped by an earlier cut-over that was interrupted before it was recorded
        if not work.task.archived_metadata_location:
            raise StateError(f"{work.task.source}: the source table is gone and nothing was archived for it")
        return PhaseResult(Phase.CUTOVER, "cut over (settled an interrupted cut-over)", {"finished": True})
    return PhaseResult(Phase.CUTOVER, "cut-over started")


def freeze(work: TableWork) -> PhaseResult:
    """Stop writers on the source through the table's governance adapter."""
    step = _governance(work).freeze(TableRef.parse(work.task.source))
    return PhaseResult(Phase.CUTOVER, step.message, {"governance": dataclasses.asdict(step)})


def quiet(work: TableWork) -> PhaseResult:
    """Wait ``cutover.quiet_seconds``; a source snapshot arriving meanwhile means writers are still active."""
    source = work.require_source()
    seconds = work.config.cutover.quiet_seconds
    source.refresh()
    before = _current(source)
    if seconds <= 0:
        return PhaseResult(Phase.CUTOVER, "no quiet period asked for (cutover.quiet_seconds is 0)", {"at": before})
    if work.cancel.wait(seconds):
        raise CopyInterrupted(f"{work.task.source}: interrupted during the quiet period")
    source.refresh()
    after = _current(source)
    if after != before:
        raise QuietPeriodError(
            f"{work.task.source}: source snapshot {after} arrived during the {seconds:g} s quiet period (after "
            f"{before}); writers are still active — stop them (or freeze them through governance), then cut over again"
        )
    return PhaseResult(Phase.CUTOVER, f"no source snapshot for {seconds:g} s (still {before})", {"at": before})


def swap(work: TableWork) -> PhaseResult:
    """Carry the source's grants to the destination and revoke them on the source."""
    step = _governance(work).swap(TableRef.parse(work.task.source), TableRef.parse(work.task.destination))
    return PhaseResult(Phase.CUTOVER, step.message, {"governance": dataclasses.asdict(step)})


def archive(work: TableWork) -> PhaseResult:
    """Record the source's metadata location, then drop the entry from the source catalog (files kept).

    A source that moved on after the final sync is not archived: the sync, validation and quiet
    period are forgotten so that the next cut-over does them again.
    """
    source = work.require_source()
    source.refresh()
    if _current(source) != work.task.source_snapshot_id:
        for step in ("quiet", "sync", "validate"):
            work.store.forget_cutover_step(work.task.id, step)
        raise SourceChangedError(
            f"{work.task.source}: source snapshot {_current(source)} arrived after the final sync to "
            f"{work.task.source_snapshot_id}; nothing was archived — stop the writers and run 'icebridge cutover' again"
        )
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
    return PhaseResult(
        Phase.CUT_OVER,
        f"cut over; source archived ({source.metadata_location})",
        {"metadata_location": source.metadata_location},
    )


# ------------------------------------------------------------------------------------------ rollback


def destination_writes(work: TableWork) -> PhaseResult:
    """Refuse to roll back over commits the destination received after cut-over, unless told to discard them."""
    destination = work.require_destination()
    destination.refresh()
    foreign, last_ours = _writes_after_ours(work)
    if not foreign:
        return PhaseResult(Phase(work.task.phase), "the destination received no commits after cut-over")
    ids = ", ".join(map(str, foreign))
    if not work.discard_writes or last_ours is None:
        raise DestinationWrittenError(
            f"{work.task.source}: the destination received {len(foreign)} commit(s) after cut-over (snapshot ids "
            f"{ids}); rolling back would leave them unread — replay them onto the source first, or run "
            "'icebridge rollback --discard-destination-writes' to set the destination back to its last synced "
            f"snapshot {last_ours}"
        )
    with destination.manage_snapshots() as manage:
        manage.set_current_snapshot(last_ours)
    work.note("destination-writes-discarded", f"destination set back to snapshot {last_ours}", discarded=foreign)
    return PhaseResult(Phase(work.task.phase), f"destination writes {ids} discarded: set back to snapshot {last_ours}")


def restore(work: TableWork) -> PhaseResult:
    """Re-register the archived source entry from its recorded metadata location."""
    location = work.task.archived_metadata_location
    if not location:
        return PhaseResult(Phase(work.task.phase), "nothing archived: the source entry was never dropped")
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
    work.task = work.store.advance_task(work.task, Phase(work.task.phase), rows=held.rows, bytes=held.bytes)
    return PhaseResult(Phase.ROLLED_BACK, f"source re-registered from {location}", {"keep": True})


def unswap(work: TableWork, done: dict[str, Any]) -> PhaseResult:
    """Undo the governance swap from its record."""
    step = _governance(work).unswap(
        TableRef.parse(work.task.source), TableRef.parse(work.task.destination), _recorded(done)
    )
    return PhaseResult(Phase(work.task.phase), step.message, {"governance": dataclasses.asdict(step)})


def unfreeze(work: TableWork, done: dict[str, Any]) -> PhaseResult:
    """Undo the freeze from its record."""
    step = _governance(work).unfreeze(TableRef.parse(work.task.source), _recorded(done))
    return PhaseResult(Phase(work.task.phase), step.message, {"governance": dataclasses.asdict(step)})


def _writes_after_ours(work: TableWork) -> tuple[list[int], int | None]:
    """Destination snapshots on its current lineage newer than the last commit IceBridge made for the task."""
    destination = work.require_destination()
    foreign: list[int] = []
    snapshot = destination.current_snapshot()
    while snapshot is not None:
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get(TASK_KEY) == work.task.source:
            return list(reversed(foreign)), snapshot.snapshot_id
        foreign.append(snapshot.snapshot_id)
        parent = snapshot.parent_snapshot_id
        snapshot = destination.snapshot_by_id(parent) if parent is not None else None
    return list(reversed(foreign)), None


def _governance(work: TableWork) -> Any:
    return governance_for(work.app, TableRef.parse(work.task.source), TableRef.parse(work.task.destination))


def _recorded(done: dict[str, Any]) -> GovernanceStep:
    return GovernanceStep.from_dict(dict(done.get("governance") or {}))


def _current(source: Any) -> int | None:
    snapshot = source.current_snapshot()
    return snapshot.snapshot_id if snapshot is not None else None
