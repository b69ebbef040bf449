"""A process killed during sync and at every cut-over step: the rerun converges, no row missing or doubled.

The ``faulty`` engine kills its own process with ``SIGKILL``: during sync right after its N-th replay
commit reached the catalog and before the store heard of it, and during cut-over once a step's work is
done and before the store records it done. And the test itself sends ``SIGKILL`` to a running
``icebridge sync`` from outside, wherever it happens to be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


def _recorded_replays(live: Live) -> int:
    store = live.store()
    try:
        return len([r for r in store.snapshot_map(live.task().id) if r.how == "files"])
    finally:
        store.close()


def test_a_sync_killed_from_outside_converges_on_rerun(tmp_path: Path) -> None:
    live = make_live(tmp_path)
    assert live.cli("migrate")[0] == 0
    commits = 40
    for start in range(10_000, 10_000 + 10 * commits, 10):
        live.source().append(estate.events_arrow(start, 10))
    command = [sys.executable, "-m", "icebridge", "sync", "-c", str(live.config)]
    running = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 240
        while _recorded_replays(live) == 0:  # kill as soon as the store shows a first replay committed
            assert running.poll() is None, f"sync ended (exit {running.returncode}) before a replay was recorded"
            assert time.monotonic() < deadline, "no replay was recorded within 240 s"
            time.sleep(0.02)
        os.kill(running.pid, signal.SIGKILL)
        assert running.wait(timeout=60) == -signal.SIGKILL, f"sync had ended by itself (exit {running.returncode})"
    finally:
        if running.poll() is None:
            running.kill()
            running.wait(timeout=60)
    assert 0 < sum(_replayed(live).values()) < commits  # stopped midway
    assert live.task().status == "running"  # the killed run left its claim behind

    rerun = icebridge(live, "sync")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    replayed = _replayed(live)
    assert len(replayed) == commits and set(replayed.values()) == {1}  # every source commit exactly once
    assert rows(live.destination()) == rows(live.source())  # no row missing, none doubled
    assert _recorded_replays(live) == commits
