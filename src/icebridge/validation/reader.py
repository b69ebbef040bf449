"""Independent table reader for validation.

The copy reads the source through PyIceberg's ``ArrowScan``. If that reader had a bug, both sides of a
migration would be corrupted the same way and every digest would agree. This module therefore reads a
table's contents through a second path: plain ``pyarrow.parquet`` on each data file, with Iceberg's
column resolution (by field id), schema evolution and row-level deletes applied by our own code.

Only PyIceberg's metadata layer (snapshots, manifests, schemas, ``FileIO``) is used. Nothing here ever
writes to or commits on a table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat, ManifestEntry
from pyiceberg.schema import Schema
from pyiceberg.types import IcebergType, ListType, MapType, NestedField, StructType, UUIDType

from icebridge.errors import ValidationError

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table import Table
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.name_mapping import MappedField
    from pyiceberg.table.snapshots import Snapshot

__all__ = [
    "FIELD_ID_KEY",
    "POS_DELETE_FILE_PATH_ID",
    "POS_DELETE_POS_ID",
    "SnapshotFiles",
    "DataFileTask",
    "apply_equality_deletes",
    "apply_position_deletes",
    "iter_table_batches",
    "normalise_arrow_type",
    "output_arrow_schema",
    "plan_snapshot_files",
    "project_batch",
]

FIELD_ID_KEY = b"PARQUET:field_id"
POS_DELETE_FILE_PATH_ID = 2147483546
POS_DELETE_POS_ID = 2147483545

_INITIAL_SEQUENCE_NUMBER = 0


# --------------------------------------------------------------------------------------------------
# Arrow types
# --------------------------------------------------------------------------------------------------


def normalise_arrow_type(t: pa.DataType) -> pa.DataType:
    """Return ``t`` with strings/binaries/lists at any depth as large_string/large_binary/large_list."""
    if pa.types.is_string_view(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
        return pa.large_string()
    if pa.types.is_binary_view(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return pa.large_binary()
    if pa.types.is_struct(t):
        return pa.struct([_normalise_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(_normalise_field(t.key_field), _normalise_field(t.item_field), keys_sorted=t.keys_sorted)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.large_list(_normalise_field(t.value_field))
    return t


def _normalise_field(f: pa.Field) -> pa.Field:
    return pa.field(f.name, normalise_arrow_type(f.type), nullable=f.nullable, metadata=f.metadata)


def output_arrow_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema :func:`iter_table_batches` yields for ``schema``.

    Types come from PyIceberg's ``schema_to_pyarrow`` with views normalised away (strings are
    ``large_string``, binaries ``large_binary``, lists ``large_list``). Each top-level field carries its
    Iceberg field id as ``PARQUET:field_id`` metadata so consumers can select columns by id.
    """
    base = schema_to_pyarrow(schema, include_field_ids=False)
    fields = []
    for nf, af in zip(schema.fields, base, strict=True):
        fields.append(
            pa.field(
                af.name,
                normalise_arrow_type(af.type),
                nullable=af.nullable,
                metadata={FIELD_ID_KEY: str(nf.field_id).encode()},
            )
        )
    return pa.schema(fields)


# --------------------------------------------------------------------------------------------------
# File-side field-id tree
# --------------------------------------------------------------------------------------------------


@dataclass
class _Node:
    """Field ids of a file's Arrow field and its children (struct fields, list element, map key/value)."""

    field_id: int | None
    children: list[_Node] = field(default_factory=list)

    def child_index(self, field_id: int) -> int | None:
        for i, child in enumerate(self.children):
            if child.field_id == field_id:
                return i
        return None


def _child_fields(t: pa.DataType) -> list[pa.Field]:
    if pa.types.is_struct(t):
        return [t.field(i) for i in range(t.num_fields)]
    if pa.types.is_map(t):
        return [t.key_field, t.item_field]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return [t.value_field]
    return []


def _node_from_field_ids(f: pa.Field) -> _Node:
    md = f.metadata or {}
    raw = md.get(FIELD_ID_KEY)
    return _Node(int(raw) if raw is not None else None, [_node_from_field_ids(c) for c in _child_fields(f.type)])


