"""Level-4 digests read by DuckDB's own Parquet reader: decode, partition and hash in one pipeline.

The general path (:mod:`icebridge.validation.digest`) decodes every file to Arrow with
``pyarrow.parquet`` and then hands the batches to DuckDB for hashing; hashing there costs about as much
as the decoding did. Here DuckDB scans the files itself (``read_parquet`` with an Iceberg field-id
``schema`` map), so decoding, the partition transforms and the row hash run in one vectorised,
multi-threaded pipeline and no Arrow copy of the data is ever built. It is also a third, independent
Parquet decoder: a rewrite writes with PyArrow, and these digests never go through PyArrow's reader.

The hashes are the same as the general path's, by construction: the columns get the DuckDB types
DuckDB itself gives the general path's Arrow batches (:func:`duck_types`), and the row hash is the same
SQL (:func:`icebridge.validation.rowhash.row_hash_sql`). Files the scan cannot read exactly as Iceberg
means them go to the general path instead, file by file:

* a file with equality deletes on a column outside the schema, or not in Parquet, or on storage other
  than local disk, S3 or GCS
  (object-store files are read through the table's own PyArrow file system, see :class:`Locator`);
* a file whose footer lacks a required schema field, has no field ids, stores a column in an encoding the
  Iceberg type does not allow, or holds a struct whose fields differ in name from the schema's
  (DuckDB matches nested fields by name) — the check reads every footer first.

Partition values are computed in SQL where SQL can (identity, year, month, day, hour, void, integer
truncate); ``bucket`` and the other ``truncate`` forms call PyIceberg's own transforms on each Arrow
vector, as the general path does. The whole table goes to the general path when its schema has UUID
or nanosecond columns or initial defaults, or its spec has a nested source column or a bucket of a
fixed-length binary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
from pyiceberg.manifest import FileFormat
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
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
    PrimitiveType,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
)

from icebridge.errors import ValidationError
from icebridge.validation.reader import DataFileTask, _duck_safe, output_arrow_schema
from icebridge.validation.rowhash import row_hash_sql

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.io import FileIO
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema

__all__ = ["FileResult", "Locator", "ScanPlan", "duck_types", "eligible", "local_path", "scan_digests", "scan_plan"]

# Files per query: bounds the SQL text and what one unreadable file sends back to the general path.
CHUNK_FILES = 256
_EPOCH_DAY_US = 86_400_000_000
_EPOCH_HOUR_US = 3_600_000_000
_MASK64 = (1 << 64) - 1

# (physical type, converted type) a file may store each Iceberg type as; promotions Iceberg allows included.
_ENCODINGS: dict[type[PrimitiveType], set[tuple[str, str | None]]] = {
    BooleanType: {("BOOLEAN", None)},
    IntegerType: {("INT32", None), ("INT32", "INT_32")},
    LongType: {("INT64", None), ("INT64", "INT_64"), ("INT32", None), ("INT32", "INT_32")},
    FloatType: {("FLOAT", None)},
    DoubleType: {("DOUBLE", None), ("FLOAT", None)},
    DateType: {("INT32", "DATE")},
    TimeType: {("INT64", "TIME_MICROS")},
    StringType: {("BYTE_ARRAY", "UTF8")},
    BinaryType: {("BYTE_ARRAY", None)},
}


@dataclass(frozen=True)
class KeyFunction:
    """A partition transform SQL cannot express, run by PyIceberg on each Arrow vector as a DuckDB function."""

    name: str
    transform: Callable[[pa.Array], pa.Array]
    argument: str  # DuckDB type of the source column
    result: str  # DuckDB type of the partition value


@dataclass(frozen=True)
class ScanPlan:
    """How DuckDB reads one table layout: its columns by field id, partition keys and row hash, in SQL."""

    field_ids: list[int]  # hashed columns, ascending field id (the general path's order)
    types: list[IcebergType]
    duck_types: list[str]
    key_sql: list[str]  # one expression per partition field of the spec
    hash_sql: str
    functions: tuple[KeyFunction, ...] = ()  # the Python functions key_sql calls
    optional: frozenset[int] = frozenset()  # field ids a file written before they were added may lack

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define :attr:`functions` on ``con``."""
        import duckdb
        from duckdb.func import PythonUDFType

        for f in self.functions:
            con.create_function(
                f.name,
                _vectorised(f.transform),
                [duckdb.sqltype(f.argument)],
                duckdb.sqltype(f.result),
                type=PythonUDFType.ARROW,
            )

    def schema_map(self) -> str:
        """The ``schema`` argument of ``read_parquet``: field id -> column name ``c<i>`` and DuckDB type."""
        entries = [
            f"{fid}: {{name: 'c{i}', type: '{dt.replace(chr(39), chr(39) * 2)}', default_value: NULL}}"
            for i, (fid, dt) in enumerate(zip(self.field_ids, self.duck_types, strict=True))
        ]
        return "MAP {" + ", ".join(entries) + "}"


