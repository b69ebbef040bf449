"""A real process that dies right after a commit reached the catalog, and a rerun that finishes exactly once.

The ``faulty`` engine, selected with ``--engine faulty`` and configured under ``engines.faulty``,
ends the process (it sends itself SIGKILL) right after its N-th commit, before the
state store hears of it: the rerun must settle that batch from the destination's history, not copy
it again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from icebridge.engines.faulty import CRASH_EXIT_CODE
from icebridge.store import open_store
from tests.e2e.test_interrupt import committed_batches, unreferenced_files
from tests.integration import estate
from tests.integration.test_behaviour import Estate, make_estate, rows

TABLE = "foreign.shop.many_files"


def icebridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "icebridge", *args]


@pytest.fixture(params=["file-copy", "rewrite"])
def est(request: pytest.FixtureRequest, tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend, big_files=8, files_per_commit=2)
    config = yaml.safe_load(est.config.read_text())
    config["engines"] = {"faulty": {"crash_after_commits": 2, "strategy": request.param}}
    est.config.write_text(yaml.safe_dump(config, sort_keys=False))
    return est


def test_a_crash_after_a_commit_is_resumed_exactly_once(est: Estate) -> None:
    crashed = subprocess.run(
        icebridge("migrate", "-c", str(est.config), "--tables", TABLE, "--engine", "faulty"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stdout + crashed.stderr
    assert sorted(committed_batches(est)) == [0, 1], "the process died right after its second commit"
    store = open_store(est.state_url)
    try:
        [task] = [t for t in store.list_tasks() if t.source == TABLE]
        assert task.status == "running"  # nobody was left to say otherwise
        assert [c.batch for c in store.checkpoints(task.id)] == [0], "the second commit never reached the store"
        [crash] = [e for e in store.events(task_id=task.id) if e.kind == "fault"]
        assert (crash.data or {})["fault"] == "crash" and (crash.data or {})["batch"] == "1"
    finally:
        store.close()

    rerun = subprocess.run(
        icebridge("migrate", "-c", str(est.config), "--tables", TABLE),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    assert sorted(committed_batches(est)) == [0, 1, 2, 3], "every batch exactly once"
    store = open_store(est.state_url)
    try:
        [task] = [t for t in store.list_tasks() if t.source == TABLE]
        assert task.status == "succeeded" and task.rows == 8 * 500
        assert sorted(c.batch for c in store.checkpoints(task.id)) == [0, 1, 2, 3]
        settled = [e.message for e in store.events(task_id=task.id) if e.kind == "settled"]
        assert settled == ["batch 1 found committed in the destination"]
    finally:
        store.close()
    source = estate.open_catalog("foreign", est.foreign_props).load_table("shop.many_files")
    destination = est.managed().load_table("shop.many_files")
    assert rows(destination, source.schema()) == rows(source)
    assert unreferenced_files(destination) == [], "no orphan file left behind"