def _node_from_mapping(f: pa.Field, mapped: MappedField | None) -> _Node:
    children = _child_fields(f.type)
    sub = list(mapped.fields) if mapped is not None else []
    if pa.types.is_struct(f.type):
        nodes = [_node_from_mapping(c, _find_mapped(sub, c.name)) for c in children]
    else:  # list element / map key, value: match by position
        nodes = [_node_from_mapping(c, sub[i] if i < len(sub) else None) for i, c in enumerate(children)]
    return _Node(mapped.field_id if mapped is not None else None, nodes)


def _find_mapped(fields: Sequence[MappedField], name: str) -> MappedField | None:
    for mf in fields:
        if name in mf.names:
            return mf
    return None


def _file_nodes(arrow_schema: pa.Schema, metadata: TableMetadata, path: str) -> list[_Node]:
    """One node per top-level column of a data/delete file, resolving field ids or the name mapping."""
    nodes = [_node_from_field_ids(f) for f in arrow_schema]
    if not nodes or all(n.field_id is not None for n in nodes):
        return nodes
    if any(n.field_id is not None for n in nodes):
        raise ValidationError(f"{path}: some columns carry field ids and some do not")
    mapping = metadata.name_mapping()
    if mapping is None:
        raise ValidationError(f"{path}: file has no field ids and the table has no schema.name-mapping.default")
    return [_node_from_mapping(f, _find_mapped(mapping.root, f.name)) for f in arrow_schema]


# --------------------------------------------------------------------------------------------------
# Projection by field id
# --------------------------------------------------------------------------------------------------


def _mask(arr: pa.Array) -> pa.Array | None:
    return arr.is_null() if arr.null_count else None


def _project_array(arr: pa.Array, node: _Node, target: IcebergType, out_type: pa.DataType) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(target, StructType):
        if not pa.types.is_struct(arr.type):
            raise TypeError(f"expected a struct for field {node.field_id}, file has {arr.type}")
        children = []
        for i, tf in enumerate(target.fields):
            out_child = out_type.field(i)
            idx = node.child_index(tf.field_id)
            if idx is None:
                children.append(pa.nulls(len(arr), out_child.type))
            else:
                children.append(_project_array(arr.field(idx), node.children[idx], tf.field_type, out_child.type))
        return pa.StructArray.from_arrays(
            children, fields=[out_type.field(i) for i in range(out_type.num_fields)], mask=_mask(arr)
        )
    if isinstance(target, ListType):
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise TypeError(f"expected a list for field {node.field_id}, file has {arr.type}")
        offsets, (raw_values,) = _rebased(arr, [arr.values])
        values = _project_array(raw_values, node.children[0], target.element_type, out_type.value_type)
        if pa.types.is_large_list(out_type):
            return pa.LargeListArray.from_arrays(offsets.cast(pa.int64()), values, type=out_type, mask=_mask(arr))
        return pa.ListArray.from_arrays(offsets.cast(pa.int32()), values, type=out_type, mask=_mask(arr))
    if isinstance(target, MapType):
        if not pa.types.is_map(arr.type):
            raise TypeError(f"expected a map for field {node.field_id}, file has {arr.type}")
        offsets, (raw_keys, raw_items) = _rebased(arr, [arr.keys, arr.items])
        keys = _project_array(raw_keys, node.children[0], target.key_type, out_type.key_type)
        items = _project_array(raw_items, node.children[1], target.value_type, out_type.item_type)
        return pa.MapArray.from_arrays(offsets.cast(pa.int32()), keys, items, type=out_type, mask=_mask(arr))
    # primitive
    if arr.type == out_type:
        return arr
    if isinstance(target, UUIDType) and isinstance(out_type, pa.ExtensionType):
        storage = arr if arr.type == out_type.storage_type else arr.cast(out_type.storage_type)
        return pa.ExtensionArray.from_storage(out_type, storage)
    return arr.cast(out_type)


def _rebased(arr: pa.Array, children: list[pa.Array]) -> tuple[pa.Array, list[pa.Array]]:
    """Offsets starting at 0 (unsliced buffers) and the matching slices of a list/map's child arrays."""
    offsets = arr.offsets
    first = offsets[0].as_py()
    last = offsets[len(offsets) - 1].as_py()
    if first == 0 and offsets.offset == 0:
        return offsets, [c.slice(0, last) for c in children]
    return pc.subtract(offsets, first), [c.slice(first, last - first) for c in children]


