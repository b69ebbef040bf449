"""DuckDB's Parquet scan gives the same per-partition digests as the general path, or leaves the file to it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
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
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from icebridge.validation.digest import partition_digests
from icebridge.validation.parquet_scan import local_path, scan_plan

SCHEMA = Schema(
    NestedField(1, "flag", BooleanType(), required=False),
    NestedField(2, "i", IntegerType(), required=False),
    NestedField(3, "n", LongType(), required=False),
    NestedField(4, "f32", FloatType(), required=False),
    NestedField(5, "f64", DoubleType(), required=False),
    NestedField(6, "dec", DecimalType(10, 2), required=False),
    NestedField(7, "wide", DecimalType(38, 6), required=False),
    NestedField(8, "d", DateType(), required=False),
    NestedField(9, "t", TimeType(), required=False),
    NestedField(10, "ts", TimestampType(), required=False),
    NestedField(11, "tstz", TimestamptzType(), required=False),
    NestedField(12, "s", StringType(), required=False),
    NestedField(13, "b", BinaryType(), required=False),
    NestedField(14, "fx", FixedType(3), required=False),
)
UTC = dt.UTC


def rows() -> list[dict[str, Any]]:
    out = []
    for k in range(90):
        # spans 1969 and 1970 (negative epoch values), month and day boundaries, nulls in every column
        ts = dt.datetime(1969, 12, 31, 20) + dt.timedelta(hours=k * 7, microseconds=k)
        out.append(
            {
                "flag": None if k % 11 == 0 else k % 2 == 0,
                "i": None if k % 13 == 0 else k - 45,
                "n": None if k % 17 == 0 else (k - 45) * 1_000_000_007,
                "f32": float("nan") if k == 3 else (-0.0 if k == 4 else k / 8),
                "f64": None if k % 10 == 0 else (-0.0 if k == 5 else (float("nan") if k == 6 else k / 3)),
                "dec": Decimal(k * 37 - 900) / 100,
                "wide": Decimal(k) / 1_000_000 + Decimal(10) ** 25,
                "d": None if k % 19 == 0 else dt.date(1969, 11, 20) + dt.timedelta(days=k * 3),
                "t": dt.time(k % 24, k % 60, k % 60, k),
                "ts": None if k % 23 == 0 else ts,
                "tstz": ts.replace(tzinfo=UTC) - dt.timedelta(minutes=k),
                "s": None if k % 9 == 0 else ("" if k % 9 == 1 else f"text-{k % 7}-é"),
                "b": bytes([k % 256, 0]),
                "fx": bytes([k % 256, 1, 2]),
            }
        )
    return out


def _table(root: Path, spec: PartitionSpec, schema: Schema = SCHEMA, name: str = "t") -> Table:
    root.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog("c", uri=f"sqlite:///{root}/c.db", warehouse=f"file://{root}/wh")
    catalog.create_namespace_if_not_exists("ns")
    return catalog.create_table(("ns", name), schema=schema, partition_spec=spec)


def _append(table: Table, data: list[dict[str, Any]]) -> None:
    table.append(pa.Table.from_pylist(data, schema=schema_to_pyarrow(table.schema())))


def _spec(*fields: tuple[int, Transform[Any, Any]]) -> PartitionSpec:
    return PartitionSpec(
        *(
            PartitionField(source_id=src, field_id=1000 + i, transform=t, name=f"p{i}")
            for i, (src, t) in enumerate(fields)
        )
    )


SPECS = {
    "unpartitioned": UNPARTITIONED_PARTITION_SPEC,
    "identity-string": _spec((12, IdentityTransform())),
    "years-months-days-hours": _spec((8, YearTransform()), (10, MonthTransform()), (11, DayTransform())),
    "date-day-and-hours": _spec((8, DayTransform()), (10, HourTransform()), (11, HourTransform())),
    "month-tz-year-ts": _spec((11, MonthTransform()), (10, YearTransform())),
    "truncate-ints": _spec((2, TruncateTransform(10)), (3, TruncateTransform(7))),
    "identity-typed": _spec((6, IdentityTransform()), (8, IdentityTransform()), (11, IdentityTransform())),
    "void-and-bool": _spec((2, VoidTransform()), (1, IdentityTransform())),
    "buckets": _spec((3, BucketTransform(8)), (12, BucketTransform(4)), (8, BucketTransform(3))),
    "bucket-time-decimal": _spec((11, BucketTransform(5)), (10, BucketTransform(2)), (6, BucketTransform(4))),
    # (PyIceberg's writer cannot partition by a truncated binary, so no table here has one)
    "truncate-string-decimal": _spec((12, TruncateTransform(3)), (6, TruncateTransform(100))),
}


def _both(table: Table) -> tuple[Any, Any]:
    schema, spec = table.schema(), table.spec()
    fast = partition_digests(table, None, schema, spec, reader="auto")
    slow = partition_digests(table, None, schema, spec, reader="arrow")
    return fast, slow


def _commit_parquet(table: Table, name: str, data: pa.Table, record_count: int | None = None) -> str:
    """Write ``data`` as a data file of the unpartitioned ``table`` by hand and commit it; its path."""
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.typedef import Record

    from tests.unit.test_reader import commit_files, write_parquet

    path, size = write_parquet(table, name, data)
    entry = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=data.num_rows if record_count is None else record_count,
        file_size_in_bytes=size,
        spec_id=0,
    )
    commit_files(table, data_files=[entry])
    return path


def _eligible(table: Table) -> tuple[list[str], list[str]]:
    """Paths of the current snapshot's files the scan takes, and of those it leaves to the general path."""
    import duckdb

    from icebridge.validation.parquet_scan import eligible
    from icebridge.validation.reader import SnapshotFiles

    plan = scan_plan(table.schema(), table.spec())
    assert plan is not None
    con = duckdb.connect()
    try:
        ok, rest = eligible(con, plan, SnapshotFiles(table, None).tasks)
    finally:
        con.close()
    return [t.data_file.file_path for t, _ in ok], [t.data_file.file_path for t in rest]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_scan_gives_the_general_paths_digests_for_every_type_and_transform(tmp_path: Path, name: str) -> None:
    table = _table(tmp_path, SPECS[name])
    data = rows()
    _append(table, data[:50])
    _append(table, data[50:])
    fast, slow = _both(table)
    assert fast.scanned_files == fast.files > 0 and slow.scanned_files == 0
    assert fast.rows == slow.rows == len(data)
    assert fast.digests == slow.digests
    assert len(fast.digests) > (1 if SPECS[name].fields else 0)
    assert fast.misplaced == slow.misplaced == []


