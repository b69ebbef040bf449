"""history: all — every live source snapshot replayed, each destination snapshot naming its source's."""

from __future__ import annotations

from pathlib import Path

from tests.integration import estate
from tests.sync.conftest import make_live, rows, write_commits


def test_history_all_replays_every_snapshot_with_the_same_rows(tmp_path: Path) -> None:
    live = make_live(tmp_path, history="all")
    source = live.source()
    source.append(estate.events_arrow(300, 40))
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
    for source_id, dest_id in replayed.items():
        assert rows(destination, dest_id) == rows(source, source_id), source_id

    store = live.store()
    try:
        mapped = {r.source_snapshot_id: r.dest_snapshot_id for r in store.snapshot_map(live.task().id)}
    finally:
        store.close()
    assert mapped == replayed


def test_history_all_starts_at_the_oldest_live_snapshot(tmp_path: Path) -> None:
    live = make_live(tmp_path, history="all")
    live.source().append(estate.events_arrow(300, 40))
    live.source().append(estate.events_arrow(400, 40))
    source = live.source()
    oldest = source.metadata.snapshots[0].snapshot_id
    source.maintenance.expire_snapshots().by_id(oldest).commit()
    source = live.source()
    assert live.cli("migrate")[0] == 0
    destination = live.destination()
    assert len(destination.metadata.snapshots) == 2
    for snapshot, mine in zip(source.metadata.snapshots, destination.metadata.snapshots, strict=True):
        assert rows(destination, mine.snapshot_id) == rows(source, snapshot.snapshot_id)
