"""Worker processes: a server carries out its runs in processes of their own, never in its own interpreter.

``icebridge serve`` answers requests from one Python process; a copy is busy Python too (Arrow,
manifests, catalog commits), and two in one interpreter take turns, so under a copy every answer
waits. With ``service.worker_mode: process`` the server starts ``service.workers`` worker processes
(``python -m icebridge.app.worker``, at a lower CPU priority: ``service.worker_nice``), each claiming
and carrying out one run at a time with the same :class:`~icebridge.app.launcher.RunExecutor` the
threads of ``thread`` mode use: the claim is the store's conditional update, the run's heartbeat and
its cancellation are its row, a stopped worker's run is requeued, a killed one's is taken over by
whichever worker looks next (its recorded process is gone). The server restarts a worker that died.

A worker and its server talk over the worker's standard input and output, one JSON object a line:

- server → worker: ``hello`` (the server's configuration, pickled: it may hold expanded secrets, which
  is why it travels over the pipe and never as arguments or environment that ``ps`` shows), ``wake``
  (a run was accepted), ``cancel`` (a run's cancellation, before the heartbeat would see it), ``actor``
  (who asked for a run the worker just claimed, with their access token — kept in memory, never
  stored), ``stop`` (requeue what runs and exit; end of input means the same).
- worker → server: ``claimed`` and ``ended`` (a run started and stopped here) and ``event`` (every
  event of the worker's bus), which the server republishes on the launcher's bus for its live event
  streams and its Prometheus metrics; the worker's own store log has already recorded them.

Everything else a worker prints goes to the server's standard error, through the same redaction.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from icebridge.app.actor import Actor
from icebridge.errors import ConfigError
from icebridge.events import Event

if TYPE_CHECKING:
    from icebridge.app.launcher import RunLauncher
    from icebridge.config import Config

log = logging.getLogger(__name__)

MODULE = "icebridge.app.worker"
ACTOR_SECONDS = 30.0  # a claimed run waits this long for its server to say who asked for it
RESTART_SECONDS = (1.0, 30.0)  # a worker that died is started again after 1 s, longer if it keeps dying
STOP_SECONDS = 60.0  # a stopping worker waits this long for its runs to reach a commit boundary
STOP_GRACE_SECONDS = 10.0  # beyond that, for the worker to record them and exit


# ------------------------------------------------------------------------------------ logging


class RedactingFormatter(logging.Formatter):
    """A log line with every secret of the configuration hidden (tracebacks included)."""

    def __init__(self, config: Config, prefix: str = "") -> None:
        super().__init__(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s")
        self._config = config

    def format(self, record: logging.LogRecord) -> str:
        return self._config.redact(super().format(record))


def configure_logging(config: Config, prefix: str = "") -> None:
    """Every logger (uvicorn's too) through one stderr handler that redacts."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(config, prefix))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


# ------------------------------------------------------------------------------------ events on the wire


def _wire(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def encode_event(event: Event) -> dict[str, Any]:
    """An event as its class and its fields (what :func:`decode_event` builds it again from)."""
    return {"type": type(event).__name__, "fields": {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}}


def _event_types() -> dict[str, type[Event]]:
    found: dict[str, type[Event]] = {}
    todo: list[type[Event]] = [Event]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def decode_event(data: dict[str, Any]) -> Event | None:
    """The event :func:`encode_event` wrote (None, and a warning, for one this process cannot build)."""
    cls = _event_types().get(str(data.get("type")))
    fields = dict(data.get("fields") or {})
    if cls is None:
        log.warning("a worker sent an event of unknown type %r; it is left out of live streams", data.get("type"))
        return None
    try:
        fields["at"] = datetime.fromisoformat(fields["at"])
        return cls(**fields)
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("a worker sent a %s event this server cannot read (%s)", cls.__name__, exc)
        return None


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, default=_wire, separators=(",", ":")) + "\n").encode()


# ------------------------------------------------------------------------------------ the server's side


def _hello(config: Config, poll_seconds: float) -> dict[str, Any]:
    """The first message to a worker: everything it needs to build the server's context."""
    try:
        packed = pickle.dumps(config)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{config.path}: the configuration cannot be handed to a worker process ({exc}); "
            "set service.worker_mode: thread to carry out runs in the server's own process"
        ) from exc
    return {"op": "hello", "config": base64.b64encode(packed).decode(), "poll": poll_seconds}


