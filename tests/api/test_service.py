"""The REST API over real stores and catalogs (SQLite and PostgreSQL), through a real HTTP server."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from icebridge.store import open_store
from tests.api.conftest import TOKEN, free_port, sse_events, wait_for_run
from tests.integration.test_behaviour import SOURCES, Estate, assert_same_table, make_estate

USER = {"X-Forwarded-Email": "ada@example.com", "X-Forwarded-User": "ada"}


def run_count(est: Estate) -> int:
    """Runs that would change something (an inventory only reads the sources, as the CLI's does first)."""
    store = open_store(est.state_url)
    try:
        return sum(r.kind != "inventory" for r in store.list_runs(limit=10_000))
    finally:
        store.close()


def test_every_call_and_page_needs_the_bearer_token(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    for path in ("/api/v1/runs", "/api/v1/catalogs", "/docs", "/openapi.json", "/metrics", "/nowhere"):
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}):
            answer = httpx.get(server.url + path, headers=headers)
            assert answer.status_code == 401, (path, headers, answer.text)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert answer.json()["error"] == "Unauthorized"
    before = run_count(est)
    refused = httpx.post(server.url + "/api/v1/runs", json={"command": "migrate", "bogus": 1})
    assert refused.status_code == 401  # not 422: nothing about the request is looked at
    assert run_count(est) == before
    client = server.client()
    assert client.get("/docs").status_code == 200
    assert "/api/v1/runs" in client.get("/openapi.json").json()["paths"]


