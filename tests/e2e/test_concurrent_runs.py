"""Two ``icebridge migrate`` processes on one configuration never run one table at the same time.

Each table is copied by exactly one of them; the other leaves it, saying which run holds it, and is
not failed for it. A holder that stopped answering (its lease ran out) is taken over by the next run.
Afterwards every destination loads and holds exactly the source's rows, each batch committed once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from icebridge.store import open_store
from tests.integration.test_behaviour import SOURCES, Estate, make_estate, rows

BIG = "shop.many_files"


def icebridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "icebridge", *args]


@pytest.fixture
def busy(tmp_path: Path, backend: dict[str, str]) -> Estate:
    """The estate plus a table of 40 files committed one file a batch, so two runs overlap."""
    return make_estate(tmp_path, backend, big_files=40, files_per_commit=1)


def report_of(out: str) -> dict:  # type: ignore[type-arg]
    return json.loads(out[out.index("{") :])


def assert_each_table_copied_once(est: Estate) -> None:
    foreign, managed = est.foreign(), est.managed()
    for name in [*SOURCES, BIG]:
        identifier = tuple(name.split(".", 1))
        source, destination = foreign.load_table(identifier), managed.load_table(identifier)
        batches = [
            int(s.summary.additional_properties["icebridge.batch"])  # type: ignore[union-attr]
            for s in destination.metadata.snapshots
        ]
        assert sorted(batches) == list(range(len(batches))), f"{name}: a batch committed twice or missing"
        assert rows(destination, source.schema()) == rows(source), name


def test_two_migrates_at_once_split_the_tables_and_copy_each_once(busy: Estate) -> None:
    assert busy.cli("plan")[0] == 0  # both processes then start from the same saved plan
    command = icebridge("migrate", "-c", str(busy.config), "--json")
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (out1, err1), (out2, err2) = first.communicate(timeout=600), second.communicate(timeout=600)
    assert (first.returncode, second.returncode) == (0, 0), err1 + err2
    reports = [report_of(out1), report_of(out2)]
    outcomes = [{t["source"]: t for t in r["tables"]} for r in reports]
    for source in outcomes[0]:
        pair = [outcomes[0][source], outcomes[1][source]]
        assert all(o["status"] in ("succeeded", "skipped") for o in pair), pair
        copied = [o for o in pair if o["message"] == "migrated and validated"]
        assert len(copied) <= 1, f"{source} was copied by both runs: {pair}"
        for o, other in ((pair[0], reports[1]), (pair[1], reports[0])):
            if o["status"] == "skipped":
                assert f"held by run {other['run_id']}" in o["message"] and " since " in o["message"]
    skipped = sum(o["status"] == "skipped" for by_source in outcomes for o in by_source.values())
    assert skipped >= 1, "the two runs should have met on at least the big table"
    assert all(r["summary"]["failed"] == 0 for r in reports)
    assert_each_table_copied_once(busy)
    store = open_store(busy.state_url)
    try:
        tasks = store.list_tasks()
        assert all((t.status, t.phase, t.owner) == ("succeeded", "migrated", None) for t in tasks)
    finally:
        store.close()


def test_a_silent_holder_is_waited_for_then_taken_over(busy: Estate) -> None:
    """A claim by a process on another machine is respected until its lease runs out, then resumed."""
    config = yaml.safe_load(busy.config.read_text())
    config["migrate"]["lease_seconds"] = 3
    busy.config.write_text(yaml.safe_dump(config))
    assert busy.cli("plan")[0] == 0
    store = open_store(busy.state_url)
    try:
        run = store.start_run("migrate", str(busy.config), {})
        task = store.get_task(f"foreign.{BIG}")
        assert task is not None
        store.claim_task(task.id, f"elsewhere|4242|1|run-{run.id}", run.id, "copy", lease_seconds=3)
    finally:
        store.close()

    code, report = busy.cli_json("migrate", "--tables", f"foreign.{BIG}")
    assert code == 0, report
    (held,) = report["tables"]
    assert held["status"] == "skipped"
    assert f"held by run {run.id} (pid 4242 on elsewhere) since" in held["message"]
    assert not busy.managed().table_exists(BIG)

    time.sleep(3.5)
    code, report = busy.cli_json("migrate", "--tables", f"foreign.{BIG}")
    assert code == 0, report
    assert [t["status"] for t in report["tables"]] == ["succeeded"]
    source, destination = busy.foreign().load_table(BIG), busy.managed().load_table(BIG)
    assert rows(destination, source.schema()) == rows(source)