def test_scan_catches_negative_zero_and_tells_nan_from_null(tmp_path: Path) -> None:
    base = rows()
    sides = {}
    for label, value in {"zero": 0.0, "negative-zero": -0.0, "nan": float("nan"), "null": None}.items():
        table = _table(tmp_path / label, UNPARTITIONED_PARTITION_SPEC)
        _append(table, [dict(r, f64=value if k == 7 else r["f64"]) for k, r in enumerate(base)])
        fast, slow = _both(table)
        assert fast.scanned_files == 1 and fast.digests == slow.digests
        sides[label] = fast.total()
    assert len({(d.sum, d.xor) for d in sides.values()}) == 4


def test_rows_registered_under_the_wrong_partition_are_found_by_the_scan(tmp_path: Path) -> None:
    spec = _spec((12, IdentityTransform()))
    table = _table(tmp_path, spec)
    _append(table, rows())
    # rewrite one file's partition tuple in the manifest: its rows now sit under another partition
    from pyiceberg.manifest import DataFile
    from pyiceberg.typedef import Record

    victim = next(t.file for t in table.scan().plan_files() if t.file.partition[0] == "text-1-é")
    moved = DataFile.from_args(
        content=victim.content,
        file_path=victim.file_path,
        file_format=victim.file_format,
        record_count=victim.record_count,
        file_size_in_bytes=victim.file_size_in_bytes,
        partition=Record("text-2-é"),
        spec_id=victim.spec_id,
    )
    with table.transaction() as tx:
        with tx.update_snapshot().overwrite() as ov:
            ov.delete_data_file(victim)
            ov.append_data_file(moved)
    fast, slow = _both(table)
    assert fast.scanned_files == fast.files
    assert fast.misplaced == slow.misplaced
    [m] = fast.misplaced
    assert (m["registered"], m["belongs"]) == ("p0=text-2-é", "p0=text-1-é")


