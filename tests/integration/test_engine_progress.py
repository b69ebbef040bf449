"""Engines report progress as they go: a local copy's increments add up to the files and bytes it wrote."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

from icebridge.app.runs import RunRequest, RunService
from icebridge.config import load_config
from icebridge.context import AppContext
from icebridge.events import Event, Progress
from icebridge.model import TableRef
from tests.integration.test_behaviour import make_estate


def test_progress_increments_add_up_to_each_tables_files_and_bytes(tmp_path: Path) -> None:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend, big_files=5, files_per_commit=2)
    lock = threading.Lock()
    done: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # files, bytes, reports
    threads: set[str] = set()

    def progress(event: Event) -> None:
        if not isinstance(event, Progress) or event.phase != "copy" or event.table is None:
            return
        with lock:
            totals = done[event.table]
            totals[0] += event.files
            totals[1] += event.bytes
            totals[2] += 1
            threads.add(threading.current_thread().name)

    ctx = AppContext(load_config(est.config))
    unsubscribe = ctx.bus.subscribe(progress)
    try:
        report = RunService(ctx).run(RunRequest(command="migrate"))
        assert report.status == "succeeded", report.tables
        tasks = {t.source: t for t in ctx.store.list_tasks()}
        strategies = set()
        for source, task in tasks.items():
            destination = ctx.catalogs.load_table(TableRef.parse(task.destination))
            snapshot = destination.current_snapshot()
            if snapshot is None:  # the empty table: nothing copied, nothing reported
                assert source not in done
                continue
            summary = snapshot.summary.additional_properties  # type: ignore[union-attr]
            files, size, reports = done[source]
            assert (files, size) == (int(summary["total-data-files"]), int(summary["total-files-size"])), source
            assert reports == files, f"{source}: one report per file"
            strategies.add(task.strategy)
        assert strategies == {"file-copy", "rewrite"}  # both of the local engine's strategies reported

        many = ctx.catalogs.load_table(TableRef.parse("foreign.shop.many_files"))
        copied = done["foreign.shop.many_files"]
        assert copied[:2] == [5, sum(t.file.file_size_in_bytes for t in many.scan().plan_files())]
    finally:
        unsubscribe()
        ctx.close()
    # file-copy reports each file from the pool that copies it, not from the table's own thread
    assert any(name.startswith("ThreadPoolExecutor") for name in threads), threads
