"""The few PyIceberg internals the local engine relies on, in one place (PyIceberg is pinned to 0.12.x).

- ``write_data_files``: PyIceberg's own Arrow → Parquet writer (partition split, metrics, file naming).
- ``MultiSpecFastAppend``: a fast append whose added files may belong to several partition specs, so a
  byte-copied file keeps the spec it was written under.
- ``timestamp_ms`` (of ``MultiSpecFastAppend`` and ``ReplayFiles``): the commit time the snapshot carries
  instead of now. PyIceberg's producer stamps ``Snapshot`` with the wall clock when it builds it; these
  producers build it the same way and then give it the replayed source commit's time, which PyIceberg
  (and Iceberg Java, on a REST server) also writes into the snapshot log and ``last-updated-ms``.
- ``relocated``: a manifest entry's DataFile with a new path and everything else reused.
- ``ReplayFiles``: a snapshot with an exact file-level delta (data and delete files added, files removed by
  path) under the replayed commit's operation, for sync; ``rewrite_position_deletes`` re-points a
  position-delete file at the destination's data-file paths.
- ``stream_scan``: a scan's record batches one file at a time, streamed. ``ArrowScan.to_record_batches``
  reads every given file at once on its thread pool and holds each file's batches until consumed,
  so its memory grows with the number of files; this keeps it to one file's row groups.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, _read_all_delete_files
from pyiceberg.manifest import (
    DATA_FILE_TYPE,
    DataFile,
    DataFileContent,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestWriter,
    ManifestWriterV2,
    data_file_with_partition,
    manifest_entry_schema_with_data_file,
    write_manifest,
)
from pyiceberg.schema import Schema
from pyiceberg.table import Transaction
from pyiceberg.table.snapshots import Operation, SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update import AddSnapshotUpdate, UpdatesAndRequirements
from pyiceberg.table.update.snapshot import _FastAppendFiles, _SnapshotProducer
from pyiceberg.typedef import EMPTY_DICT, TableVersion
from pyiceberg.types import IntegerType, ListType, NestedField, StructType

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.io import FileIO
    from pyiceberg.table import FileScanTask
    from pyiceberg.table.metadata import TableMetadata


def write_data_files(
    metadata: TableMetadata, df: pa.Table, io: FileIO, write_uuid: uuid.UUID, counter: itertools.count[int]
) -> Iterator[DataFile]:
    """Write an Arrow table as Parquet data files of the table (split by partition), not committed; each
    file names the table's default partition spec, which it was written under."""
    for data_file in _dataframe_to_data_files(
        table_metadata=metadata, df=df, io=io, write_uuid=write_uuid, counter=counter
    ):
        data_file.spec_id = metadata.default_spec_id
        yield data_file


def stream_scan(scan: ArrowScan, tasks: Sequence[FileScanTask]) -> Iterator[pa.RecordBatch]:
    """Record batches of ``tasks`` (deletes applied), one file after the other, never a whole file held."""
    deletes = _read_all_delete_files(scan._io, tasks)
    for task in tasks:
        yield from scan._record_batches_from_scan_tasks_and_deletes([task], deletes)


def relocated(
    data_file: DataFile, new_path: str, format_version: int, sort_order_id: int | None, **changes: Any
) -> DataFile:
    """The same DataFile (partition, counts, stats, sizes) at ``new_path``, with ``changes`` to other fields."""
    names = [f.name for f in DATA_FILE_TYPE[format_version].fields]  # type: ignore[index]
    values: dict[str, Any] = {name: getattr(data_file, name, None) for name in names}
    values["file_path"] = new_path
    values["sort_order_id"] = sort_order_id
    values.update(changes)
    copy = DataFile.from_args(_table_format_version=format_version, **values)  # type: ignore[arg-type]
    copy.spec_id = data_file.spec_id
    return copy