def project_batch(
    batch: pa.RecordBatch, nodes: Sequence[_Node], schema: Schema, out_schema: pa.Schema
) -> pa.RecordBatch:
    """Project a file batch (columns described by ``nodes``) onto ``schema`` by field id.

    Columns missing from the file become nulls; columns not in ``schema`` are dropped; primitive
    types are cast (promotion) to the output type.
    """
    root = _Node(None, list(nodes))
    columns = []
    for i, nf in enumerate(schema.fields):
        out_field = out_schema.field(i)
        idx = root.child_index(nf.field_id)
        if idx is None:
            columns.append(pa.nulls(batch.num_rows, out_field.type))
        else:
            columns.append(_project_array(batch.column(idx), nodes[idx], nf.field_type, out_field.type))
    return pa.RecordBatch.from_arrays(columns, schema=out_schema)


def _extract_by_id(batch: pa.RecordBatch, nodes: Sequence[_Node], field_id: int) -> tuple[pa.Array, _Node] | None:
    columns: list[tuple[pa.Array, _Node]] = [(batch.column(i), n) for i, n in enumerate(nodes)]
    while columns:
        nxt: list[tuple[pa.Array, _Node]] = []
        for arr, node in columns:
            if node.field_id == field_id:
                return arr, node
            if pa.types.is_struct(arr.type):
                if isinstance(arr, pa.ChunkedArray):
                    arr = arr.combine_chunks()
                flat = arr.flatten()  # children with the parent's nulls merged in
                nxt.extend(zip(flat, node.children, strict=True))
        columns = nxt
    return None


# --------------------------------------------------------------------------------------------------
# Planning: which data files and which deletes apply
# --------------------------------------------------------------------------------------------------


@dataclass
class DataFileTask:
    """One live data file of a snapshot with the delete files that apply to it."""

    data_file: DataFile
    sequence_number: int
    position_deletes: list[DataFile] = field(default_factory=list)
    equality_deletes: list[DataFile] = field(default_factory=list)


def _seq(entry: ManifestEntry) -> int:
    return entry.sequence_number if entry.sequence_number is not None else _INITIAL_SEQUENCE_NUMBER


def plan_snapshot_files(io: FileIO, metadata: TableMetadata, snapshot: Snapshot) -> list[DataFileTask]:
    """List the snapshot's live data files from its manifests and attach the applicable delete files.

    Sequence-number rules of the Iceberg spec: a position delete applies to data files whose data
    sequence number is <= its own, an equality delete to data files with a strictly lower one. Both
    are scoped to the same partition (spec id and partition tuple) unless the delete file's spec is
    unpartitioned (a global delete).
    """
    data_entries: list[ManifestEntry] = []
    delete_entries: list[ManifestEntry] = []
    try:
        manifests = snapshot.manifests(io)
    except Exception as exc:  # noqa: BLE001 - any failure to read metadata is a validation failure
        raise ValidationError(f"cannot read manifest list {snapshot.manifest_list}: {exc}") from exc
    for manifest in manifests:
        try:
            entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(f"cannot read manifest {manifest.manifest_path}: {exc}") from exc
        for entry in entries:
            content = entry.data_file.content
            if content == DataFileContent.DATA:
                data_entries.append(entry)
            elif content in (DataFileContent.POSITION_DELETES, DataFileContent.EQUALITY_DELETES):
                delete_entries.append(entry)
            else:
                raise ValidationError(f"{entry.data_file.file_path}: unknown file content {content}")

    specs = metadata.specs()

    def is_global(df: DataFile) -> bool:
        spec = specs.get(df.spec_id)
        return spec is None or spec.is_unpartitioned()

    # index deletes by partition for cheap lookup
    by_partition: dict[tuple[int, Any], list[ManifestEntry]] = {}
    global_deletes: list[ManifestEntry] = []
    for entry in delete_entries:
        df = entry.data_file
        if df.file_format != FileFormat.PARQUET:
            raise ValidationError(f"{df.file_path}: delete files in {df.file_format} format are not supported")
        if is_global(df):
            global_deletes.append(entry)
        else:
            by_partition.setdefault((df.spec_id, _partition_key(df)), []).append(entry)

    tasks = []
    for entry in data_entries:
        df = entry.data_file
        seq = _seq(entry)
        task = DataFileTask(df, seq)
        candidates = by_partition.get((df.spec_id, _partition_key(df)), []) + global_deletes
        for d in candidates:
            ddf = d.data_file
            if ddf.content == DataFileContent.POSITION_DELETES:
                referenced = getattr(ddf, "referenced_data_file", None)
                if seq <= _seq(d) and (referenced is None or referenced == df.file_path):
                    task.position_deletes.append(ddf)
            elif seq < _seq(d):
                task.equality_deletes.append(ddf)
        tasks.append(task)
    return tasks


