"""Who holds a task: the owner of a claim, whether that owner still lives, and its heartbeat.

A task is taken by one conditional update in the store (``Store.claim_task``) that names its owner
and a lease expiry. The owner is one run in one process (``host|pid|start|run-N``), so two runs in
one server process never share a claim. While the run works, a heartbeat thread extends its leases;
a lease that could not be extended (another process took the task after it expired) is marked lost
and the work on that task stops before its next commit.

A crashed holder on this machine is recognised at once (its process is gone, or the pid now belongs
to a process started later); elsewhere its lease must expire first.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from icebridge.store import Store

_SEP = "|"


@cache
def _host() -> str:
    return socket.gethostname()


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or '' where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return ""


@dataclass(frozen=True)
class Owner:
    """One run in one process: the holder of a claim."""

    host: str
    pid: int
    start: str
    run_id: int

    def __str__(self) -> str:
        return _SEP.join((self.host, str(self.pid), self.start, f"run-{self.run_id}"))

    @classmethod
    def for_run(cls, run_id: int) -> Owner:
        """The owner that this process's run ``run_id`` claims tasks as."""
        pid = os.getpid()
        return cls(_host(), pid, _process_start(pid), run_id)

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner recorded in the store, or None when the text is not one."""
        parts = (text or "").split(_SEP)
        if len(parts) != 4 or not parts[1].isdigit() or not parts[3].startswith("run-"):
            return None
        try:
            return cls(parts[0], int(parts[1]), parts[2], int(parts[3].removeprefix("run-")))
        except ValueError:
            return None

    def describe(self) -> str:
        """For people: ``run 12 (pid 4711 on host-a)``."""
        return f"run {self.run_id} (pid {self.pid} on {self.host})"


def process_identity() -> str:
    """This process, as a run's owner is recorded before it claims anything: ``host|pid|start``."""
    pid = os.getpid()
    return _SEP.join((_host(), str(pid), _process_start(pid)))


def is_dead(owner_text: str | None) -> bool:
    """True only when the owner ran on this machine and its process is gone (or the pid was reused)."""
    owner = Owner.parse(owner_text)
    if owner is None or owner.host != _host():
        return False
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, under another user
    return bool(owner.start) and _process_start(owner.pid) != owner.start


def describe(owner_text: str | None) -> str:
    """A recorded owner for people."""
    owner = Owner.parse(owner_text)
    return owner.describe() if owner else (owner_text or "nobody")


class TaskCancel:
    """Stop asking for one task: the run was cancelled, or this run lost the task's lease."""

    def __init__(self, run_cancel: threading.Event, keeper: LeaseKeeper | None, task_id: int) -> None:
        self._run = run_cancel
        self._keeper = keeper
        self._task_id = task_id

    def is_set(self) -> bool:
        return self._run.is_set() or (self._keeper is not None and self._keeper.lost(self._task_id))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds passed (a lost lease is noticed within 0.2 s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            remaining = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
            if remaining <= 0:
                return False
            self._run.wait(remaining)
        return True

    @property
    def lease_lost(self) -> bool:
        return self._keeper is not None and self._keeper.lost(self._task_id)


class LeaseKeeper:
    """The heartbeat of one run: extends its leases and its run row until stopped."""

    def __init__(self, store: Store, owner: Owner, lease_seconds: float) -> None:
        self._store = store
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._interval = max(0.05, lease_seconds / 4)
        self._held: set[int] = set()
        self._lost: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        self._stop.clear()  # a watching sync enters once per round
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.owner.run_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def holding(self, task_id: int) -> None:
        """Remember that this run now holds ``task_id``."""
        with self._lock:
            self._held.add(task_id)
            self._lost.discard(task_id)

    def released(self, task_id: int) -> None:
        with self._lock:
            self._held.discard(task_id)

    def lost(self, task_id: int) -> bool:
        with self._lock:
            return task_id in self._lost

    def beat(self) -> None:
        """One heartbeat: extend the leases, notice the lost ones, show the run is alive."""
        still = self._store.renew_leases(str(self.owner), self.lease_seconds)
        with self._lock:
            gone = self._held - still
            self._lost |= gone
            self._held -= gone
        self._store.touch_run(self.owner.run_id)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
            except Exception:  # a store hiccup: the next beat tries again; the lease outlives a few misses
                continue