@dataclass
class FileResult:
    """Per partition label of one data file: rows, sum and xor of their hashes (what the general path yields)."""

    task: DataFileTask
    keys: dict[tuple[Any, ...], list[int]]  # partition key values -> [count, sum, xor]
    rows: int


def local_path(path: str) -> str | None:
    """The local file-system path of ``path`` (plain or ``file:`` URI); None for object stores.

    As PyIceberg's FileIO does, a ``file:`` URI's path is taken as written: Iceberg writers put
    percent-escapes of partition values literally into file names.
    """
    if "://" not in path and not path.startswith("file:"):
        return path
    parsed = urlparse(path)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        return None
    return parsed.path


# Object stores whose PyArrow paths are "<bucket>/<key>", as fsspec strips "<scheme>://" from a URL.
_OBJECT_STORES = frozenset({"s3", "s3a", "s3n", "gs"})


class Locator:
    """Where DuckDB finds a table's data files.

    Local files by their path. Object-store files by their URL, read through the table's own PyArrow
    file system (same endpoint and credentials as its FileIO), which :meth:`register` hands to DuckDB
    under the URL's scheme; one file system per scheme, so files of a second bucket needing another
    one go to the general path.
    """

    def __init__(self, io: FileIO) -> None:
        self._io = io
        self._filesystems: dict[str, Any] = {}

    def locate(self, path: str) -> str | None:
        """The location DuckDB reads ``path`` at, or None when the scan cannot reach it."""
        local = local_path(path)
        if local is not None:
            return local
        from pyiceberg.io.pyarrow import PyArrowFileIO

        scheme = urlparse(path).scheme
        if scheme not in _OBJECT_STORES or not isinstance(self._io, PyArrowFileIO):
            return None
        try:
            parsed_scheme, netloc, _ = PyArrowFileIO.parse_location(path, self._io.properties)
            fs = self._io.fs_by_scheme(parsed_scheme, netloc)
        except Exception:  # noqa: BLE001 - the general path will report what is wrong with it
            return None
        known = self._filesystems.setdefault(scheme, fs)
        return path if known is fs else None

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Make the object-store file systems met so far readable by ``con``."""
        if not self._filesystems:
            return
        from fsspec.implementations.arrow import ArrowFSWrapper

        for scheme, fs in self._filesystems.items():
            wrapper = type(f"_IcebergArrowFS_{scheme}", (ArrowFSWrapper,), {"protocol": scheme})
            con.register_filesystem(wrapper(fs))


def duck_types(arrow_types: Sequence[pa.DataType]) -> list[str]:
    """The DuckDB types DuckDB gives Arrow columns of ``arrow_types`` (as the general path hands them over)."""
    import duckdb

    empty = pa.table([pa.nulls(0, t) for t in arrow_types], names=[f"c{i}" for i in range(len(arrow_types))])
    con = duckdb.connect()
    try:
        con.register("__empty", empty)
        return [row[1] for row in con.sql("DESCRIBE __empty").fetchall()]
    finally:
        con.close()


def _supported(t: IcebergType) -> bool:
    if isinstance(t, StructType):
        return all(_supported(f.field_type) and getattr(f, "initial_default", None) is None for f in t.fields)
    if isinstance(t, ListType):
        return _supported(t.element_type)
    if isinstance(t, MapType):
        return _supported(t.key_type) and _supported(t.value_type)
    if isinstance(t, DecimalType | FixedType | TimestampType | TimestamptzType):
        return True
    return type(t) in _ENCODINGS


def _floor_div(expr: str, divisor: int) -> str:
    return f"(({expr}) - ((({expr}) % {divisor}) + {divisor}) % {divisor}) // {divisor}"


def _key_sql(pf: PartitionField, source: IcebergType, column: str) -> str | None:
    """SQL computing ``pf``'s partition value (Iceberg's representation) from ``column``; None if not expressible."""
    t = pf.transform
    is_date = isinstance(source, DateType)
    is_ts = isinstance(source, TimestampType | TimestamptzType)
    if isinstance(t, IdentityTransform):
        return column
    if isinstance(t, VoidTransform):
        return "NULL"
    if isinstance(t, YearTransform) and (is_date or is_ts):
        return f"(year({column}) - 1970)"
    if isinstance(t, MonthTransform) and (is_date or is_ts):
        return f"((year({column}) - 1970) * 12 + month({column}) - 1)"
    if isinstance(t, DayTransform) and is_date:
        return f"({column} - DATE '1970-01-01')"
    if isinstance(t, DayTransform) and is_ts:
        return _floor_div(f"epoch_us({column})", _EPOCH_DAY_US)
    if isinstance(t, HourTransform) and is_ts:
        return _floor_div(f"epoch_us({column})", _EPOCH_HOUR_US)
    if isinstance(t, TruncateTransform) and isinstance(source, IntegerType | LongType):
        width = int(t.width)
        return f"(({column}) - ((({column}) % {width}) + {width}) % {width})"
    return None


def scan_plan(schema: Schema, spec: PartitionSpec) -> ScanPlan | None:
    """The scan of ``schema``'s columns partitioned by ``spec``, or None when the table needs the general path."""
    fields = sorted(schema.fields, key=lambda f: f.field_id)
    for f in fields:
        if not _supported(f.field_type) or getattr(f, "initial_default", None) is not None:
            return None
    by_id = {f.field_id: i for i, f in enumerate(fields)}
    arrow = output_arrow_schema(schema)
    arrow_by_id = {int(af.metadata[b"PARQUET:field_id"]): af.type for af in arrow}
    arrow_types = [arrow_by_id[f.field_id] for f in fields]
    duck = duck_types(arrow_types)
    names = [f"c{i}" for i in range(len(fields))]
    keys: list[str] = []
    functions: list[KeyFunction] = []
    for pf in spec.fields:
        if pf.source_id not in by_id:  # a nested source field, or one not in this schema
            return None
        i = by_id[pf.source_id]
        sql = _key_sql(pf, fields[i].field_type, names[i])
        if sql is None:
            function = _key_function(pf, fields[i].field_type, duck[i], f"icebridge_partition_key_{len(functions)}")
            if function is None:
                return None
            functions.append(function)
            sql = f"{function.name}({names[i]})"
        keys.append(sql)
    return ScanPlan(
        field_ids=[f.field_id for f in fields],
        types=[f.field_type for f in fields],
        duck_types=duck,
        key_sql=keys,
        hash_sql=row_hash_sql(arrow_types, names),
        functions=tuple(functions),
        optional=frozenset(f.field_id for f in fields if not f.required),
    )


