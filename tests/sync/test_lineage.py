"""Lineage breaks: a rolled-back source, snapshots expired past the last synced one, a re-created or
dropped source. Each is a clear error with the snapshot ids and changes nothing; --allow-reload copies again."""

from __future__ import annotations

from typing import Any

from pyiceberg.catalog import Catalog

from tests.integration import estate
from tests.sync.conftest import Live, rows


def _state(live: Live) -> tuple[list[int], Any]:
    return [s.snapshot_id for s in live.destination().metadata.snapshots], live.task().source_snapshot_id


def _synced(live: Live) -> int:
    assert live.cli("migrate")[0] == 0
    live.source().append(estate.events_arrow(1000, 20))
    assert live.cli("sync")[0] == 0
    return live.source().current_snapshot().snapshot_id  # type: ignore[union-attr]


def test_a_rolled_back_source_is_refused_with_its_snapshot_ids_then_reloaded(live: Live) -> None:
    synced = _synced(live)
    source = live.source()
    parent = source.current_snapshot().parent_snapshot_id  # type: ignore[union-attr]
    with source.manage_snapshots() as manage:
        manage.rollback_to_snapshot(parent)  # type: ignore[arg-type]
    live.source().append(estate.events_arrow(3000, 4))
    current = live.source().current_snapshot().snapshot_id  # type: ignore[union-attr]
    before = _state(live)

    code, report = live.cli_json("sync")
    assert code == 1, report
    message = report["tables"][0]["message"]
    assert "rolled back" in message and str(synced) in message and str(current) in message
    assert "--allow-reload" in message
    assert _state(live) == before  # nothing changed

    code, report = live.cli_json("sync", "--allow-reload")
    assert code == 0, report
    assert "reloaded in full" in report["tables"][0]["message"]
    assert rows(live.destination()) == rows(live.source())
    assert live.task().source_snapshot_id == current


def test_snapshots_expired_past_the_last_synced_one_are_refused(live: Live) -> None:
    synced = _synced(live)
    source = live.source()
    source.append(estate.events_arrow(4000, 5))
    live.source().append(estate.events_arrow(5000, 5))
    source = live.source()
    source.maintenance.expire_snapshots().by_id(synced).commit()
    before = _state(live)

    code, report = live.cli_json("sync")
    assert code == 1, report
    message = report["tables"][0]["message"]
    assert f"last synced snapshot {synced} is no longer in the source" in message
    assert _state(live) == before

    assert live.cli("sync", "--allow-reload")[0] == 0
    assert rows(live.destination()) == rows(live.source())


def _recreate(catalog: Catalog) -> None:
    catalog.drop_table("shop.events")
    table = catalog.create_table("shop.events", estate.EVENTS_SCHEMA)
    table.append(estate.events_arrow(0, 30))


def test_a_source_dropped_and_recreated_is_refused(live: Live) -> None:
    _synced(live)
    _recreate(live.foreign())
    before = _state(live)
    code, report = live.cli_json("sync")
    assert code == 1, report
    message = report["tables"][0]["message"]
    assert "dropped and re-created" in message and str(live.source().metadata.table_uuid) in message
    assert _state(live) == before


def test_a_dropped_source_is_a_clear_error_and_changes_nothing(live: Live) -> None:
    _synced(live)
    live.foreign().drop_table("shop.events")
    before = _state(live)
    code, report = live.cli_json("sync")
    assert code == 1, report
    message = report["tables"][0]["message"]
    assert "foreign.shop.events" in message and "Traceback" not in message
    assert _state(live) == before
