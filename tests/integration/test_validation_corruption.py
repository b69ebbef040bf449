"""Every corruption of a rewritten destination is caught and located; the same rows in another layout pass.

The source is written by PyIceberg; each destination is written file by file (see validation_fixtures)
with one deliberate corruption, and validated with the rewrite strategy's levels (1, 2, 4, and 5 on a
mismatch). "Located" means: the failing level, the partition, and for a changed value the sample row
and the column that changed.

Every case runs on three layouts of the same rows: with nested columns and flat, both digested by DuckDB's
Parquet scan (``parquet_scan``), and with nested columns through IceBridge's own reader (the general path
deletes, evolved files and bucket partitions take), so both level-4 paths catch it.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.table import Table
from pyiceberg.types import PrimitiveType

from icebridge.errors import ValidationError
from icebridge.phases.validate import ComparatorResult, compare
from tests.integration.validation_fixtures import (
    FLAT_SCHEMA,
    SCHEMA,
    base_rows,
    changed,
    commit_files,
    data_paths,
    label_of,
    make_source,
    partition_of,
    traits,
    write_data_file,
)
from tests.integration.validation_fixtures import (
    make_destination as _make_destination,
)

ROWS = base_rows()


# layout -> (schema, level-4 reader)
LAYOUTS = {"nested": (SCHEMA, "auto"), "flat": (FLAT_SCHEMA, "auto"), "general": (SCHEMA, "arrow")}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory, layout: str) -> Table:
    table = make_source(tmp_path_factory.mktemp(f"source-{layout}"), schema=LAYOUTS[layout][0])
    READERS[table.metadata.table_uuid] = LAYOUTS[layout][1]
    return table


READERS: dict[object, str] = {}  # source table uuid -> its layout's level-4 reader


def make_destination(like: Table, root: Path, *args: Any, **kwargs: Any) -> Table:
    """A destination with the layout of ``like`` (the source)."""
    return _make_destination(root, *args, schema=FLAT_SCHEMA if is_flat(like) else SCHEMA, **kwargs)


def is_flat(table: Table) -> bool:
    return all(isinstance(f.field_type, PrimitiveType) for f in table.schema().fields)


def validate(source: Table, destination: Table, **kwargs: Any) -> dict[str, ComparatorResult]:
    snapshot = source.current_snapshot()
    assert snapshot is not None
    reader = READERS[source.metadata.table_uuid]
    results = compare(source, snapshot.snapshot_id, destination, **traits("rewrite"), digest_reader=reader, **kwargs)
    names = [r.comparator for r in results]
    assert len(names) == len(set(names)), names
    digest = results[names.index("content-digest")].details
    # the layout's reader did the digests: DuckDB's scan for every file, or IceBridge's for every file
    assert digest["files_scanned_by_duckdb"] == (digest["files_read"] if reader == "auto" else 0), digest
    return {r.comparator: r for r in results}


def drill(results: dict[str, ComparatorResult]) -> dict[str, Any]:
    assert "drill-down" in results, (
        f"no drill-down after a mismatch: {[(r.comparator, r.passed) for r in results.values()]}"
    )
    return results["drill-down"].details


def ids(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(r["row"]["id"] for r in rows)


def test_same_rows_in_another_order_and_file_split_validate_as_equal(source: Table, tmp_path: Path) -> None:
    destination = make_destination(source, tmp_path, split=3, reverse=True)
    assert len(data_paths(destination)) > len(data_paths(source))
    results = validate(source, destination)
    assert [(r.level, r.comparator, r.passed) for r in results.values()] == [
        (1, "structure", True),
        (2, "metadata-partitions", True),
        (4, "content-digest", True),
    ]
    digest = results["content-digest"].details
    assert digest["source_rows"] == digest["destination_rows"] == len(ROWS)
    assert digest["partitions_compared"] == 6
    assert "duckdb" in digest["library"]
    assert all(r.details["proves"] for r in results.values())


NESTED_ONLY = {"st", "l", "m"}
VALUE_CHANGES = [
    pytest.param(4, "i", 12345, id="int"),
    pytest.param(4, "f", 1.0000000000000002, id="float"),
    pytest.param(5, "f", float("nan"), id="float-to-nan"),
    pytest.param(10, "f", -0.0, id="float-zero-to-negative-zero"),
    pytest.param(4, "dec", Decimal("1.49"), id="decimal"),
    pytest.param(4, "s", "name-4 ", id="string"),
    pytest.param(4, "b", b"\x04\x00\x08", id="binary"),
    pytest.param(4, "ts", ROWS[4]["ts"] + dt.timedelta(microseconds=1), id="timestamp"),
    pytest.param(4, "d", ROWS[4]["d"] + dt.timedelta(days=1), id="date"),
    pytest.param(4, "st", {"a": 5, "t": "t4"}, id="struct-field"),
    pytest.param(4, "l", [4, 50, 6], id="list-element"),
    pytest.param(4, "m", [("k", 4), ("z", 4)], id="map-value"),
    pytest.param(9, "s", "", id="null-to-empty-string"),
]


@pytest.mark.parametrize(
    ("layout", "index", "column", "value"),
    [
        pytest.param(layout, *case.values, id=f"{layout}-{case.id}")
        for layout in sorted(LAYOUTS)
        for case in VALUE_CHANGES
        if layout != "flat" or case.values[1] not in NESTED_ONLY
    ],
    indirect=["layout"],
)
def test_one_changed_value_is_caught_and_located(
    source: Table, tmp_path: Path, index: int, column: str, value: Any
) -> None:
    assert ROWS[index][column] != value or (isinstance(value, float) and math.copysign(1, value) < 0)
    destination = make_destination(source, tmp_path, changed(ROWS, index, **{column: value}))
    results = validate(source, destination)

    digest = results["content-digest"]
    assert not digest.passed
    where = label_of(ROWS[index])
    assert digest.details["partitions"] == [where]
    assert where in digest.summary

    details = drill(results)
    assert details["partitions"] == [{"partition": where, "source_only": 1, "destination_only": 1}]
    assert ids(details["source_only"]) == ids(details["destination_only"]) == [index]
    [pair] = details["changed"]
    assert pair["columns"] == [column]
    assert pair["source_partition"] == pair["destination_partition"] == where
    assert pair["row"]["id"] == index
    assert json.dumps(pair["source"][column]) != json.dumps(pair["destination"][column])


def test_float_negative_zero_and_nan_are_shown_as_such(source: Table, tmp_path: Path) -> None:
    rows = changed(changed(ROWS, 10, f=-0.0), 5, f=float("nan"))
    details = drill(validate(source, make_destination(source, tmp_path, rows)))
    by_id = {p["row"]["id"]: p for p in details["changed"]}
    assert by_id[10]["source"] == {"f": 0.0} and by_id[10]["destination"] == {"f": -0.0}
    assert str(by_id[10]["destination"]["f"]) == "-0.0"
    assert by_id[5]["destination"] == {"f": "NaN"}


def test_null_turned_into_empty_string_is_shown_as_null_and_empty(source: Table, tmp_path: Path) -> None:
    assert ROWS[9]["s"] is None
    details = drill(validate(source, make_destination(source, tmp_path, changed(ROWS, 9, s=""))))
    [pair] = details["changed"]
    assert pair["source"] == {"s": None} and pair["destination"] == {"s": ""}


def test_missing_row_is_caught_by_metadata_and_digest_and_shown(source: Table, tmp_path: Path) -> None:
    rows = [r for r in ROWS if r["id"] != 7]
    results = validate(source, make_destination(source, tmp_path, rows))
    where = label_of(ROWS[7])
    meta = results["metadata-partitions"]
    assert not meta.passed
    assert meta.details["partitions"] == [where]
    records = [m for m in meta.details["mismatches"] if m["metric"] == "records"]
    assert records == [{"partition": where, "metric": "records", "source": 10, "destination": 9, "equal": False}]
    assert results["content-digest"].details["partitions"] == [where]
    details = drill(results)
    assert ids(details["source_only"]) == [7]
    assert details["destination_only"] == []


def test_duplicated_row_is_caught_and_shown(source: Table, tmp_path: Path) -> None:
    rows = [*copy.deepcopy(ROWS), copy.deepcopy(ROWS[8])]
    results = validate(source, make_destination(source, tmp_path, rows))
    where = label_of(ROWS[8])
    assert not results["metadata-partitions"].passed
    assert results["content-digest"].details["partitions"] == [where]
    details = drill(results)
    assert details["partitions"] == [{"partition": where, "source_only": 0, "destination_only": 1}]
    assert ids(details["destination_only"]) == [8]


def test_two_values_swapped_between_rows_is_caught_by_digest(source: Table, tmp_path: Path) -> None:
    assert partition_of(ROWS[3]) == partition_of(ROWS[15])
    rows = changed(changed(ROWS, 3, s=ROWS[15]["s"]), 15, s=ROWS[3]["s"])
    results = validate(source, make_destination(source, tmp_path, rows))
    # counts and bounds cannot see a swap within a partition; the row digest can
    assert results["metadata-partitions"].passed
    digest = results["content-digest"]
    assert not digest.passed
    assert digest.details["partitions"] == [label_of(ROWS[3])]
    details = drill(results)
    assert ids(details["source_only"]) == ids(details["destination_only"]) == [3, 15]
    assert sorted(p["row"]["id"] for p in details["changed"]) == [3, 15]
    assert all(p["columns"] == ["s"] for p in details["changed"])


def test_row_moved_to_another_partition_is_caught_and_located(source: Table, tmp_path: Path) -> None:
    moved = ROWS[4]
    home, away = partition_of(moved), ("c", partition_of(moved)[1])
    assert home != away

    def placement(row: dict[str, Any]) -> tuple[Any, ...]:
        return away if row["id"] == 4 else partition_of(row)

    results = validate(source, make_destination(source, tmp_path, placement=placement))
    home_label = label_of(moved)
    away_label = home_label.replace("cat=b", "cat=c")
    meta = results["metadata-partitions"]
    assert not meta.passed
    assert meta.details["partitions"] == sorted([home_label, away_label])
    digest = results["content-digest"]
    assert not digest.passed
    [misplaced] = digest.details["misplaced"]
    assert misplaced["registered"] == away_label and misplaced["belongs"] == home_label and misplaced["rows"] == 1
    details = drill(results)
    [pair] = details["changed"]
    assert pair["columns"] == []
    assert pair["row"]["id"] == 4
    assert (pair["source_partition"], pair["destination_partition"]) == (home_label, away_label)


def test_extra_data_file_is_caught_and_its_rows_shown(source: Table, tmp_path: Path) -> None:
    destination = make_destination(source, tmp_path)
    extra = [dict(copy.deepcopy(r), id=1000 + r["id"]) for r in ROWS if partition_of(r) == partition_of(ROWS[0])][:3]
    commit_files(destination, [write_data_file(destination, extra, partition_of(ROWS[0]))])
    results = validate(source, destination)
    where = label_of(ROWS[0])
    assert results["metadata-partitions"].details["partitions"] == [where]
    assert results["content-digest"].details["partitions"] == [where]
    details = drill(results)
    assert ids(details["destination_only"]) == sorted(r["id"] for r in extra)
    assert details["source_only"] == []


def test_truncated_data_file_stops_validation_with_the_file_named(source: Table, tmp_path: Path) -> None:
    destination = make_destination(source, tmp_path)
    victim = data_paths(destination)[2]
    size = Path(victim).stat().st_size
    with open(victim, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(ValidationError) as caught:
        validate(source, destination)
    assert Path(victim).name in str(caught.value)


def test_sample_is_capped(source: Table, tmp_path: Path) -> None:
    rows = [dict(r, i=(r["i"] or 0) + 1) for r in copy.deepcopy(ROWS)]
    details = drill(validate(source, make_destination(source, tmp_path, rows), sample_rows=5))
    assert sum(p["source_only"] for p in details["partitions"]) == len(ROWS)
    assert len(details["source_only"]) == len(details["destination_only"]) == 5
