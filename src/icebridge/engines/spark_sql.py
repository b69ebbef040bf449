"""Spark SQL for a migration, generated from PyIceberg metadata (no Spark needed to render it).

``render_script`` prints what the ``spark-sql`` strategy does for one table, for review with
``icebridge plan --sql`` or to run on a cluster by hand: the scaffold (``CREATE TABLE … USING iceberg``
with the source's schema, partition spec, sort order, identifier fields and properties), the copy
(``INSERT INTO … SELECT … VERSION AS OF``) and the incremental sync (a changelog view of the source).

Every identifier is quoted with backticks, backticks inside doubled, so names with dots, spaces,
backticks or any letters survive; string literals are quoted with single quotes, quotes and
backslashes escaped (Spark's default string-literal rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyiceberg.table.sorting import NullOrder, SortDirection
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    VoidTransform,
    YearTransform,
)
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    UUIDType,
)

from icebridge.errors import PlanError
from icebridge.validation.structure import portable_properties

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table
    from pyiceberg.table.sorting import SortOrder

    from icebridge.model import TableRef

# the destination is always written as v2 by the scaffold, whatever the source's version
DESTINATION_FORMAT_VERSION = "2"

_PRIMITIVES: dict[type[IcebergType], str] = {
    BooleanType: "BOOLEAN",
    IntegerType: "INT",
    LongType: "BIGINT",
    FloatType: "FLOAT",
    DoubleType: "DOUBLE",
    DateType: "DATE",
    TimestampType: "TIMESTAMP_NTZ",
    TimestamptzType: "TIMESTAMP",
    StringType: "STRING",
    BinaryType: "BINARY",
}

# Spark has no SQL type for these; Iceberg's Spark integration reads them as STRING / BINARY, so a
# table created from this DDL would get the wider type. IceBridge's own scaffold keeps the exact type.
_APPROXIMATED: dict[type[IcebergType], str] = {UUIDType: "STRING", FixedType: "BINARY"}


def quote_identifier(name: str) -> str:
    """One identifier part in backticks, backticks inside doubled: ``a`b`` → ```a``b```."""
    return "`" + name.replace("`", "``") + "`"


def quote_parts(parts: Iterable[str]) -> str:
    """A multi-part name, each part quoted on its own, so a dot inside a part is not a separator."""
    return ".".join(quote_identifier(p) for p in parts)


def table_name(ref: TableRef) -> str:
    """``catalog.namespace….table`` fully quoted (namespaces may have several levels)."""
    return quote_parts((ref.catalog, *ref.namespace, ref.name))


def namespace_name(ref: TableRef) -> str:
    return quote_parts((ref.catalog, *ref.namespace))


