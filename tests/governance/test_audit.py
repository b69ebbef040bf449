"""``icebridge audit``: every step of every table with actor, time, and the table's state before and after."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from icebridge.app.audit import parse_since
from icebridge.errors import UsageError
from icebridge.store import open_store
from tests.api.conftest import serve  # noqa: F401  (the fixture)
from tests.integration.test_behaviour import Estate, make_estate


@pytest.fixture
def small(tmp_path: Path) -> Estate:
    return make_estate(
        tmp_path, {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    )


@pytest.fixture
def est(tmp_path: Path, backend: dict[str, str]) -> Estate:
    """The estate with store and catalogs on SQLite, and on PostgreSQL."""
    return make_estate(tmp_path, backend)


def test_every_step_of_a_migrated_table_has_actor_time_before_and_after(est: Estate) -> None:
    small = est
    started = datetime.now(UTC)
    code, out = small.cli("migrate", "--tables", "foreign.shop.*")
    assert code == 0, out
    code, log = small.cli_json("audit", "--tables", "foreign.shop.events")
    assert code == 0
    entries = log["entries"]
    assert entries and {e["table"] for e in entries} == {"foreign.shop.events"}
    assert {e["actor"] for e in entries} == {f"{getpass.getuser()} on {socket.gethostname()}"}
    for e in entries:
        assert started - timedelta(seconds=5) <= datetime.fromisoformat(e["at"]) <= datetime.now(UTC)
    # each step starts from the state the previous one left, and the last leaves it migrated
    assert entries[0]["before"] is None
    for earlier, later in zip(entries, entries[1:], strict=False):
        assert later["before"] == earlier["after"], (earlier, later)
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "table-started" and kinds[-1] == "table-finished"
    assert {"phase-started", "batch-committed"} <= set(kinds)
    phases = [e["after"]["phase"] for e in entries]
    assert "copy" in phases and "validate" in phases
    last = entries[-1]["after"]
    assert (last["phase"], last["status"]) == ("migrated", "succeeded")
    task = small.tasks()["foreign.shop.events"]
    assert last["source_snapshot_id"] == task.source_snapshot_id  # type: ignore[attr-defined]


def test_the_tables_glob_and_since_select_entries(small: Estate) -> None:
    assert small.cli("migrate", "--tables", "foreign.shop.*")[0] == 0
    _, everything = small.cli_json("audit")
    tables = {e["table"] for e in everything["entries"] if e["table"]}
    assert tables == {"foreign.shop.events", "foreign.shop.customers", "foreign.shop.regions", "foreign.shop.empty"}
    _, some = small.cli_json("audit", "--tables", "shop.c*")
    assert {e["table"] for e in some["entries"]} == {"foreign.shop.customers"}
    middle = everything["entries"][len(everything["entries"]) // 2]["at"]
    _, later = small.cli_json("audit", "--since", middle)
    assert later["entries"] and all(e["at"] >= middle for e in later["entries"])
    assert len(later["entries"]) < len(everything["entries"])
    _, recent = small.cli_json("audit", "--since", "1h")
    assert len(recent["entries"]) == len(everything["entries"])
    _, none = small.cli_json("audit", "--since", "2999-01-01")
    assert none["entries"] == []
    code, text = small.cli("audit", "--tables", "foreign.shop.events")
    assert code == 0 and "table-finished" in text and "foreign.shop.customers" not in text
    assert "status: running → succeeded" in text


def test_pages_follow_one_another(small: Estate) -> None:
    assert small.cli("migrate", "--tables", "foreign.shop.regions")[0] == 0
    _, whole = small.cli_json("audit")
    _, first = small.cli_json("audit", "--limit", "3")
    assert [e["id"] for e in first["entries"]] == [e["id"] for e in whole["entries"][:3]]
    _, second = small.cli_json("audit", "--limit", "3", "--after", str(first["next_after"]))
    assert [e["id"] for e in second["entries"]] == [e["id"] for e in whole["entries"][3:6]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday"), "--since 'yesterday': not a time"),
        (("--tables", "foreign.nowhere.*"), "--tables 'foreign.nowhere.*' matches no table"),
        (("--tables", ""), "an empty pattern matches nothing"),
        (("--run", "999"), "no run 999"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(small: Estate, args: tuple[str, ...], message: str) -> None:
    assert small.cli("migrate", "--tables", "foreign.shop.regions")[0] == 0
    code, out = small.cli("audit", *args)
    assert code == 2, out
    assert message in out and "Traceback" not in out


def test_ages_and_times() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("1d12h", now) == now - timedelta(days=1, hours=12)
    assert parse_since("2026-12-01T10:00:00Z") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_since("2026-12-01T10:00:00+02:00") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(UsageError):
        parse_since("2 parsecs")


def test_a_step_that_read_state_of_its_own_records_it_beside_the_tables(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        run = store.start_run("cutover", "c.yaml", {}, started_by="ada@example.com")
        task = store.plan_task("foreign.s.t", "managed.s.t", "file-copy", "test")
        store.event("phase-started", "foreign.s.t: cutover", run_id=run.id, task_id=task.id, data={"phase": "cutover"})
        grants = {"grants": [{"principal": "analysts", "privileges": ["SELECT"]}]}
        store.event(
            "governance-swap",
            "1 grant carried",
            run_id=run.id,
            task_id=task.id,
            data={"adapter": "unity", "action": "swap", "before": grants, "after": {"grants": []}},
        )
        nested = {"governance": {"adapter": "unity", "action": "unswap", "before": {"grants": []}, "after": grants}}
        store.event("cutover-step", "swap undone", run_id=run.id, task_id=task.id, data=nested)
        store.event("run-finished", "cutover succeeded", run_id=run.id)
        first, swap, unswap, end = store.events(run_id=run.id)
    finally:
        store.close()
    assert (first.actor, first.before, first.after) == (
        "ada@example.com",
        None,
        {"phase": "planned", "status": "pending"},
    )
    assert swap.actor == "ada@example.com"
    assert swap.before == {"phase": "planned", "status": "pending", **grants}
    assert swap.after == {"phase": "planned", "status": "pending", "grants": []}
    assert unswap.before == {"phase": "planned", "status": "pending", "grants": []}
    assert unswap.after == {"phase": "planned", "status": "pending", **grants}
    assert (end.task_id, end.before, end.after, end.actor) == (None, None, None, "ada@example.com")


def test_the_api_takes_the_same_filters(small: Estate, serve: Any) -> None:  # noqa: F811
    assert small.cli("migrate", "--tables", "foreign.shop.*")[0] == 0
    _, cli = small.cli_json("audit", "--tables", "shop.c*", "--since", "1h")
    client = serve(small.config).client()
    answer = client.get("/api/v1/audit", params={"tables": "shop.c*", "since": "1h"})
    assert answer.status_code == 200, answer.text
    assert [e["id"] for e in answer.json()["entries"]] == [e["id"] for e in cli["entries"]]
    bad = client.get("/api/v1/audit", params={"since": "soon"})
    assert (bad.status_code, bad.json()["error"]) == (400, "UsageError")
    none = client.get("/api/v1/audit", params={"tables": "nowhere.*"})
    assert (none.status_code, none.json()["error"]) == (404, "NotFoundError")
