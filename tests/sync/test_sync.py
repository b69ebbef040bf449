"""Sync by snapshot replay: each source commit one destination commit, carried file for file."""

from __future__ import annotations

from tests.sync.conftest import SOURCE, Live, rows, write_commits


def _summaries(live: Live) -> list[dict[str, str]]:
    return [s.summary.additional_properties for s in live.destination().metadata.snapshots]  # type: ignore[union-attr]


def test_sync_replays_each_source_commit_as_one_destination_commit(live: Live) -> None:
    code, report = live.cli_json("migrate")
    assert code == 0, report
    store = live.store()
    try:  # migrate validated what it copied (the sync step after the copy found nothing to replay)
        assert {v.level for v in store.validations(live.task().id)} == {1, 2, 3}
    finally:
        store.close()
    copied = live.task().source_snapshot_id
    write_commits(live.source())
    source = live.source()
    after = [s.snapshot_id for s in source.metadata.snapshots][
        [s.snapshot_id for s in source.metadata.snapshots].index(copied) + 1 :
    ]

    code, report = live.cli_json("sync")
    assert code == 0, report
    [table] = report["tables"]
    assert table["status"] == "succeeded"
    assert f"{len(after)} commit(s) replayed ({len(after)} as files)" in table["message"], table
    assert "levels 1, 2, 3 passed" in table["message"]

    assert rows(live.destination()) == rows(source)
    replays = [p for p in _summaries(live) if "icebridge.replay" in p]
    assert [int(p["icebridge.source-snapshot-id"]) for p in replays] == after
    assert all(p["icebridge.task"] == SOURCE and p["icebridge.replay"] == "files" for p in replays)
    n = len(after)
    ops = [s.summary.operation.value for s in live.destination().metadata.snapshots[-n:]]  # type: ignore[union-attr]
    assert ops == [s.summary.operation.value for s in source.metadata.snapshots[-n:]]  # type: ignore[union-attr]
    assert {"append", "overwrite", "delete"} <= set(ops)

    store = live.store()
    try:
        mapped = {r.source_snapshot_id: r for r in store.snapshot_map(live.task().id)}
    finally:
        store.close()
    assert set(after) <= set(mapped)
    assert {mapped[s].how for s in after} == {"files"}
    assert live.task().source_snapshot_id == source.current_snapshot().snapshot_id  # type: ignore[union-attr]

    # in step now: a second sync commits nothing and says so
    count = len(live.destination().metadata.snapshots)
    code, again = live.cli_json("sync")
    assert code == 0, again
    assert again["tables"][0]["message"] == "already done"
    assert len(live.destination().metadata.snapshots) == count


def test_migrate_syncs_a_table_whose_source_moved_on_and_cutover_follows(live: Live) -> None:
    assert live.cli("migrate")[0] == 0
    live.source().append(live_rows := __import__("tests.integration.estate", fromlist=["x"]).events_arrow(900, 7))
    assert live_rows.num_rows == 7
    code, report = live.cli_json("migrate")
    assert code == 0, report
    assert "1 commit(s) replayed" in report["tables"][0]["message"]
    assert rows(live.destination()) == rows(live.source())
    code, cut = live.cli_json("cutover")
    assert code == 0, cut


def test_rewrite_strategy_rewrites_the_partitions_a_commit_touched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.sync.conftest import make_live

    live = make_live(tmp_path, strategy="rewrite")
    assert live.cli("migrate")[0] == 0
    write_commits(live.source())
    code, report = live.cli_json("sync")
    assert code == 0, report
    assert "as rewrite)" in report["tables"][0]["message"], report
    assert rows(live.destination()) == rows(live.source())


def test_cutover_on_a_moved_source_syncs_records_every_step_and_rollback_restores(live: Live) -> None:
    assert live.cli("migrate")[0] == 0
    write_commits(live.source())
    before = live.source()
    code, cut = live.cli_json("cutover")
    assert code == 0, cut
    assert "commit(s) replayed" in cut["tables"][0]["message"], cut
    assert not live.foreign().table_exists("shop.events")
    assert rows(live.destination()) == rows(before)
    store = live.store()
    try:
        steps = store.cutover_steps(live.task().id)
    finally:
        store.close()
    assert [(s.step, s.status) for s in steps] == [
        ("freeze", "done"),
        ("quiet", "done"),
        ("sync", "done"),
        ("validate", "done"),
        ("swap", "done"),
        ("archive", "done"),
    ]
    assert steps[0].details["governance"]["adapter"] == "none"

    code, back = live.cli_json("rollback")
    assert code == 0, back
    restored = live.source()
    assert restored.metadata_location == before.metadata_location
    assert rows(restored) == rows(before)
    assert live.task().phase == "rolled-back"
    store = live.store()
    try:
        assert store.cutover_steps(live.task().id) == []
    finally:
        store.close()