def quote_string(value: str) -> str:
    """A Spark SQL string literal (backslash escapes are on by default in Spark SQL)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def spark_type(field_type: IcebergType, where: str = "") -> str:
    """The Spark SQL type for an Iceberg type; raises :class:`PlanError` for types Spark cannot hold."""
    if isinstance(field_type, DecimalType):
        return f"DECIMAL({field_type.precision}, {field_type.scale})"
    if isinstance(field_type, StructType):
        return "STRUCT<" + ", ".join(_struct_member(f, where) for f in field_type.fields) + ">"
    if isinstance(field_type, ListType):
        return f"ARRAY<{spark_type(field_type.element_type, where)}>"
    if isinstance(field_type, MapType):
        return f"MAP<{spark_type(field_type.key_type, where)}, {spark_type(field_type.value_type, where)}>"
    for kind, name in (*_PRIMITIVES.items(), *_APPROXIMATED.items()):
        if type(field_type) is kind:
            return name
    raise PlanError(
        f"{where or 'column'}: Iceberg type {field_type} has no Spark SQL equivalent in Spark 3.5; "
        "use strategy rewrite for this table"
    )


def _struct_member(f: NestedField, where: str) -> str:
    text = f"{quote_identifier(f.name)}: {spark_type(f.field_type, where)}"
    if f.required:
        text += " NOT NULL"
    if f.doc:
        text += f" COMMENT {quote_string(f.doc)}"
    return text


def _column(f: NestedField, where: str) -> str:
    text = f"  {quote_identifier(f.name)} {spark_type(f.field_type, f'{where}.{f.name}')}"
    if f.required:
        text += " NOT NULL"
    if f.doc:
        text += f" COMMENT {quote_string(f.doc)}"
    return text


def column_paths(schema: Schema) -> dict[int, tuple[str, ...]]:
    """Field id → name path through structs (what partition and sort fields may refer to)."""
    paths: dict[int, tuple[str, ...]] = {}

    def walk(fields: Sequence[NestedField], prefix: tuple[str, ...]) -> None:
        for f in fields:
            paths[f.field_id] = (*prefix, f.name)
            if isinstance(f.field_type, StructType):
                walk(f.field_type.fields, (*prefix, f.name))

    walk(schema.fields, ())
    return paths


def transform_expression(transform: Transform, column: str) -> str | None:
    """A partition or sort transform as Spark SQL (``days(`at`)``); ``None`` for ``void``."""
    if isinstance(transform, IdentityTransform):
        return column
    if isinstance(transform, BucketTransform):
        return f"bucket({transform.num_buckets}, {column})"
    if isinstance(transform, TruncateTransform):
        return f"truncate({transform.width}, {column})"
    named = {YearTransform: "years", MonthTransform: "months", DayTransform: "days", HourTransform: "hours"}
    for kind, name in named.items():
        if isinstance(transform, kind):
            return f"{name}({column})"
    if isinstance(transform, VoidTransform):
        return None
    raise PlanError(f"partition transform {transform} has no Spark SQL form; use strategy rewrite")


def _column_ref(paths: dict[int, tuple[str, ...]], source_id: int, what: str) -> str:
    if source_id not in paths:
        raise PlanError(f"{what} refers to field id {source_id}, which the current schema does not have")
    return quote_parts(paths[source_id])


def partition_clause(spec: PartitionSpec, schema: Schema) -> str:
    """``PARTITIONED BY (…)`` for the spec, or an empty string when unpartitioned."""
    paths = column_paths(schema)
    parts = []
    for f in spec.fields:
        expression = transform_expression(f.transform, _column_ref(paths, f.source_id, f"partition field {f.name}"))
        if expression is not None:
            parts.append(expression)
    return f"PARTITIONED BY ({', '.join(parts)})" if parts else ""


def sort_clause(order: SortOrder, schema: Schema) -> str:
    """The ``WRITE ORDERED BY`` terms of a sort order (empty when unsorted)."""
    paths = column_paths(schema)
    terms = []
    for f in order.fields:
        expression = transform_expression(f.transform, _column_ref(paths, f.source_id, "sort field"))
        if expression is None:
            continue
        direction = "ASC" if f.direction == SortDirection.ASC else "DESC"
        nulls = "NULLS FIRST" if f.null_order == NullOrder.NULLS_FIRST else "NULLS LAST"
        terms.append(f"{expression} {direction} {nulls}")
    return ", ".join(terms)


def select_list(schema: Schema) -> str:
    """The top-level columns in schema order, quoted: what ``INSERT … SELECT`` copies."""
    return ", ".join(quote_identifier(f.name) for f in schema.fields)


def create_table_sql(schema: Schema, spec: PartitionSpec, properties: dict[str, str], destination: TableRef) -> str:
    """``CREATE TABLE IF NOT EXISTS … USING iceberg`` with the schema, spec and properties."""
    where = str(destination)
    columns = ",\n".join(_column(f, where) for f in schema.fields)
    props = {**properties, "format-version": DESTINATION_FORMAT_VERSION}
    lines = [f"CREATE TABLE IF NOT EXISTS {table_name(destination)} (", columns, ")", "USING iceberg"]
    partitioned = partition_clause(spec, schema)
    if partitioned:
        lines.append(partitioned)
    rendered = ",\n".join(f"  {quote_string(k)} = {quote_string(v)}" for k, v in sorted(props.items()))
    lines.append(f"TBLPROPERTIES (\n{rendered}\n)")
    return "\n".join(lines)


def insert_select_sql(schema: Schema, source: TableRef, destination: TableRef, snapshot_id: int | None) -> str:
    """``INSERT INTO dst SELECT cols FROM src VERSION AS OF <snapshot>``: the copy, deletes applied by Spark."""
    version = f" VERSION AS OF {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"INSERT INTO {table_name(destination)}\nSELECT {select_list(schema)}\nFROM {table_name(source)}{version}"


def select_sql(schema: Schema, source: TableRef, snapshot_id: int | None) -> str:
    """The ``SELECT`` half of the copy, run by the engine through a writer that can carry snapshot properties."""
    version = f" VERSION AS OF {int(snapshot_id)}" if snapshot_id is not None else ""
    return f"SELECT {select_list(schema)} FROM {table_name(source)}{version}"


def _procedure_table_arg(ref: TableRef) -> str:
    # system procedures take the table as a string parsed like a multi-part identifier (without catalog)
    return quote_string(quote_parts((*ref.namespace, ref.name)))


def changelog_view_name(source: TableRef) -> str:
    """A deterministic temporary view name for the source's changelog (plain ASCII, always valid)."""
    safe = "".join(c if c.isascii() and c.isalnum() else "_" for c in f"{source.namespace_str}_{source.name}")
    return f"icebridge_changes_{safe}"[:120]