def test_files_from_before_a_column_was_added_are_scanned_and_files_without_ids_are_not(tmp_path: Path) -> None:
    table = _table(tmp_path, _spec((8, YearTransform())))
    data = rows()
    _append(table, data[:30])
    with table.update_schema() as update:
        update.add_column("extra", LongType())
    _append(table, [dict(r, extra=k) for k, r in enumerate(data[30:60])])
    # a file without field ids, added through the name mapping
    plain = tmp_path / "plain.parquet"
    arrow = pa.Table.from_pylist([dict(r, extra=None) for r in data[60:]], schema=schema_to_pyarrow(table.schema()))
    pq.write_table(arrow.cast(pa.schema([pa.field(f.name, f.type) for f in arrow.schema])), plain)
    table.add_files([f"file://{plain}"])
    fast, slow = _both(table)
    assert fast.digests == slow.digests and fast.rows == len(data)
    # the old files lack "extra" (it reads as null), the added file has no field ids (the name mapping's job)
    assert fast.scanned_files == fast.files - 1
    assert sum(d.count for d in fast.digests.values()) == len(data)


def test_a_column_stored_in_a_type_iceberg_does_not_allow_goes_to_the_general_path(tmp_path: Path) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=False), NestedField(2, "v", IntegerType(), required=False)
    )
    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC, schema)
    _commit_parquet(
        table,
        "wrong.parquet",
        pa.table(
            [pa.array([1, 2]), pa.array(["7", "8"])],
            schema=pa.schema(
                [
                    pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": b"1"}),
                    pa.field("v", pa.string(), metadata={b"PARQUET:field_id": b"2"}),
                ]
            ),
        ),
    )
    # DuckDB would cast "7" to 7 without a word; the footer check leaves the file to the general path
    fast, slow = _both(table)
    assert fast.files == 1 and fast.scanned_files == 0 and fast.digests == slow.digests


def test_layouts_the_scan_cannot_express_use_the_general_path() -> None:
    uuids = Schema(NestedField(1, "l", ListType(2, UUIDType()), required=False))
    assert scan_plan(uuids, UNPARTITIONED_PARTITION_SPEC) is None
    assert scan_plan(NESTED, _spec((8, IdentityTransform()))) is None  # a nested source column
    assert scan_plan(SCHEMA, _spec((14, BucketTransform(8)))) is None  # bucket of a fixed[3]
    plan = scan_plan(SCHEMA, _spec((3, BucketTransform(8)), (12, TruncateTransform(2))))
    assert plan is not None and [f.result for f in plan.functions] == ["INTEGER", "VARCHAR"]
    plan = scan_plan(SCHEMA, _spec((3, TruncateTransform(4))))
    assert plan is not None and plan.field_ids == list(range(1, 15))
    assert local_path("file:///data/p=a%20b/x.parquet") == "/data/p=a%20b/x.parquet"  # as written on disk
    assert local_path("/data/x.parquet") == "/data/x.parquet"
    assert local_path("s3://bucket/x.parquet") is None


def test_the_general_path_is_chosen_by_name_and_a_bad_name_is_refused(tmp_path: Path) -> None:
    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC)
    _append(table, rows()[:5])
    with pytest.raises(ValueError, match="reader must be"):
        partition_digests(table, None, table.schema(), table.spec(), reader="duck")


