"""Order-independent digests: equal for the same rows, different for any change to them."""

from __future__ import annotations

import copy
import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DecimalType,
    DoubleType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
)

from icebridge.validation.digest import Digest, digest_batches, table_digest
from icebridge.validation.reader import output_arrow_schema

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("i", pa.int32()),
        pa.field("f", pa.float64()),
        pa.field("dec", pa.decimal128(10, 2)),
        pa.field("s", pa.large_string()),
        pa.field("b", pa.large_binary()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("d", pa.date32()),
        pa.field("st", pa.struct([pa.field("a", pa.int32()), pa.field("b", pa.large_string())])),
        pa.field("l", pa.large_list(pa.int64())),
        pa.field("m", pa.map_(pa.large_string(), pa.int64())),
    ]
)


def base_rows() -> list[dict[str, Any]]:
    rows = []
    for k in range(40):
        rows.append(
            {
                "id": k,
                "i": k * 3 if k % 5 else None,
                "f": k / 7 if k % 6 else 0.0,
                "dec": Decimal(k) / 100,
                "s": f"s{k}" if k % 4 else None,
                "b": bytes([k]) * 3,
                "ts": dt.datetime(2024, 3, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=k),
                "d": dt.date(2021, 1, 1) + dt.timedelta(days=k),
                "st": {"a": k, "b": f"b{k}"} if k % 3 else None,
                "l": [k, k + 1, None] if k % 2 else [],
                "m": [("x", k), ("y", None)] if k % 2 else [],
            }
        )
    return rows


def digest(rows: list[dict[str, Any]], chunk: int = 7, schema: pa.Schema = SCHEMA) -> Digest:
    table = pa.Table.from_pylist(rows, schema=schema)
    return digest_batches(table.to_batches(max_chunksize=chunk))


BASE = digest(base_rows())


def test_same_rows_any_order_and_batching_agree() -> None:
    rows = base_rows()
    shuffled = rows[17:] + rows[:17]
    shuffled.reverse()
    assert digest(shuffled, chunk=3).matches(BASE)
    assert digest(rows, chunk=1000).matches(BASE)
    assert BASE.count == 40
    assert 0 <= BASE.sum < 2**64 and 0 <= BASE.xor < 2**64
    assert BASE.library.startswith("duckdb ")


def test_empty_input() -> None:
    d = digest_batches([])
    assert (d.count, d.sum, d.xor) == (0, 0, 0)
    empty = pa.Table.from_pylist([], schema=SCHEMA)
    assert digest_batches(empty.to_batches()).matches(d)


def _changed(mutate: Any) -> Digest:
    rows = base_rows()
    mutate(rows)
    return digest(rows)


def _set(row: int, col: str, value: Any) -> Any:
    def mutate(rows: list[dict[str, Any]]) -> None:
        rows[row][col] = value

    return mutate


def _swap_rows(col: str, r1: int, r2: int) -> Any:
    def mutate(rows: list[dict[str, Any]]) -> None:
        rows[r1][col], rows[r2][col] = rows[r2][col], rows[r1][col]

    return mutate