def sync_sql(
    schema: Schema, source: TableRef, destination: TableRef, from_snapshot_id: int, to_snapshot_id: int | None
) -> list[tuple[str, str]]:
    """``(title, statement)`` pairs bringing the destination from ``from_snapshot_id`` to ``to_snapshot_id``.

    Uses Iceberg's ``create_changelog_view`` procedure on the source. With identifier fields the net
    changes are applied by key: rows whose key was deleted or changed are deleted, then the new rows
    inserted (two commits). Without identifier fields only appended rows can be carried; a source that
    deleted or overwrote rows in the range must be copied again, which the title says.
    """
    view = quote_identifier(changelog_view_name(source))
    options = [quote_string("start-snapshot-id"), quote_string(str(int(from_snapshot_id)))]
    if to_snapshot_id is not None:
        options += [quote_string("end-snapshot-id"), quote_string(str(int(to_snapshot_id)))]
    paths = column_paths(schema)
    keys = [paths[i] for i in sorted(schema.identifier_field_ids) if i in paths]
    args = [
        f"table => {_procedure_table_arg(source)}",
        f"options => map({', '.join(options)})",
        f"changelog_view => {quote_string(changelog_view_name(source))}",
    ]
    if keys:
        names = ", ".join(quote_string(".".join(k)) for k in keys)
        # identifier columns switch update images on by default, which net changes cannot combine with
        args += ["net_changes => true", "compute_updates => false", f"identifier_columns => array({names})"]
    call = f"CALL {quote_identifier(source.catalog)}.system.create_changelog_view(\n  " + ",\n  ".join(args) + "\n)"
    insert = (
        f"INSERT INTO {table_name(destination)}\nSELECT {select_list(schema)}\nFROM {view}\n"
        "WHERE _change_type = 'INSERT'"
    )
    if not keys:
        return [
            ("sync: the source's changes since the pinned snapshot, as a changelog view", call),
            (
                "sync: no identifier fields, so only appended rows can be carried; if the view has rows with "
                "_change_type = 'DELETE', copy the table again instead",
                insert,
            ),
        ]
    key_list = ", ".join(quote_parts(k) for k in keys)
    delete = (
        f"DELETE FROM {table_name(destination)}\nWHERE ({key_list}) IN (\n"
        f"  SELECT {key_list} FROM {view} WHERE _change_type = 'DELETE')"
    )
    return [
        ("sync: the source's net changes since the pinned snapshot, by identifier fields", call),
        ("sync: drop the rows whose key was deleted or changed", delete),
        ("sync: add the new and changed rows", insert),
    ]


def _comment(text: str) -> str:
    return "\n".join(f"-- {line}" if line else "--" for line in text.splitlines())


@dataclass(frozen=True)
class ScriptStatement:
    """One statement of a migration script; ``optional`` ones are printed as comments, not run."""

    title: str
    sql: str
    optional: bool = False


def _notes(schema: Schema, spec: PartitionSpec) -> list[str]:
    notes: list[str] = []
    approximated = [
        ".".join(path)
        for field_id, path in column_paths(schema).items()
        if type(schema.find_field(field_id).field_type) in _APPROXIMATED
    ]
    if approximated:
        notes.append(
            f"uuid/fixed columns ({', '.join(approximated)}) are declared STRING/BINARY here; "
            "IceBridge's own scaffold keeps the exact Iceberg types"
        )
    renamed = [
        f.name
        for f in spec.fields
        if transform_expression(f.transform, "x") is not None and f.name != _spark_default_partition_name(f, schema)
    ]
    if renamed:
        notes.append(f"partition field names {renamed} differ from Spark's defaults; IceBridge's scaffold keeps them")
    return notes


