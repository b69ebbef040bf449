"""A process killed during sync and at every cut-over step: the rerun converges, no row missing or doubled.

The ``faulty`` engine ends the process with ``os._exit`` (as abruptly as ``kill -9``): during sync
right after its N-th replay commit reached the catalog and before the store heard of it, and during
cut-over once a step's work is done and before the store records it done.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from icebridge.engines.faulty import CRASH_EXIT_CODE
from tests.integration import estate
from tests.sync.conftest import SOURCE, Live, make_live, rows


def icebridge(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "icebridge", *args, "-c", str(live.config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _faulty(live: Live, **settings: object) -> None:
    config = yaml.safe_load(live.config.read_text())
    config["engines"] = {"faulty": settings}
    live.config.write_text(yaml.safe_dump(config, sort_keys=False))


def _replayed(live: Live) -> Counter[int]:
    return Counter(
        int(s.summary.additional_properties["icebridge.source-snapshot-id"])  # type: ignore[union-attr]
        for s in live.destination().metadata.snapshots
        if "icebridge.replay" in s.summary.additional_properties  # type: ignore[union-attr]
    )


def test_a_sync_killed_after_a_commit_resumes_without_replaying_it_twice(tmp_path: Path) -> None:
    live = make_live(tmp_path)
    assert live.cli("migrate")[0] == 0
    for start in range(1000, 1500, 100):
        live.source().append(estate.events_arrow(start, 10))
    _faulty(live, crash_after_commits=2)

    crashed = icebridge(live, "sync", "--engine", "faulty")
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stdout + crashed.stderr
    assert sum(_replayed(live).values()) == 2
    store = live.store()
    try:
        assert len([r for r in store.snapshot_map(live.task().id) if r.how == "files"]) == 1  # the 2nd never recorded
    finally:
        store.close()

    rerun = icebridge(live, "sync")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    replayed = _replayed(live)
    assert len(replayed) == 5 and set(replayed.values()) == {1}  # every source commit exactly once
    assert rows(live.destination()) == rows(live.source())
    store = live.store()
    try:
        assert {r.source_snapshot_id for r in store.snapshot_map(live.task().id) if r.how == "files"} == set(replayed)
    finally:
        store.close()


@pytest.mark.parametrize("step", ["freeze", "quiet", "sync", "validate", "swap", "archive"])
def test_a_cutover_killed_at_each_step_resumes_at_that_step(tmp_path: Path, step: str) -> None:
    live = make_live(tmp_path)
    assert live.cli("migrate")[0] == 0
    live.source().append(estate.events_arrow(2000, 25))
    expected = rows(live.source())
    metadata = live.source().metadata_location
    _faulty(live, crash_at_step=step)

    crashed = icebridge(live, "cutover", "--engine", "faulty")
    assert crashed.returncode == CRASH_EXIT_CODE, crashed.stdout + crashed.stderr
    store = live.store()
    try:
        steps = {s.step: s.status for s in store.cutover_steps(live.task().id)}
    finally:
        store.close()
    assert steps[step] == "started", steps  # its work was done, its record not

    rerun = icebridge(live, "cutover")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert not live.foreign().table_exists("shop.events")
    assert rows(live.destination()) == expected  # no row missing, none doubled
    assert set(_replayed(live).values()) == {1}
    task = live.task()
    assert (task.phase, task.status, task.archived_metadata_location) == ("cut-over", "succeeded", metadata)

    assert live.cli("rollback")[0] == 0
    assert rows(live.source()) == expected
    assert live.task().source == SOURCE
