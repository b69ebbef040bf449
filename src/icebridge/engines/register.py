"""The ``register`` strategy: zero-copy. The destination gets its own metadata, which references the
source's data and delete files where they are; no data byte is copied.

Scaffold writes the destination's own table metadata (the source's schema with its field ids, its
specs and sort order) under the destination's location and registers it, as for every table. The
copy then commits the pinned snapshot's live files by reference: the manifest entries (partition,
counts, column stats, sizes) of every live data file and delete file, with their paths unchanged.
Only manifests, manifest lists and metadata files are written, all under the destination's location
and recorded in the task's ledger, so a cleanup removes nothing but those.

Delete files keep their meaning because the order of sequence numbers is kept: the live files are
grouped by their data sequence number in the source and each group becomes one destination commit,
in ascending order, so a position delete still applies to the data files at or before its own
sequence number and an equality delete to those strictly before it. Each commit carries the copy's
markers (``icebridge.task``, ``icebridge.source-snapshot-id``, ``icebridge.batch``), so a resumed
copy commits no group twice. A v1 source (all sequence numbers 0) is one commit.

The files are shared from then on: an expiry, an orphan-file cleanup or a purge on the source would
delete files the destination reads. Plan and pre-flight say so, and refuse a destination catalog that
cannot register a metadata file (Unity Catalog's managed tables).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.manifest import DataFile, DataFileContent

from icebridge.engines import BaseEngine, BatchCommit, CatalogAccess, CopyJob, CopyResult, StrategySpec
from icebridge.engines._pyiceberg import relocated, replay_files
from icebridge.errors import CommitConflictError, CopyInterrupted, RegisterUnsupportedError, TerminalError
from icebridge.model import Finding, PlanItem, Severity, TableFacts, TableRef
from icebridge.units import human_bytes

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.metadata import TableMetadata

    from icebridge.engines.local import FileDelta, ReplayCommit

REGISTER = "register"


class RegisterEngine(BaseEngine):
    """Commits the source's files by reference into the destination's own metadata; copies no byte."""

    name = REGISTER
    specs: ClassVar[tuple[StrategySpec, ...]] = (
        StrategySpec(REGISTER, REGISTER, byte_copy=True, validation_levels=(1, 2, 3)),
    )
    strategies = frozenset({REGISTER})

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        return REGISTER, "register: the source's files are referenced in place, nothing is copied"

    def strategy_findings(self, table: str, facts: TableFacts, strategy: str) -> list[Finding]:
        """The files become shared: said plainly for every table, with what must not happen on the source."""
        return [shared_files_finding(table, facts)]

    def destination_findings(self, item: PlanItem, catalogs: CatalogAccess) -> list[Finding]:
        """A destination catalog that cannot register a metadata file is a blocker."""
        if item.destination is None:
            return []
        problem = register_problem(catalogs, item.destination)
        if problem is None:
            return []
        return [
            Finding(
                str(item.source),
                Severity.BLOCKER,
                "register-unsupported",
                problem,
                "map the table to a catalog that registers metadata files (SQL, Glue, Hive, a REST server "
                "offering register), or use strategy file-copy",
            )
        ]

    def preflight(self, items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
        """The destination can register, and its storage takes the metadata IceBridge writes there."""
        from icebridge.engines.local import storage_probe

        findings = [f for item in items for f in self.destination_findings(item, catalogs)]
        blocked = {f.table for f in findings}
        return findings + storage_probe([i for i in items if str(i.source) not in blocked], catalogs)

    def copy(self, job: CopyJob) -> CopyResult:
        """Commit the pinned snapshot's live files by reference, one commit per source sequence number."""
        self.check_strategy(job)
        groups = live_file_groups(job.source, job.snapshot_id)
        commits: list[BatchCommit] = []
        skipped = 0
        for index, files in enumerate(groups):
            if index in job.committed_batches:
                skipped += 1
                continue
            if job.cancel is not None and job.cancel.is_set():
                raise CopyInterrupted(f"{job.task}: interrupted after {len(commits)} commits")
            started = time.perf_counter()
            commit = commit_by_reference(job, index, files, len(groups))
            commit = BatchCommit(
                commit.batch, commit.dest_snapshot_id, commit.files, commit.rows, 0, time.perf_counter() - started
            )
            job.on_progress(len(files), sum(f.file_size_in_bytes for f in files))
            job.on_commit(commit)
            commits.append(commit)
        return CopyResult(batches_total=len(groups), batches_skipped=skipped, commits=tuple(commits))

    def replay(self, job: CopyJob, delta: FileDelta, operation: str) -> ReplayCommit:
        """Carry one source commit by reference: the files it added are committed at their own paths, the
        files it removed are removed, in one destination commit with the commit's own operation.

        A delta that replaces the whole table (a history's first commit, a reload) becomes one commit,
        which keeps the meaning of its delete files unless equality deletes and data of several sequence
        numbers are mixed in it; that case is refused (the order of sequence numbers would be lost).
        """
        from icebridge.engines.local import CLAMPED_KEY, ReplayCommit, live_files, stamped_markers

        self.check_strategy(job)
        destination = job.destination
        destination.refresh()
        if delta.full and len(live_file_groups(job.source, job.snapshot_id)) > 1:
            if any(f.content == DataFileContent.EQUALITY_DELETES for f in delta.added):
                raise TerminalError(
                    f"{job.task}: source snapshot {job.snapshot_id} holds equality deletes and data of several "
                    "sequence numbers, which one commit cannot reference with their meaning kept; map the table "
                    "with 'history: current' (register then commits one sequence number at a time)"
                )
        removed = {f.file_path for f in delta.removed}
        if delta.full:
            removed = {f.file_path for f in live_files(destination, destination.current_snapshot())}
        references = _references(job, delta.added)
        markers, timestamp = stamped_markers(job, dict(job.summary_markers))
        try:
            with destination.transaction() as txn:
                with replay_files(txn, operation, markers, removed, timestamp) as commit:
                    for reference in references:
                        commit.add_file(reference)
        except CommitFailedException as exc:
            raise CommitConflictError(
                f"{job.task}: destination commit referencing source snapshot {job.snapshot_id} conflicted: {exc}"
            ) from exc
        job.on_progress(len(references), sum(f.file_size_in_bytes for f in references))
        snapshot = destination.current_snapshot()
        return ReplayCommit(
            dest_snapshot_id=snapshot.snapshot_id if snapshot else None,
            how="reference",
            files_added=len(references),
            files_removed=len(removed),
            bytes=0,
            rows=sum(f.record_count for f in references if f.content == DataFileContent.DATA),
            clamped=CLAMPED_KEY in markers,
        )


