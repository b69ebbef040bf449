"""A registered table kept in step: sync replays the source's commits by reference, ``history: all`` gives the
destination one snapshot per source snapshot over the same files, and cut-over syncs it last — no byte copied."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.table import Table

from tests.integration import estate
from tests.sync.conftest import make_live, rows, write_commits


def live_paths(table: Table, snapshot_id: int | None = None) -> set[str]:
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else table.current_snapshot()
    if snapshot is None:
        return set()
    return {
        entry.data_file.file_path
        for manifest in snapshot.manifests(table.io)
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
    }


def no_data_written(destination: Table) -> bool:
    return not list(Path(destination.metadata.location.removeprefix("file://")).rglob("*.parquet"))


def test_sync_replays_a_registered_table_by_reference(tmp_path: Path) -> None:
    live = make_live(tmp_path, strategy="register")
    code, report = live.cli_json("migrate")
    assert code == 0, report
    before = len(live.source().metadata.snapshots)
    write_commits(live.source())  # an append, a partition overwrite, a copy-on-write delete
    commits = len(live.source().metadata.snapshots) - before
    code, synced = live.cli_json("sync")
    assert code == 0, synced
    [table] = synced["tables"]
    assert table["status"] == "succeeded", table
    assert f"{commits} commit(s) replayed ({commits} as reference)" in table["message"], table
    source, destination = live.source(), live.destination()
    assert rows(destination) == rows(source)
    assert live_paths(destination) == live_paths(source)  # the source's own files, nothing else
    assert no_data_written(destination)
    code, again = live.cli_json("sync")
    assert code == 0 and "already done" in again["tables"][0]["message"], again


def test_history_all_registers_every_snapshot_over_the_same_files(tmp_path: Path) -> None:
    live = make_live(tmp_path, strategy="register", history="all")
    write_commits(live.source())
    source = live.source()
    lineage = [s.snapshot_id for s in source.metadata.snapshots]
    code, report = live.cli_json("migrate")
    assert code == 0, report
    destination = live.destination()
    replayed = {
        int(s.summary.additional_properties["icebridge.source-snapshot-id"]): s.snapshot_id  # type: ignore[union-attr]
        for s in destination.metadata.snapshots
    }
    assert list(replayed) == lineage  # one destination snapshot per source snapshot, in order
    for source_id, dest_id in replayed.items():  # time travel reads the same rows, from the same files
        assert rows(destination, dest_id) == rows(source, source_id), source_id
        assert live_paths(destination, dest_id) == live_paths(source, source_id)
    assert no_data_written(destination)
    code, checked = live.cli_json("validate")
    assert code == 0, checked


def test_cutover_of_a_registered_table_whose_source_moved_on_syncs_it_last(tmp_path: Path) -> None:
    live = make_live(tmp_path, strategy="register")
    assert live.cli("migrate")[0] == 0
    live.source().append(estate.events_arrow(400, 25))
    expected = rows(live.source())
    code, cut = live.cli_json("cutover")
    assert code == 0, cut
    destination = live.destination()
    assert rows(destination) == expected and no_data_written(destination)
    assert live.foreign().list_tables("shop") == []  # archived, its files kept: the destination reads them
    code, back = live.cli_json("rollback")
    assert code == 0, back
    assert rows(live.source()) == expected
