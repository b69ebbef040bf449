"""Which levels run for which strategy, what byte copies prove, and validation that cannot run or must not write."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform

from icebridge.errors import ValidationError
from icebridge.phases.validate import ComparatorResult, compare
from tests.integration.validation_fixtures import (
    arrow_of,
    base_rows,
    changed,
    commit_files,
    create_table,
    data_paths,
    label_of,
    make_byte_copy,
    make_destination,
    make_source,
    new_catalog,
    partition_of,
    relocated,
    replace_file,
    traits,
    write_data_file,
)

ROWS = base_rows()


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Table:
    return make_source(tmp_path_factory.mktemp("source"))


def pinned(table: Table) -> int:
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id


def by_name(results: list[ComparatorResult]) -> dict[str, ComparatorResult]:
    return {r.comparator: r for r in results}


def levels_of(results: list[ComparatorResult]) -> list[tuple[int, str, bool]]:
    return [(r.level, r.comparator, r.passed) for r in results]


def test_byte_copy_is_proven_by_file_identity_without_decoding(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    results = compare(source, pinned(source), destination, **traits("file-copy"))
    assert levels_of(results) == [
        (1, "structure", True),
        (2, "metadata-partitions", True),
        (2, "metadata-files", True),
        (3, "file-identity", True),
    ]
    identity = by_name(results)["file-identity"]
    assert identity.details["identical"] == identity.details["files"] == len(data_paths(source))
    assert "without decoding" in identity.proves
    assert identity.details["checksum"] == "xxh3-128"


def test_byte_copy_with_a_rewritten_file_of_the_same_rows_is_proven_by_the_digest(
    source: Table, tmp_path: Path
) -> None:
    destination = make_byte_copy(tmp_path, source)
    victim = data_paths(destination)[0]
    reordered = pq.read_table(victim)[::-1]
    rewritten = Path(victim).with_name("rewritten-" + Path(victim).name)
    pq.write_table(reordered, rewritten, compression="gzip")
    old = next(t.file for t in destination.scan().plan_files() if t.file.file_path.endswith(Path(victim).name))
    replace_file(
        destination,
        victim,
        relocated(old, f"file://{rewritten}", file_size_in_bytes=rewritten.stat().st_size),
    )
    results = compare(source, pinned(source), destination, **traits("file-copy"))
    # the rewritten file has another name and other bytes: level 4 runs and proves its rows
    named = by_name(results)
    assert named["content-digest"].passed
    assert named["file-identity"].passed, named["file-identity"].summary
    assert "proven equal at level 4" in named["file-identity"].summary
    assert not named["metadata-files"].passed  # the manifest names a file the source does not have
    assert named["metadata-files"].details["missing"][0]["file"].endswith(Path(victim).name)


def test_truncated_copy_is_caught_by_file_identity_and_named(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    victim = data_paths(destination)[1]
    with open(victim, "r+b") as fh:
        fh.truncate(os.path.getsize(victim) - 100)
    results = compare(source, pinned(source), destination, **traits("file-copy"))
    named = by_name(results)
    identity = named["file-identity"]
    assert not identity.passed
    [bad] = identity.details["differing"]
    assert bad["destination"].endswith(Path(victim).name)
    assert "truncated" in bad["problem"]
    assert Path(victim).name in identity.summary
    # level 4 cannot decode the file: recorded as a failure, never a pass, and the evidence above is kept
    assert not named["content-digest"].passed
    assert Path(victim).name in named["content-digest"].summary


def test_corrupted_byte_in_copy_is_caught_by_checksum(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    victim = data_paths(destination)[2]
    size = os.path.getsize(victim)
    with open(victim, "r+b") as fh:
        fh.seek(size // 3)
        byte = fh.read(1)
        fh.seek(size // 3)
        fh.write(bytes([byte[0] ^ 0xFF]))
    results = compare(source, pinned(source), destination, **traits("file-copy"))
    named = by_name(results)
    assert not named["file-identity"].passed
    [bad] = named["file-identity"].details["differing"]
    assert "xxh3-128 differs" in bad["problem"]
    assert not named["content-digest"].passed


def test_extra_file_in_copy_is_caught_at_levels_2_3_and_4(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    extra_rows = [dict(copy.deepcopy(ROWS[1]), id=500)]
    commit_files(destination, [write_data_file(destination, extra_rows, partition_of(ROWS[1]))])
    results = compare(source, pinned(source), destination, **traits("file-copy"))
    named = by_name(results)
    where = label_of(ROWS[1])
    assert named["metadata-files"].details["extra"][0]["partition"] == where
    assert named["file-identity"].details["extra"][0]["partition"] == where
    assert named["content-digest"].details["partitions"] == [where]
    assert [r["row"]["id"] for r in named["drill-down"].details["destination_only"]] == [500]


def test_level_option_runs_levels_up_to_n(source: Table, tmp_path: Path) -> None:
    copied = make_byte_copy(tmp_path / "copy", source)
    rewritten = make_destination(tmp_path / "rewrite")
    assert [r.level for r in compare(source, pinned(source), rewritten, **traits("rewrite"), levels=[1])] == [1]
    assert [r.level for r in compare(source, pinned(source), rewritten, **traits("rewrite"), levels=[2])] == [1, 2]
    # level 3 applies to byte copies only
    assert [r.level for r in compare(source, pinned(source), rewritten, **traits("rewrite"), levels=[3])] == [1, 2]
    assert [r.level for r in compare(source, pinned(source), copied, **traits("file-copy"), levels=[3])] == [1, 2, 2, 3]
    # asked for, level 4 runs even where every file is identical
    forced = compare(source, pinned(source), copied, **traits("file-copy"), levels=[4])
    assert levels_of(forced)[-1] == (4, "content-digest", True)


def test_level_2_alone_catches_a_missing_row_and_drills_down(source: Table, tmp_path: Path) -> None:
    destination = make_destination(tmp_path, [r for r in ROWS if r["id"] != 2])
    results = by_name(compare(source, pinned(source), destination, **traits("rewrite"), levels=[2]))
    assert not results["metadata-partitions"].passed
    assert [r["row"]["id"] for r in results["drill-down"].details["source_only"]] == [2]


def _snapshot_of_files(table: Table) -> dict[str, tuple[int, int]]:
    root = Path(table.location().removeprefix("file://"))
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_validation_never_changes_either_table(source: Table, tmp_path: Path) -> None:
    destination = make_destination(tmp_path, changed(ROWS, 3, s="changed"))
    tables = (source, destination)
    before = [(t.metadata_location, pinned(t), len(t.metadata.snapshots), _snapshot_of_files(t)) for t in tables]
    results = compare(source, pinned(source), destination, **traits("rewrite"), levels=[5])
    assert any(r.comparator == "drill-down" for r in results)
    for table, (location, snapshot, count, files) in zip((source, destination), before, strict=True):
        reloaded = table.catalog.load_table(table.name())
        assert reloaded.metadata_location == location
        assert pinned(reloaded) == snapshot and len(reloaded.metadata.snapshots) == count
        assert _snapshot_of_files(reloaded) == files


def test_unreadable_destination_file_is_an_error_never_a_pass(source: Table, tmp_path: Path) -> None:
    destination = make_destination(tmp_path)
    victim = data_paths(destination)[0]
    os.remove(victim)
    with pytest.raises(ValidationError) as caught:
        compare(source, pinned(source), destination, **traits("rewrite"))
    assert Path(victim).name in str(caught.value)


def test_vanished_source_metadata_is_an_error(tmp_path: Path) -> None:
    source = make_source(tmp_path / "s")
    destination = make_destination(tmp_path / "d")
    snapshot = source.current_snapshot()
    assert snapshot is not None
    os.remove(snapshot.manifest_list.removeprefix("file://"))
    with pytest.raises(ValidationError, match="manifest list"):
        compare(source, snapshot.snapshot_id, destination, **traits("rewrite"))


def test_empty_source_against_empty_and_non_empty_destination(tmp_path: Path) -> None:
    empty_source = create_table(new_catalog(tmp_path / "s", "src"), "empty")
    empty_destination = create_table(new_catalog(tmp_path / "d", "dst"), "empty")
    assert all(r.passed for r in compare(empty_source, None, empty_destination, **traits("rewrite")))
    full = make_destination(tmp_path / "full")
    results = by_name(compare(empty_source, None, full, **traits("rewrite")))
    assert not results["metadata-partitions"].passed
    assert not results["content-digest"].passed
    assert results["content-digest"].details["destination_rows"] == len(ROWS)


def _evolved_source(root: Path, rows: list[dict[str, Any]]) -> Table:
    """Half the rows written unpartitioned, then the spec changed to (cat, day(ts)) and the rest appended."""
    catalog = new_catalog(root, "evo")
    catalog.create_namespace_if_not_exists("ns")
    from tests.integration.validation_fixtures import SCHEMA

    table = catalog.create_table(("ns", "evolved"), schema=SCHEMA, properties={"comment": "validation source"})
    table.append(arrow_of(table, rows[:30]))
    with table.update_spec() as update:
        update.add_identity("cat")
        update.add_field("ts", DayTransform(), "ts_day")
    table.append(arrow_of(table, rows[30:]))
    return table


def test_files_under_an_older_spec_compare_per_current_partition_at_level_4(tmp_path: Path) -> None:
    evolved = _evolved_source(tmp_path / "s", ROWS)
    assert len(evolved.metadata.partition_specs) == 2
    same = by_name(compare(evolved, pinned(evolved), make_destination(tmp_path / "same"), **traits("rewrite")))
    assert all(r.passed for r in same.values()), [(r.comparator, r.summary) for r in same.values()]
    assert same["metadata-partitions"].details["whole_table"] is True
    assert same["content-digest"].details["partitions_compared"] == 6

    # row 4 lives in an unpartitioned (older spec) file of the source; a change to it is located by partition
    broken = by_name(
        compare(
            evolved, pinned(evolved), make_destination(tmp_path / "broken", changed(ROWS, 4, i=-1)), **traits("rewrite")
        )
    )
    assert broken["content-digest"].details["partitions"] == [label_of(ROWS[4])]
    [pair] = broken["drill-down"].details["changed"]
    assert pair["columns"] == ["i"] and pair["source_partition"] == label_of(ROWS[4])