def script_statements(
    source: Table, source_ref: TableRef, destination_ref: TableRef, snapshot_id: int | None
) -> list[ScriptStatement]:
    """The statements of :func:`render_script`, in order, each runnable on its own in Spark SQL."""
    schema = source.schema()
    spec = source.spec()
    destination = table_name(destination_ref)
    out = [
        ScriptStatement("scaffold: namespace", f"CREATE NAMESPACE IF NOT EXISTS {namespace_name(destination_ref)}"),
        ScriptStatement(
            "scaffold: table (same schema, partition spec and properties)",
            create_table_sql(schema, spec, portable_properties(source.metadata.properties), destination_ref),
        ),
    ]
    ordered = sort_clause(source.sort_order(), schema)
    if ordered:
        out.append(ScriptStatement("scaffold: sort order", f"ALTER TABLE {destination} WRITE ORDERED BY {ordered}"))
    if schema.identifier_field_ids:
        paths = column_paths(schema)
        fields = ", ".join(quote_parts(paths[i]) for i in sorted(schema.identifier_field_ids))
        out.append(
            ScriptStatement("scaffold: identifier fields", f"ALTER TABLE {destination} SET IDENTIFIER FIELDS {fields}")
        )
    if snapshot_id is None:
        return out
    out.append(
        ScriptStatement(
            f"copy: the pinned source snapshot {snapshot_id}, deletes applied (IceBridge runs it through the "
            "DataFrame writer so the commit carries its checkpoint markers as snapshot-property.* options)",
            insert_select_sql(schema, source_ref, destination_ref, snapshot_id),
        )
    )
    out.append(
        ScriptStatement(
            "check: row counts of both sides (IceBridge's validation also compares content digests)",
            f"SELECT (SELECT count(*) FROM {table_name(source_ref)} VERSION AS OF {int(snapshot_id)}) AS source_rows,\n"
            f"       (SELECT count(*) FROM {destination}) AS destination_rows",
        )
    )
    for title, sql in sync_sql(schema, source_ref, destination_ref, snapshot_id, None):
        out.append(ScriptStatement(f"{title} (later, before cut-over)", sql, optional=True))
    out.append(
        ScriptStatement(
            "after cut-over: compact the per-batch manifests (adds a snapshot IceBridge did not make, "
            "so only once the table is cut over)",
            f"CALL {quote_identifier(destination_ref.catalog)}.system.rewrite_manifests("
            f"table => {_procedure_table_arg(destination_ref)})",
            optional=True,
        )
    )
    return out


def render_script(source: Table, source_ref: TableRef, destination_ref: TableRef, snapshot_id: int | None) -> str:
    """The whole Spark SQL migration of one table, for review (``icebridge plan --sql``) or a manual run.

    Scaffold (namespace, table with schema, partition spec and properties, sort order, identifier
    fields), the copy of the pinned snapshot and a row-count check run as they are; the incremental
    sync and post-cut-over maintenance are printed commented out. Raises :class:`PlanError` when the
    table holds something Spark SQL cannot express (e.g. a ``time`` column), naming the column and the fix.
    """
    statements = script_statements(source, source_ref, destination_ref, snapshot_id)
    header = (
        f"IceBridge spark-sql migration: {source_ref} -> {destination_ref}\n"
        f"source format v{source.metadata.format_version}, destination v{DESTINATION_FORMAT_VERSION}, "
        + (f"pinned snapshot {snapshot_id}" if snapshot_id is not None else "no snapshot: nothing to copy")
    )
    out = [_comment(header)]
    out.extend(_comment("note: " + n) for n in _notes(source.schema(), source.spec()))
    for st in statements:
        body = f"{st.sql};"
        out.append(_comment(st.title) + "\n" + (_comment(body) if st.optional else body))
    return "\n\n".join(out) + "\n"


def _spark_default_partition_name(f: PartitionField, schema: Schema) -> str:
    """The partition field name Spark gives a transform in ``PARTITIONED BY`` (Iceberg's naming)."""
    column = schema.find_column_name(f.source_id) or str(f.source_id)
    transform = f.transform
    if isinstance(transform, IdentityTransform):
        return column
    if isinstance(transform, BucketTransform):
        return f"{column}_bucket"
    if isinstance(transform, TruncateTransform):
        return f"{column}_trunc"
    suffixes = {YearTransform: "year", MonthTransform: "month", DayTransform: "day", HourTransform: "hour"}
    for kind, suffix in suffixes.items():
        if isinstance(transform, kind):
            return f"{column}_{suffix}"
    return column