CHANGES = {
    "missing row": lambda rows: rows.pop(5),
    "duplicated row": lambda rows: rows.append(copy.deepcopy(rows[5])),
    "int": _set(3, "i", 10),
    "float 0.0 -> -0.0": _set(6, "f", -0.0),
    "decimal": _set(3, "dec", Decimal("0.04")),
    "string": _set(3, "s", "s3 "),
    "binary": _set(3, "b", b"\x03\x03\x04"),
    "timestamp": _set(3, "ts", dt.datetime(2024, 3, 1, 0, 3, 0, 1, tzinfo=dt.UTC)),
    "date": _set(3, "d", dt.date(2021, 1, 5)),
    "struct field": _set(4, "st", {"a": 4, "b": "B4"}),
    "struct null field vs null struct": _set(3, "st", {"a": None, "b": None}),
    "list element": _set(3, "l", [3, 5, None]),
    "list order": _set(3, "l", [4, 3, None]),
    "list null element vs shorter list": _set(3, "l", [3, 4]),
    "empty list vs null list": _set(2, "l", None),
    "map value": _set(3, "m", [("x", 3), ("y", 0)]),
    "map key": _set(3, "m", [("x", 3), ("z", None)]),
    "swap one column between rows": _swap_rows("s", 1, 2),
    "swap between columns of one row": lambda rows: rows[7].update(i=rows[7]["id"], id=rows[7]["i"]),
    "null -> empty string": _set(4, "s", ""),
    "null -> 0": _set(5, "i", 0),
    "row of all nulls added": lambda rows: rows.append(dict.fromkeys(rows[0])),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_every_change_changes_the_digest(name: str) -> None:
    changed = _changed(CHANGES[name])
    assert not changed.matches(BASE)
    # not only the count: the hash aggregates themselves move
    assert (changed.sum, changed.xor) != (BASE.sum, BASE.xor)


def _single(schema: pa.Schema, rows: list[dict[str, Any]]) -> Digest:
    return digest(rows, schema=schema)


def test_nan_null_and_zero_are_distinct_and_nan_stable() -> None:
    schema = pa.schema([pa.field("f", pa.float64())])
    nan = _single(schema, [{"f": math.nan}])
    payload = pa.array([0x7FF8000000000001], pa.int64()).view(pa.float64())
    other_nan = digest_batches([pa.record_batch([payload], names=["f"])])
    assert nan.matches(other_nan)  # NaN payload does not matter
    null = _single(schema, [{"f": None}])
    zero = _single(schema, [{"f": 0.0}])
    neg = _single(schema, [{"f": -0.0}])
    assert len({(d.sum, d.xor) for d in (nan, null, zero, neg)}) == 4
    f32 = pa.schema([pa.field("f", pa.float32())])
    assert not _single(f32, [{"f": 0.0}]).matches(_single(f32, [{"f": -0.0}]))


def test_null_position_and_leading_zeros() -> None:
    two = pa.schema([pa.field("a", pa.int64()), pa.field("b", pa.int64())])
    assert not _single(two, [{"a": None, "b": 0}]).matches(_single(two, [{"a": 0, "b": None}]))
    zeros = _single(two, [{"a": 0, "b": 0}])
    nulls = _single(two, [{"a": None, "b": None}])
    assert zeros.sum != 0 and nulls.sum != 0 and zeros.sum != nulls.sum
    one = pa.schema([pa.field("a", pa.int64())])
    assert _single(one, [{"a": 0}]).sum != zeros.sum
    # two identical rows: xor cancels, sum and count do not
    twice = _single(two, [{"a": 0, "b": 0}, {"a": 0, "b": 0}])
    assert twice.xor == 0 and twice.sum == (2 * zeros.sum) % 2**64


def test_type_aware() -> None:
    as_int = _single(pa.schema([pa.field("x", pa.int64())]), [{"x": 1}])
    as_str = _single(pa.schema([pa.field("x", pa.large_string())]), [{"x": "1"}])
    as_dec = _single(pa.schema([pa.field("x", pa.decimal128(5, 0))]), [{"x": Decimal(1)}])
    assert len({as_int.sum, as_str.sum, as_dec.sum}) == 3
    s = _single(pa.schema([pa.field("x", pa.large_string())]), [{"x": "ab"}])
    b = _single(pa.schema([pa.field("x", pa.large_binary())]), [{"x": b"ab"}])
    assert not s.matches(b)


def test_string_layouts_hash_alike_and_map_order_is_ignored() -> None:
    rows = [{"x": "a"}, {"x": None}, {"x": ""}]
    d = {t: _single(pa.schema([pa.field("x", t)]), rows) for t in (pa.string(), pa.large_string(), pa.string_view())}
    assert d[pa.string()].matches(d[pa.large_string()]) and d[pa.string()].matches(d[pa.string_view()])
    when = [{"x": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}]
    utc = _single(pa.schema([pa.field("x", pa.timestamp("us", tz="UTC"))]), when)
    assert utc.matches(_single(pa.schema([pa.field("x", pa.timestamp("us", tz="+00:00"))]), when))
    assert not utc.matches(_single(pa.schema([pa.field("x", pa.timestamp("us"))]), when))
    m = pa.schema([pa.field("m", pa.map_(pa.string(), pa.float64()))])
    assert _single(m, [{"m": [("a", 1.0), ("b", -0.0)]}]).matches(_single(m, [{"m": [("b", -0.0), ("a", 1.0)]}]))
    assert not _single(m, [{"m": [("a", 1.0), ("b", -0.0)]}]).matches(_single(m, [{"m": [("a", 1.0), ("b", 0.0)]}]))


def test_sliced_nested_batches_hash_like_whole_ones() -> None:
    table = pa.Table.from_pylist(base_rows(), schema=SCHEMA)
    whole = table.combine_chunks().to_batches()[0]
    sliced = [whole.slice(i, 5) for i in range(0, whole.num_rows, 5)]
    assert digest_batches(sliced).matches(BASE)


def test_columns_by_field_id() -> None:
    def batch(order: list[tuple[str, int, list[Any]]]) -> pa.RecordBatch:
        fields = [pa.field(n, pa.int64(), metadata={b"PARQUET:field_id": str(fid)}) for n, fid, _ in order]
        return pa.record_batch([pa.array(v, pa.int64()) for _, _, v in order], schema=pa.schema(fields))

    a = batch([("x", 1, [1, 2]), ("y", 2, [3, 4]), ("z", 3, [9, 9])])
    b = batch([("renamed_y", 2, [3, 4]), ("x", 1, [1, 2]), ("other", 5, [0, 0])])
    assert digest_batches([a], field_ids=[2, 1]).matches(digest_batches([b], field_ids=[1, 2]))
    assert not digest_batches([a], field_ids=[1, 2, 3]).matches(digest_batches([a], field_ids=[1, 2]))
    with pytest.raises(ValueError):
        digest_batches([b], field_ids=[3])


def test_digest_value_object() -> None:
    d = Digest(count=2, sum=5, xor=7, library="duckdb x")
    assert Digest.from_dict(d.to_dict()) == d
    assert d.to_dict() == {"count": 2, "sum": 5, "xor": 7, "library": "duckdb x"}
    assert d.matches(Digest(2, 5, 7, "duckdb x"))
    assert not d.matches(Digest(2, 5, 7, "duckdb y"))
    assert not d.matches(Digest(3, 5, 7, "duckdb x"))


def test_table_digest_matches_pyiceberg_reading(tmp_path: Path) -> None:
    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/c.db", warehouse=f"file://{tmp_path}/wh")
    catalog.create_namespace("db")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "amount", DecimalType(12, 2), required=False),
        NestedField(4, "st", StructType(NestedField(5, "x", DoubleType(), required=False)), required=False),
        NestedField(6, "tags", ListType(7, StringType(), element_required=False), required=False),
        NestedField(8, "attrs", MapType(9, StringType(), 10, LongType(), value_required=False), required=False),
    )
    table = catalog.create_table("db.t", schema=schema)
    out = output_arrow_schema(schema)
    plain = pa.schema([pa.field(f.name, f.type, f.nullable) for f in out])
    rows = [
        {
            "id": i,
            "name": None if i % 5 == 0 else f"n{i}",
            "amount": Decimal(i) / 4,
            "st": {"x": i / 3} if i % 2 else None,
            "tags": ["a", None] if i % 3 else None,
            "attrs": {"k": i} if i % 4 else {},
        }
        for i in range(500)
    ]
    table.append(pa.Table.from_pylist(rows[:250], schema=plain))
    table.append(pa.Table.from_pylist(rows[250:], schema=plain))
    mine = table_digest(table, None)
    theirs = table.scan().to_arrow().select(out.names).cast(out)
    assert theirs.schema.field("id").metadata == {b"PARQUET:field_id": b"1"}
    assert digest_batches(theirs.to_batches(max_chunksize=64), field_ids=[1, 2, 3, 4, 6, 8]).matches(mine)
    assert mine.count == 500

    table.delete("id = 7")
    after = table_digest(catalog.load_table("db.t"), None)
    assert after.count == 499 and not after.matches(mine)
    first = table.history()[0].snapshot_id
    assert table_digest(table, first).count == 250
