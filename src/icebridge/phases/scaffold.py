"""Scaffold: create the destination namespace and table with the source's shape.

The destination keeps the source's field ids, current partition spec and sort order. PyIceberg's
``create_table`` assigns fresh field ids, so where the destination catalog can register a metadata
file (SQL, Hive, Glue, ... catalogs, REST servers that offer it) the table metadata is written by us
and registered; elsewhere (Unity Catalog) the table is created by one commit that carries the same
schema, specs and sort order, and its shape is checked. An identical existing table is adopted; a
different one is a :class:`DestinationConflictError`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyiceberg.exceptions import CommitFailedException, NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.serializers import ToOutputFile
from pyiceberg.table import StagedTable
from pyiceberg.table.metadata import TableMetadataV2
from pyiceberg.table.sorting import SortOrder
from pyiceberg.table.update import (
    AddPartitionSpecUpdate,
    AddSchemaUpdate,
    AddSortOrderUpdate,
    AssertCreate,
    AssignUUIDUpdate,
    SetCurrentSchemaUpdate,
    SetDefaultSortOrderUpdate,
    SetDefaultSpecUpdate,
    SetLocationUpdate,
    SetPropertiesUpdate,
    TableUpdate,
    UpgradeFormatVersionUpdate,
)
from sqlalchemy.exc import IntegrityError

from icebridge import ledger
from icebridge.errors import DestinationConflictError, DestinationWriteError, LocationOverlapError, TerminalError
from icebridge.locations import overlap
from icebridge.model import Phase, Strategy, TableRef
from icebridge.phases import PhaseResult
from icebridge.validation.structure import portable_properties, structure_differences

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from icebridge.catalogs import Catalogs
    from icebridge.phases import TableWork


@dataclass(frozen=True)
class ScaffoldResult:
    destination: str
    created: bool
    message: str


def differences(source: Table, destination: Table) -> list[str]:
    """How an existing destination differs from the source's shape (empty: it can be adopted)."""
    return structure_differences(
        source.schema(),
        source.spec(),
        source.sort_order(),
        destination.schema(),
        destination.spec(),
        destination.sort_order(),
    )


def destination_metadata(source: Table, location: str) -> TableMetadataV2:
    """Fresh v2 metadata with the source's schema (same field ids), partition specs (same ids) and sort order."""
    src_meta = source.metadata
    schema = source.schema()
    spec = source.spec()
    order = source.sort_order()
    fresh_schema = Schema(*schema.fields, schema_id=0, identifier_field_ids=list(schema.identifier_field_ids))
    # Every spec the current schema can still bind keeps its id, so byte-copied files written under an
    # older spec are committed under that same spec; new writes use the source's default spec.
    column_ids = set(schema._lazy_id_to_field)
    specs = [
        PartitionSpec(*s.fields, spec_id=s.spec_id)
        for s in src_meta.partition_specs
        if s.spec_id == spec.spec_id or all(f.source_id in column_ids for f in s.fields)
    ]
    fresh_order = SortOrder(*order.fields, order_id=1) if order.fields else SortOrder(order_id=0)
    return TableMetadataV2.model_validate(
        {
            "location": location,
            "table-uuid": uuid.uuid4(),
            "last-updated-ms": created_ms(source),
            "last-column-id": max(src_meta.last_column_id, fresh_schema.highest_field_id),
            "schemas": [fresh_schema],
            "current-schema-id": 0,
            "partition-specs": specs,
            "default-spec-id": spec.spec_id,
            "last-partition-id": max(
                [src_meta.last_partition_id or 999, *(f.field_id for s in specs for f in s.fields)]
            ),
            "sort-orders": [fresh_order],
            "default-sort-order-id": fresh_order.order_id,
            "properties": portable_properties(src_meta.properties),
        }
    )


HISTORY_ROOM_MS = 60_000  # room before the source's oldest snapshot for a bulk copy's commit times


def created_ms(source: Table) -> int:
    """The new destination's ``last-updated-ms``: a minute before the source's oldest snapshot (or before
    now, should the source's clock be ahead; now for a source without snapshots). Iceberg keeps a table's
    history in time order, so commits stamped with their source snapshot's time (sync, copy) can only
    follow a metadata that is older than they are."""
    now = int(time.time() * 1000)
    times = [s.timestamp_ms for s in source.metadata.snapshots] + [e.timestamp_ms for e in source.metadata.snapshot_log]
    return max(0, min([now, *times]) - (HISTORY_ROOM_MS if times else 0))