def _stamped(done: UpdatesAndRequirements, timestamp_ms: int | None) -> UpdatesAndRequirements:
    """The producer's updates with the snapshot it adds carrying ``timestamp_ms`` (None: left as built)."""
    updates, requirements = done
    if timestamp_ms is None:
        return done
    stamped = tuple(
        AddSnapshotUpdate(snapshot=u.snapshot.model_copy(update={"timestamp_ms": timestamp_ms}))
        if isinstance(u, AddSnapshotUpdate)
        else u
        for u in updates
    )
    return stamped, requirements


class MultiSpecFastAppend(_FastAppendFiles):
    """A fast append writing one manifest per partition spec of the added files, at ``timestamp_ms``."""

    def __init__(
        self,
        operation: Operation,
        transaction: Transaction,
        io: FileIO,
        snapshot_properties: dict[str, str],
        timestamp_ms: int | None = None,
    ) -> None:
        super().__init__(operation=operation, transaction=transaction, io=io, snapshot_properties=snapshot_properties)
        self._timestamp_ms = timestamp_ms

    def _commit(self) -> UpdatesAndRequirements:
        return _stamped(super()._commit(), self._timestamp_ms)

    def _manifests(self) -> list[ManifestFile]:
        by_spec: dict[int, list[DataFile]] = defaultdict(list)
        for data_file in self._added_data_files:
            by_spec[data_file.spec_id].append(data_file)
        specs = self._transaction.table_metadata.specs()
        added: list[ManifestFile] = []
        for spec_id, files in sorted(by_spec.items()):
            with self.new_manifest_writer(spec=specs[spec_id]) as writer:
                for data_file in files:
                    writer.add(
                        ManifestEntry.from_args(
                            status=ManifestEntryStatus.ADDED,
                            snapshot_id=self._snapshot_id,
                            sequence_number=None,
                            file_sequence_number=None,
                            data_file=data_file,
                        )
                    )
            added.append(writer.to_manifest_file())
        return self._process_manifests(added + self._existing_manifests())

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        # PyIceberg summarises every added file under the default spec; here each file keeps its own.
        return _summary_by_spec(self, self._added_data_files, [], snapshot_properties)


def _summary_by_spec(
    producer: _SnapshotProducer[Any],
    added: Sequence[DataFile],
    removed: Sequence[DataFile],
    snapshot_properties: dict[str, str],
) -> Summary:
    """The snapshot summary of a commit whose files each keep the partition spec they carry."""
    from pyiceberg.table import TableProperties

    metadata = getattr(producer, "_metadata", None) or producer._transaction.table_metadata
    limit = int(
        metadata.properties.get(
            TableProperties.WRITE_PARTITION_SUMMARY_LIMIT, TableProperties.WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT
        )
    )
    collector = SnapshotSummaryCollector(partition_summary_limit=limit)
    specs, schema = metadata.specs(), metadata.schema()
    for data_file in added:
        collector.add_file(data_file=data_file, partition_spec=specs[data_file.spec_id], schema=schema)
    for data_file in removed:
        collector.remove_file(data_file=data_file, partition_spec=specs[data_file.spec_id], schema=schema)
    parent_id = producer._parent_snapshot_id
    parent = metadata.snapshot_by_id(parent_id) if parent_id is not None else None
    # PyIceberg 0.12 totals up every operation but replace (a compaction): its totals are an overwrite's
    operation = producer._operation
    counted = Operation.OVERWRITE if operation == Operation.REPLACE else operation
    summary = update_snapshot_summaries(
        summary=Summary(operation=counted, **collector.build(), **snapshot_properties),
        previous_summary=parent.summary if parent is not None else None,
    )
    return Summary(operation=operation, **summary.additional_properties)


def multi_spec_append(
    txn: Transaction, snapshot_properties: dict[str, str], timestamp_ms: int | None = None
) -> MultiSpecFastAppend:
    """A fast append on ``txn`` (use as a context manager) that accepts files of any of the table's specs,
    its snapshot stamped ``timestamp_ms`` (None: now)."""
    return MultiSpecFastAppend(
        operation=Operation.APPEND,
        transaction=txn,
        io=txn._table.io,
        snapshot_properties=snapshot_properties,
        timestamp_ms=timestamp_ms,
    )