def _vectorised(transform: Callable[[pa.Array], pa.Array]) -> Callable[[pa.Array], pa.Array]:
    """``transform`` as a DuckDB Arrow function: vectors in the 32-bit-offset layouts PyIceberg's transforms take."""

    def call(values: pa.Array) -> pa.Array:
        t = values.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t):
            values = values.cast(pa.string())
        elif pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            values = values.cast(pa.binary())
        return transform(values)

    return call


# Source types whose DuckDB vectors PyIceberg's bucket and truncate take.
_BUCKET_SOURCES = (
    IntegerType,
    LongType,
    DateType,
    TimeType,
    TimestampType,
    TimestamptzType,
    StringType,
    BinaryType,
    DecimalType,
)
_TRUNCATE_SOURCES = (StringType, BinaryType, DecimalType)


def _key_function(pf: PartitionField, source: IcebergType, duck_type: str, name: str) -> KeyFunction | None:
    """``bucket`` and ``truncate`` as PyIceberg computes them (as the general path does), for DuckDB to call."""
    t = pf.transform
    if isinstance(t, BucketTransform) and isinstance(source, _BUCKET_SOURCES):
        return KeyFunction(name, t.pyarrow_transform(source), duck_type, "INTEGER")
    if isinstance(t, TruncateTransform) and isinstance(source, _TRUNCATE_SOURCES):
        return KeyFunction(name, t.pyarrow_transform(source), duck_type, duck_type)
    return None