def _partition_key(df: DataFile) -> tuple[Any, ...]:
    partition = df.partition
    if partition is None:
        return ()
    return tuple(_hashable(partition[i]) for i in range(len(partition)))


def _hashable(v: Any) -> Any:
    if isinstance(v, bytearray | list):
        return bytes(v) if isinstance(v, bytearray) else tuple(v)
    return v


# --------------------------------------------------------------------------------------------------
# Deletes
# --------------------------------------------------------------------------------------------------


def _open_parquet(io: FileIO, path: str) -> tuple[Any, pq.ParquetFile]:
    try:
        stream = io.new_input(path).open()
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"{path}: cannot open: {exc}") from exc
    try:
        return stream, pq.ParquetFile(stream, coerce_int96_timestamp_unit="us")
    except Exception as exc:  # noqa: BLE001
        stream.close()
        raise ValidationError(f"{path}: not a readable Parquet file (truncated or corrupt?): {exc}") from exc


def _column_index(nodes: Sequence[_Node], arrow_schema: pa.Schema, field_id: int, name: str) -> int | None:
    for i, n in enumerate(nodes):
        if n.field_id == field_id:
            return i
    for i, f in enumerate(arrow_schema):
        if f.name == name:
            return i
    return None


def read_position_deletes(io: FileIO, delete_files: Iterable[DataFile], data_path: str) -> pa.Array:
    """Sorted unique row positions (int64) of ``data_path`` deleted by ``delete_files`` (streamed)."""
    chunks: list[pa.Array] = []
    target = pa.scalar(data_path, pa.large_string())
    for ddf in delete_files:
        path = ddf.file_path
        stream, pf = _open_parquet(io, path)
        try:
            nodes = [_node_from_field_ids(f) for f in pf.schema_arrow]
            ip = _column_index(nodes, pf.schema_arrow, POS_DELETE_FILE_PATH_ID, "file_path")
            ipos = _column_index(nodes, pf.schema_arrow, POS_DELETE_POS_ID, "pos")
            if ip is None or ipos is None:
                raise ValidationError(f"{path}: position delete file lacks file_path/pos columns")
            names = [pf.schema_arrow.field(ip).name, pf.schema_arrow.field(ipos).name]
            for rg in range(pf.num_row_groups):
                if not _row_group_may_contain(pf, rg, ip, data_path):
                    continue
                for batch in pf.iter_batches(batch_size=65536, row_groups=[rg], columns=names):
                    hit = pc.equal(batch.column(0).cast(pa.large_string()), target)
                    if not pc.any(hit).as_py():
                        continue
                    positions = pc.filter(batch.column(1), hit).cast(pa.int64())
                    if positions.null_count:
                        raise ValidationError(f"{path}: null pos in position delete file")
                    chunks.append(positions)
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(f"{path}: cannot read position delete file: {exc}") from exc
        finally:
            stream.close()
    if not chunks:
        return pa.array([], pa.int64())
    merged = pa.concat_arrays(chunks)
    return pc.array_take(merged, pc.array_sort_indices(merged)) if len(chunks) == 1 else _sorted_unique(merged)


def _sorted_unique(arr: pa.Array) -> pa.Array:
    uniq = pc.unique(arr)
    return pc.array_take(uniq, pc.array_sort_indices(uniq))


