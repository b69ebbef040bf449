"""The independent validation reader agrees with PyIceberg's reader, applies deletes and fails loudly."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestFile,
    ManifestWriterV2,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import (
    BinaryType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from icebridge.errors import ValidationError
from icebridge.validation.reader import (
    POS_DELETE_FILE_PATH_ID,
    POS_DELETE_POS_ID,
    apply_equality_deletes,
    apply_position_deletes,
    iter_table_batches,
    output_arrow_schema,
    plan_snapshot_files,
)

# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------


@pytest.fixture()
def catalog(tmp_path: Path) -> SqlCatalog:
    cat = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    cat.create_namespace("db")
    return cat


def read(table: Table, snapshot_id: int | None = None, schema: Schema | None = None, **kw: Any) -> pa.Table:
    out = output_arrow_schema(schema if schema is not None else table.schema())
    batches = list(iter_table_batches(table, snapshot_id, schema, **kw))
    for b in batches:
        assert b.schema.equals(out, check_metadata=True)
        for f in b.schema:
            assert not pa.types.is_string_view(f.type) and not pa.types.is_binary_view(f.type)
    return pa.Table.from_batches(batches, schema=out)


def expected(table: Table, snapshot_id: int | None = None) -> pa.Table:
    """PyIceberg's own reading, cast to the independent reader's types."""
    out = output_arrow_schema(table.schema())
    got = table.scan(snapshot_id=snapshot_id).to_arrow()
    return got.select(out.names).cast(out)


def assert_same_rows(a: pa.Table, b: pa.Table, key: str = "id") -> None:
    a_sorted = a.sort_by(key)
    b_sorted = b.sort_by(key)
    assert a_sorted.num_rows == b_sorted.num_rows
    assert a_sorted.equals(b_sorted), (a_sorted.to_pylist(), b_sorted.to_pylist())


def arrow_for(table: Table, rows: list[dict[str, Any]]) -> pa.Table:
    schema = output_arrow_schema(table.schema())
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])
    return pa.Table.from_pylist(rows, schema=plain)


class _DeleteManifestWriter(ManifestWriterV2):
    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


def commit_files(table: Table, data_files: list[DataFile] = (), delete_files: list[DataFile] = ()) -> None:  # type: ignore[assignment]
    """Commit data and/or delete files in one snapshot (PyIceberg cannot write delete manifests itself)."""
    with table.transaction() as tx:
        fa = tx.update_snapshot().fast_append()

        def manifests() -> list[ManifestFile]:
            out: list[ManifestFile] = []
            if data_files:
                with fa.new_manifest_writer(tx.table_metadata.spec()) as w:
                    for df in data_files:
                        w.add(_entry(fa, df))
                out.append(w.to_manifest_file())
            if delete_files:
                with _DeleteManifestWriter(
                    tx.table_metadata.spec(),
                    fa.schema(),
                    fa.new_manifest_output(),
                    fa._snapshot_id,
                    fa._compression,
                ) as w:
                    for df in delete_files:
                        w.add(_entry(fa, df))
                out.append(w.to_manifest_file())
            return out + fa._existing_manifests()

        fa._manifests = manifests  # type: ignore[method-assign]
        fa._added_data_files = [*data_files, *delete_files]
        fa.commit()


def _entry(fa: Any, df: DataFile) -> Any:
    from pyiceberg.manifest import ManifestEntry, ManifestEntryStatus

    return ManifestEntry.from_args(
        status=ManifestEntryStatus.ADDED,
        snapshot_id=fa._snapshot_id,
        sequence_number=None,
        file_sequence_number=None,
        data_file=df,
    )


def write_parquet(table: Table, name: str, data: pa.Table) -> tuple[str, int]:
    path = f"{table.location()}/data/{name}"
    local = path.removeprefix("file://")
    Path(local).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, local)
    return path, Path(local).stat().st_size


def position_delete_file(table: Table, name: str, entries: list[tuple[str, int]]) -> DataFile:
    schema = pa.schema(
        [
            pa.field("file_path", pa.string(), False, metadata={b"PARQUET:field_id": str(POS_DELETE_FILE_PATH_ID)}),
            pa.field("pos", pa.int64(), False, metadata={b"PARQUET:field_id": str(POS_DELETE_POS_ID)}),
        ]
    )
    data = pa.Table.from_pylist([{"file_path": p, "pos": n} for p, n in entries], schema=schema)
    path, size = write_parquet(table, name, data)
    return _delete_data_file(DataFileContent.POSITION_DELETES, path, size, len(entries), None)


def equality_delete_file(table: Table, name: str, data: pa.Table, ids: list[int]) -> DataFile:
    path, size = write_parquet(table, name, data)
    return _delete_data_file(DataFileContent.EQUALITY_DELETES, path, size, data.num_rows, ids)


def _delete_data_file(content: DataFileContent, path: str, size: int, rows: int, ids: list[int] | None) -> DataFile:
    df = DataFile.from_args(
        content=content,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=rows,
        file_size_in_bytes=size,
        sort_order_id=None,
        spec_id=0,
        equality_ids=ids,
        key_metadata=None,
    )
    return df


def data_file_paths(table: Table) -> list[str]:
    return sorted(t.file.file_path for t in table.scan().plan_files())


SIMPLE = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "name", StringType(), required=False),
    NestedField(3, "v", IntegerType(), required=False),
)


def simple_table(catalog: SqlCatalog, name: str = "simple", n: int = 10) -> Table:
    table = catalog.create_table(f"db.{name}", schema=SIMPLE)
    rows = [{"id": i, "name": None if i % 4 == 0 else f"n{i}", "v": i * 10} for i in range(n)]
    table.append(arrow_for(table, rows))
    return table


# ------------------------------------------------------------------------------------------------
# agreement with PyIceberg's reader
# ------------------------------------------------------------------------------------------------


def test_empty_table_yields_nothing(catalog: SqlCatalog) -> None:
    table = catalog.create_table("db.empty", schema=SIMPLE)
    assert list(iter_table_batches(table, None)) == []


def test_unknown_snapshot_raises(catalog: SqlCatalog) -> None:
    table = simple_table(catalog)
    with pytest.raises(ValidationError):
        list(iter_table_batches(table, 12345))


def test_primitive_types_and_streaming(catalog: SqlCatalog) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "s", StringType(), required=False),
        NestedField(3, "dec", DecimalType(12, 3), required=False),
        NestedField(4, "ts", TimestamptzType(), required=False),
        NestedField(5, "d", DateType(), required=False),
        NestedField(6, "b", BinaryType(), required=False),
        NestedField(7, "f", DoubleType(), required=False),
    )
    table = catalog.create_table("db.prims", schema=schema)
    rows = [
        {
            "id": i,
            "s": None if i % 3 == 0 else ("" if i % 3 == 1 else f"s{i}"),
            "dec": Decimal(i) / 1000 if i % 5 else None,
            "ts": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i) if i % 7 else None,
            "d": dt.date(2020, 1, 1) + dt.timedelta(days=i),
            "b": bytes([i % 256]) * (i % 4) if i % 6 else None,
            "f": float(i) / 3 if i % 8 else None,
        }
        for i in range(1000)
    ]
    table.append(arrow_for(table, rows))
    batches = list(iter_table_batches(table, None, batch_rows=100))
    assert len(batches) >= 10 and max(b.num_rows for b in batches) <= 100
    assert_same_rows(read(table), expected(table))


def test_schema_evolution(catalog: SqlCatalog) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "small", IntegerType(), required=False),
        NestedField(4, "ratio", FloatType(), required=False),
        NestedField(5, "amount", DecimalType(9, 2), required=False),
        NestedField(6, "gone", StringType(), required=False),
    )
    table = catalog.create_table("db.evo", schema=schema)
    first_rows = [
        {"id": i, "name": f"n{i}", "small": i, "ratio": i / 4, "amount": Decimal(i) / 100, "gone": "x"}
        for i in range(5)
    ]
    table.append(arrow_for(table, first_rows))
    first_snapshot = table.current_snapshot()
    assert first_snapshot is not None
    first_schema = table.schema()

    with table.update_schema() as upd:
        upd.add_column("extra", StringType())
        upd.rename_column("name", "label")
        upd.delete_column("gone")
        upd.update_column("small", field_type=LongType())
        upd.update_column("ratio", field_type=DoubleType())
        upd.update_column("amount", field_type=DecimalType(18, 2))
    table = catalog.load_table("db.evo")
    second = [
        {
            "id": 10 + i,
            "label": f"l{i}",
            "small": 2**40 + i,
            "ratio": 0.1,
            "amount": Decimal("1234567.89"),
            "extra": "e",
        }
        for i in range(3)
    ]
    table.append(arrow_for(table, second))

    got = read(table)
    assert got.schema.names == ["id", "label", "small", "ratio", "amount", "extra"]
    assert got.schema.field("small").type == pa.int64()
    assert got.schema.field("ratio").type == pa.float64()
    assert got.schema.field("amount").type == pa.decimal128(18, 2)
    assert_same_rows(got, expected(table))
    old = got.filter(pc.less(got["id"], 10)).sort_by("id").to_pylist()
    assert old[1]["label"] == "n1" and old[1]["extra"] is None and old[1]["amount"] == Decimal("0.01")

    # an old snapshot read with its own schema: only the first rows, old names, dropped column present
    got_old = read(table, first_snapshot.snapshot_id, first_schema)
    assert got_old.num_rows == 5
    assert got_old.column("gone").to_pylist() == ["x"] * 5


def test_nested_types(catalog: SqlCatalog) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(
            2,
            "st",
            StructType(
                NestedField(3, "a", IntegerType(), required=False),
                NestedField(4, "b", StringType(), required=False),
            ),
            required=False,
        ),
        NestedField(5, "li", ListType(6, LongType(), element_required=False), required=False),
        NestedField(7, "mp", MapType(8, StringType(), 9, DoubleType(), value_required=False), required=False),
        NestedField(
            10,
            "ls",
            ListType(11, StructType(NestedField(12, "x", IntegerType(), required=False)), element_required=False),
            required=False,
        ),
    )
    table = catalog.create_table("db.nested", schema=schema)
    rows = [
        {
            "id": i,
            "st": None if i == 0 else {"a": i if i % 2 else None, "b": f"b{i}"},
            "li": None if i == 1 else [i, None, i * 2][: i % 4],
            "mp": None if i == 2 else {f"k{j}": (None if j == 1 else j / 2) for j in range(i % 3)},
            "ls": [{"x": i}, None] if i % 2 else [],
        }
        for i in range(20)
    ]
    table.append(arrow_for(table, rows))
    assert_same_rows(read(table), expected(table))

    # nested evolution: add a struct field and rename one; old rows get nulls for the new field
    with table.update_schema() as upd:
        upd.add_column(("st", "c"), LongType())
        upd.rename_column("st.b", "bee")
    table = catalog.load_table("db.nested")
    more = [{"id": 100, "st": {"a": 1, "bee": "z", "c": 7}, "li": [1], "mp": {"q": 1.0}, "ls": None}]
    table.append(arrow_for(table, more))
    got = read(table)
    assert_same_rows(got, expected(table))
    by_id = {r["id"]: r for r in got.to_pylist()}
    assert by_id[3]["st"] == {"a": 3, "bee": "b3", "c": None}
    assert by_id[100]["st"] == {"a": 1, "bee": "z", "c": 7}


def test_identity_partitioned_table(catalog: SqlCatalog) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "cat", StringType(), required=False),
        NestedField(3, "v", DoubleType(), required=False),
    )
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="cat"))
    table = catalog.create_table("db.part", schema=schema, partition_spec=spec)
    rows = [{"id": i, "cat": ["a", "b", None][i % 3], "v": i * 1.5} for i in range(30)]
    table.append(arrow_for(table, rows))
    assert len(data_file_paths(table)) == 3
    assert_same_rows(read(table), expected(table))


def test_row_level_delete(catalog: SqlCatalog) -> None:
    table = simple_table(catalog, n=10)
    table.append(arrow_for(table, [{"id": 3, "name": "again", "v": 1}, {"id": 42, "name": "x", "v": 2}]))
    table.delete("id = 3")
    got = read(table)
    assert 3 not in got.column("id").to_pylist()
    assert got.num_rows == 10
    assert_same_rows(got, expected(table))


def test_name_mapping_for_files_without_field_ids(catalog: SqlCatalog, tmp_path: Path) -> None:
    table = catalog.create_table("db.mapped", schema=SIMPLE)
    local = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2], pa.int64()), "v": pa.array([5, 6], pa.int32())}), local)
    table.add_files([f"file://{local}"])
    got = read(table)
    assert got.sort_by("id").to_pylist() == [{"id": 1, "name": None, "v": 5}, {"id": 2, "name": None, "v": 6}]


# ------------------------------------------------------------------------------------------------
# position and equality delete files
# ------------------------------------------------------------------------------------------------


def test_position_delete_file(catalog: SqlCatalog) -> None:
    table = simple_table(catalog, n=10)
    table.append(arrow_for(table, [{"id": 100 + i, "name": "z", "v": i} for i in range(5)]))
    first, second = (t.file.file_path for t in sorted(table.scan().plan_files(), key=lambda t: -t.file.record_count))
    # positions 0, 3, 9 in the first (10-row) file; 4 in the second; an unrelated path is ignored
    commit_files(
        table,
        delete_files=[
            position_delete_file(table, "pd1.parquet", [(first, 0), (first, 3), ("file:///elsewhere", 1)]),
            position_delete_file(table, "pd2.parquet", [(first, 9), (first, 3), (second, 4)]),
        ],
    )
    table = catalog.load_table("db.simple")
    got = read(table, batch_rows=4)
    assert sorted(got.column("id").to_pylist()) == [1, 2, 4, 5, 6, 7, 8, 100, 101, 102, 103]
    assert_same_rows(got, expected(table))  # PyIceberg applies position deletes too


def test_position_delete_applies_to_same_sequence_number(catalog: SqlCatalog) -> None:
    table = catalog.create_table("db.sameseq", schema=SIMPLE)
    path, size = write_parquet(
        table,
        "d1.parquet",
        pa.Table.from_pylist(
            [{"id": i, "name": "a", "v": i} for i in range(4)],
            schema=pa.schema(
                [
                    pa.field(f.name, t, metadata={b"PARQUET:field_id": str(f.field_id)})
                    for f, t in zip(SIMPLE.fields, [pa.int64(), pa.string(), pa.int32()], strict=True)
                ]
            ),
        ),
    )
    df = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=4,
        file_size_in_bytes=size,
        sort_order_id=None,
        spec_id=0,
        equality_ids=None,
        key_metadata=None,
    )
    pos = position_delete_file(table, "pd.parquet", [(path, 1)])
    eq_data = pa.table({"id": pa.array([2], pa.int64())}).cast(
        pa.schema([pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": b"1"})])
    )
    eq = equality_delete_file(table, "eq.parquet", eq_data, [1])
    commit_files(table, data_files=[df], delete_files=[pos, eq])
    table = catalog.load_table("db.sameseq")
    # position delete (seq <=) applies, equality delete (needs seq <) does not
    assert sorted(read(table).column("id").to_pylist()) == [0, 2, 3]


def test_equality_delete_file_with_nulls_and_sequence_numbers(catalog: SqlCatalog) -> None:
    table = simple_table(catalog, n=10)  # names: None for ids 0, 4, 8
    eq_schema = pa.schema(
        [
            pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": b"1"}),
            pa.field("name", pa.string(), metadata={b"PARQUET:field_id": b"2"}),
        ]
    )
    deletes = pa.Table.from_pylist(
        [
            {"id": 1, "name": "n1"},
            {"id": 4, "name": None},
            {"id": 5, "name": "wrong"},
            {"id": 8, "name": "n8"},
        ],
        schema=eq_schema,
    )
    commit_files(table, delete_files=[equality_delete_file(table, "eq1.parquet", deletes, [1, 2])])
    table = catalog.load_table("db.simple")
    # (1,'n1') matches; (4,NULL) matches the null name (null = null); (5,'wrong') and (8,'n8') do not
    assert sorted(read(table).column("id").to_pylist()) == [0, 2, 3, 5, 6, 7, 8, 9]

    # single-column delete on a column not in the projection
    only_v = pa.table({"v": pa.array([20, 90], pa.int32())}).cast(
        pa.schema([pa.field("v", pa.int32(), metadata={b"PARQUET:field_id": b"3"})])
    )
    commit_files(table, delete_files=[equality_delete_file(table, "eq2.parquet", only_v, [3])])
    table = catalog.load_table("db.simple")
    projected = table.schema().select("id")
    assert sorted(read(table, schema=projected).column("id").to_pylist()) == [0, 3, 5, 6, 7, 8]

    # rows appended after the delete (higher sequence number) are not deleted by it
    table.append(arrow_for(table, [{"id": 1, "name": "n1", "v": 20}]))
    table = catalog.load_table("db.simple")
    assert sorted(read(table).column("id").to_pylist()) == [0, 1, 3, 5, 6, 7, 8]

    tasks = plan_snapshot_files(table.io, table.metadata, table.current_snapshot())  # type: ignore[arg-type]
    assert sorted(len(t.equality_deletes) for t in tasks) == [0, 2]


def test_apply_position_deletes_directly() -> None:
    batch = pa.record_batch({"x": list(range(10))})
    positions = pa.array([0, 12, 13, 19, 25], pa.int64())
    assert apply_position_deletes(batch, 10, positions).column(0).to_pylist() == [0, 1, 4, 5, 6, 7, 8]
    assert apply_position_deletes(batch, 30, positions).num_rows == 10
    assert apply_position_deletes(batch, 0, positions).column(0).to_pylist() == list(range(1, 10))


def test_apply_equality_deletes_directly() -> None:
    keys = pa.table({"a": [1, 1, None, None, 2], "b": ["x", None, "x", None, "y"]})
    dels = pa.table({"a": [1, None, 3], "b": [None, None, "y"]})
    assert apply_equality_deletes(keys, dels).to_pylist() == [True, False, True, False, True]


# ------------------------------------------------------------------------------------------------
# unreadable files
# ------------------------------------------------------------------------------------------------


def test_truncated_data_file_raises_with_path(catalog: SqlCatalog) -> None:
    table = simple_table(catalog)
    (path,) = data_file_paths(table)
    local = Path(path.removeprefix("file://"))
    local.write_bytes(local.read_bytes()[: local.stat().st_size // 2])
    with pytest.raises(ValidationError, match=str(local.name)):
        list(iter_table_batches(table, None))


def test_corrupt_page_raises_with_path(catalog: SqlCatalog) -> None:
    table = simple_table(catalog, n=2000)
    (path,) = data_file_paths(table)
    local = Path(path.removeprefix("file://"))
    data = bytearray(local.read_bytes())
    for i in range(8, len(data) // 2):
        data[i] ^= 0xFF
    local.write_bytes(bytes(data))
    with pytest.raises(ValidationError, match=str(local.name)):
        list(iter_table_batches(table, None))


def test_missing_data_file_raises(catalog: SqlCatalog) -> None:
    table = simple_table(catalog)
    (path,) = data_file_paths(table)
    Path(path.removeprefix("file://")).unlink()
    with pytest.raises(ValidationError, match="cannot open|not a readable"):
        list(iter_table_batches(table, None))


def test_reader_does_not_commit(catalog: SqlCatalog) -> None:
    table = simple_table(catalog)
    before = table.metadata_location
    list(iter_table_batches(table, None))
    assert catalog.load_table("db.simple").metadata_location == before
    assert uuid.UUID(str(table.metadata.table_uuid))


def test_projection_of_sliced_nested_batches() -> None:
    from icebridge.validation.reader import _node_from_field_ids, project_batch

    schema = Schema(
        NestedField(1, "l", ListType(2, IntegerType(), element_required=False), required=False),
        NestedField(3, "m", MapType(4, StringType(), 5, FloatType(), value_required=False), required=False),
        NestedField(6, "st", StructType(NestedField(7, "a", IntegerType(), required=False)), required=False),
    )

    def fid(n: int) -> dict[bytes, bytes]:
        return {b"PARQUET:field_id": str(n).encode()}

    src = pa.schema(
        [
            pa.field("l", pa.list_(pa.field("element", pa.int32(), metadata=fid(2))), metadata=fid(1)),
            pa.field(
                "m",
                pa.map_(
                    pa.field("key", pa.string(), False, metadata=fid(4)),
                    pa.field("value", pa.float32(), metadata=fid(5)),
                ),
                metadata=fid(3),
            ),
            pa.field("st", pa.struct([pa.field("a", pa.int32(), metadata=fid(7))]), metadata=fid(6)),
        ]
    )
    rows = [
        {"l": [i, i + 1], "m": [("k", float(i))], "st": {"a": i}} if i % 3 else {"l": None, "m": None, "st": None}
        for i in range(10)
    ]
    batch = pa.RecordBatch.from_pylist(rows, schema=src)
    nodes = [_node_from_field_ids(f) for f in src]
    out = output_arrow_schema(schema)
    for offset in (0, 3, 5):
        part = batch.slice(offset, 4)
        got = project_batch(part, nodes, schema, out)
        got.validate(full=True)
        assert got.schema.equals(out)
        assert got.to_pylist() == part.to_pylist()


def test_record_count_mismatch_raises(catalog: SqlCatalog) -> None:
    table = simple_table(catalog, n=5)
    (path,) = data_file_paths(table)
    local = Path(path.removeprefix("file://"))
    pq.write_table(pq.read_table(local).slice(0, 3), local)  # a file replaced behind the manifest's back
    with pytest.raises(ValidationError, match="manifest says 5"):
        list(iter_table_batches(table, None))
