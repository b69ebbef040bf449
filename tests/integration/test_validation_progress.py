"""Progress of a validation: the (files, bytes) increments add up to the total planned from the manifests."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyiceberg.table import Table

from icebridge.phases.validate import compare, planned_work
from tests.integration.validation_fixtures import (
    base_rows,
    changed,
    data_paths,
    make_byte_copy,
    make_destination,
    make_source,
    relocated,
    replace_file,
    traits,
)

ROWS = base_rows()


class Recorder:
    """A progress callback that adds up what it is told, from any thread."""

    def __init__(self) -> None:
        self.files = 0
        self.bytes = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, files: int, size: int) -> None:
        assert files >= 0 and size >= 0
        with self._lock:
            self.files += files
            self.bytes += size
            self.calls += 1

    @property
    def total(self) -> tuple[int, int]:
        return self.files, self.bytes


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Table:
    return make_source(tmp_path_factory.mktemp("source"))


def pinned(table: Table) -> int:
    snapshot = table.current_snapshot()
    assert snapshot is not None
    return snapshot.snapshot_id


def on_disk(*tables: Table) -> tuple[int, int]:
    paths = [p for t in tables for p in data_paths(t)]
    return len(paths), sum(os.path.getsize(p) for p in paths)


def test_byte_copy_reports_every_file_hashed_and_adds_up_to_the_plan(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    plan = planned_work(source, pinned(source), destination, **traits("file-copy"))
    # level 3 reads every file of both sides whole; nothing else reads data
    assert plan == on_disk(source, destination)
    progress = Recorder()
    results = compare(source, pinned(source), destination, **traits("file-copy"), progress=progress)
    assert all(r.passed for r in results) and [r.level for r in results][-1] == 3
    assert progress.total == plan
    identity = next(r for r in results if r.comparator == "file-identity")
    assert progress.bytes == identity.details["bytes_read"]


@pytest.mark.parametrize("reader", ["auto", "arrow"])
def test_rewrite_reports_every_file_decoded_and_adds_up_to_the_plan(source: Table, tmp_path: Path, reader: str) -> None:
    destination = make_destination(tmp_path, split=2)
    plan = planned_work(source, pinned(source), destination, **traits("rewrite"))
    assert plan == on_disk(source, destination)
    progress = Recorder()
    results = compare(source, pinned(source), destination, **traits("rewrite"), digest_reader=reader, progress=progress)
    assert all(r.passed for r in results), [(r.comparator, r.summary) for r in results]
    digest = next(r for r in results if r.comparator == "content-digest")
    # the reader asked for decoded the files: DuckDB's scan all of them, or the general path all of them
    assert digest.details["files_scanned_by_duckdb"] == (digest.details["files_read"] if reader == "auto" else 0)
    assert progress.total == plan == (digest.details["files_read"], digest.details["bytes_read"])
    if reader == "arrow":
        assert progress.calls == plan[0]  # one increment per file, as each is decoded


def test_asked_for_level_4_a_byte_copy_plans_and_reports_both_readings(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    files, size = on_disk(source, destination)
    plan = planned_work(source, pinned(source), destination, **traits("file-copy"), levels=[4])
    assert plan == (2 * files, 2 * size)  # hashed at level 3, decoded at level 4
    progress = Recorder()
    compare(source, pinned(source), destination, **traits("file-copy"), levels=[4], progress=progress)
    assert progress.total == plan


def test_a_mismatch_reads_more_than_planned_and_says_so(source: Table, tmp_path: Path) -> None:
    destination = make_destination(tmp_path, changed(ROWS, 3, s="changed"))
    plan = planned_work(source, pinned(source), destination, **traits("rewrite"))
    progress = Recorder()
    results = compare(source, pinned(source), destination, **traits("rewrite"), progress=progress)
    assert results[-1].comparator == "drill-down"
    # the drill-down read the suspect partition's files on both sides, twice (hashes, then the sample)
    assert progress.files > plan[0] and progress.bytes > plan[1]


def test_a_byte_copy_with_a_rewritten_file_adds_the_level_4_reading(source: Table, tmp_path: Path) -> None:
    destination = make_byte_copy(tmp_path, source)
    victim = data_paths(destination)[0]
    rewritten = Path(victim).with_name("rewritten-" + Path(victim).name)
    pq.write_table(pq.read_table(victim)[::-1], rewritten, compression="gzip")
    old = next(t.file for t in destination.scan().plan_files() if t.file.file_path.endswith(Path(victim).name))
    replace_file(
        destination, victim, relocated(old, f"file://{rewritten}", file_size_in_bytes=rewritten.stat().st_size)
    )
    plan = planned_work(source, pinned(source), destination, **traits("file-copy"))
    progress = Recorder()
    results = compare(source, pinned(source), destination, **traits("file-copy"), progress=progress)
    assert any(r.comparator == "content-digest" and r.passed for r in results)
    # level 3 hashed the pairs (the rewritten file has no counterpart); level 4 decoded every file of both sides;
    # the drill-down that follows the metadata-files mismatch read the one partition's file on each side
    assert results[-1].comparator == "drill-down"
    pairs = len(data_paths(source)) - 1
    decoded_files, decoded_bytes = on_disk(source, destination)
    hashed = next(r for r in results if r.comparator == "file-identity").details["bytes_read"]
    original = next(p for p in data_paths(source) if Path(p).name == Path(victim).name)
    drilled = os.path.getsize(original) + rewritten.stat().st_size
    assert progress.total == (2 * pairs + decoded_files + 2, hashed + decoded_bytes + drilled)
    assert progress.files > plan[0]
