"""The launcher's run detail cache: many pollers of one run cost the store one read a period, and while
one of them reads again the others are answered at once with the previous read."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from icebridge.app import launcher as launcher_module
from icebridge.app.launcher import RunLauncher
from icebridge.config import load_config
from icebridge.context import AppContext
from tests.integration.test_behaviour import make_estate


class CountingStore:
    """The real store, with its run reads counted and, when ``gate`` is cleared, held until it is set."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.reads = 0
        self.gate = threading.Event()
        self.gate.set()
        self.reading = threading.Event()

    def get_run(self, run_id: int) -> Any:
        self.reads += 1
        self.reading.set()
        self.gate.wait(30)
        return self._store.get_run(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[tuple[RunLauncher, CountingStore, int]]:
    backend = {"kind": "sqlite", "state": f"sqlite:///{tmp_path}/state.db", "foreign": "", "managed": ""}
    est = make_estate(tmp_path, backend)
    ctx = AppContext(load_config(est.config))
    run = ctx.store.queue_run("migrate", str(est.config), {}, {"command": "migrate"}, "ada")
    counting = CountingStore(ctx.store)
    app = ctx.replace(store=counting)
    launcher = RunLauncher(app, mode="thread")  # never started: only its reads are looked at
    yield launcher, counting, run.id
    launcher.hub.stop()
    ctx.close()


def test_many_polls_in_one_period_read_the_store_once(
    launched: tuple[RunLauncher, CountingStore, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher, store, run_id = launched
    monkeypatch.setattr(launcher_module, "DETAIL_SECONDS", 3600.0)  # one period for the whole test
    assert launcher.cached_detail(run_id) is None  # nothing read yet
    store.gate.clear()  # the first read is slow: everyone else arrives while it is under way
    answers: list[Any] = []
    pollers = [threading.Thread(target=lambda: answers.append(launcher.detail(run_id))) for _ in range(20)]
    for poller in pollers:
        poller.start()
    assert store.reading.wait(30)
    time.sleep(0.2)  # the other pollers are waiting for that read, not reading themselves
    store.gate.set()
    for poller in pollers:
        poller.join(30)
    assert store.reads == 1
    assert len(answers) == 20 and {a.id for a in answers} == {run_id}
    assert launcher.cached_detail(run_id) == answers[0]  # what the event loop answers with, no store read
    assert store.reads == 1


def test_a_stale_detail_is_read_again_by_one_poll_while_the_others_get_the_last_read(
    launched: tuple[RunLauncher, CountingStore, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher, store, run_id = launched
    first = launcher.detail(run_id)
    monkeypatch.setattr(launcher_module, "DETAIL_SECONDS", 0.0)  # from now on every read is stale at once
    assert launcher.cached_detail(run_id) is None
    store.gate.clear()
    store.reading.clear()
    refresher = threading.Thread(target=launcher.detail, args=(run_id,))
    refresher.start()
    assert store.reading.wait(30)
    # while that read is under way, a poll gets the previous read at once (no store read, no waiting)
    assert launcher.cached_detail(run_id) == first
    assert launcher.detail(run_id) == first
    assert store.reads == 2
    store.gate.set()
    refresher.join(30)
    assert store.reads == 2