class _DeleteManifestWriter(ManifestWriterV2):
    """A v2 manifest of delete files (PyIceberg 0.12 writes data manifests only).

    PyIceberg 0.12 types ``equality_ids`` as a list of longs where the spec says ints; Java readers
    then fail on the manifest (``Long cannot be cast to Integer``), so this writer writes ints.
    """

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    def _with_partition(self, format_version: TableVersion) -> Schema:
        data_file = data_file_with_partition(
            format_version=format_version, partition_type=self._spec.partition_type(self._schema)
        )
        fields = [
            NestedField(
                f.field_id,
                f.name,
                ListType(element_id=136, element_type=IntegerType(), element_required=True),
                required=f.required,
                doc=f.doc,
            )
            if f.field_id == EQUALITY_IDS_FIELD_ID
            else f
            for f in data_file.fields
        ]
        return manifest_entry_schema_with_data_file(format_version=format_version, data_file=StructType(*fields))

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


class ReplayFiles(_SnapshotProducer["ReplayFiles"]):
    """One snapshot with an exact file-level delta: data and delete files added, files removed by path.

    The operation is the replayed commit's own (append, overwrite, delete, replace). Manifests that
    hold none of the removed paths are kept as they are; the others are written again with the
    removed entries marked deleted and the rest kept with their sequence numbers, so deletes carried
    later apply to exactly the rows they applied to on the source. The snapshot carries ``timestamp_ms``
    (None: now).
    """

    def __init__(
        self,
        operation: Operation,
        transaction: Transaction,
        snapshot_properties: dict[str, str],
        removed: set[str],
        timestamp_ms: int | None = None,
    ) -> None:
        super().__init__(
            operation=operation,
            transaction=transaction,
            io=transaction._table.io,
            snapshot_properties=snapshot_properties,
        )
        self._metadata = transaction.table_metadata  # read once: each read may copy it whole (ReplayTransaction)
        self._removed_paths = set(removed)
        self._removed_files: list[DataFile] = []
        self._timestamp_ms = timestamp_ms

    def _commit(self) -> UpdatesAndRequirements:
        return _stamped(super()._commit(), self._timestamp_ms)

    def add_file(self, data_file: DataFile) -> None:
        """Add a data file or a delete file (under the spec id it carries)."""
        self._added_data_files.append(data_file)

    def _manifests(self) -> list[ManifestFile]:
        existing = self._existing_manifests()
        missing = self._removed_paths - {f.file_path for f in self._removed_files}
        if missing:
            raise ValueError(f"files to remove are not in the destination's current snapshot: {sorted(missing)[:3]}")
        groups: dict[tuple[int, bool], list[DataFile]] = defaultdict(list)
        for data_file in self._added_data_files:
            groups[(data_file.spec_id, data_file.content != DataFileContent.DATA)].append(data_file)
        added: list[ManifestFile] = []
        for (spec_id, deletes), files in sorted(groups.items()):
            with self._writer(spec_id, deletes) as writer:
                for data_file in files:
                    writer.add_entry(
                        ManifestEntry.from_args(
                            status=ManifestEntryStatus.ADDED,
                            snapshot_id=self._snapshot_id,
                            sequence_number=None,
                            file_sequence_number=None,
                            data_file=data_file,
                        )
                    )
            added.append(writer.to_manifest_file())
        return added + existing

    def _writer(self, spec_id: int, deletes: bool) -> ManifestWriter:
        spec, schema = self._metadata.specs()[spec_id], self._metadata.schema()
        output = self.new_manifest_output()
        if not deletes:
            version = self._metadata.format_version
            return write_manifest(version, spec, schema, output, self._snapshot_id, self._compression)
        return _DeleteManifestWriter(spec, schema, output, self._snapshot_id, self._compression)

    def _existing_manifests(self) -> list[ManifestFile]:
        snapshot = self._metadata.snapshot_by_name(name=self._target_branch)
        if snapshot is None:
            return []
        kept: list[ManifestFile] = []
        for manifest in snapshot.manifests(io=self._io):
            if not self._removed_paths:
                kept.append(manifest)
                continue
            entries = manifest.fetch_manifest_entry(io=self._io, discard_deleted=True)
            hit = [e for e in entries if e.data_file.file_path in self._removed_paths]
            if not hit:
                kept.append(manifest)
                continue
            self._removed_files.extend(e.data_file for e in hit)
            with self._writer(manifest.partition_spec_id, manifest.content == ManifestContent.DELETES) as writer:
                for entry in entries:
                    if entry.data_file.file_path in self._removed_paths:
                        writer.delete(entry)
                    else:
                        writer.existing(entry)
            kept.append(writer.to_manifest_file())
        return kept

    def _deleted_entries(self) -> list[ManifestEntry]:
        return []  # removed entries are written into the rewritten manifests by _existing_manifests

    def _summary(self, snapshot_properties: dict[str, str] = EMPTY_DICT) -> Summary:
        return _summary_by_spec(self, self._added_data_files, self._removed_files, snapshot_properties)


