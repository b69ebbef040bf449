"""The ``faulty`` engine: the local engine's real copies, with faults injected where they hurt.

It exists to test retries and resume, as a fault-injecting destination does for a loader. Every
copy is real — the local engine's file-copy or rewrite, into the real destination — so what it leaves
behind is validated like any other copy; on top, as ``engines.faulty`` says:

- ``transient_commit_probability``: a batch's catalog commit fails as a lost commit race
  (``CommitFailedException``), on every try of the catalog client, so the runner retries the copy
  with backoff (and the commit is decided again).
- ``terminal_commit_probability``: a batch's catalog commit fails for good (``DestinationWriteError``);
  the table fails with that reason.
- ``transient_file_probability``: copying one data file (file-copy) fails as a reset connection
  (``StorageTransientError``); retried.
- ``crash_after_commits``: right after its N-th commit reached the catalog, and before the state
  store hears of it, the process kills itself with ``SIGKILL`` (``kill -9``): no cleanup, no
  ``finally``, no exit handler; its parent sees it killed by signal 9 (a shell reports 137).
- ``crash_at_step``: a cut-over step (freeze, quiet, sync, validate, swap, archive): the process ends
  the same way once that step's work is done and before the store records it done.
- ``fault_limit``: at most this many faults per process; ``tables``: globs (``catalog.ns.table``) of the
  tables faults apply to; ``strategy``: ``auto`` (the local planner's choice), ``file-copy`` or ``rewrite``.
- ``seed``: each fault is decided by a hash of the seed, the fault, the table, the batch (or file)
  and the attempt, so a configuration injects the same faults whatever the thread interleaving.

Select it for a run with ``icebridge migrate --engine faulty``, or in-process hand it to a context:
``ctx.replace(engine=FaultyEngine(config))`` makes it stand in for the local engine. Each injected
fault is reported as a ``fault`` event of the run.
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import os
import random
import signal
import threading
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pyiceberg.exceptions import CommitFailedException

from icebridge.engines import CopyJob, CopyResult, EngineConfig
from icebridge.engines.local import FileDelta, LocalEngine, ReplayCommit
from icebridge.errors import ConfigError, DestinationWriteError, StorageTransientError
from icebridge.model import TableFacts

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import Table

    from icebridge.config import Config

ENGINE = "faulty"
# what subprocess reports for a child killed by SIGKILL (a shell says 137)
CRASH_EXIT_CODE = -signal.SIGKILL


class FaultySettings(BaseModel):
    """``engines.faulty`` in icebridge.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["auto", "file-copy", "rewrite"] = Field(
        default="auto", description="The local work it really does: the local planner's choice, or one for all."
    )
    transient_commit_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    terminal_commit_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    transient_file_probability: float = Field(default=0.0, ge=0.0, le=1.0)
    crash_after_commits: int | None = Field(
        default=None, ge=1, description="SIGKILL itself right after this many commits."
    )
    crash_at_step: Literal["freeze", "quiet", "sync", "validate", "swap", "archive"] | None = Field(
        default=None, description="SIGKILL itself when this cut-over step's work is done, before it is recorded."
    )
    fault_limit: int | None = Field(default=None, ge=0, description="At most this many faults per process.")
    seed: int = 0
    tables: list[str] = Field(default_factory=lambda: ["*"], min_length=1)

    @classmethod
    def from_config(cls, config: EngineConfig) -> FaultySettings:
        """Check ``engines.faulty``; a mistake is a :class:`ConfigError` naming ``engines.faulty.<key>``."""
        try:
            return cls.model_validate(config.engine_settings(ENGINE))
        except ValidationError as exc:
            err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
            key = ".".join(str(p) for p in ("engines", ENGINE, *err["loc"]))
            if err["type"] == "extra_forbidden":
                msg = f"unknown key; allowed keys here: {', '.join(sorted(cls.model_fields))}"
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"{config.path}: {key}: {msg}") from exc