def _row_group_may_contain(pf: pq.ParquetFile, rg: int, col: int, value: str) -> bool:
    try:
        stats = pf.metadata.row_group(rg).column(col).statistics
    except Exception:  # noqa: BLE001 - no usable statistics: read the row group
        return True
    if stats is None or not stats.has_min_max:
        return True
    lo, hi = stats.min, stats.max
    if isinstance(lo, bytes):
        lo = lo.decode("utf-8", "surrogateescape")
    if isinstance(hi, bytes):
        hi = hi.decode("utf-8", "surrogateescape")
    try:
        return bool(lo <= value <= hi)
    except TypeError:
        return True


def apply_position_deletes(batch: pa.RecordBatch, start: int, positions: pa.Array) -> pa.RecordBatch:
    """Drop rows of ``batch`` whose file position (``start`` + row index) is in sorted ``positions``."""
    keep = _position_keep_mask(batch.num_rows, start, positions)
    return batch if keep is None else batch.filter(keep)


def _arange(n: int) -> pa.Array:
    """int64 array 0 .. n-1, vectorised."""
    if n == 0:
        return pa.array([], pa.int64())
    return pc.subtract(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), 1)


def _bisect(sorted_arr: pa.Array, value: int) -> int:
    """Index of the first element >= value in an ascending int64 array (O(log n) scalar reads)."""
    lo, hi = 0, len(sorted_arr)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_arr[mid].as_py() < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _position_keep_mask(n: int, start: int, positions: pa.Array | None) -> pa.Array | None:
    """Keep-mask for file rows ``start .. start+n``; None when none of them is deleted."""
    if positions is None or len(positions) == 0 or n == 0:
        return None
    lo = _bisect(positions, start)
    hi = _bisect(positions, start + n)
    if lo == hi:
        return None
    local = pc.subtract(positions.slice(lo, hi - lo), start)
    return pc.invert(pc.is_in(_arange(n), value_set=local))


def apply_equality_deletes(keys: pa.Table, deletes: pa.Table) -> pa.Array:
    """Boolean keep-mask over the rows of ``keys``: False where a row equals some row of ``deletes``.

    Both tables have the same columns (the equality fields). Comparison is null-safe: a null equals a
    null (Iceberg spec), so a delete row ``(1, NULL)`` removes data rows ``(1, NULL)``.
    """
    import duckdb

    n = keys.num_rows
    if n == 0 or deletes.num_rows == 0:
        return pa.repeat(pa.scalar(True), n)
    cols = [f"c{i}" for i in range(keys.num_columns)]
    k = pa.Table.from_arrays([*(_duck_safe(c) for c in keys.columns), _arange(n)], names=[*cols, "rn"])
    d = pa.Table.from_arrays([_duck_safe(c) for c in deletes.columns], names=cols)
    cond = " AND ".join(f"k.{c} IS NOT DISTINCT FROM d.{c}" for c in cols)
    con = duckdb.connect()
    try:
        con.register("k_tbl", k)
        con.register("d_tbl", d)
        hit = con.sql(f"SELECT k.rn FROM k_tbl k SEMI JOIN d_tbl d ON {cond}").to_arrow_table().column("rn")
    finally:
        con.close()
    return pc.invert(pc.is_in(_arange(n), value_set=hit.combine_chunks().cast(pa.int64())))


