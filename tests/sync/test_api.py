"""sync over REST: ``POST /api/v1/runs`` with ``command: sync`` replays what the source committed since."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import serve, sse_events, wait_for_run  # noqa: F401
from tests.integration import estate
from tests.sync.conftest import SOURCE, Live, rows


def test_sync_through_the_api_replays_and_names_each_commit(live: Live, serve: Any) -> None:  # noqa: F811
    assert live.cli("migrate")[0] == 0
    live.source().append(estate.events_arrow(8000, 6))
    wanted = live.source().current_snapshot().snapshot_id  # type: ignore[union-attr]
    client = serve(live.config).client()

    accepted = client.post("/api/v1/runs", json={"command": "sync", "tables": SOURCE})
    assert accepted.status_code == 202, accepted.text
    events = sse_events(client, accepted.json()["id"])
    assert events[-1][1]["status"] == "succeeded", events
    [replayed] = [data for name, data in events if name == "snapshot-replayed"]
    assert replayed["data"]["source_snapshot_id"] == wanted and replayed["data"]["how"] == "files", replayed
    done = wait_for_run(client, accepted.json()["id"])
    assert done["kind"] == "sync" and done["tables"][0]["status"] == "succeeded"
    assert rows(live.destination()) == rows(live.source())

    refused = client.post("/api/v1/runs", json={"command": "sync", "watch": -1})
    assert refused.status_code == 422, refused.text