NESTED = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(
        2,
        "st",
        StructType(
            NestedField(5, "a", IntegerType(), required=False),
            NestedField(6, "x", DoubleType(), required=False),
            NestedField(7, "inner", StructType(NestedField(8, "s", StringType(), required=False)), required=False),
        ),
        required=False,
    ),
    NestedField(3, "l", ListType(9, DoubleType(), element_required=False), required=False),
    NestedField(4, "m", MapType(10, StringType(), 11, LongType(), value_required=False), required=False),
    NestedField(
        12,
        "ls",
        ListType(13, StructType(NestedField(14, "k", StringType(), required=False)), element_required=False),
        required=False,
    ),
)


def nested_rows() -> list[dict[str, Any]]:
    out = []
    for k in range(60):
        out.append(
            {
                "id": k,
                "st": None
                if k % 7 == 0
                else {"a": k, "x": -0.0 if k == 8 else k / 3, "inner": {"s": f"s{k}"} if k % 2 else None},
                "l": None if k % 5 == 0 else ([] if k % 5 == 1 else [k / 2, None, float("nan")]),
                "m": None if k % 6 == 0 else [("a", k), ("b", None)],
                "ls": None if k % 4 == 0 else [{"k": f"k{k}"}, None],
            }
        )
    return out


def test_nested_columns_are_scanned_with_the_general_paths_digests(tmp_path: Path) -> None:
    table = _table(tmp_path, _spec((1, TruncateTransform(20))), NESTED)
    _append(table, nested_rows()[:30])
    _append(table, nested_rows()[30:])
    fast, slow = _both(table)
    assert fast.scanned_files == fast.files > 0
    assert fast.digests == slow.digests and fast.rows == 60


def _renamed(r: dict[str, Any]) -> dict[str, Any]:
    st = r["st"]
    return dict(r, st=None if st is None else {"alpha": st["a"], "x": st["x"], "inner": st["inner"]})


def test_a_renamed_nested_field_sends_older_files_to_the_general_path(tmp_path: Path) -> None:
    # DuckDB matches struct fields by name: an old file still says "a" where the schema now says "alpha"
    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC, NESTED)
    _append(table, nested_rows()[:30])
    with table.update_schema() as update:
        update.rename_column("st.a", "alpha")
    _append(
        table,
        [
            dict(
                r, st=None if r["st"] is None else {"alpha": r["st"]["a"], "x": r["st"]["x"], "inner": r["st"]["inner"]}
            )
            for r in nested_rows()[30:]
        ],
    )
    fast, slow = _both(table)
    assert fast.scanned_files == 1 and fast.files == 2
    assert fast.digests == slow.digests
    # and the old file's values are not lost as nulls: a table with the same rows written afresh agrees
    fresh = _table(tmp_path / "fresh", UNPARTITIONED_PARTITION_SPEC, table.schema())
    _append(
        fresh,
        [
            dict(
                r, st=None if r["st"] is None else {"alpha": r["st"]["a"], "x": r["st"]["x"], "inner": r["st"]["inner"]}
            )
            for r in nested_rows()
        ],
    )
    again, _ = _both(fresh)
    assert again.total().matches(fast.total())


def test_an_unreadable_footer_leaves_only_its_own_file_to_the_general_path(tmp_path: Path) -> None:
    table = _table(tmp_path, _spec((12, IdentityTransform())))
    _append(table, rows())
    files = sorted(t.file.file_path for t in table.scan().plan_files())
    victim = files[1]
    path = Path(local_path(victim) or "")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    ok, rest = _eligible(table)
    assert rest == [victim]
    assert len(ok) == len(files) - 1


def test_position_deletes_are_left_out_by_row_number_in_the_scan(tmp_path: Path) -> None:
    from tests.unit.test_reader import commit_files, data_file_paths, position_delete_file

    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC, name="mor")
    data = rows()
    _append(table, data[:45])
    _append(table, data[45:])
    first, second = data_file_paths(table)[:2]
    # one delete file naming rows of two data files (and one of a file that is not there), one naming the first again
    commit_files(
        table,
        delete_files=[
            position_delete_file(
                table, "del-1.parquet", [(first, 0), (first, 2), (second, 1), ("s3://elsewhere/x", 0)]
            ),
            position_delete_file(table, "del-2.parquet", [(first, 2), (first, 4)]),
        ],
    )
    table = table.refresh()
    fast, slow = _both(table)
    assert fast.scanned_files == fast.files and slow.scanned_files == 0
    assert fast.rows == slow.rows == len(data) - 4
    assert fast.digests == slow.digests


