"""Scaffold: create the destination namespace and table with the source's shape.

The destination keeps the source's field ids, current partition spec and sort order. PyIceberg's
``create_table`` assigns fresh field ids, so where the destination catalog can register a metadata
file (SQL, Hive, Glue, ... catalogs) the table metadata is written by us and registered; elsewhere
the table is created and its ids checked. An identical existing table is adopted; a different one
is a :class:`DestinationConflictError`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.serializers import ToOutputFile
from pyiceberg.table.metadata import TableMetadataV2
from pyiceberg.table.sorting import SortOrder
from sqlalchemy.exc import IntegrityError

from icebridge import ledger
from icebridge.errors import DestinationConflictError, DestinationWriteError, LocationOverlapError, TerminalError
from icebridge.locations import overlap
from icebridge.model import Phase, TableRef
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
            "last-updated-ms": int(time.time() * 1000),
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


def _ensure_namespace(catalog: Catalog, namespace: tuple[str, ...]) -> None:
    for depth in range(1, len(namespace) + 1):
        try:
            catalog.create_namespace_if_not_exists(namespace[:depth])
        except (NamespaceAlreadyExistsError, IntegrityError):
            # another worker created it between the check and the insert (PostgreSQL reports a unique
            # violation there rather than PyIceberg's "already exists")
            if not catalog.namespace_exists(namespace[:depth]):
                raise


def _default_location(catalog: Catalog, ref: TableRef) -> str:
    resolve = getattr(catalog, "_resolve_table_location", None)
    if resolve is None:
        raise DestinationWriteError(f"{ref}: catalog {ref.catalog!r} cannot tell a default table location")
    location: str = resolve(None, ref.namespace_str, ref.name)
    return location


def create(catalogs: Catalogs, source: Table, dest_ref: TableRef) -> Table:
    """Create the destination table with the source's shape; raise if it cannot be written."""
    catalog = catalogs.get(dest_ref.catalog)
    try:
        _ensure_namespace(catalog, dest_ref.namespace)
    except Exception as exc:
        raise DestinationWriteError(f"{dest_ref}: cannot create namespace {dest_ref.namespace_str!r}: {exc}") from exc
    if catalogs.supports_register(dest_ref.catalog):
        location = _default_location(catalog, dest_ref)
        metadata = destination_metadata(source, location)
        metadata_path = f"{location}/metadata/00000-{uuid.uuid4()}.metadata.json"
        _refuse_overlap(source, dest_ref, location)
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
    table = catalog.create_table(
        dest_ref.identifier,
        schema=source.schema(),
        partition_spec=source.spec(),
        sort_order=source.sort_order(),
        properties=portable_properties(source.metadata.properties),
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
    work.destination, result = ensure(work.scope.catalogs, work.require_source(), dest_ref)
    work.note("scaffold", f"{dest_ref}: {result.message}")
    return PhaseResult(Phase.SCAFFOLD, result.message)
