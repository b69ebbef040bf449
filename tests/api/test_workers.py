"""Background workers: two servers on one PostgreSQL store never run a table twice, and a run accepted
but not finished is taken up again when a server starts."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import wait_for_run
from tests.e2e.test_concurrent_runs import BIG, assert_each_table_copied_once
from tests.integration.test_behaviour import Estate, make_estate


@pytest.fixture
def shared(tmp_path: Path, pg_server: str) -> Estate:
    """Store and catalogs on PostgreSQL, with a table of 40 one-file batches so the two runs overlap."""
    from tests.conftest import fresh_pg_database

    backend = {
        "kind": "postgres",
        "state": fresh_pg_database(pg_server, "ib_state_"),
        "foreign": fresh_pg_database(pg_server, "ib_foreign_"),
        "managed": fresh_pg_database(pg_server, "ib_managed_"),
    }
    return make_estate(tmp_path, backend, big_files=40, files_per_commit=1)


@pytest.mark.postgres
def test_two_servers_on_one_store_copy_each_table_once(shared: Estate, serve: Any) -> None:
    assert shared.cli("plan")[0] == 0  # both servers start from the same saved plan
    first, second = serve(shared.config, log="first.log"), serve(shared.config, log="second.log")
    a, b = first.client(), second.client()
    runs = [a.post("/api/v1/runs", json={"command": "migrate"}), b.post("/api/v1/runs", json={"command": "migrate"})]
    assert [r.status_code for r in runs] == [202, 202], [r.text for r in runs]
    done = [wait_for_run(a, runs[0].json()["id"]), wait_for_run(b, runs[1].json()["id"])]
    assert [d["status"] for d in done] == ["succeeded", "succeeded"], done
    outcomes = [{t["source"]: t for t in d["tables"]} for d in done]
    for source in outcomes[0]:
        pair = [outcomes[0][source], outcomes[1][source]]
        copied = [o for o in pair if o["message"] == "migrated and validated"]
        assert len(copied) <= 1, f"{source} was copied by both runs: {pair}"
        assert all(o["status"] in ("succeeded", "skipped") for o in pair), pair
    skipped = sum(o["status"] == "skipped" for by_source in outcomes for o in by_source.values())
    assert skipped >= 1, "the two runs should have met on at least the big table"
    assert_each_table_copied_once(shared)
    owners = {d["id"]: d for d in done}
    assert len(owners) == 2


def batches(est: Estate) -> int:
    managed = est.managed()
    return len(managed.load_table(BIG).metadata.snapshots) if managed.table_exists(BIG) else 0


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_run_left_by_a_stopped_server_is_taken_up_by_the_next(
    tmp_path: Path, serve: Any, stop: signal.Signals
) -> None:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend, big_files=60, files_per_commit=1)
    first = serve(est.config, log="first.log")
    run = first.client().post("/api/v1/runs", json={"command": "migrate", "tables": f"foreign.{BIG}"}).json()
    deadline = time.monotonic() + 120
    while batches(est) < 3:
        assert time.monotonic() < deadline, "no batch committed within 120 s"
        time.sleep(0.05)
    first.stop(stop)
    left = batches(est)
    assert left < 60, "the server must stop in the middle of the copy"

    second = serve(est.config, log="second.log")
    done = wait_for_run(second.client(), run["id"])
    assert done["status"] == "succeeded", done
    (table,) = done["tables"]
    assert table["status"] == "succeeded" and table["rows"] == 60 * 500
    destination = est.managed().load_table(BIG)
    committed = sorted(int(s.summary.additional_properties["icebridge.batch"]) for s in destination.metadata.snapshots)  # type: ignore[union-attr]
    assert committed == list(range(60)), "every batch exactly once"
    from tests.integration.test_behaviour import rows

    assert rows(destination, est.foreign().load_table(BIG).schema()) == rows(est.foreign().load_table(BIG))
    if stop is signal.SIGTERM:
        assert "back in the queue" in " ".join(
            e["message"] for e in second.client().get("/api/v1/audit", params={"run_id": run["id"]}).json()["entries"]
        )


def worker_pid(est: Estate, run_id: int) -> int:
    """The process the store records as carrying out ``run_id`` (its owner: ``host|pid|start``)."""
    from icebridge.app.status import run_owner
    from icebridge.leases import Owner
    from icebridge.store import open_store

    store = open_store(est.state_url)
    try:
        row = store.get_run(run_id)
        assert row is not None and row.status == "running", row
        owner = Owner.parse(run_owner(row))
    finally:
        store.close()
    assert owner is not None, row.owner
    return owner.pid


def test_a_run_whose_worker_process_is_killed_is_taken_up_again(tmp_path: Path, serve: Any) -> None:
    import os
    import threading

    from tests.api.conftest import sse_events
    from tests.integration.test_behaviour import rows

    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend, big_files=60, files_per_commit=1)
    server = serve(est.config)
    client = server.client()
    run = client.post("/api/v1/runs", json={"command": "migrate", "tables": f"foreign.{BIG}"}).json()
    deadline = time.monotonic() + 120
    while batches(est) < 3:
        assert time.monotonic() < deadline, "no batch committed within 120 s"
        time.sleep(0.05)
    streamed: list[list[tuple[str, dict[str, Any]]]] = []
    watcher = threading.Thread(target=lambda: streamed.append(sse_events(server.client(), run["id"])))
    watcher.start()  # a stream following the run live, before and after its worker dies
    first = worker_pid(est, run["id"])
    assert first != server.proc.pid, "the run must be carried out outside the server's process"
    time.sleep(1.0)  # the stream sees some of the copy live
    os.kill(first, signal.SIGKILL)
    assert batches(est) < 60, "the worker must die in the middle of the copy"

    done = wait_for_run(client, run["id"])
    assert done["status"] == "succeeded", done
    assert server.proc.poll() is None, "the server itself goes on"
    (table,) = done["tables"]
    assert table["status"] == "succeeded" and table["rows"] == 60 * 500
    destination = est.managed().load_table(BIG)
    committed = sorted(int(s.summary.additional_properties["icebridge.batch"]) for s in destination.metadata.snapshots)  # type: ignore[union-attr]
    assert committed == list(range(60)), "every batch exactly once"
    assert rows(destination, est.foreign().load_table(BIG).schema()) == rows(est.foreign().load_table(BIG))
    log = client.get("/api/v1/audit", params={"run_id": run["id"]}).json()["entries"]
    taken = [e for e in log if "taken up again" in e["message"]]
    assert len(taken) == 1 and str(first) in taken[0]["message"], [e["message"] for e in log]

    watcher.join(timeout=120)
    (events,) = streamed
    kinds = [name for name, _ in events]
    assert "progress" in kinds, "the worker's progress reached the live stream"
    assert "run-taken-over" in kinds, "the stream went on from the log once the worker died"
    assert events[-1] == ("end", {"run_id": run["id"], "status": "succeeded"})


def test_every_kind_of_event_crosses_the_pipe_from_a_worker_unchanged() -> None:
    import json

    from icebridge.app.worker import _line, decode_event, encode_event
    from icebridge.events import (
        BatchCommitted,
        CutoverStepDone,
        Note,
        PhaseStarted,
        Progress,
        Retried,
        RunFinished,
        RunStarted,
        SnapshotReplayed,
        TableFinished,
        TableStarted,
        Validated,
    )

    where = {"run_id": 7, "task_id": 3, "table": "foreign.shop.orders"}
    events = [
        RunStarted(run_id=7, command="migrate", args={"tables": "foreign.shop.*", "engine": None}),
        TableStarted(**where, destination="managed.shop.orders", phase="copy", files_total=4, bytes_total=4096),
        PhaseStarted(**where, phase="validate", files_total=8, bytes_total=None),
        Progress(**where, phase="copy", files=1, bytes=1024),
        BatchCommitted(**where, batch=0, files=1, rows=500, bytes=1024, seconds=0.25, dest_snapshot_id=2**62),
        SnapshotReplayed(
            **where,
            source_snapshot_id=11,
            dest_snapshot_id=None,
            operation="append",
            how="files",
            files_added=2,
            files_removed=0,
            bytes=10,
        ),
        CutoverStepDone(**where, step="freeze", action="done", detail="no new snapshot"),
        Retried(**where, what="commit", attempt=2, delay=0.5, error="conflict", error_class="CommitFailedException"),
        Validated(**where, level=2, comparator="metadata", passed=False, summary="1 partition differs"),
        TableFinished(**where, status="succeeded", phase="migrated", rows=500, bytes=1024, seconds=1.5),
        Note(run_id=7, name="run-requeued", text="back in the queue", details={"from": "a", "n": [1, 2]}),
        RunFinished(run_id=7, command="migrate", status="succeeded", summary={"tables": 1, "failed": 0}),
    ]
    for event in events:
        wire = json.loads(_line({"op": "event", "event": encode_event(event)}))
        assert decode_event(wire["event"]) == event, event
    assert decode_event({"type": "NoSuchEvent", "fields": {}}) is None
    assert decode_event({"type": "Progress", "fields": {"at": "not a time", "phase": "copy"}}) is None