def _accepts(t: IcebergType, row: dict[str, Any]) -> bool:
    """Whether a footer column (a row of DuckDB's ``parquet_schema``) stores Iceberg type ``t`` as Iceberg means it."""
    physical, converted, logical = row["type"], row["converted_type"], row["logical_type"] or ""
    if row["num_children"]:
        return False
    if isinstance(t, DecimalType):
        return converted == "DECIMAL" and row["scale"] == t.scale and (row["precision"] or 0) <= t.precision
    if isinstance(t, FixedType):
        return physical == "FIXED_LEN_BYTE_ARRAY" and converted is None and int(row["type_length"] or 0) == len(t)
    if isinstance(t, TimestampType | TimestamptzType):
        adjusted = "isAdjustedToUTC=1" in logical
        if physical != "INT64" or converted != "TIMESTAMP_MICROS":
            return False
        return adjusted == isinstance(t, TimestamptzType)
    if isinstance(t, TimeType) and physical == "INT64" and "MICROS=MicroSeconds()" in logical:
        return True
    return (physical, converted) in _ENCODINGS.get(type(t), set())  # type: ignore[arg-type]


def eligible(
    con: duckdb.DuckDBPyConnection, plan: ScanPlan, tasks: Sequence[DataFileTask], locator: Locator | None = None
) -> tuple[list[tuple[DataFileTask, str]], list[DataFileTask]]:
    """Split ``tasks`` into those DuckDB's scan reads exactly as Iceberg means them (with their locations) and the rest.

    Without a ``locator`` only local files qualify; with one, object-store files too, and its file
    systems are registered on ``con``.

    Every footer is read (one parallel DuckDB query per chunk of files); a file whose footer cannot be
    read goes to the general path, which names it in its error.
    """
    import duckdb

    candidates: list[tuple[DataFileTask, str]] = []
    rest: list[DataFileTask] = []
    columns = set(plan.field_ids)
    for task in tasks:
        # an equality delete file without ids is the general path's to report (-1 is no field id)
        equality_ids = {fid for ddf in task.equality_deletes for fid in (ddf.equality_ids or [-1])}
        path = None
        if equality_ids <= columns and task.data_file.file_format == FileFormat.PARQUET:
            path = locator.locate(task.data_file.file_path) if locator else local_path(task.data_file.file_path)
        if path is None:
            rest.append(task)
        else:
            candidates.append((task, path))
    if locator is not None:
        locator.register(con)
    wanted = dict(zip(plan.field_ids, plan.types, strict=True))
    ok: list[tuple[DataFileTask, str]] = []
    for start in range(0, len(candidates), CHUNK_FILES):
        chunk = candidates[start : start + CHUNK_FILES]
        try:
            by_file = _footers(con, [p for _, p in chunk])
        except duckdb.Error:
            # one unreadable footer fails the query: read them one by one to leave only the bad ones out
            by_file = {}
            for _, path in chunk:
                try:
                    by_file.update(_footers(con, [path]))
                except duckdb.Error:
                    continue
        for task, path in chunk:
            if _footer_ok(by_file.get(path, []), wanted, plan.optional):
                ok.append((task, path))
            else:
                rest.append(task)
    return ok, rest


_FOOTER_COLUMNS = (
    "file_name, name, type, type_length, converted_type, scale, precision, field_id, logical_type, "
    "num_children, repetition_type"
)


def _footers(con: duckdb.DuckDBPyConnection, paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each file's schema rows from its footer (DuckDB's ``parquet_schema``, depth first), by path."""
    rows = con.sql(f"SELECT {_FOOTER_COLUMNS} FROM parquet_schema(?)", params=[paths]).fetchall()
    columns = [c.strip() for c in _FOOTER_COLUMNS.split(",")]
    by_file: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_file.setdefault(r[0], []).append(dict(zip(columns, r, strict=True)))
    return by_file


@dataclass
class _Node:
    """One node of a Parquet footer's schema tree (a row of ``parquet_schema`` and its children)."""

    row: dict[str, Any]
    children: list[_Node]


