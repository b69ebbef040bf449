"""``register`` carries delete files by reference and keeps their meaning: the order of sequence numbers.

The source has data, an equality delete, data appended after it (which the equality delete must not
touch: it is newer), and a position delete. The destination must read exactly the source's live rows
through the independent reader, and reference the same files, committed in the source's order.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.typedef import Record
from pyiceberg.types import LongType, NestedField, StringType

from icebridge.engines._pyiceberg import replay_files
from icebridge.store import open_store
from icebridge.validation.reader import iter_table_batches
from tests.integration import estate

SCHEMA = Schema(NestedField(1, "id", LongType(), required=True), NestedField(2, "v", StringType()))
POS_PATH_ID, POS_ID = 2147483546, 2147483545  # the spec's reserved field ids of a position delete file


def _write(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def _delete_file(path: Path, content: DataFileContent, rows: int, equality_ids: list[int] | None) -> DataFile:
    df = DataFile.from_args(
        content=content,
        file_path=f"file://{path}",
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=rows,
        file_size_in_bytes=path.stat().st_size,
        equality_ids=equality_ids,
        _table_format_version=2,
    )
    df.spec_id = 0
    return df


def _commit_deletes(table: object, delete_file: DataFile) -> None:
    with table.transaction() as txn:  # type: ignore[attr-defined]
        with replay_files(txn, "overwrite", {}, set()) as commit:
            commit.add_file(delete_file)


def live(table: object) -> list[tuple[int, str]]:
    batches = list(iter_table_batches(table, None))  # type: ignore[arg-type]
    data = pa.Table.from_batches(batches) if batches else pa.table({"id": [], "v": []})
    return sorted(zip(data["id"].to_pylist(), data["v"].to_pylist(), strict=True))


@pytest.fixture
def with_deletes(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = estate.catalog_props("sqlite", tmp_path, "managed")
    catalog = estate.open_catalog("foreign", foreign)
    catalog.create_namespace("shop")
    table = catalog.create_table("shop.facts", SCHEMA, properties={"format-version": "2"})
    arrow_schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("v", pa.string())])
    table.append(pa.Table.from_pylist([{"id": i, "v": "old"} for i in range(100)], schema=arrow_schema))
    first_file = next(iter(table.scan().plan_files())).file.file_path
    folder = Path(table.metadata.location.removeprefix("file://")) / "data"
    eq = folder / "eq-delete-ids-below-10.parquet"
    _write(eq, pa.table({"id": pa.array(range(10), pa.int64())}).cast(
        pa.schema([pa.field("id", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": b"1"})])
    ))  # fmt: skip
    _commit_deletes(table, _delete_file(eq, DataFileContent.EQUALITY_DELETES, 10, [1]))
    table.refresh()
    table.append(pa.Table.from_pylist([{"id": i, "v": "new"} for i in range(5)], schema=arrow_schema))
    pos = folder / "pos-delete-row-50.parquet"
    pos_schema = pa.schema(
        [
            pa.field(
                "file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": str(POS_PATH_ID).encode()}
            ),
            pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": str(POS_ID).encode()}),
        ]
    )
    _write(pos, pa.Table.from_pylist([{"file_path": first_file, "pos": 50}], schema=pos_schema))
    table.refresh()
    _commit_deletes(table, _delete_file(pos, DataFileContent.POSITION_DELETES, 1, None))
    config = {
        "state": f"sqlite:///{tmp_path}/state.db",
        "catalogs": {"foreign": foreign, "managed": managed},
        "mappings": [{"source": "foreign.shop.*", "target": "managed.shop", "strategy": "register"}],
        "migrate": {"backoff_seconds": 0.05},
    }
    path = tmp_path / "icebridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, foreign, managed


def test_delete_files_are_referenced_in_the_source_order(
    with_deletes: tuple[Path, dict[str, str], dict[str, str]],
) -> None:
    from typer.testing import CliRunner

    from icebridge.cli import app

    config, foreign_props, managed_props = with_deletes
    source = estate.open_catalog("foreign", foreign_props).load_table("shop.facts")
    expected = sorted([(i, "old") for i in range(10, 100) if i != 50] + [(i, "new") for i in range(5)])
    assert live(source) == expected  # the source as the independent reader sees it

    result = CliRunner().invoke(app, ["migrate", "-c", str(config)])
    assert result.exit_code == 0, result.output
    destination = estate.open_catalog("managed", managed_props).load_table("shop.facts")
    assert live(destination) == expected

    def files(table: object) -> list[tuple[int, str, DataFileContent]]:
        snapshot = table.current_snapshot()  # type: ignore[attr-defined]
        out = []
        for manifest in snapshot.manifests(table.io):  # type: ignore[attr-defined]
            for entry in manifest.fetch_manifest_entry(table.io):  # type: ignore[attr-defined]
                out.append((entry.sequence_number, entry.data_file.file_path, entry.data_file.content))
        return sorted(out)

    src_files, dst_files = files(source), files(destination)
    assert [(p, c) for _s, p, c in src_files] == [(p, c) for _s, p, c in dst_files]  # the same files, by reference
    # each source sequence number became one destination commit, in the same order
    assert len(destination.metadata.snapshots) == len({s for s, _p, _c in src_files}) == 4
    rank = {s: i for i, s in enumerate(sorted({s for s, _p, _c in src_files}))}
    dst_rank = {s: i for i, s in enumerate(sorted({s for s, _p, _c in dst_files}))}
    assert [rank[s] for s, _p, _c in src_files] == [dst_rank[s] for s, _p, _c in dst_files]
    assert not list(Path(destination.metadata.location.removeprefix("file://")).rglob("*.parquet"))

    checked = CliRunner().invoke(app, ["validate", "-c", str(config), "--level", "4"])
    assert checked.exit_code == 0, checked.output
    store = open_store(f"sqlite:///{config.parent}/state.db")
    try:
        task = store.get_task("foreign.shop.facts")
        assert task is not None
        results = {(v.level, v.comparator): v.passed for v in store.validations(task.id)}
    finally:
        store.close()
    assert results.get((4, "content-digest")) is True and results.get((3, "file-identity")) is True, results