def test_a_file_lacking_a_required_field_is_left_to_the_general_path(tmp_path: Path) -> None:
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "note", StringType(), required=False),
    )
    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC, schema)
    only_note = pa.table(
        [pa.array(["a", "b"])], schema=pa.schema([pa.field("note", pa.string(), metadata={b"PARQUET:field_id": b"2"})])
    )
    path = _commit_parquet(table, "no-id.parquet", only_note)
    only_id = pa.table(
        [pa.array([1, 2], pa.int64())],
        schema=pa.schema([pa.field("id", pa.int64(), False, metadata={b"PARQUET:field_id": b"1"})]),
    )
    path2 = _commit_parquet(table.refresh(), "no-note.parquet", only_id)
    plan = scan_plan(table.schema(), table.spec())
    assert plan is not None and plan.optional == frozenset({2})
    # lacking the optional "note" is fine (it reads as null); lacking the required "id" is not
    assert _eligible(table.refresh()) == ([path2], [path])


@pytest.mark.parametrize("reader", ["auto", "arrow"])
def test_a_file_holding_other_rows_than_its_manifest_entry_says_stops_the_digest(tmp_path: Path, reader: str) -> None:
    from icebridge.errors import ValidationError

    schema = Schema(NestedField(1, "id", LongType(), required=False))
    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC, schema)
    _append(table, [{"id": i} for i in range(5)])
    data = pa.table(
        [pa.array([7, 8], pa.int64())],
        schema=pa.schema([pa.field("id", pa.int64(), metadata={b"PARQUET:field_id": b"1"})]),
    )
    _commit_parquet(table, "short.parquet", data, record_count=99)
    table = table.refresh()
    with pytest.raises(ValidationError, match="short.parquet: file has 2 rows, the manifest says 99"):
        partition_digests(table, None, table.schema(), table.spec(), reader=reader)


def test_equality_deletes_are_anti_joined_in_the_scan_nulls_equal_to_nulls(tmp_path: Path) -> None:
    from tests.unit.test_reader import commit_files, equality_delete_file

    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "v", IntegerType(), required=False),
    )
    table = _table(tmp_path, UNPARTITIONED_PARTITION_SPEC, schema, name="cdc")
    data = [{"id": i, "name": None if i % 4 == 0 else f"n{i}", "v": i * 10} for i in range(40)]
    _append(table, data[:20])
    _append(table, data[20:])

    def keys(columns: list[tuple[str, pa.DataType, int]], values: list[tuple[Any, ...]]) -> pa.Table:
        fields = [pa.field(n, t, metadata={b"PARQUET:field_id": str(i).encode()}) for n, t, i in columns]
        return pa.Table.from_pylist(
            [dict(zip([n for n, _, _ in columns], v, strict=True)) for v in values], schema=pa.schema(fields)
        )

    by_pair = keys(
        [("id", pa.int64(), 1), ("name", pa.string(), 2)],
        [(1, "n1"), (4, None), (5, "wrong"), (30, "n30")],  # (4, NULL) matches the null name; (5, 'wrong') nothing
    )
    by_v = keys([("v", pa.int32(), 3)], [(70,), (390,)])
    commit_files(
        table,
        delete_files=[
            equality_delete_file(table, "eq-pair.parquet", by_pair, [1, 2]),
            equality_delete_file(table, "eq-v.parquet", by_v, [3]),
        ],
    )
    table = table.refresh()
    fast, slow = _both(table)
    assert fast.scanned_files == fast.files == 2
    assert fast.rows == slow.rows == len(data) - 5  # ids 1, 4, 30, 7, 39
    assert fast.digests == slow.digests
