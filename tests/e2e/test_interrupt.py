"""A migrate interrupted mid-copy (Ctrl-C, or kill -9) and run again gives exactly the source's rows."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pyiceberg.table import Table

from icebridge.phases.copy import referenced_files
from icebridge.storage import list_files
from tests.integration import estate
from tests.integration.test_behaviour import Estate, make_estate, rows

TABLE = "foreign.shop.many_files"


def icebridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "icebridge", *args]


def committed_batches(est: Estate) -> list[int]:
    managed = est.managed()
    if not managed.table_exists("shop.many_files"):
        return []
    table = managed.load_table("shop.many_files")
    return [
        int(s.summary.additional_properties["icebridge.batch"])  # type: ignore[union-attr]
        for s in table.metadata.snapshots
    ]


def interrupt_mid_copy(est: Estate, sig: signal.Signals) -> int:
    """Start a migrate, wait until a few batches are committed, then send ``sig``; return the exit code."""
    log = est.root / f"migrate-{sig.name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            icebridge("migrate", "-c", str(est.config), "--tables", TABLE),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        try:
            while len(committed_batches(est)) < 3:
                assert proc.poll() is None, f"migrate ended before it was interrupted: {log.read_text()}"
                assert time.monotonic() < deadline, "no batch committed within 120 s"
                time.sleep(0.02)
            proc.send_signal(sig)
            return proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(params=["file-copy", "rewrite"])
def est(request: pytest.FixtureRequest, tmp_path: Path) -> Estate:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend, big_files=60, files_per_commit=1)
    config = yaml.safe_load(est.config.read_text())
    config["mappings"].insert(0, {"source": TABLE, "target": "managed.shop", "strategy": request.param})
    est.config.write_text(yaml.safe_dump(config))
    return est


def unreferenced_files(table: Table) -> list[str]:
    location = table.metadata.location.rstrip("/")
    referenced = referenced_files(table)
    return sorted(
        f.path
        for folder in ("data", "metadata")
        for f in list_files(table.io, f"{location}/{folder}")
        if f.path not in referenced
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_interrupted_migrate_resumes_exactly_once(est: Estate, sig: signal.Signals) -> None:
    code = interrupt_mid_copy(est, sig)
    done_before = committed_batches(est)
    assert 3 <= len(done_before) < 60, "the interruption must land in the middle of the copy"
    if sig is signal.SIGINT:
        assert code == 130
        task = est.tasks()[TABLE]
        assert task.status == "failed" and "interrupted" in task.error  # type: ignore[attr-defined]
    else:
        assert code == -signal.SIGKILL

    rerun = subprocess.run(
        icebridge("migrate", "-c", str(est.config), "--tables", TABLE),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    batches = committed_batches(est)
    assert sorted(batches) == list(range(60)), "every batch exactly once"
    assert set(done_before) <= set(batches)
    source = estate.open_catalog("foreign", est.foreign_props).load_table("shop.many_files")
    destination = est.managed().load_table("shop.many_files")
    assert rows(destination, source.schema()) == rows(source)
    task = est.tasks()[TABLE]
    assert task.status == "succeeded" and task.rows == 60 * 500  # type: ignore[attr-defined]
    assert unreferenced_files(destination) == [], "no orphan file left behind"