class _Child:
    """One worker process as its server sees it: the process, its pipe, the runs it carries out."""

    def __init__(self, hello: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self.running: set[int] = set()
        self._lock = threading.Lock()
        self.send(hello)

    def send(self, message: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        with self._lock:
            try:
                stdin.write(_line(message))
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):  # the worker is gone; its supervisor notices
                pass

    def messages(self) -> Any:
        stdout = self.proc.stdout
        assert stdout is not None
        for raw in stdout:
            try:
                yield json.loads(raw)
            except ValueError:
                log.warning("worker %s wrote a line that is not a message; ignored", self.proc.pid)


class WorkerProcesses:
    """``count`` worker processes of a server, each started again when it dies; the launcher's events
    and actors go through here."""

    def __init__(self, launcher: RunLauncher, count: int) -> None:
        self.launcher = launcher
        self.count = count
        self._hello = _hello(launcher.app.config, launcher.poll_seconds)  # a problem stops the server's start
        self._lock = threading.Lock()
        self._children: list[_Child] = []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for n in range(self.count):
            thread = threading.Thread(target=self._supervise, name=f"run-worker-process-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> None:
        """Ask every worker to stop (its runs go back to the queue); a worker still there after ``timeout``
        is killed, and its runs are taken up by the next worker on the store."""
        self._stopping.set()
        with self._lock:
            children = list(self._children)
        for child in children:
            child.send({"op": "stop"})
        deadline = time.monotonic() + timeout + STOP_GRACE_SECONDS
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop in time; killed", child.proc.pid)
                child.proc.kill()
        for thread in self._threads:
            thread.join(timeout=5)

    def wake(self) -> None:
        self._broadcast({"op": "wake"})

    def cancel(self, run_id: int) -> None:
        self._broadcast({"op": "cancel", "run": run_id})

    def is_running(self, run_id: int) -> bool:
        with self._lock:
            return any(run_id in child.running for child in self._children)

    def _broadcast(self, message: dict[str, Any]) -> None:
        with self._lock:
            children = list(self._children)
        for child in children:
            child.send(message)

    def _supervise(self) -> None:
        pause = RESTART_SECONDS[0]
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                child = _Child(self._hello)
            except OSError as exc:
                log.error("could not start a worker process (%s); trying again in %.0f s", exc, pause)
                self._stopping.wait(pause)
                continue
            with self._lock:
                self._children.append(child)
            if self._stopping.is_set():  # started just as the server began to stop: it stops too
                child.send({"op": "stop"})
            try:
                self._serve(child)
            finally:
                code = child.proc.wait()
                with self._lock:
                    self._children.remove(child)
                for run_id in sorted(child.running):  # its runs are over here; another worker takes them up
                    self.launcher.hub.close(run_id)
            if self._stopping.is_set():
                return
            pause = RESTART_SECONDS[0] if time.monotonic() - started > 60 else min(pause * 2, RESTART_SECONDS[1])
            log.warning("worker process %s exited (%s); starting another in %.0f s", child.proc.pid, code, pause)
            self._stopping.wait(pause)

    def _serve(self, child: _Child) -> None:
        launcher = self.launcher
        for message in child.messages():
            op, run_id = message.get("op"), message.get("run")
            if op == "event":
                event = decode_event(message.get("event") or {})
                if event is not None:
                    launcher.bus.publish(event)
            elif op == "claimed" and isinstance(run_id, int):
                with self._lock:
                    child.running.add(run_id)
                launcher.hub.open(run_id)
                actor = launcher.take_actor(run_id)
                who = None if actor is None else dataclasses.asdict(actor)
                child.send({"op": "actor", "run": run_id, "actor": who})
            elif op == "ended" and isinstance(run_id, int):
                with self._lock:
                    child.running.discard(run_id)
                launcher.hub.close(run_id)


# ------------------------------------------------------------------------------------ the worker's side


class _ServerLink:
    """The worker's end of the pipe: messages out (from any thread), replies in."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._replies: dict[int, Actor | None] = {}
        self._changed = threading.Condition()
        self._released = False  # stopping: a claimed run waits for no answer any more
        self.gone = threading.Event()

    def send(self, message: dict[str, Any]) -> None:
        if self.gone.is_set():
            return
        with self._lock:
            try:
                self._out.write(_line(message))
                self._out.flush()
            except (BrokenPipeError, OSError, ValueError):  # the server is gone: stop, as for end of input
                self.gone.set()
                self.release()

    def forward(self, event: Event) -> None:
        self.send({"op": "event", "event": encode_event(event)})

    def claimed(self, run_id: int) -> None:
        self.send({"op": "claimed", "run": run_id})

    def ended(self, run_id: int) -> None:
        self.send({"op": "ended", "run": run_id})

    def actor_for(self, run_id: int) -> Actor | None:
        """Who asked for ``run_id``, as the server answers the ``claimed`` message."""
        with self._changed:
            self._changed.wait_for(lambda: run_id in self._replies or self._released, timeout=ACTOR_SECONDS)
            return self._replies.pop(run_id, None)

    def answer(self, run_id: int, actor: dict[str, Any] | None) -> None:
        with self._changed:
            self._replies[run_id] = Actor(**actor) if actor else None
            self._changed.notify_all()

    def release(self) -> None:
        """Answer every wait for an actor with none (the worker is stopping)."""
        with self._changed:
            self._released = True
            self._changed.notify_all()


def _listen(link: _ServerLink, executor: Any, stop: threading.Event) -> None:
    for raw in sys.stdin.buffer:
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        op = message.get("op")
        if op == "wake":
            executor.wake()
        elif op == "cancel" and isinstance(message.get("run"), int):
            executor.cancel(message["run"])
        elif op == "actor" and isinstance(message.get("run"), int):
            link.answer(message["run"], message.get("actor"))
        elif op == "stop":
            break
    stop.set()  # asked to, or the server is gone (end of input)


def main() -> int:
    """A worker process: read the server's configuration, then claim and carry out runs until stopped."""
    from icebridge.app.launcher import RunExecutor
    from icebridge.context import AppContext

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the server, which stops its workers in order
    out = os.fdopen(os.dup(1), "wb")  # the pipe to the server; anything printed goes to stderr instead
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    first = sys.stdin.buffer.readline()
    if not first:
        return 0
    hello = json.loads(first)
    config: Config = pickle.loads(base64.b64decode(hello["config"]))  # the server's own pipe
    configure_logging(config, prefix=f"worker {os.getpid()} ")
    if config.service.worker_nice:
        os.nice(config.service.worker_nice)  # the API answers first; a copy takes whatever CPU is left
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    app = AppContext(config)
    link = _ServerLink(out)
    app.bus.subscribe(link.forward)
    executor = RunExecutor(
        app, 1, float(hello["poll"]), actor_for=link.actor_for, opened=link.claimed, closed=link.ended
    )
    listener = threading.Thread(target=_listen, args=(link, executor, stop), name="server-link", daemon=True)
    listener.start()
    executor.start()
    try:
        while not stop.wait(1.0) and not link.gone.is_set():
            pass
        link.release()
        executor.stop(timeout=STOP_SECONDS)
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