class FaultyEngine(LocalEngine):
    """The local engine with commit faults, file faults and crashes injected as its settings say."""

    name = ENGINE
    specs = ()  # it declares no strategy of its own: it carries out the local engine's
    strategies = LocalEngine.strategies

    def __init__(self, config: Config, settings: FaultySettings | None = None) -> None:
        super().__init__(config)
        self.settings = settings if settings is not None else FaultySettings.from_config(config)
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str, str, str], int] = {}
        self.faults = 0
        self.commits = 0

    @classmethod
    def check_config(cls, config: EngineConfig) -> None:
        """``engines.faulty`` as :class:`FaultySettings` reads it."""
        FaultySettings.from_config(config)

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        """The local planner's choice, or ``engines.faulty.strategy`` when it names one."""
        if self.settings.strategy == "auto":
            strategy, reason = super().choose_strategy(facts)
        else:
            strategy, reason = self.settings.strategy, f"{self.settings.strategy}: engines.faulty.strategy"
        return strategy, f"{reason} (with the faulty engine's faults)"

    def applies(self, task: str) -> bool:
        """Whether faults are injected into the copy of ``task`` (a ``catalog.ns.table`` name)."""
        return any(fnmatch.fnmatchcase(task, pattern) for pattern in self.settings.tables)

    def copy(self, job: CopyJob) -> CopyResult:
        """The local copy, its destination's commits going through the injected faults first."""
        self.check_strategy(job)
        if not self.applies(job.task):
            return super().copy(job)
        destination = copy.copy(job.destination)  # the job's own table object is left as it was
        destination.catalog = cast("Catalog", _FaultyCatalog(self, job, job.destination.catalog))
        return super().copy(dataclasses.replace(job, destination=destination))

    def _copy_one(self, job: CopyJob, source_file: DataFile, target: str, existing: int | None, foreign: bool) -> None:
        if self.applies(job.task) and self._fault(
            job, "transient-file", source_file.file_path, self.settings.transient_file_probability
        ):
            raise StorageTransientError(
                f"{job.task}: copying {source_file.file_path}: connection reset by peer (injected by the faulty engine)"
            )
        super()._copy_one(job, source_file, target, existing, foreign)

    # ------------------------------------------------------------------ faults

    def commit_fault(self, job: CopyJob, batch: str) -> str | None:
        """The fault the commit of ``batch`` meets in this attempt of the copy, if any (reported once)."""
        if self._fault(job, "terminal-commit", batch, self.settings.terminal_commit_probability):
            return "terminal-commit"
        if self._fault(job, "transient-commit", batch, self.settings.transient_commit_probability):
            return "transient-commit"
        return None

    def after_commit(self, job: CopyJob, batch: str) -> None:
        """Count the commit; the N-th one ends the process before anything else hears of it."""
        with self._lock:
            self.commits += 1
            crash = self.settings.crash_after_commits is not None and self.commits >= self.settings.crash_after_commits
        if crash:
            job.on_event(
                "fault",
                f"faulty engine: the process ends right after commit {self.commits} (batch {batch} of {job.task})",
                {"fault": "crash", "task": job.task, "batch": batch, "commits": self.commits},
            )
            kill_self()

    def at_step(self, task: str, step: str) -> None:
        """A cut-over step of ``task`` did its work; ``crash_at_step`` ends the process here."""
        if self.settings.crash_at_step == step and self.applies(task):
            kill_self()

    def replay(self, job: CopyJob, delta: FileDelta, operation: str) -> ReplayCommit:
        """The local replay, its destination commit going through the injected faults first."""
        if not self.applies(job.task):
            return super().replay(job, delta, operation)
        destination = copy.copy(job.destination)
        destination.catalog = cast("Catalog", _FaultyCatalog(self, job, job.destination.catalog))
        return super().replay(dataclasses.replace(job, destination=destination), delta, operation)

    def _fault(self, job: CopyJob, kind: str, key: str, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            attempt = self._attempts.get((kind, job.task, key), 0) + 1
            self._attempts[(kind, job.task, key)] = attempt
            if self.settings.fault_limit is not None and self.faults >= self.settings.fault_limit:
                return False
            draw = random.Random(f"{self.settings.seed}\x00{kind}\x00{job.task}\x00{key}\x00{attempt}").random()
            if draw >= probability:
                return False
            self.faults += 1
        job.on_event(
            "fault",
            f"faulty engine: {kind} fault injected into {job.task} ({key}, attempt {attempt})",
            {"fault": kind, "task": job.task, "key": key, "attempt": attempt},
        )
        return True


def kill_self() -> None:
    """End this process as ``kill -9`` does: SIGKILL cannot be caught, so nothing runs after it."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("SIGKILL did not end the process")  # not reached: the kernel ends it first


class _FaultyCatalog:
    """The destination's catalog for one attempt of a copy, each batch commit passed through the faults.

    A transient fault makes every try of that commit in this attempt lose its race, so the catalog
    client's own retries (PyIceberg retries a lost race a few times) give up and the runner's retry
    with backoff is what recovers.
    """

    def __init__(self, engine: FaultyEngine, job: CopyJob, catalog: Catalog) -> None:
        self._engine = engine
        self._job = job
        self._catalog = catalog
        self._faults: dict[str, str | None] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._catalog, name)

    def commit_table(self, table: Table, requirements: tuple[Any, ...], updates: tuple[Any, ...]) -> Any:
        batch = _batch_of(updates)
        if batch is None:  # not a batch of the copy: left alone
            return self._catalog.commit_table(table, requirements, updates)
        if batch not in self._faults:
            self._faults[batch] = self._engine.commit_fault(self._job, batch)
        fault = self._faults[batch]
        if fault == "terminal-commit":
            raise DestinationWriteError(
                f"{self._job.task}: the destination catalog refused the commit of batch {batch} "
                "(a terminal failure injected by the faulty engine, engines.faulty.terminal_commit_probability)"
            )
        if fault == "transient-commit":
            raise CommitFailedException(f"table moved on during the commit of batch {batch} (injected)")
        response = self._catalog.commit_table(table, requirements, updates)
        self._engine.after_commit(self._job, batch)
        return response


def _batch_of(updates: tuple[Any, ...]) -> str | None:
    """The ``icebridge.batch`` marker of the snapshot a commit adds, if it adds one."""
    from pyiceberg.table.update import AddSnapshotUpdate

    for update in updates:
        if isinstance(update, AddSnapshotUpdate) and update.snapshot.summary is not None:
            props = update.snapshot.summary.additional_properties
            if props.get("icebridge.batch") is not None:
                return str(props["icebridge.batch"])
            if props.get("icebridge.replay") is not None:  # a sync's commit, named by the source snapshot
                return f"replay-{props['icebridge.source-snapshot-id']}"
    return None
