"""Structure comparison: schema with field ids, current partition spec, sort order, properties."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table.sorting import SortOrder
    from pyiceberg.types import NestedField

# Properties that describe where or how one engine wrote the table rather than what the table is.
ENGINE_SPECIFIC_PREFIXES = (
    "spark.",
    "trino.",
    "presto.",
    "hive.",
    "glue.",
    "snowflake.",
    "dremio.",
    "impala.",
    "flink.",
    "databricks.",
    "delta.",
    "athena.",
    "starrocks.",
    "icebridge.",
)
ENGINE_SPECIFIC_KEYS = frozenset(
    {
        "owner",
        "EXTERNAL",
        "transient_lastDdlTime",
        "storage_handler",
        "table_type",
        "metadata_location",
        "previous_metadata_location",
        "uuid",
        "write.metadata.path",
        "write.data.path",
        "write.object-storage.path",
        "write.folder-storage.path",
        "write.object-storage.enabled",
        "location",
        "current-snapshot-id",
        "format-version",
    }
)


def portable_properties(properties: Mapping[str, str]) -> dict[str, str]:
    """The table properties worth carrying to the destination (engine- and location-specific ones removed)."""
    return {
        k: v
        for k, v in properties.items()
        if k not in ENGINE_SPECIFIC_KEYS and not k.startswith(ENGINE_SPECIFIC_PREFIXES)
    }


def schema_differences(source: Schema, destination: Schema) -> list[str]:
    """Differences between two schemas, field by field id (name, type, required, doc)."""
    out: list[str] = []
    src = {f.field_id: (name, f) for name, f in _flat_fields(source)}
    dst = {f.field_id: (name, f) for name, f in _flat_fields(destination)}
    for field_id in sorted(src.keys() | dst.keys()):
        if field_id not in dst:
            out.append(f"field id {field_id} ({src[field_id][0]}) missing in destination")
            continue
        if field_id not in src:
            out.append(f"field id {field_id} ({dst[field_id][0]}) not in source")
            continue
        (sname, sf), (dname, df) = src[field_id], dst[field_id]
        if sname != dname:
            out.append(f"field id {field_id}: name {sname!r} ≠ {dname!r}")
        if _type_str(sf.field_type) != _type_str(df.field_type):
            out.append(f"field {sname} (id {field_id}): type {sf.field_type} ≠ {df.field_type}")
        if sf.required != df.required:
            out.append(f"field {sname} (id {field_id}): required {sf.required} ≠ {df.required}")
        if (sf.doc or None) != (df.doc or None):
            out.append(f"field {sname} (id {field_id}): doc {sf.doc!r} ≠ {df.doc!r}")
    if set(source.identifier_field_ids) != set(destination.identifier_field_ids):
        out.append(
            f"identifier fields {sorted(source.identifier_field_ids)} ≠ {sorted(destination.identifier_field_ids)}"
        )
    return out


def spec_differences(source: PartitionSpec, destination: PartitionSpec) -> list[str]:
    """Differences between the current partition specs (spec ids may differ)."""
    src = [(f.source_id, str(f.transform), f.name) for f in source.fields]
    dst = [(f.source_id, str(f.transform), f.name) for f in destination.fields]
    return [] if src == dst else [f"partition spec {_spec_str(source)} ≠ {_spec_str(destination)}"]


def sort_order_differences(source: SortOrder, destination: SortOrder) -> list[str]:
    """Differences between the default sort orders (order ids may differ)."""
    src = [(f.source_id, str(f.transform), str(f.direction), str(f.null_order)) for f in source.fields]
    dst = [(f.source_id, str(f.transform), str(f.direction), str(f.null_order)) for f in destination.fields]
    return [] if src == dst else [f"sort order {src} ≠ {dst}"]


def structure_differences(
    source_schema: Schema,
    source_spec: PartitionSpec,
    source_order: SortOrder,
    destination_schema: Schema,
    destination_spec: PartitionSpec,
    destination_order: SortOrder,
) -> list[str]:
    """Every structural difference; empty means the destination has the source's shape."""
    return (
        schema_differences(source_schema, destination_schema)
        + spec_differences(source_spec, destination_spec)
        + sort_order_differences(source_order, destination_order)
    )


def _flat_fields(schema: Schema) -> list[tuple[str, NestedField]]:
    """Every field, nested ones included, with its full dotted name."""
    out: list[tuple[str, NestedField]] = []
    for field_id in sorted(schema._lazy_id_to_field):
        field = schema.find_field(field_id)
        out.append((schema.find_column_name(field_id) or field.name, field))
    return out


def _type_str(field_type: object) -> str:
    # Nested types print their children; the children are compared on their own, so keep the shape only.
    from pyiceberg.types import ListType, MapType, StructType

    if isinstance(field_type, StructType):
        return "struct"
    if isinstance(field_type, ListType):
        return "list"
    if isinstance(field_type, MapType):
        return "map"
    return str(field_type)


def _spec_str(spec: PartitionSpec) -> str:
    return "[" + ", ".join(f"{f.transform}({f.source_id}) as {f.name}" for f in spec.fields) + "]"


def property_differences(source: Mapping[str, str], destination: Mapping[str, str]) -> list[str]:
    """Portable source properties the destination lacks or holds with another value.

    Properties only the destination has (a writer's defaults) are not differences: the destination
    may add settings, it must not lose or change the source's.
    """
    dst = dict(destination)
    out = []
    for key, value in sorted(portable_properties(source).items()):
        if key not in dst:
            out.append(f"property {key!r} missing in destination")
        elif dst[key] != value:
            out.append(f"property {key!r}: {value!r} ≠ {dst[key]!r}")
    return out