def _tree(rows: list[dict[str, Any]]) -> _Node | None:
    """The footer's schema tree from ``parquet_schema``'s depth-first rows; None if they do not form one."""
    it = iter(rows)

    def build() -> _Node:
        row = next(it)
        return _Node(row, [build() for _ in range(int(row["num_children"] or 0))])

    try:
        root = build()
    except StopIteration:
        return None
    return root if next(it, None) is None else None


def _by_field_id(nodes: list[_Node]) -> dict[int, _Node] | None:
    out: dict[int, _Node] = {}
    for node in nodes:
        fid = node.row["field_id"]
        if fid is None or int(fid) in out:
            return None
        out[int(fid)] = node
    return out


def _node_ok(t: IcebergType, node: _Node) -> bool:
    """Whether a footer node holds Iceberg type ``t`` in a shape DuckDB reads as Iceberg means it.

    DuckDB matches nested struct fields by name, not field id, so a struct must hold exactly the
    schema's fields under the schema's names (a renamed or dropped nested field sends the file to the
    general path). Lists and maps must have the standard three-level layout.
    """
    annotation = node.row["converted_type"]
    if isinstance(t, StructType):
        if not node.children or annotation is not None or len(node.children) != len(t.fields):
            return False
        children = _by_field_id(node.children)
        if children is None:
            return False
        for f in t.fields:
            child = children.get(f.field_id)
            if child is None or child.row["name"] != f.name or not _node_ok(f.field_type, child):
                return False
        return True
    if isinstance(t, ListType):
        if annotation != "LIST" or len(node.children) != 1:
            return False
        repeated = node.children[0]
        if repeated.row["repetition_type"] != "REPEATED" or len(repeated.children) != 1:
            return False
        element = repeated.children[0]
        return element.row["field_id"] == t.element_id and _node_ok(t.element_type, element)
    if isinstance(t, MapType):
        if annotation not in ("MAP", "MAP_KEY_VALUE") or len(node.children) != 1:
            return False
        entries = node.children[0]
        if entries.row["repetition_type"] != "REPEATED" or len(entries.children) != 2:
            return False
        key, value = entries.children
        return (
            key.row["field_id"] == t.key_id
            and value.row["field_id"] == t.value_id
            and _node_ok(t.key_type, key)
            and _node_ok(t.value_type, value)
        )
    return not node.children and _accepts(t, node.row)


def _footer_ok(rows: list[dict[str, Any]], wanted: dict[int, IcebergType], optional: frozenset[int]) -> bool:
    """Whether a file's footer holds every wanted field as Iceberg means it.

    An optional top-level field the file lacks (it was added after the file was written) reads as
    null, as Iceberg says; a required one sends the file to the general path.
    """
    root = _tree(rows)
    if root is None:
        return False
    columns = _by_field_id(root.children)
    if columns is None:
        return False
    return all(_node_ok(t, columns[fid]) if fid in columns else fid in optional for fid, t in wanted.items())


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