def test_migrate_through_the_api_in_the_background(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    client = server.client(USER)
    accepted = client.post("/api/v1/runs", json={"command": "migrate"})
    assert accepted.status_code == 202, accepted.text
    run = accepted.json()
    assert run["status"] == "queued" and run["started_by"] == "ada@example.com"
    events = sse_events(client, run["id"])  # follows the run live from its start to its end
    assert events[-1] == ("end", {"run_id": run["id"], "status": "succeeded"})
    kinds = [name for name, _ in events]
    assert kinds[0] == "run-started" and "run-finished" in kinds
    finished = {data["table"] for name, data in events if name == "table-finished"}
    assert finished == {f"foreign.{s}" for s in SOURCES}
    # (progress increments come only while the stream follows the run live; a run that ended before
    # the stream began is replayed from the store's log, which keeps none)

    done = wait_for_run(client, run["id"])
    assert done["status"] == "succeeded" and done["started_by"] == "ada@example.com"
    tables = {t["source"]: t for t in done["tables"]}
    assert set(tables) == {f"foreign.{s}" for s in SOURCES}
    assert all(t["status"] == "succeeded" and t["phase"] == "migrated" for t in tables.values())
    assert tables["foreign.shop.events"]["rows"] == 480 and tables["foreign.shop.events"]["bytes"] > 0
    foreign, managed = est.foreign(), est.managed()
    for name in SOURCES:
        identifier = tuple(name.split(".", 1))
        assert_same_table(foreign.load_table(identifier), managed.load_table(identifier))

    # the stored stream of a finished run is the same story, from the store's event log
    replay = sse_events(client, run["id"])
    assert replay[-1] == ("end", {"run_id": run["id"], "status": "succeeded"})
    # the same events; two tables' events may be logged in another order than they reached the bus
    assert Counter(n for n, _ in replay if n != "progress") == Counter(n for n, _ in events if n != "progress")

    tasks = client.get("/api/v1/tasks").json()
    assert {t["source"]: (t["phase"], t["status"]) for t in tasks} == {
        f"foreign.{s}": ("migrated", "succeeded") for s in SOURCES
    }
    one = client.get(f"/api/v1/tasks/{tasks[0]['id']}").json()
    assert one == tasks[0]
    report = client.get(f"/api/v1/reports/{run['id']}").json()
    assert report["html"] is True
    assert {t["source"]: t["verdict"] for t in report["tables"]} == {f"foreign.{s}": "passed" for s in SOURCES}
    html = client.get(f"/api/v1/reports/{run['id']}/html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "IceBridge validation report" in html.text and "foreign.shop.events" in html.text

    audit = client.get("/api/v1/audit", params={"table": "foreign.shop.events"}).json()["entries"]
    assert {e["actor"] for e in audit} == {"ada@example.com"}
    moves = [(e["before"], e["after"]) for e in audit if e["after"] is not None]
    assert moves[0][0] is None and moves[0][1]["phase"] == "scaffold"
    assert all(later[0] == earlier[1] for earlier, later in zip(moves, moves[1:], strict=False))
    assert (moves[-1][1]["phase"], moves[-1][1]["status"]) == ("migrated", "succeeded")
    listed = client.get("/api/v1/runs").json()
    assert listed[0]["id"] == run["id"] and listed[0]["status"] == "succeeded"


def test_bad_input_is_refused_and_nothing_starts(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    client = server.client()
    before = run_count(est)
    cases = [
        ({"command": "migrate", "tables": "foreign.shop.*", "bogus": True}, 422, "RequestValidationError"),
        ({"command": "explode"}, 422, "RequestValidationError"),
        ({"tables": "*"}, 422, "RequestValidationError"),
        ({"command": "migrate", "tables": "foreign.nowhere.*"}, 422, "PlanError"),
        ({"command": "migrate", "engine": "steam"}, 422, "PlanError"),
        ({"command": "validate", "tables": ""}, 400, "UsageError"),
    ]
    for body, status, error in cases:
        answer = client.post("/api/v1/runs", json=body)
        assert (answer.status_code, answer.json()["error"]) == (status, error), (body, answer.text)
        assert answer.json()["message"]
    assert (
        client.post("/api/v1/runs", content=b"{not json", headers={"content-type": "application/json"}).status_code
        == 422
    )
    assert run_count(est) == before
    allowed = client.get("/openapi.json").json()["components"]["schemas"]["RunRequest"]["properties"]["command"]
    assert set(allowed["enum"]) == {"migrate", "sync", "validate", "cutover", "rollback"}  # what RunRequest allows
    for path in ("/api/v1/runs/999999", "/api/v1/tasks/999999", "/api/v1/reports/999999", "/api/v1/runs/999999/events"):
        answer = client.get(path)
        assert (answer.status_code, answer.json()["error"]) == (404, "NotFoundError"), path
    assert client.get("/api/v1/runs/0").status_code == 422
    assert client.get("/api/v1/audit", params={"table": "foreign.shop.none"}).status_code == 404
    assert client.get("/api/v1/audit", params={"bogus": 1}).status_code == 422
    big = client.post("/api/v1/runs", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"})
    assert (big.status_code, big.json()["error"]) == (413, "RequestTooLarge")
    assert run_count(est) == before


def test_catalogs_inventory_preflight_and_plans(est: Estate, serve: Any) -> None:
    server = serve(est.config)
    client = server.client()
    catalogs = {c["name"]: c for c in client.get("/api/v1/catalogs").json()["catalogs"]}
    assert catalogs["foreign"]["roles"] == ["source"] and catalogs["managed"]["roles"] == ["destination"]
    check = client.post("/api/v1/catalogs/managed/test").json()
    assert check["reachable"] is True and check["error"] is None
    missing = client.post("/api/v1/catalogs/elsewhere/test")
    assert missing.status_code == 404 and "managed" in missing.json()["message"]
    inventory = client.post("/api/v1/inventory", json={"refresh": True}).json()
    assert {t["table"] for t in inventory["tables"]} == {f"foreign.{s}" for s in SOURCES}
    assert client.get("/api/v1/inventory").json()["tables"] == inventory["tables"]
    plan = client.post("/api/v1/plans", json={"tables": "foreign.shop.*"}).json()
    assert {t["source"] for t in plan["tables"]} == {f"foreign.{s}" for s in SOURCES if s.startswith("shop.")}
    assert plan["blocked"] == 0
    preflight = client.post("/api/v1/preflight", json={"tables": "foreign.shop.events"}).json()
    assert preflight["checked"] == 1 and preflight["blockers"] == 0
    scripts = client.post("/api/v1/plans/scripts", json={"tables": "foreign.shop.events"}).json()["scripts"]
    assert list(scripts) == ["foreign.shop.events"]


def test_cors_is_closed_unless_an_origin_is_allowed(tmp_path: Path, serve: Any) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    preflight = {"Origin": "https://ui.example.com", "Access-Control-Request-Method": "GET"}
    closed = serve(est.config, log="closed.log")
    answer = httpx.options(closed.url + "/api/v1/runs", headers=preflight)
    assert "access-control-allow-origin" not in answer.headers
    config = yaml.safe_load(est.config.read_text())
    config["service"] = {"cors_origins": ["https://ui.example.com"]}
    est.config.write_text(yaml.safe_dump(config))
    opened = serve(est.config, log="open.log")
    answer = httpx.options(opened.url + "/api/v1/runs", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == "https://ui.example.com"
    other = httpx.options(opened.url + "/api/v1/runs", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def _serve_cli(config: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if k != "ICEBRIDGE_API_TOKEN"}
    if token:
        env["ICEBRIDGE_API_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "icebridge", "serve", "-c", str(config), "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_auth_can_be_off_only_on_loopback_and_a_token_is_needed(tmp_path: Path) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    refused = _serve_cli(est.config, "--host", "0.0.0.0", "--no-auth")
    assert refused.returncode == 2 and "--no-auth is refused on 0.0.0.0" in refused.stderr
    no_token = _serve_cli(est.config)
    assert no_token.returncode == 2 and "no API token" in no_token.stderr
    short = _serve_cli(est.config, token="short")
    assert short.returncode == 2 and "too short" in short.stderr
    config = yaml.safe_load(est.config.read_text())
    config["service"] = {"tokn": "x"}
    est.config.write_text(yaml.safe_dump(config))
    typo = _serve_cli(est.config, token=TOKEN)
    assert typo.returncode == 2 and "service.tokn: unknown key" in typo.stderr


def test_no_auth_on_loopback_serves_without_a_token(tmp_path: Path, serve: Any) -> None:
    est = make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )
    server = serve(est.config, "--no-auth")
    assert httpx.get(server.url + "/api/v1/catalogs").status_code == 200


@pytest.fixture
def busy(tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    return make_estate(tmp_path, backend, big_files=60, files_per_commit=1)


def committed_batches(est: Estate) -> list[int]:
    managed = est.managed()
    if not managed.table_exists("shop.many_files"):
        return []
    return [
        int(s.summary.additional_properties["icebridge.batch"])  # type: ignore[union-attr]
        for s in managed.load_table("shop.many_files").metadata.snapshots
    ]


def test_cancel_stops_between_commits_and_the_next_run_resumes(busy: Estate, serve: Any) -> None:
    import time

    server = serve(busy.config)
    client = server.client()
    run = client.post("/api/v1/runs", json={"command": "migrate", "tables": "foreign.shop.many_files"}).json()
    deadline = time.monotonic() + 120
    while len(committed_batches(busy)) < 3:
        assert time.monotonic() < deadline, "no batch committed within 120 s"
        time.sleep(0.05)
    cancelled = client.post(f"/api/v1/runs/{run['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["cancel_requested"] is True
    done = wait_for_run(client, run["id"])
    assert done["status"] == "interrupted"
    (table,) = done["tables"]
    assert table["status"] == "failed" and "interrupted" in table["message"]
    done_before = committed_batches(busy)
    assert 3 <= len(done_before) < 60
    again = client.post(f"/api/v1/runs/{run['id']}/cancel")
    assert (again.status_code, again.json()["error"]) == (409, "RunFinishedError")

    rerun = client.post("/api/v1/runs", json={"command": "migrate", "tables": "foreign.shop.many_files"}).json()
    assert wait_for_run(client, rerun["id"])["status"] == "succeeded"
    assert sorted(committed_batches(busy)) == list(range(60))
    source, destination = busy.foreign().load_table("shop.many_files"), busy.managed().load_table("shop.many_files")
    from tests.integration.test_behaviour import rows

    assert rows(destination, source.schema()) == rows(source)