def test_rollback_refuses_over_destination_writes_and_names_them(live: Live) -> None:
    from tests.integration import estate

    assert live.cli("migrate")[0] == 0
    assert live.cli("cutover")[0] == 0
    destination = live.destination()
    ours = destination.current_snapshot().snapshot_id  # type: ignore[union-attr]
    destination.append(estate.events_arrow(7000, 3))
    written = live.destination().current_snapshot().snapshot_id  # type: ignore[union-attr]

    code, back = live.cli_json("rollback")
    assert code == 1, back
    message = back["tables"][0]["message"]
    assert str(written) in message and "--discard-destination-writes" in message
    assert not live.foreign().table_exists("shop.events")  # nothing changed
    assert live.destination().current_snapshot().snapshot_id == written  # type: ignore[union-attr]

    code, back = live.cli_json("rollback", "--discard-destination-writes")
    assert code == 0, back
    assert live.foreign().table_exists("shop.events")
    assert live.destination().current_snapshot().snapshot_id == ours  # type: ignore[union-attr]


def test_status_shows_what_sync_replayed(live: Live) -> None:
    assert live.cli("migrate")[0] == 0
    write_commits(live.source())
    assert live.cli("sync")[0] == 0
    code, status = live.cli_json("status")
    assert code == 0
    [table] = status["tables"]
    source = live.source()
    assert table["source_snapshot_id"] == source.current_snapshot().snapshot_id  # type: ignore[union-attr]
    assert table["synced_commits"] >= 3 and table["last_synced_at"] is not None


def test_watch_keeps_syncing_until_cancelled(live: Live) -> None:
    import threading
    import time

    from icebridge.app.runs import RunRequest, RunService
    from icebridge.config import load_config
    from icebridge.context import AppContext
    from tests.integration import estate

    assert live.cli("migrate")[0] == 0
    scopes: list = []  # type: ignore[type-arg]
    app = AppContext(load_config(live.config))
    results: list = []  # type: ignore[type-arg]
    watcher = threading.Thread(
        target=lambda: results.append(
            RunService(app).run(RunRequest(command="sync", watch=0.2), on_start=scopes.append)
        )
    )
    watcher.start()
    try:
        for start in (3000, 3100):  # two commits, each carried by a later round of the same run
            live.source().append(estate.events_arrow(start, 5))
            wanted = live.source().current_snapshot().snapshot_id  # type: ignore[union-attr]
            deadline = time.monotonic() + 60
            while live.task().source_snapshot_id != wanted:
                assert time.monotonic() < deadline, "the watching sync never carried the commit"
                time.sleep(0.1)
    finally:
        while not scopes:
            time.sleep(0.05)
        scopes[0].cancel.set()
        watcher.join(60)
    [result] = results
    assert result.status == "interrupted" and result.run_id == scopes[0].run_id
    assert rows(live.destination()) == rows(live.source())
    app.close()


def test_a_snapshot_arriving_in_the_quiet_period_stops_the_cutover(live: Live) -> None:
    import threading
    import time

    import yaml

    from tests.integration import estate

    assert live.cli("migrate")[0] == 0
    config = yaml.safe_load(live.config.read_text())
    config["cutover"] = {"quiet_seconds": 1.5}
    config["migrate"]["max_attempts"] = 1
    live.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def write_soon() -> None:
        time.sleep(0.5)
        live.source().append(estate.events_arrow(9000, 3))

    writer = threading.Thread(target=write_soon)
    writer.start()
    code, cut = live.cli_json("cutover")
    writer.join()
    assert code == 1, cut
    message = cut["tables"][0]["message"]
    assert "arrived during the 1.5 s quiet period" in message and "writers are still active" in message
    assert live.foreign().table_exists("shop.events")  # not archived
    store = live.store()
    try:
        steps = {s.step: s.status for s in store.cutover_steps(live.task().id)}
    finally:
        store.close()
    assert steps == {"freeze": "done", "quiet": "started"}

    expected = rows(live.source())
    code, cut = live.cli_json("cutover")  # writers stopped: the next cut-over resumes at the quiet period
    assert code == 0, cut
    assert "1 commit(s) replayed" in cut["tables"][0]["message"]
    assert rows(live.destination()) == expected


def test_sync_and_cutover_records_on_both_store_backends(tmp_path, state_url: str) -> None:  # type: ignore[no-untyped-def]
    from tests.sync.conftest import make_live

    live = make_live(tmp_path, state_url=state_url)
    assert live.cli("migrate")[0] == 0
    write_commits(live.source())
    assert live.cli("sync")[0] == 0
    code, status = live.cli_json("status")
    assert code == 0 and status["tables"][0]["synced_commits"] >= 3
    assert live.cli("cutover")[0] == 0
    store = live.store()
    try:
        task = live.task()
        assert [s.step for s in store.cutover_steps(task.id)] == [
            "freeze",
            "quiet",
            "sync",
            "validate",
            "swap",
            "archive",
        ]
        assert {r.how for r in store.snapshot_map(task.id)} == {"copy", "files"}
    finally:
        store.close()