def shared_files_finding(table: str, facts: TableFacts) -> Finding:
    """What register means for the source: its files become the destination's too."""
    return Finding(
        table,
        Severity.WARNING,
        "register-shares-files",
        f"register copies nothing: the destination will read the source's {facts.data_files} data and "
        f"{facts.delete_files} delete file(s) ({human_bytes(facts.data_bytes + facts.delete_bytes)}) where they are, "
        "so the files are shared; a snapshot expiry, an orphan-file cleanup or a purge on the source side "
        "would delete files the destination reads",
        "turn off snapshot expiry and orphan-file cleanup on the source, never drop it with PURGE, and keep "
        "its storage; or use strategy file-copy to give the destination files of its own",
    )


def register_problem(catalogs: CatalogAccess, destination: TableRef) -> str | None:
    """Why ``destination``'s catalog cannot take a registered table (None: it can)."""
    if catalogs.supports_register(destination.catalog):
        return None
    return (
        f"catalog {destination.catalog!r} cannot register a metadata file (Unity Catalog's managed tables do not "
        "support it), so the destination cannot reference the source's files: register is not possible there"
    )


def check_can_register(catalogs: CatalogAccess, destination: TableRef) -> None:
    """Raise :class:`RegisterUnsupportedError` before anything is written where register is impossible."""
    problem = register_problem(catalogs, destination)
    if problem is not None:
        raise RegisterUnsupportedError(f"{destination}: {problem}; use strategy file-copy for this table")


