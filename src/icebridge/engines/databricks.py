"""The ``databricks`` engine: Databricks copies the table, on a Photon job cluster, in one SQL statement.

For each table IceBridge submits a one-time run (``jobs/runs/submit``) whose single
``spark_python_task`` runs, on a new Photon job cluster::

    ALTER SCHEMA <dst schema> ENABLE PREDICTIVE OPTIMIZATION
    CREATE TABLE IF NOT EXISTS <dst> DEEP CLONE <src> VERSION AS OF <pinned snapshot> TBLPROPERTIES (...)

and, when Databricks refuses the DEEP CLONE, a second run with
``CREATE TABLE <dst> USING ICEBERG TBLPROPERTIES (...) AS SELECT * FROM <src> VERSION AS OF ...``.
Runs are polled to completion, retried on transient failures with backoff, cancelled when the
migration is interrupted, and at most ``max_concurrent_runs`` are in flight per engine.

The whole table is one atomic commit in Databricks, so the engine reports exactly one batch (0).
The commit's markers travel as table properties set by the same statement (``icebridge.task``,
``icebridge.source-snapshot-id``); a destination carrying them is done. See docs/databricks.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from icebridge.engines import BaseEngine, BatchCommit, CatalogAccess, CopyJob, CopyResult, StrategySpec
from icebridge.engines import databricks_sql as dsql
from icebridge.engines.databricks_client import ENGINE, Api, load_settings
from icebridge.errors import (
    DatabricksRunCancelled,
    DatabricksRunFailed,
    DatabricksRunTransientError,
    DestinationConflictError,
    DestinationWriteError,
    IceBridgeError,
    TerminalError,
    TransientError,
)
from icebridge.model import Finding, PlanItem, TableFacts

if TYPE_CHECKING:
    from icebridge.config import Config
    from icebridge.engines import EngineConfig

log = logging.getLogger(__name__)

TASK_KEY = "icebridge_copy"
# Error classes that mean the statement can never work whatever the SQL: no CTAS fallback for these.
_SQLSTATE_UNSUPPORTED = "0A"


# ------------------------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class RunOutcome:
    """How one job run ended, as the engine classifies it."""

    run_id: int
    kind: Literal["success", "refused", "terminal", "transient", "cancelled"]
    message: str
    result: dict[str, Any] | None = None


def _result_from_logs(logs: str | None) -> dict[str, Any] | None:
    if not logs:
        return None
    for line in reversed(logs.splitlines()):
        if line.startswith(dsql.RESULT_MARKER):
            try:
                parsed = json.loads(line[len(dsql.RESULT_MARKER) :])
            except json.JSONDecodeError:
                return None
            return parsed if isinstance(parsed, dict) else None
    return None


class DatabricksEngine(BaseEngine):
    """Copies a foreign Iceberg table into a managed one with DEEP CLONE (CTAS fallback) on Databricks."""

    name = ENGINE
    # Databricks keeps the markers as table properties: the destination's snapshots carry none
    specs = (StrategySpec(ENGINE, ENGINE, byte_copy=False, validation_levels=(1, 2, 4), remote_markers=True),)
    strategies = frozenset({ENGINE})

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = load_settings(config)
        self.api = Api(config, self.settings)
        # Shared by every thread copying through this engine: the cluster quota is per workspace.
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrent_runs)
        self._script_lock = threading.Lock()
        self._script_path: str | None = None

    # -- planning and pre-flight -----------------------------------------------------------------

    @classmethod
    def installed(cls) -> bool:
        """The Databricks SDK can be imported (the ``icebridge[databricks]`` extra)."""
        import importlib.util

        try:
            return importlib.util.find_spec("databricks.sdk") is not None
        except ModuleNotFoundError:  # no 'databricks' package at all
            return False

    @classmethod
    def check_config(cls, config: EngineConfig) -> None:
        """``engines.databricks`` as :class:`DatabricksSettings` reads it."""
        load_settings(config)

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        """databricks for every table."""
        return ENGINE, "databricks: DEEP CLONE of the pinned snapshot (CTAS if refused) as a Databricks job run"

    def preflight(self, items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
        """Unity Catalog decides, through the workspace: privileges, external access, masks and row filters."""
        from icebridge.governance.unity import check_table

        findings: list[Finding] = []
        for item in items:
            if item.destination is not None:
                findings.extend(check_table(self.api, self.settings, item.source, item.destination))
        return findings

    # -- the job ---------------------------------------------------------------------------------

    @property
    def script_path(self) -> str:
        digest = hashlib.sha256(dsql.JOB_SCRIPT.encode()).hexdigest()[:12]
        return f"{self.settings.workspace_dir.rstrip('/')}/icebridge_copy_{digest}.py"

    def ensure_script(self) -> str:
        """Upload the job script once per engine (its name carries its hash, so versions never clash)."""
        with self._script_lock:
            if self._script_path is None:
                from databricks.sdk.service.workspace import ImportFormat

                path = self.script_path
                content = base64.b64encode(dsql.JOB_SCRIPT.encode()).decode()
                self.api.call("workspace mkdirs", lambda w: w.workspace.mkdirs(self.settings.workspace_dir))
                self.api.call(
                    "workspace import",
                    lambda w: w.workspace.import_(path, content=content, format=ImportFormat.AUTO, overwrite=True),
                )
                self._script_path = path
            return self._script_path

    def statements(self, job: CopyJob, mode: Literal["clone", "ctas"], replace: bool) -> list[tuple[str, str]]:
        """The (step, SQL) pairs one run executes, in order."""
        src = self.settings.uc_table(job.source_ref)
        dst = self.settings.uc_table(job.destination_ref)
        snapshot = job.snapshot_id if self.settings.time_travel else None
        properties = {
            dsql.TASK_PROPERTY: job.task,
            dsql.SNAPSHOT_PROPERTY: str(job.snapshot_id),
            dsql.MODE_PROPERTY: mode,
        }
        if mode == "clone":
            return [
                ("enable-predictive-optimization", dsql.enable_predictive_optimization(dst)),
                ("clone", dsql.deep_clone(src, dst, snapshot, properties, replace)),
            ]
        source = job.source
        columns = dsql.partition_columns(source.schema(), source.spec())
        return [("ctas", dsql.ctas(src, dst, snapshot, properties, replace, columns))]

    def run_name(self, job: CopyJob) -> str:
        """Deterministic per task and pinned snapshot: a resumed migrate finds a run still in flight by it."""
        digest = hashlib.sha256(f"{job.task}\x00{job.snapshot_id}".encode()).hexdigest()[:16]
        return f"icebridge-copy {digest} {job.task}"[:4096]

    def _submit(self, job: CopyJob, statements: list[tuple[str, str]], token: str) -> int:
        from databricks.sdk.service import compute, jobs

        c = self.settings.cluster
        cluster = compute.ClusterSpec(
            spark_version=c.spark_version,
            node_type_id=c.node_type_id,
            instance_pool_id=c.instance_pool_id,
            num_workers=c.num_workers,
            runtime_engine=compute.RuntimeEngine(c.runtime_engine),
            data_security_mode=compute.DataSecurityMode(c.data_security_mode),
            single_user_name=c.single_user_name,
            policy_id=c.policy_id,
            spark_conf=dict(c.spark_conf) or None,
            custom_tags={"icebridge": "copy", **c.custom_tags},
        )
        task = jobs.SubmitTask(
            task_key=TASK_KEY,
            new_cluster=cluster,
            spark_python_task=jobs.SparkPythonTask(
                python_file=self.ensure_script(),
                parameters=[dsql.job_parameter(statements)],
                source=jobs.Source.WORKSPACE,
            ),
            timeout_seconds=self.settings.run_timeout_seconds,
        )
        waiter = self.api.call(
            "POST /api/2.2/jobs/runs/submit",
            lambda w: w.jobs.submit(
                run_name=self.run_name(job),
                tasks=[task],
                idempotency_token=token,
                timeout_seconds=self.settings.run_timeout_seconds,
            ),
        )
        return int(waiter.run_id)

    def _active_run(self, job: CopyJob) -> int | None:
        """A run of this task and snapshot still in flight from an earlier, interrupted migrate."""
        from databricks.sdk.service import jobs

        name = self.run_name(job)
        runs = self.api.call(
            "GET /api/2.2/jobs/runs/list",
            lambda w: list(w.jobs.list_runs(active_only=True, run_type=jobs.RunType.SUBMIT_RUN)),
        )
        for run in runs:
            if run.run_name == name and run.run_id is not None:
                return int(run.run_id)
        return None

    # -- polling ---------------------------------------------------------------------------------

    def _sleep(self, job: CopyJob, seconds: float) -> None:
        if job.cancel is not None:
            job.cancel.wait(seconds)
        else:
            time.sleep(seconds)

    def _cancel(self, run_id: int) -> None:
        try:
            self.api.call("POST /api/2.2/jobs/runs/cancel", lambda w: w.jobs.cancel_run(run_id))
        except IceBridgeError as exc:
            log.warning("could not cancel Databricks run %s: %s", run_id, exc)

    def wait(self, job: CopyJob, run_id: int, mode: Literal["clone", "ctas"]) -> RunOutcome:
        """Poll ``jobs/runs/get`` until the run ends; cancel it when the migration is interrupted."""
        from databricks.sdk.service.jobs import RunLifeCycleState

        ended = {RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR}
        # The Jobs API enforces run_timeout_seconds itself; our own bound only guards a run that never reports.
        deadline = time.monotonic() + self.settings.run_timeout_seconds + 3 * self.settings.poll_interval_seconds + 60
        while True:
            if job.cancel is not None and job.cancel.is_set():
                self._cancel(run_id)
                raise DatabricksRunCancelled(f"{job.task}: interrupted; Databricks run {run_id} cancelled")
            try:
                run = self.api.call("GET /api/2.2/jobs/runs/get", lambda w: w.jobs.get_run(run_id))
            except TransientError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning("%s: polling run %s failed, will poll again: %s", job.task, run_id, exc)
                self._sleep(job, self.settings.poll_interval_seconds)
                continue
            state = run.state
            if state is not None and state.life_cycle_state in ended:
                return self._classify(job, run, mode)
            if time.monotonic() > deadline:
                self._cancel(run_id)
                raise DatabricksRunFailed(
                    f"{job.task}: Databricks run {run_id} did not finish within {self.settings.run_timeout_seconds}s; "
                    "cancelled it; raise engines.databricks.run_timeout_seconds"
                )
            self._sleep(job, self.settings.poll_interval_seconds)

    def _run_output(self, run: Any) -> dict[str, Any] | None:
        task_run_ids = [t.run_id for t in (run.tasks or []) if t.task_key == TASK_KEY and t.run_id is not None]
        task_run_id = task_run_ids[0] if task_run_ids else run.run_id
        try:
            output = self.api.call("GET /api/2.2/jobs/runs/get-output", lambda w: w.jobs.get_run_output(task_run_id))
        except IceBridgeError as exc:
            log.warning("no output for Databricks run %s: %s", task_run_id, exc)
            return None
        return _result_from_logs(output.logs)

    def _refused(self, result: dict[str, Any]) -> bool:
        """Did Databricks refuse the DEEP CLONE itself (so CTAS may still work)?"""
        if result.get("step") != "clone":
            return False
        error_class = str(result.get("error_class") or "")
        sqlstate = str(result.get("sqlstate") or "")
        return (
            sqlstate.startswith(_SQLSTATE_UNSUPPORTED)
            or "CLONE" in error_class.upper()
            or error_class in self.settings.fallback_error_classes
        )

    def _classify(self, job: CopyJob, run: Any, mode: Literal["clone", "ctas"]) -> RunOutcome:
        from databricks.sdk.service.jobs import RunLifeCycleState, RunResultState, TerminationTypeType

        run_id = int(run.run_id)
        state = run.state
        where = f"Databricks run {run_id}" + (f" ({run.run_page_url})" if run.run_page_url else "")
        state_message = self.api.redact(state.state_message or "")
        if state.result_state == RunResultState.SUCCESS:
            return RunOutcome(run_id, "success", f"{where} succeeded", self._run_output(run))
        if state.result_state == RunResultState.CANCELED:
            return RunOutcome(run_id, "terminal", f"{where} was cancelled in the workspace: {state_message}")
        if state.result_state == RunResultState.TIMEDOUT:
            return RunOutcome(
                run_id,
                "terminal",
                f"{where} exceeded {self.settings.run_timeout_seconds}s; raise engines.databricks.run_timeout_seconds",
            )
        result = self._run_output(run)
        if result is not None and not result.get("ok", False):
            error = self.api.redact(
                f"[{result.get('error_class') or result.get('exception')}] {result.get('message', '')}".strip()
            )
            sqlstate = f" (SQLSTATE {result['sqlstate']})" if result.get("sqlstate") else ""
            message = f"{where}: step {result.get('step')!r} failed: {error}{sqlstate}"
            if mode == "clone" and self._refused(result):
                return RunOutcome(run_id, "refused", message, result)
            return RunOutcome(run_id, "terminal", message, result)
        details = getattr(run, "status", None)
        termination = getattr(details, "termination_details", None) if details is not None else None
        reason = state_message or (termination.message if termination and termination.message else "")
        code = f" [{termination.code.value}]" if termination and termination.code else ""
        message = f"{where} ended {state.life_cycle_state.value}/{getattr(state.result_state, 'value', '-')}{code}"
        message += f": {self.api.redact(reason)}" if reason else ""
        if termination is not None and termination.type == TerminationTypeType.CLIENT_ERROR:
            return RunOutcome(run_id, "terminal", message + "; fix engines.databricks.cluster or the workspace setup")
        if state.life_cycle_state == RunLifeCycleState.INTERNAL_ERROR or result is None:
            return RunOutcome(run_id, "transient", message)
        return RunOutcome(run_id, "terminal", message)

    # -- destination -----------------------------------------------------------------------------

    def _destination_properties(self, dst: dsql.UcTable) -> dict[str, str] | None:
        """The destination's table properties as Unity Catalog reports them, or None when it does not exist."""
        exists = self.api.call(
            "GET /api/2.1/unity-catalog/tables/exists", lambda w: w.tables.exists(dst.full_name).table_exists
        )
        if not exists:
            return None
        info = self.api.call("GET /api/2.1/unity-catalog/tables", lambda w: w.tables.get(dst.full_name))
        return dict(info.properties or {})

    def _ours(self, job: CopyJob, properties: dict[str, str]) -> bool:
        return properties.get(dsql.TASK_PROPERTY) == job.task and properties.get(dsql.SNAPSHOT_PROPERTY) == str(
            job.snapshot_id
        )

    def _plan_replace(self, job: CopyJob, dst: dsql.UcTable, properties: dict[str, str]) -> bool:
        """The destination exists without our markers: only IceBridge's own empty scaffold may be replaced."""
        if properties.get(dsql.TASK_PROPERTY) == job.task:
            raise DestinationConflictError(
                f"{job.task}: the destination {dst.full_name} holds a copy of source snapshot "
                f"{properties.get(dsql.SNAPSHOT_PROPERTY)}, not {job.snapshot_id}; drop it and migrate again"
            )
        try:
            job.destination.refresh()
            snapshots = list(job.destination.metadata.snapshots)
        except Exception as exc:
            raise DestinationConflictError(
                f"{job.task}: the destination {dst.full_name} exists and IceBridge cannot tell whether it is empty "
                f"({type(exc).__name__}); drop it or map the source elsewhere"
            ) from exc
        if snapshots:
            raise DestinationConflictError(
                f"{job.task}: the destination {dst.full_name} already holds data not written by IceBridge; "
                "refusing to replace it — drop it or map the source elsewhere"
            )
        return True

    def _commit(self, job: CopyJob) -> BatchCommit:
        """Batch 0 with what the destination now holds (zeros when IceBridge cannot read it here)."""
        rows = files = size = 0
        snapshot_id: int | None = None
        try:
            job.destination.refresh()
            snapshot = job.destination.current_snapshot()
            if snapshot is not None:
                snapshot_id = snapshot.snapshot_id
                summary = snapshot.summary.additional_properties if snapshot.summary else {}
                rows = int(summary.get("total-records", 0))
                files = int(summary.get("total-data-files", 0))
                size = int(summary.get("total-files-size", 0))
        except Exception as exc:
            log.warning("%s: destination statistics unavailable: %s", job.task, exc)
        return BatchCommit(batch=0, dest_snapshot_id=snapshot_id, files=files, rows=rows, bytes=size)

    def _done(self, job: CopyJob) -> CopyResult:
        if 0 in job.committed_batches:
            return CopyResult(batches_total=1, batches_skipped=1, commits=())
        commit = self._commit(job)
        job.on_commit(commit)
        return CopyResult(batches_total=1, batches_skipped=0, commits=(commit,))

    # -- copy ------------------------------------------------------------------------------------

    def copy(self, job: CopyJob) -> CopyResult:
        """Clone the pinned snapshot in one Databricks run (CTAS if the clone is refused); batch 0 is the table."""
        self.check_strategy(job)
        dst = self.settings.uc_table(job.destination_ref)
        problem = dst.creatable_problem()
        if problem:
            raise DestinationWriteError(
                f"{job.task}: Unity Catalog cannot create {dst.full_name}: {problem}; rename it in the mapping rule"
            )
        if not self.settings.time_travel:
            self._check_source_current(job)

        properties = self._destination_properties(dst)
        if properties is not None and self._ours(job, properties):
            return self._done(job)
        adopted = self._active_run(job)
        replace = False
        if properties is not None and adopted is None:
            replace = self._plan_replace(job, dst, properties)

        mode: Literal["clone", "ctas"] = "ctas" if self.settings.copy_mode == "ctas" else "clone"
        nonce = uuid.uuid4().hex
        attempt = 0
        while True:
            attempt += 1
            outcome = self._one_run(job, mode, replace, nonce, attempt, adopted)
            adopted = None
            if outcome.kind == "success":
                break
            if outcome.kind == "refused" and self.settings.copy_mode == "auto":
                log.warning("%s: DEEP CLONE refused, falling back to CTAS: %s", job.task, outcome.message)
                mode = "ctas"
                attempt -= 1  # the fallback is not a retry of the same statement
                continue
            if outcome.kind == "transient" and attempt < self.settings.max_run_attempts:
                delay = self.settings.retry_backoff_seconds * (2 ** (attempt - 1))
                log.warning("%s: %s; retrying in %.1fs", job.task, outcome.message, delay)
                self._sleep(job, delay)
                if job.cancel is not None and job.cancel.is_set():
                    raise DatabricksRunCancelled(f"{job.task}: interrupted before retrying")
                continue
            if outcome.kind == "transient":
                raise DatabricksRunTransientError(
                    f"{job.task}: {outcome.message} (after {attempt} attempts); run migrate again to retry"
                )
            raise DatabricksRunFailed(f"{job.task}: {outcome.message}")

        properties = self._destination_properties(dst)
        if properties is None or not self._ours(job, properties):
            raise DestinationConflictError(
                f"{job.task}: Databricks run {outcome.run_id} succeeded but {dst.full_name} does not carry "
                f"IceBridge's markers ({dsql.TASK_PROPERTY}, {dsql.SNAPSHOT_PROPERTY}): another table was there first "
                "and CREATE TABLE IF NOT EXISTS left it alone; drop it and migrate again"
            )
        commit = self._commit(job)
        job.on_progress(commit.files, commit.bytes)
        job.on_event("databricks-run", outcome.message, {"run_id": outcome.run_id, "mode": mode})
        job.on_commit(commit)
        return CopyResult(batches_total=1, batches_skipped=0, commits=(commit,))

    def _one_run(
        self,
        job: CopyJob,
        mode: Literal["clone", "ctas"],
        replace: bool,
        nonce: str,
        attempt: int,
        adopted: int | None,
    ) -> RunOutcome:
        """Take a concurrency slot, submit (or adopt) one run and wait for it."""
        while not self._slots.acquire(timeout=min(self.settings.poll_interval_seconds, 1.0)):
            if job.cancel is not None and job.cancel.is_set():
                raise DatabricksRunCancelled(f"{job.task}: interrupted while waiting for a free run slot")
        try:
            if adopted is not None:
                log.info("%s: resuming Databricks run %s from an earlier migrate", job.task, adopted)
                run_id = adopted
            else:
                # A fresh token per attempt: Databricks returns the first run again for a token it has seen,
                # and a failed run must not be returned for the retry.
                token = hashlib.sha256(f"{job.task}\x00{job.snapshot_id}\x00{mode}\x00{attempt}\x00{nonce}".encode())
                run_id = self._submit(job, self.statements(job, mode, replace), token.hexdigest()[:64])
                log.info("%s: submitted Databricks run %s (%s, attempt %d)", job.task, run_id, mode, attempt)
            return self.wait(job, run_id, mode)
        finally:
            self._slots.release()

    def _check_source_current(self, job: CopyJob) -> None:
        """Without time travel the run reads the source's current state: it must still be the pinned snapshot."""
        job.source.refresh()
        current = job.source.current_snapshot()
        if current is None or current.snapshot_id != job.snapshot_id:
            raise TerminalError(
                f"{job.task}: engines.databricks.time_travel is off and the source moved on from the pinned "
                f"snapshot {job.snapshot_id}; turn time_travel on or re-plan this table"
            )