def _ensure_namespace(catalog: Catalog, namespace: tuple[str, ...]) -> None:
    for depth in range(1, len(namespace) + 1):
        try:
            catalog.create_namespace_if_not_exists(namespace[:depth])
        except (NamespaceAlreadyExistsError, IntegrityError):
            # another worker created it between the check and the insert (PostgreSQL reports a unique
            # violation there rather than PyIceberg's "already exists")
            if not catalog.namespace_exists(namespace[:depth]):
                raise


def _new_location(catalogs: Catalogs, source: Table, dest_ref: TableRef) -> str:
    try:
        location = catalogs.new_table_location(dest_ref, source.schema())
    except TableAlreadyExistsError:
        raise
    except Exception as exc:
        raise DestinationWriteError(
            f"{dest_ref}: catalog {dest_ref.catalog!r} cannot tell a table location: {exc}"
        ) from exc
    if location is None:
        raise DestinationWriteError(f"{dest_ref}: catalog {dest_ref.catalog!r} cannot tell a default table location")
    return location


def create(catalogs: Catalogs, source: Table, dest_ref: TableRef) -> Table:
    """Create the destination table with the source's shape; raise if it cannot be written."""
    catalog = catalogs.get(dest_ref.catalog)
    try:
        _ensure_namespace(catalog, dest_ref.namespace)
    except Exception as exc:
        raise DestinationWriteError(f"{dest_ref}: cannot create namespace {dest_ref.namespace_str!r}: {exc}") from exc
    location = _new_location(catalogs, source, dest_ref)
    _refuse_overlap(source, dest_ref, location)
    metadata = destination_metadata(source, location)
    if not catalogs.supports_register(dest_ref.catalog):
        return _create_by_commit(catalog, dest_ref, metadata)
    metadata_path = f"{location}/metadata/00000-{uuid.uuid4()}.metadata.json"
    io = ledger.bind(load_file_io({**catalog.properties}, location))
    try:
        ToOutputFile.table_metadata(metadata, io.new_output(metadata_path))
    except Exception as exc:
        raise DestinationWriteError(f"{dest_ref}: cannot write metadata under {location}: {exc}") from exc
    try:
        return catalog.register_table(dest_ref.identifier, metadata_path)
    except TableAlreadyExistsError:
        io.delete(metadata_path)
        raise


def _create_by_commit(catalog: Catalog, dest_ref: TableRef, metadata: TableMetadataV2) -> Table:
    """Create the table by one create commit that carries ``metadata``'s schema, specs and sort order.

    A catalog that cannot register metadata still applies a create commit's updates as given: the schema
    keeps its field ids and the specs are numbered in the order they are added, so they keep theirs when the
    source's are 0, 1, ... (checked afterwards: a catalog that renumbered them gets its new entry dropped).
    """
    order = metadata.sort_order_by_id(metadata.default_sort_order_id)
    # model_validate, not the constructors: these models' constructors take only the JSON aliases
    updates: list[TableUpdate] = [
        AssignUUIDUpdate(uuid=metadata.table_uuid),
        UpgradeFormatVersionUpdate.model_validate({"format_version": metadata.format_version}),
        AddSchemaUpdate.model_validate({"schema_": metadata.schema()}),
        SetCurrentSchemaUpdate.model_validate({"schema_id": -1}),
        *(AddPartitionSpecUpdate(spec=spec) for spec in sorted(metadata.partition_specs, key=lambda s: s.spec_id)),
        SetDefaultSpecUpdate.model_validate({"spec_id": metadata.default_spec_id}),
        AddSortOrderUpdate.model_validate({"sort_order": order if order is not None else SortOrder(order_id=0)}),
        SetDefaultSortOrderUpdate.model_validate({"sort_order_id": -1}),
        SetLocationUpdate(location=metadata.location),
        SetPropertiesUpdate(updates=metadata.properties),
    ]
    staged = StagedTable(
        identifier=dest_ref.identifier,
        metadata=metadata,
        metadata_location=None,  # type: ignore[arg-type]  # no metadata file exists before the commit
        io=load_file_io({**catalog.properties}, metadata.location),
        catalog=catalog,
    )
    try:
        catalog.commit_table(staged, (AssertCreate(),), tuple(updates))
    except CommitFailedException as exc:
        if catalog.table_exists(dest_ref.identifier):
            raise TableAlreadyExistsError(str(dest_ref)) from exc
        raise
    table = catalog.load_table(dest_ref.identifier)
    renumbered = [spec.spec_id for spec in metadata.partition_specs if table.metadata.specs().get(spec.spec_id) != spec]
    if renumbered:
        catalog.drop_table(dest_ref.identifier)  # the entry this call created; nothing else is touched
        raise DestinationWriteError(
            f"{dest_ref}: catalog {dest_ref.catalog!r} numbered the source's partition specs "
            f"{renumbered} differently, so copied files could not keep their specs; map the table to a "
            "catalog that can register metadata (SQL, Glue, Hive, a REST server offering register)"
        )
    return table