def live_file_groups(source: Table, snapshot_id: int) -> list[list[DataFile]]:
    """The snapshot's live data and delete files grouped by data sequence number, ascending; in a group,
    data files before delete files, each sorted by path (a stable order, so a resume regroups alike)."""
    snapshot = source.snapshot_by_id(snapshot_id)
    if snapshot is None:
        raise TerminalError(f"source snapshot {snapshot_id} no longer exists (expired?)")
    by_sequence: dict[int, list[DataFile]] = defaultdict(list)
    for manifest in snapshot.manifests(source.io):
        for entry in manifest.fetch_manifest_entry(source.io, discard_deleted=True):
            by_sequence[entry.sequence_number or 0].append(entry.data_file)
    return [
        sorted(by_sequence[seq], key=lambda f: (f.content != DataFileContent.DATA, f.file_path))
        for seq in sorted(by_sequence)
    ]


def _sort_ids(source: TableMetadata, destination: TableMetadata) -> dict[int | None, int | None]:
    """Source sort order id → the destination's order with the same fields (None where there is none)."""
    return {
        order.order_id: next((d.order_id for d in destination.sort_orders if d.fields == order.fields), None)
        for order in source.sort_orders
    }


def _references(job: CopyJob, files: Sequence[DataFile]) -> list[DataFile]:
    """``files`` as the destination's entries at the same paths; a file of a spec it lacks is refused."""
    destination = job.destination
    version = destination.metadata.format_version
    dest_specs = destination.metadata.specs()
    sort_ids = _sort_ids(job.source.metadata, destination.metadata)
    for data_file in files:
        source_spec = job.source.metadata.specs().get(data_file.spec_id)
        if dest_specs.get(data_file.spec_id) is None or (
            source_spec is not None and dest_specs[data_file.spec_id].fields != source_spec.fields
        ):
            raise TerminalError(
                f"{job.task}: {data_file.file_path} belongs to partition spec {data_file.spec_id}, which the "
                "destination does not have as the source does; use strategy file-copy or rewrite for this table"
            )
    return [
        relocated(
            f,
            f.file_path,
            version,
            sort_ids.get(f.sort_order_id) if f.content != DataFileContent.POSITION_DELETES else None,
        )
        for f in files
    ]


def commit_by_reference(job: CopyJob, index: int, files: Sequence[DataFile], count: int = 1) -> BatchCommit:
    """One destination commit adding ``files`` as they are (same paths), carrying the job's markers: group
    ``index`` of ``count``, stamped with its source snapshot's time (``local.commit_time``)."""
    from icebridge.engines.local import BATCHES_KEY, stamped_markers

    destination = job.destination
    destination.refresh()
    references = _references(job, files)
    batch = {**job.summary_markers, "icebridge.batch": str(index), BATCHES_KEY: str(count)}
    markers, timestamp = stamped_markers(job, batch)
    deletes = any(f.content != DataFileContent.DATA for f in references)
    try:
        with destination.transaction() as txn:
            with replay_files(txn, "overwrite" if deletes else "append", markers, set(), timestamp) as commit:
                for reference in references:
                    commit.add_file(reference)
    except CommitFailedException as exc:
        raise CommitConflictError(f"{job.task}: destination commit of group {index} conflicted: {exc}") from exc
    snapshot = destination.current_snapshot()
    return BatchCommit(
        batch=index,
        dest_snapshot_id=snapshot.snapshot_id if snapshot else None,
        files=len(references),
        rows=sum(f.record_count for f in references if f.content == DataFileContent.DATA),
        bytes=0,
    )