def scan_digests(
    con: duckdb.DuckDBPyConnection,
    plan: ScanPlan,
    files: Sequence[tuple[DataFileTask, str]],
    workers: int,
    on_fallback: Callable[[list[DataFileTask]], None],
    io: FileIO | None = None,
    equality: Callable[[DataFileTask], list[tuple[tuple[int, ...], pa.Table]]] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[FileResult]:
    """Per file: row count, and per partition key the count, sum and xor of the row hashes.

    ``con`` is the connection :func:`eligible` checked the files on (its file systems registered). DuckDB
    runs each chunk of files with ``workers`` threads. A file with deletes is scanned on its own: its
    deleted row positions (read with the general path's own reader, through ``io``) are left out by row
    number, and rows equal to a row of an equality delete file (``equality`` gives the key tables, by
    equality field ids; nulls equal nulls) are left out by an anti-join. A chunk DuckDB cannot read is
    handed to ``on_fallback`` (the general path reads it and names the failing file). ``progress`` gets
    ``(files, bytes)`` for every chunk read (bytes as the manifests record them), not for chunks handed back.

    Raises:
        ValidationError: a position delete file cannot be read, or a file without deletes holds another
            number of rows than its manifest entry says.
    """
    from icebridge.validation.reader import read_position_deletes

    con.execute(f"SET threads = {max(1, workers)}")
    con.execute("SET TimeZone = 'UTC'")
    plan.register(con)
    clean = [(t, p) for t, p in files if not t.position_deletes and not t.equality_deletes]
    for start in range(0, len(clean), CHUNK_FILES):
        yield from _scan_chunk(con, plan, clean[start : start + CHUNK_FILES], None, [], on_fallback, progress)
    for task, path in files:
        if not task.position_deletes and not task.equality_deletes:
            continue
        if (task.position_deletes and io is None) or (task.equality_deletes and equality is None):
            on_fallback([task])
            continue
        deleted = (
            read_position_deletes(io, task.position_deletes, task.data_file.file_path)
            if task.position_deletes and io is not None
            else None
        )
        keys = equality(task) if task.equality_deletes and equality is not None else []
        yield from _scan_chunk(con, plan, [(task, path)], deleted, keys, on_fallback, progress)


def _scan_chunk(
    con: duckdb.DuckDBPyConnection,
    plan: ScanPlan,
    chunk: Sequence[tuple[DataFileTask, str]],
    deleted: pa.Array | None,
    equality: list[tuple[tuple[int, ...], pa.Table]],
    on_fallback: Callable[[list[DataFileTask]], None],
    progress: Callable[[int, int], None] | None,
) -> Iterator[FileResult]:
    import duckdb

    key_cols = [f"k{i}" for i in range(len(plan.key_sql))]
    key_select = "".join(f"{sql} AS {k}, " for sql, k in zip(plan.key_sql, key_cols, strict=True))
    key_names = "".join(f"{k}, " for k in key_cols)
    paths = "[" + ", ".join(_quote(p) for _, p in chunk) + "]"
    row_numbers = ", file_row_number = true" if deleted is not None else ""
    source = f"read_parquet({paths}, schema = {plan.schema_map()}{row_numbers})"
    conditions: list[str] = []
    registered: list[str] = []
    if deleted is not None:
        conditions.append("file_row_number NOT IN (SELECT pos FROM __icebridge_deleted)")
        con.register("__icebridge_deleted", pa.table({"pos": deleted}))
        registered.append("__icebridge_deleted")
    column = {fid: f"c{i}" for i, fid in enumerate(plan.field_ids)}
    for j, (ids, keys) in enumerate(equality):
        name = f"__icebridge_equality_{j}"
        con.register(name, pa.table([_duck_safe(c) for c in keys.columns], names=keys.column_names))
        registered.append(name)
        on = " AND ".join(f"d.k{fid} IS NOT DISTINCT FROM {column[fid]}" for fid in ids)
        conditions.append(f"NOT EXISTS (SELECT 1 FROM {name} d WHERE {on})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    # file_index (the position in the list) groups more cheaply than the file name
    sql = (
        f"SELECT file_index, {key_names}count(*)::BIGINT, sum(h)::HUGEINT, bit_xor(h) FROM ("
        f"SELECT file_index, {key_select}{plan.hash_sql} AS h FROM {source}{where}"
        f") GROUP BY ALL"
    )
    try:
        rows = con.sql(sql).fetchall()
    except duckdb.Error:
        on_fallback([t for t, _ in chunk])
        return
    finally:
        for name in registered:
            con.unregister(name)
    results = [FileResult(t, {}, 0) for t, _ in chunk]
    n = len(key_cols)
    for r in rows:
        result = results[int(r[0])]
        count = int(r[n + 1])
        result.keys[tuple(r[1 : n + 1])] = [count, int(r[n + 2] or 0) & _MASK64, int(r[n + 3] or 0) & _MASK64]
        result.rows += count
    if deleted is None and not equality:
        for result in results:
            expected = result.task.data_file.record_count
            if expected is not None and result.rows != expected:
                path = result.task.data_file.file_path
                raise ValidationError(f"{path}: file has {result.rows} rows, the manifest says {expected}")
    if progress is not None:
        progress(len(chunk), sum(t.data_file.file_size_in_bytes for t, _ in chunk))
    yield from results