def _refuse_overlap(source: Table, dest_ref: TableRef, location: str) -> None:
    """Never write a destination whose folder is the source's, or holds it, or lies inside it."""
    for key, place in (("location", source.metadata.location), *_write_paths(source)):
        if overlap(location, place):
            raise LocationOverlapError(
                f"{dest_ref}: its location {location} overlaps the source's {key} {place}; "
                "give the destination catalog a 'warehouse' outside every source location"
            )


def _write_paths(source: Table) -> list[tuple[str, str]]:
    return [(k, source.properties[k]) for k in ("write.data.path", "write.metadata.path") if source.properties.get(k)]


def ensure(catalogs: Catalogs, source: Table, dest_ref: TableRef) -> tuple[Table, ScaffoldResult]:
    """Adopt an identical destination table or create it; idempotent."""
    catalog = catalogs.get(dest_ref.catalog)
    if catalog.table_exists(dest_ref.identifier):
        existing = catalog.load_table(dest_ref.identifier)
        _refuse_overlap(source, dest_ref, existing.metadata.location)
        diffs = differences(source, existing)
        if diffs:
            raise DestinationConflictError(
                f"{dest_ref}: exists with a different shape: {'; '.join(diffs[:5])}. "
                "Drop or rename it, or map the source to another destination"
            )
        return existing, ScaffoldResult(str(dest_ref), False, "adopted an identical existing table")
    try:
        table = create(catalogs, source, dest_ref)
    except TableAlreadyExistsError:
        # another worker created it between our check and our create: adopt if identical
        return ensure(catalogs, source, dest_ref)
    _refuse_overlap(source, dest_ref, table.metadata.location)
    diffs = differences(source, table)
    if diffs:
        raise DestinationConflictError(
            f"{dest_ref}: the destination catalog changed the table's shape on create: {'; '.join(diffs[:5])}"
        )
    return table, ScaffoldResult(str(dest_ref), True, "created")


def pin(work: TableWork) -> int | None:
    """The source snapshot this task copies: pinned at its first run, and still there on every later one."""
    source = work.require_source()
    if work.task.source_snapshot_id is not None:
        pinned = work.task.source_snapshot_id
        if source.snapshot_by_id(pinned) is None:
            raise TerminalError(
                f"{work.task.source}: pinned snapshot {pinned} no longer exists in the source (expired?); "
                "drop the destination table and 'icebridge rollback'/re-plan this table"
            )
        return pinned
    snapshot = source.current_snapshot()
    return snapshot.snapshot_id if snapshot else None


def run(work: TableWork) -> PhaseResult:
    """Pin the source snapshot, then adopt or create the destination with the source's shape."""
    work.snapshot_id = pin(work)
    work.advance(Phase.SCAFFOLD, source_snapshot_id=work.snapshot_id)
    dest_ref = TableRef.parse(work.task.destination)
    if work.task.strategy == Strategy.REGISTER:
        from icebridge.engines.register import check_can_register

        check_can_register(work.scope.catalogs, dest_ref)  # before any table is created there
    work.destination, result = ensure(work.scope.catalogs, work.require_source(), dest_ref)
    work.note("scaffold", f"{dest_ref}: {result.message}")
    return PhaseResult(Phase.SCAFFOLD, result.message)
