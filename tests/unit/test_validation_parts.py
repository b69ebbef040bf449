"""Small parts of the validator: level selection, JSON values, partition labels, file matching and checksums."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import xxhash
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import BucketTransform, DayTransform, IdentityTransform
from pyiceberg.typedef import Record
from pyiceberg.types import DateType, LongType, NestedField, StringType, StructType, TimestamptzType

from icebridge.engines import StrategySpec, strategy_names, strategy_spec
from icebridge.errors import ValidationError
from icebridge.phases.validate import levels_to_run
from icebridge.validation.identity import checksum_file, match_files
from icebridge.validation.partitions import UNPARTITIONED, partition_label, row_partition_keys
from icebridge.validation.values import MAX_TEXT, to_json


def test_levels_for_each_strategy_and_the_level_option() -> None:
    rewrite, file_copy = strategy_spec("rewrite"), strategy_spec("file-copy")
    assert rewrite.validation_levels == (1, 2, 4) and not rewrite.byte_copy
    assert file_copy.validation_levels == (1, 2, 3) and file_copy.byte_copy
    levels = {name: strategy_spec(name).validation_levels for name in strategy_names()}
    assert levels == {  # every strategy an engine carries out
        "rewrite": (1, 2, 4),
        "spark-sql": (1, 2, 4),
        "databricks": (1, 2, 4),
        "file-copy": (1, 2, 3),
        "register": (1, 2, 3),
    }

    def chosen(spec: StrategySpec, levels: list[int] | None) -> tuple[int, ...]:
        return levels_to_run(byte_copy=spec.byte_copy, default_levels=spec.validation_levels, levels=levels)

    assert chosen(rewrite, None) == (1, 2, 4)
    assert chosen(file_copy, None) == (1, 2, 3)
    assert chosen(rewrite, [3]) == (1, 2)  # level 3 fits byte copies only
    assert chosen(file_copy, [3]) == (1, 2, 3)
    # asked for, level 4 runs on a byte copy too (by default it runs only where a file is not byte-identical)
    assert chosen(file_copy, [4]) == (1, 2, 3, 4)
    # drill-down is never chosen by level: it follows a mismatch
    assert chosen(file_copy, [5]) == (1, 2, 3, 4)
    assert chosen(rewrite, [5]) == (1, 2, 4)
    with pytest.raises(ValueError, match="between 1 and 5"):
        chosen(rewrite, [6])
    with pytest.raises(ValueError, match="between 1 and 5"):
        chosen(rewrite, [])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-0.0, -0.0),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        (Decimal("1.10"), "1.10"),
        (b"\x00\xff", "0x00ff"),
        ("", ""),
        (None, None),
        ("a\x00b", "a\\x00b"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.datetime(2024, 1, 1, 5, tzinfo=dt.UTC), "2024-01-01T05:00:00+00:00"),
        ([("b", 2), ("a", 1)], {"a": 1, "b": 2}),
        ([(2, "x"), (1, "y")], [[1, "y"], [2, "x"]]),
        ({"a": None, "b": [1, None]}, {"a": None, "b": [1, None]}),
    ],
)
def test_values_survive_json_and_stay_distinct(value: Any, expected: Any) -> None:
    out = to_json(value)
    assert json.loads(json.dumps(out)) == expected
    if isinstance(value, float) and value == 0:
        assert math.copysign(1, json.loads(json.dumps(out))) < 0


def test_long_text_is_shortened_with_its_length() -> None:
    out = to_json("x" * (MAX_TEXT + 5))
    assert out.startswith("x" * MAX_TEXT) and out.endswith(f"({MAX_TEXT + 5} characters)")


SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "ts", TimestamptzType(), required=False),
    NestedField(3, "s", StructType(NestedField(4, "region", StringType(), required=False)), required=False),
    NestedField(5, "d", DateType(), required=False),
)


def test_partition_labels_from_manifest_values_and_from_rows_agree() -> None:
    spec = PartitionSpec(
        PartitionField(2, 1000, DayTransform(), "ts_day"),
        PartitionField(4, 1001, IdentityTransform(), "region"),
        PartitionField(1, 1002, BucketTransform(4), "id_bucket"),
        PartitionField(5, 1003, IdentityTransform(), "d"),
    )
    batch = pa.RecordBatch.from_pylist(
        [
            {
                "id": 7,
                "ts": dt.datetime(2024, 3, 2, 23, tzinfo=dt.UTC),
                "s": {"region": "eu"},
                "d": dt.date(2021, 5, 1),
            },
            {"id": 8, "ts": None, "s": None, "d": None},
        ],
        schema=pa.schema(
            [
                pa.field("id", pa.int64()),
                pa.field("ts", pa.timestamp("us", "UTC")),
                pa.field("s", pa.struct([pa.field("region", pa.large_string())])),
                pa.field("d", pa.date32()),
            ]
        ),
    )
    keys = row_partition_keys(batch, spec, SCHEMA)
    rows = list(zip(*(k.to_pylist() for k in keys), strict=True))
    first = partition_label(spec, SCHEMA, rows[0])
    bucket = BucketTransform(4).transform(LongType())(7)
    days_2021 = (dt.date(2021, 5, 1) - dt.date(1970, 1, 1)).days
    assert first == f"ts_day=2024-03-02/region=eu/id_bucket={bucket}/d=2021-05-01"
    # the manifest stores days as an int; a date from a query engine gives the same label
    assert partition_label(spec, SCHEMA, [19784, "eu", bucket, days_2021]) == first
    assert partition_label(spec, SCHEMA, [19784, "eu", bucket, dt.date(2021, 5, 1)]) == first
    assert partition_label(spec, SCHEMA, rows[1]).startswith("ts_day=null/region=null/")
    assert partition_label(PartitionSpec(), SCHEMA, []) == UNPARTITIONED


def _data_file(path: str, size: int = 10) -> DataFile:
    return DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=path,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=1,
        file_size_in_bytes=size,
    )


def test_files_pair_by_base_name_or_by_mapping() -> None:
    src = [_data_file("s3://a/t/data/x=1/f1.parquet"), _data_file("s3://a/t/data/x=2/f2.parquet")]
    dst = [_data_file("gs://b/u/data/f2.parquet"), _data_file("gs://b/u/data/f3.parquet")]
    match = match_files(src, dst)
    assert [(s.file_path, d.file_path) for s, d in match.pairs] == [
        ("s3://a/t/data/x=2/f2.parquet", "gs://b/u/data/f2.parquet")
    ]
    assert [f.file_path for f in match.missing] == ["s3://a/t/data/x=1/f1.parquet"]
    assert [f.file_path for f in match.extra] == ["gs://b/u/data/f3.parquet"]
    mapped = match_files(src, dst, {"s3://a/t/data/x=1/f1.parquet": "gs://b/u/data/f3.parquet"})
    assert [(s.file_path, d.file_path) for s, d in mapped.pairs] == [
        ("s3://a/t/data/x=1/f1.parquet", "gs://b/u/data/f3.parquet")
    ]


def test_ambiguous_base_names_ask_for_a_mapping() -> None:
    src = [_data_file("s3://a/t/data/x=1/part-0.parquet"), _data_file("s3://a/t/data/x=2/part-0.parquet")]
    with pytest.raises(ValidationError, match="mapping"):
        match_files(src, [])


def test_checksum_streams_the_whole_file_in_chunks(tmp_path: Path) -> None:
    payload = uuid.uuid4().bytes * 10_000
    path = tmp_path / "f.bin"
    path.write_bytes(payload)
    size, digest = checksum_file(PyArrowFileIO(), str(path), chunk_bytes=4096)
    assert size == len(payload)
    assert digest == xxhash.xxh3_128(payload).hexdigest()
    with pytest.raises(ValidationError, match="f-missing.bin"):
        checksum_file(PyArrowFileIO(), str(tmp_path / "f-missing.bin"))
