"""The few PyIceberg internals the local engine relies on, in one place (PyIceberg is pinned to 0.12.x).

- ``write_data_files``: PyIceberg's own Arrow → Parquet writer (partition split, metrics, file naming).
- ``MultiSpecFastAppend``: a fast append whose added files may belong to several partition specs, so a
  byte-copied file keeps the spec it was written under.
- ``relocated``: a manifest entry's DataFile with a new path and everything else reused.
- ``stream_scan``: a scan's record batches one file at a time, streamed. ``ArrowScan.to_record_batches``
  reads every given file at once on its thread pool and holds each file's batches until consumed,
  so its memory grows with the number of files; this keeps it to one file's row groups.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files, _read_all_delete_files
from pyiceberg.manifest import DATA_FILE_TYPE, DataFile, ManifestEntry, ManifestEntryStatus, ManifestFile
from pyiceberg.table.snapshots import Operation, SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update.snapshot import _FastAppendFiles
from pyiceberg.typedef import EMPTY_DICT

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.io import FileIO
    from pyiceberg.table import FileScanTask, Transaction
    from pyiceberg.table.metadata import TableMetadata


def write_data_files(
    metadata: TableMetadata, df: pa.Table, io: FileIO, write_uuid: uuid.UUID, counter: itertools.count[int]
) -> Iterable[DataFile]:
    """Write an Arrow table as Parquet data files of the table (split by partition), not committed."""
    return _dataframe_to_data_files(table_metadata=metadata, df=df, io=io, write_uuid=write_uuid, counter=counter)


def stream_scan(scan: ArrowScan, tasks: Sequence[FileScanTask]) -> Iterator[pa.RecordBatch]:
    """Record batches of ``tasks`` (deletes applied), one file after the other, never a whole file held."""
    deletes = _read_all_delete_files(scan._io, tasks)
    for task in tasks:
        yield from scan._record_batches_from_scan_tasks_and_deletes([task], deletes)


def relocated(data_file: DataFile, new_path: str, format_version: int, sort_order_id: int | None) -> DataFile:
    """The same DataFile (partition, counts, stats, sizes) at ``new_path``."""
    names = [f.name for f in DATA_FILE_TYPE[format_version].fields]  # type: ignore[index]
    values: dict[str, Any] = {name: getattr(data_file, name, None) for name in names}
    values["file_path"] = new_path
    values["sort_order_id"] = sort_order_id
    copy = DataFile.from_args(_table_format_version=format_version, **values)  # type: ignore[arg-type]
    copy.spec_id = data_file.spec_id
    return copy


class MultiSpecFastAppend(_FastAppendFiles):
    """A fast append writing one manifest per partition spec of the added files."""

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
        from pyiceberg.table import TableProperties

        metadata = self._transaction.table_metadata
        limit = int(
            metadata.properties.get(
                TableProperties.WRITE_PARTITION_SUMMARY_LIMIT, TableProperties.WRITE_PARTITION_SUMMARY_LIMIT_DEFAULT
            )
        )
        collector = SnapshotSummaryCollector(partition_summary_limit=limit)
        specs = metadata.specs()
        for data_file in self._added_data_files:
            collector.add_file(data_file=data_file, partition_spec=specs[data_file.spec_id], schema=metadata.schema())
        parent = metadata.snapshot_by_id(self._parent_snapshot_id) if self._parent_snapshot_id is not None else None
        return update_snapshot_summaries(
            summary=Summary(operation=self._operation, **collector.build(), **snapshot_properties),
            previous_summary=parent.summary if parent is not None else None,
        )


def multi_spec_append(txn: Transaction, snapshot_properties: dict[str, str]) -> MultiSpecFastAppend:
    """A fast append on ``txn`` (use as a context manager) that accepts files of any of the table's specs."""
    return MultiSpecFastAppend(
        operation=Operation.APPEND,
        transaction=txn,
        io=txn._table.io,
        snapshot_properties=snapshot_properties,
    )