def _duck_safe(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if isinstance(arr.type, pa.ExtensionType):
        if isinstance(arr, pa.ChunkedArray):
            return pa.chunked_array([c.storage for c in arr.chunks], type=arr.type.storage_type)
        return arr.storage
    return arr


class _EqualityDeletes:
    """Equality-delete key tables, read once per delete file and reused for every data file."""

    def __init__(self, io: FileIO, metadata: TableMetadata) -> None:
        self._io = io
        self._metadata = metadata
        self._cache: dict[str, pa.Table] = {}

    def field(self, field_id: int) -> NestedField:
        try:
            return self._metadata.schema().find_field(field_id)
        except ValueError:
            pass
        for schema in reversed(self._metadata.schemas):
            try:
                return schema.find_field(field_id)
            except ValueError:
                continue
        raise ValidationError(f"equality field id {field_id} is in no schema of the table")

    def key_schema(self, field_ids: Sequence[int]) -> pa.Schema:
        fields = []
        for fid in field_ids:
            nf = self.field(fid)
            t = schema_to_pyarrow(Schema(nf), include_field_ids=False).field(0).type
            fields.append(pa.field(f"k{fid}", normalise_arrow_type(t)))
        return pa.schema(fields)

    def keys_of(self, batch: pa.RecordBatch, nodes: Sequence[_Node], field_ids: Sequence[int]) -> pa.Table:
        types = self.key_schema(field_ids)
        arrays = []
        for fid in field_ids:
            out_type = types.field(f"k{fid}").type
            found = _extract_by_id(batch, nodes, fid)
            if found is None:
                arrays.append(pa.nulls(batch.num_rows, out_type))
            else:
                arrays.append(_project_array(found[0], found[1], self.field(fid).field_type, out_type))
        return pa.Table.from_arrays(arrays, schema=types)

    def load(self, ddf: DataFile) -> tuple[tuple[int, ...], pa.Table]:
        ids = tuple(sorted(ddf.equality_ids or []))
        if not ids:
            raise ValidationError(f"{ddf.file_path}: equality delete file without equality_ids")
        cached = self._cache.get(ddf.file_path)
        if cached is not None:
            return ids, cached
        stream, pf = _open_parquet(self._io, ddf.file_path)
        try:
            nodes = _file_nodes(pf.schema_arrow, self._metadata, ddf.file_path)
            parts = [self.keys_of(b, nodes, ids) for b in pf.iter_batches(batch_size=65536)]
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ValidationError(f"{ddf.file_path}: cannot read equality delete file: {exc}") from exc
        finally:
            stream.close()
        table = pa.concat_tables(parts) if parts else self.key_schema(ids).empty_table()
        self._cache[ddf.file_path] = table
        return ids, table

    def grouped(self, task: DataFileTask) -> dict[tuple[int, ...], pa.Table]:
        """The key tables of ``task``'s equality deletes, one per set of equality field ids (columns ``k<id>``)."""
        groups: dict[tuple[int, ...], list[pa.Table]] = {}
        for ddf in task.equality_deletes:
            ids, keys = self.load(ddf)
            groups.setdefault(ids, []).append(keys)
        return {ids: pa.concat_tables(parts) for ids, parts in groups.items()}


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _read_data_file(
    io: FileIO,
    metadata: TableMetadata,
    task: DataFileTask,
    schema: Schema,
    out_schema: pa.Schema,
    eq: _EqualityDeletes,
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    df = task.data_file
    path = df.file_path
    if df.file_format != FileFormat.PARQUET:
        raise ValidationError(f"{path}: data files in {df.file_format} format are not supported")
    positions = read_position_deletes(io, task.position_deletes, path) if task.position_deletes else None

    eq_tables = eq.grouped(task)

    stream, pf = _open_parquet(io, path)
    try:
        file_rows = pf.metadata.num_rows
        if df.record_count is not None and file_rows != df.record_count:
            raise ValidationError(f"{path}: file has {file_rows} rows, the manifest says {df.record_count}")
        file_schema = pf.schema_arrow
        all_nodes = _file_nodes(file_schema, metadata, path)
        wanted = {nf.field_id for nf in schema.fields}
        eq_ids = {fid for ids in eq_tables for fid in ids}
        columns = [i for i, n in enumerate(all_nodes) if n.field_id in wanted or _contains_any(n, eq_ids)]
        if not columns and file_schema:
            columns = [0]  # read something to get row counts
        nodes = [all_nodes[i] for i in columns]
        names = [file_schema.field(i).name for i in columns]
        start = 0
        for raw in pf.iter_batches(batch_size=batch_rows, columns=names, use_threads=True):
            n = raw.num_rows
            batch = raw
            keep = _position_keep_mask(n, start, positions)
            for ids, dels in eq_tables.items():
                keep_eq = apply_equality_deletes(eq.keys_of(batch, nodes, ids), dels)
                keep = keep_eq if keep is None else pc.and_(keep, keep_eq)
            start += n
            if keep is not None:
                if not pc.any(keep).as_py():
                    continue
                batch = batch.filter(keep)
            yield project_batch(batch, nodes, schema, out_schema)
        if start != file_rows:
            raise ValidationError(f"{path}: read {start} rows, the footer says {file_rows}")
    except ValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt pages, bad types, I/O errors
        raise ValidationError(f"{path}: cannot read data file: {exc}") from exc
    finally:
        stream.close()


def _contains_any(node: _Node, ids: set[int]) -> bool:
    if not ids:
        return False
    if node.field_id in ids:
        return True
    return any(_contains_any(c, ids) for c in node.children)


def iter_table_batches(
    table: Table,
    snapshot_id: int | None,
    schema: Schema | None = None,
    batch_rows: int = 131072,
) -> Iterator[pa.RecordBatch]:
    """Yield the rows of ``table`` at ``snapshot_id`` as Arrow batches, independently of PyIceberg's reader.

    ``snapshot_id=None`` reads the current snapshot; a table without a snapshot yields nothing. Every
    live data file is read with ``pyarrow.parquet`` (streamed, ``batch_rows`` rows at a time), projected
    onto ``schema`` (default: the table's current schema) by field id, with position and equality
    deletes applied. Batches follow :func:`output_arrow_schema`.

    Raises:
        ValidationError: the snapshot does not exist, or a manifest or file cannot be read, is
            truncated or corrupt (the message names the file).
    """
    files = SnapshotFiles(table, snapshot_id)
    schema = schema if schema is not None else table.metadata.schema()
    for task in files.tasks:
        yield from files.read(task, schema, batch_rows)


class SnapshotFiles:
    """The live files of one snapshot, readable one data file at a time (for per-file and parallel work).

    ``snapshot_id=None`` means the current snapshot; a table without one has no files. Equality-delete
    keys are cached across files; reading different files from several threads is safe.
    """

    def __init__(self, table: Table, snapshot_id: int | None) -> None:
        metadata = table.metadata
        if snapshot_id is None:
            snapshot = metadata.current_snapshot()
        else:
            snapshot = metadata.snapshot_by_id(snapshot_id)
            if snapshot is None:
                raise ValidationError(f"snapshot {snapshot_id} does not exist in {table.name()}")
        self.table: Table | None = table
        self.metadata = metadata
        self.snapshot = snapshot
        self.io = table.io
        self.tasks: list[DataFileTask] = (
            sorted(plan_snapshot_files(self.io, metadata, snapshot), key=lambda t: t.data_file.file_path)
            if snapshot is not None
            else []
        )
        self._eq = _EqualityDeletes(self.io, metadata)

    @classmethod
    def of(cls, io: FileIO, metadata: TableMetadata, tasks: Sequence[DataFileTask]) -> SnapshotFiles:
        """Files already listed (``tasks``, of a snapshot of the table ``metadata`` describes), read through
        ``io``: how a Spark executor reads the share of a table the driver listed, without a catalog."""
        files = cls.__new__(cls)
        files.table = None
        files.metadata = metadata
        files.snapshot = None
        files.io = io
        files.tasks = list(tasks)
        files._eq = _EqualityDeletes(io, metadata)
        return files

    def delete_files(self) -> list[DataFile]:
        """Every delete file that applies to some live data file, once each, sorted by path."""
        seen: dict[str, DataFile] = {}
        for task in self.tasks:
            for ddf in (*task.position_deletes, *task.equality_deletes):
                seen.setdefault(ddf.file_path, ddf)
        return [seen[p] for p in sorted(seen)]

    def equality_keys(self, task: DataFileTask) -> list[tuple[tuple[int, ...], pa.Table]]:
        """The key tables of ``task``'s equality deletes, one per set of equality field ids (columns ``k<id>``)."""
        return list(self._eq.grouped(task).items())

    def read(self, task: DataFileTask, schema: Schema, batch_rows: int = 131072) -> Iterator[pa.RecordBatch]:
        """The rows of one data file projected onto ``schema`` by field id, with its deletes applied."""
        yield from _read_data_file(
            self.io, self.metadata, task, schema, output_arrow_schema(schema), self._eq, batch_rows
        )
