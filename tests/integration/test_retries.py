"""Transient failures are retried with backoff and leave exactly one copy; terminal ones fail only their table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import CommitFailedException

from icebridge import storage
from icebridge.app.runs import RunRequest, RunResult, RunService
from icebridge.config import load_config
from icebridge.context import AppContext
from tests.integration.test_behaviour import Estate, make_estate, rows


@pytest.fixture
def est(tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    return make_estate(tmp_path, backend, big_files=6, files_per_commit=2)


def migrate(est: Estate) -> RunResult:
    ctx = AppContext(load_config(est.config))
    try:
        return RunService(ctx).run(RunRequest(command="migrate", tables="foreign.shop.many_files"))
    finally:
        ctx.close()


def assert_copied_once(est: Estate) -> None:
    source = est.foreign().load_table("shop.many_files")
    destination = est.managed().load_table("shop.many_files")
    batches = [int(s.summary.additional_properties["icebridge.batch"]) for s in destination.metadata.snapshots]  # type: ignore[union-attr]
    assert sorted(batches) == [0, 1, 2]
    assert rows(destination, source.schema()) == rows(source)


def test_commit_conflicts_are_retried(est: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    real_commit = SqlCatalog.commit_table
    failures = {"left": 2}

    def flaky_commit(self: SqlCatalog, *args: Any, **kwargs: Any) -> Any:
        if self.name == "managed" and failures["left"] and args[0].metadata.snapshots:
            failures["left"] -= 1
            raise CommitFailedException("table moved on (injected)")
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(SqlCatalog, "commit_table", flaky_commit)
    report = migrate(est)
    assert report.status == "succeeded", report.tables
    assert failures["left"] == 0
    assert_copied_once(est)


def test_transient_storage_errors_are_retried(est: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    real_copy = storage.copy_local
    failures = {"left": 2}

    def flaky_copy(source: str, *args: Any, **kwargs: Any) -> Any:
        if "foreign-warehouse" in source and failures["left"]:
            failures["left"] -= 1
            raise ConnectionResetError("connection reset by peer (injected)")
        return real_copy(source, *args, **kwargs)

    monkeypatch.setattr(storage, "copy_local", flaky_copy)
    report = migrate(est)
    assert report.status == "succeeded", report.tables
    assert failures["left"] == 0
    assert_copied_once(est)


def test_a_missing_source_file_fails_its_table_with_the_path(est: Estate) -> None:
    source = est.foreign().load_table("shop.many_files")
    victim = sorted(t.file.file_path for t in source.scan().plan_files())[3]
    Path(victim.removeprefix("file://")).unlink()
    report = migrate(est)
    assert report.status == "failed"
    (outcome,) = report.tables
    assert outcome.status == "failed" and victim in outcome.message
    task = {t.source: t for t in AppContext(load_config(est.config)).store.list_tasks()}["foreign.shop.many_files"]
    assert task.error_kind == "terminal" and task.attempts == 1
