"""Transient failures are retried with backoff and leave exactly one copy; terminal ones fail only their table.

The failures are injected by the ``faulty`` engine, which copies for real through the local engine and
fails commits or file copies where its settings say, handed to the run in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from icebridge.app.runs import RunRequest, RunResult, RunService
from icebridge.config import load_config
from icebridge.context import AppContext
from icebridge.engines.faulty import FaultyEngine
from icebridge.store import EventRow
from tests.integration.test_behaviour import SOURCES, Estate, make_estate, rows

TABLE = "foreign.shop.many_files"


@pytest.fixture
def est(tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    return make_estate(tmp_path, backend, big_files=6, files_per_commit=2)


def with_faults(est: Estate, **faults: Any) -> None:
    """Write ``engines.faulty`` into the estate's icebridge.yaml."""
    config = yaml.safe_load(est.config.read_text())
    config["engines"] = {"faulty": faults}
    est.config.write_text(yaml.safe_dump(config, sort_keys=False))


def migrate(est: Estate, pattern: str | None = TABLE) -> tuple[RunResult, FaultyEngine, list[EventRow]]:
    """Migrate with the faulty engine standing in for the local one; the report, the engine, the run's events."""
    base = AppContext(load_config(est.config))
    engine = FaultyEngine(base.config)
    ctx = base.replace(engine=engine)
    try:
        report = RunService(ctx).run(RunRequest(command="migrate", tables=pattern))
        return report, engine, ctx.store.events(run_id=report.run_id)
    finally:
        ctx.close()


def assert_copied_once(est: Estate) -> None:
    source = est.foreign().load_table("shop.many_files")
    destination = est.managed().load_table("shop.many_files")
    batches = [int(s.summary.additional_properties["icebridge.batch"]) for s in destination.metadata.snapshots]  # type: ignore[union-attr]
    assert sorted(batches) == [0, 1, 2]
    assert rows(destination, source.schema()) == rows(source)


def kinds(events: list[EventRow], kind: str) -> list[EventRow]:
    return [e for e in events if e.kind == kind]


def test_commit_conflicts_are_retried(est: Estate) -> None:
    with_faults(est, transient_commit_probability=1.0, fault_limit=2)
    report, engine, events = migrate(est)
    assert report.status == "succeeded", report.tables
    assert engine.faults == 2
    faults = kinds(events, "fault")
    assert [(e.data or {}).get("fault") for e in faults] == ["transient-commit", "transient-commit"]
    assert len(kinds(events, "retry")) == 2  # each lost commit race was retried after a backoff
    assert_copied_once(est)


def test_transient_storage_errors_are_retried(est: Estate) -> None:
    with_faults(est, transient_file_probability=1.0, fault_limit=2)
    report, engine, events = migrate(est)
    assert report.status == "succeeded", report.tables
    assert engine.faults == 2
    assert {(e.data or {}).get("fault") for e in kinds(events, "fault")} == {"transient-file"}
    assert kinds(events, "retry"), "the reset connections were retried"
    assert_copied_once(est)


def test_a_terminal_failure_fails_only_its_table_with_the_reason(est: Estate) -> None:
    with_faults(est, terminal_commit_probability=1.0, tables=[TABLE])
    report, engine, _events = migrate(est, pattern=None)
    assert report.status == "failed"
    outcomes = {o.source: o for o in report.tables}
    assert outcomes[TABLE].status == "failed"
    assert "refused the commit of batch 0" in outcomes[TABLE].message
    assert {s: o.status for s, o in outcomes.items() if s != TABLE} == {f"foreign.{s}": "succeeded" for s in SOURCES}
    assert engine.faults == 1  # not retried: one attempt, one fault
    task = {t.source: t for t in AppContext(load_config(est.config)).store.list_tasks()}[TABLE]
    assert task.error_kind == "terminal" and task.attempts == 1
    assert est.managed().load_table("shop.many_files").metadata.snapshots == []  # nothing was committed


def test_a_missing_source_file_fails_its_table_with_the_path(est: Estate) -> None:
    source = est.foreign().load_table("shop.many_files")
    victim = sorted(t.file.file_path for t in source.scan().plan_files())[3]
    Path(victim.removeprefix("file://")).unlink()
    report, _engine, _events = migrate(est)
    assert report.status == "failed"
    (outcome,) = report.tables
    assert outcome.status == "failed" and victim in outcome.message
    task = {t.source: t for t in AppContext(load_config(est.config)).store.list_tasks()}["foreign.shop.many_files"]
    assert task.error_kind == "terminal" and task.attempts == 1
