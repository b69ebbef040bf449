"""The faulty engine through the command line: chosen with --engine, configured under engines.faulty."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from icebridge.store import open_store
from tests.integration.test_behaviour import SOURCES, Estate, assert_same_table, make_estate


@pytest.fixture
def est(tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    return make_estate(tmp_path, backend)


def configure(est: Estate, faulty: dict[str, object], max_attempts: int | None = None) -> None:
    config = yaml.safe_load(est.config.read_text())
    config["engines"] = {"faulty": faulty}
    if max_attempts is not None:
        config["migrate"]["max_attempts"] = max_attempts
    est.config.write_text(yaml.safe_dump(config, sort_keys=False))


def test_migrate_with_the_faulty_engine_retries_its_faults_and_copies_everything(est: Estate) -> None:
    # at most 4 faults, and 6 tries per table: however the faults fall, every table gets through
    faulty = {"transient_commit_probability": 0.5, "transient_file_probability": 0.2, "fault_limit": 4, "seed": 11}
    configure(est, faulty, max_attempts=6)
    code, report = est.cli_json("migrate", "--engine", "faulty")
    assert code == 0, report
    assert {t["source"]: t["status"] for t in report["tables"]} == {f"foreign.{s}": "succeeded" for s in SOURCES}
    store = open_store(est.state_url)
    try:
        faults = [e for e in store.events(run_id=report["run_id"]) if e.kind == "fault"]
        retries = [e for e in store.events(run_id=report["run_id"]) if e.kind == "retry"]
        tasks = {t.source: t for t in store.list_tasks()}
    finally:
        store.close()
    assert faults, "the seed injects faults into this estate"
    assert 1 <= len(retries) <= len(faults)  # every fault failed an attempt, and each failed attempt was retried
    assert {(e.data or {})["fault"] for e in faults} <= {"transient-commit", "transient-file"}
    # the strategies are the local planner's: customers is forced to rewrite by its rule, the rest byte-copied
    assert {s: t.strategy for s, t in tasks.items()}["foreign.shop.customers"] == "rewrite"
    assert {t.strategy for t in tasks.values()} == {"file-copy", "rewrite"}
    foreign, managed = est.foreign(), est.managed()
    for name in SOURCES:
        identifier = tuple(name.split(".", 1))
        assert_same_table(foreign.load_table(identifier), managed.load_table(identifier))


def test_an_unknown_engine_stops_the_command_before_anything_is_recorded(est: Estate) -> None:
    code, out = est.cli("migrate", "--engine", "teleport")
    assert code == 2
    assert "--engine 'teleport': unknown engine; choose one of databricks, faulty, local, register, spark" in out
    assert "Traceback" not in out
    store = open_store(est.state_url)
    try:
        assert store.list_runs() == [] and store.load_inventory() == [] and store.list_tasks() == []
    finally:
        store.close()
    assert est.managed().list_namespaces() == []


def test_a_mistake_in_engines_faulty_stops_every_command_before_anything_is_written(est: Estate) -> None:
    configure(est, {"crash_after_commit": 2})
    for command in ("inventory", "migrate"):
        code, out = est.cli(command)
        assert code == 2, out
        assert "engines.faulty.crash_after_commit: unknown key; allowed keys here: crash_after_commits" in out
        assert "Traceback" not in out
    assert not (est.root / "state.db").exists()
    assert est.managed().list_namespaces() == []