class ReplayTransaction(Transaction):
    """A transaction whose metadata is read without a copy while nothing is staged yet.

    PyIceberg 0.12 rebuilds and deep-copies the whole table metadata (every snapshot) on each read of
    ``Transaction.table_metadata``, a dozen times per commit, which made a replayed commit's cost grow
    with the destination's history; the metadata is a frozen model, so before any update is staged
    the table's own is returned.
    """

    @property
    def table_metadata(self) -> TableMetadata:
        if not self._updates:
            return self._table.metadata
        return super().table_metadata


def replay_files(
    txn: Transaction,
    operation: str,
    snapshot_properties: dict[str, str],
    removed: set[str],
    timestamp_ms: int | None = None,
) -> ReplayFiles:
    """A snapshot producer on ``txn`` (use as a context manager) with an exact file-level delta, its
    snapshot stamped ``timestamp_ms`` (None: now)."""
    return ReplayFiles(Operation(operation), txn, snapshot_properties, removed, timestamp_ms)


def rewrite_position_deletes(
    source_io: FileIO, source_path: str, dest_io: FileIO, dest_path: str, rename: Callable[[str], str]
) -> tuple[int, dict[int, bytes], dict[int, bytes]]:
    """Copy a position-delete file, each ``file_path`` value renamed; its size and new path bounds.

    The file keeps its schema with field ids (``file_path`` 2147483546, ``pos`` 2147483545, an
    optional ``row``) and its row order (sorted by path, then position: renaming keeps path order when
    ``rename`` keeps prefixes in order, and the rows are sorted again to be sure).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with source_io.new_input(source_path).open() as stream:
        table = pq.read_table(stream)
    index = table.schema.get_field_index("file_path")
    paths = table.column(index).to_pylist()
    renamed = pa.array([rename(p) for p in paths], pa.string())
    table = table.set_column(index, table.schema.field(index), renamed)
    table = table.take(pc.sort_indices(table, sort_keys=[("file_path", "ascending"), ("pos", "ascending")]))
    with dest_io.new_output(dest_path).create(overwrite=True) as out:
        pq.write_table(table, out)
    size = len(dest_io.new_input(dest_path))
    lower = {POSITION_PATH_FIELD_ID: min(renamed.to_pylist()).encode()} if paths else {}
    upper = {POSITION_PATH_FIELD_ID: max(renamed.to_pylist()).encode()} if paths else {}
    return size, lower, upper


POSITION_PATH_FIELD_ID = 2147483546
EQUALITY_IDS_FIELD_ID = 135
