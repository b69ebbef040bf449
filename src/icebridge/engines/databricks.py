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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from icebridge import __version__
from icebridge.engines import BatchCommit, CopyJob, CopyResult, EngineNotInstalledError
from icebridge.engines import databricks_sql as dsql
from icebridge.errors import (
    ConfigError,
    DestinationConflictError,
    DestinationWriteError,
    IceBridgeError,
    TerminalError,
    TransientError,
)
from icebridge.model import Strategy, TableRef

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from icebridge.config import Config

log = logging.getLogger(__name__)
T = TypeVar("T")

ENGINE = "databricks"
TASK_KEY = "icebridge_copy"
# Error classes that mean the statement can never work whatever the SQL: no CTAS fallback for these.
_SQLSTATE_UNSUPPORTED = "0A"


# ------------------------------------------------------------------------------------------- errors


class DatabricksUnreachableError(TransientError):
    """The workspace did not answer (connection refused, timeout, DNS); the message names the host."""


class DatabricksApiError(TerminalError):
    """The workspace refused a request (authentication, permission, bad request)."""


class DatabricksApiTransientError(TransientError):
    """The workspace answered 429/503/500 or similar and the SDK's own retries ran out."""


class DatabricksRunFailed(TerminalError):
    """The job run failed for a reason another try cannot fix (a SQL error, a cluster spec the workspace refuses)."""


class DatabricksRunTransientError(TransientError):
    """The job run failed for a reason another try may fix (cluster launch failure, INTERNAL_ERROR)."""


class DatabricksRunCancelled(TransientError):
    """The migration was interrupted; the run was cancelled and the next migrate resumes it."""


# ----------------------------------------------------------------------------------------- settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterSettings(_Strict):
    """The job cluster each run starts (``new_cluster`` of the submitted task)."""

    spark_version: str = Field(default="16.4.x-scala2.12", description="DBR 16.4 LTS+ is needed for managed Iceberg.")
    node_type_id: str | None = None
    instance_pool_id: str | None = None
    num_workers: int = Field(default=2, ge=0, le=10000)
    runtime_engine: Literal["PHOTON", "STANDARD"] = "PHOTON"
    data_security_mode: Literal["SINGLE_USER", "USER_ISOLATION", "DATA_SECURITY_MODE_DEDICATED"] = "SINGLE_USER"
    single_user_name: str | None = None
    policy_id: str | None = None
    spark_conf: dict[str, str] = Field(default_factory=dict)
    custom_tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_nodes(self) -> ClusterSettings:
        if not self.node_type_id and not self.instance_pool_id:
            raise ValueError("set node_type_id (e.g. i3.xlarge, Standard_DS3_v2, n2-highmem-4) or instance_pool_id")
        return self


class DatabricksSettings(_Strict):
    """``engines.databricks`` in icebridge.yaml."""

    host: str | None = Field(default=None, description="Workspace URL; else from the profile or DATABRICKS_HOST.")
    profile: str | None = Field(default=None, description="A ~/.databrickscfg profile.")
    auth_type: str | None = Field(default=None, description="pat, oauth-m2m, databricks-cli, azure-cli, ...")
    token: str | None = Field(default=None, description="Personal access token; use ${ENV}.")
    client_id: str | None = Field(default=None, description="Service principal application id (OAuth M2M).")
    client_secret: str | None = Field(default=None, description="OAuth M2M secret; use ${ENV}.")
    warehouse_id: str | None = Field(default=None, description="SQL warehouse for pre-flight statements.")
    cluster: ClusterSettings
    workspace_dir: str = Field(default="/Shared/icebridge", description="Where the job script is uploaded.")
    catalog_map: dict[str, str] = Field(default_factory=dict, description="IceBridge catalog name -> UC catalog.")
    copy_mode: Literal["auto", "clone", "ctas"] = "auto"
    fallback_error_classes: list[str] = Field(
        default_factory=list, description="Extra Spark error classes of a refused DEEP CLONE that fall back to CTAS."
    )
    time_travel: bool = Field(default=True, description="Read the pinned snapshot with VERSION AS OF.")
    max_concurrent_runs: int = Field(default=4, ge=1, le=1000)
    max_run_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff_seconds: float = Field(default=30.0, ge=0)
    poll_interval_seconds: float = Field(default=15.0, gt=0)
    run_timeout_seconds: int = Field(default=6 * 3600, ge=1)
    http_timeout_seconds: float = Field(default=60.0, gt=0)
    retry_timeout_seconds: int = Field(default=300, ge=1)
    statement_wait_seconds: int = Field(default=30, ge=5, le=50)

    @model_validator(mode="after")
    def _workspace_dir_absolute(self) -> DatabricksSettings:
        if not self.workspace_dir.startswith("/"):
            raise ValueError(f"workspace_dir {self.workspace_dir!r} must be an absolute workspace path")
        return self

    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.client_secret) if s]

    def uc_table(self, ref: TableRef) -> dsql.UcTable:
        """Our catalog.namespace.table as a Unity Catalog three-part name (via ``catalog_map``)."""
        if len(ref.namespace) != 1:
            raise TerminalError(
                f"{ref}: Unity Catalog has exactly one schema level, this table has namespace "
                f"{ref.namespace_str!r}; map it to a one-level namespace"
            )
        return dsql.UcTable(self.catalog_map.get(ref.catalog, ref.catalog), ref.namespace[0], ref.name)


def _location(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def load_settings(config: Config) -> DatabricksSettings:
    """``engines.databricks`` checked strictly; a mistake is a ConfigError naming ``engines.databricks.<key>``."""
    raw = config.engine_settings(ENGINE)
    try:
        return DatabricksSettings.model_validate(raw)
    except ValidationError as exc:
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        key = f"engines.{ENGINE}{_location(tuple(err['loc']))}"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{config.path}: {key}: {msg}") from exc


# ----------------------------------------------------------------------------------------- client


class _SecretLogFilter(logging.Filter):
    """Hides configured secrets in the SDK's own log records (its debug log prints response bodies)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            hidden = message
            for secret in self.secrets:
                hidden = hidden.replace(secret, "***")
            if hidden != message:
                record.msg, record.args = hidden, None
        return True


_SDK_LOG_FILTER = _SecretLogFilter()


def _protect_sdk_logs(secrets: list[str]) -> None:
    _SDK_LOG_FILTER.secrets.update(secrets)
    for name in ("databricks.sdk", "databricks.sdk.useragent"):
        sdk_logger = logging.getLogger(name)
        if _SDK_LOG_FILTER not in sdk_logger.filters:
            sdk_logger.addFilter(_SDK_LOG_FILTER)


class Redactor:
    """Hides every configured secret in text that may reach a log or an error."""

    def __init__(self, config: Config, settings: DatabricksSettings) -> None:
        self._config = config
        self._secrets = [s for s in settings.secrets() if len(s) >= 4]
        _protect_sdk_logs(self._secrets)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return self._config.redact(text)


def _sdk() -> Any:
    try:
        import databricks.sdk as sdk
    except ImportError as exc:
        raise EngineNotInstalledError(
            f"the databricks engine needs the Databricks SDK ({exc.name}): pip install 'icebridge[databricks]'"
        ) from exc
    return sdk


def _is_network_failure(exc: BaseException) -> bool:
    """A timeout or refused connection anywhere in the cause chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | ConnectionError):
            return True
        try:
            import requests

            if isinstance(current, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
                return True
        except ImportError:  # pragma: no cover - requests comes with the SDK
            pass
        current = current.__cause__ or current.__context__
    return False


def build_client(config: Config, settings: DatabricksSettings) -> WorkspaceClient:
    """A ``WorkspaceClient`` from a ``Config`` with our HTTP and retry timeouts (unified auth does the rest).

    The SDK's defaults let one call retry for 5 minutes against an unreachable host; the timeouts
    here bound that, and the failure names the host and the setting to change.
    """
    sdk = _sdk()
    from databricks.sdk.core import Config as SdkConfig

    redact = Redactor(config, settings)
    kwargs: dict[str, Any] = {
        key: value
        for key in ("host", "profile", "auth_type", "token", "client_id", "client_secret")
        if (value := getattr(settings, key))
    }
    host = settings.host or "(host from profile/environment)"
    try:
        sdk_config = SdkConfig(
            **kwargs,
            retry_timeout_seconds=settings.retry_timeout_seconds,
            http_timeout_seconds=settings.http_timeout_seconds,
            product="icebridge",
            product_version=__version__,
        )
    except Exception as exc:
        if _is_network_failure(exc):
            raise DatabricksUnreachableError(
                f"cannot reach Databricks at {host} to authenticate: {redact(str(exc))}; check "
                "engines.databricks.host and the network, or raise http_timeout_seconds / retry_timeout_seconds"
            ) from None
        raise ConfigError(
            f"{config.path}: engines.{ENGINE}: cannot authenticate to {host}: {redact(str(exc))}; set host with "
            "token (PAT) or client_id/client_secret (OAuth M2M), or a profile from ~/.databrickscfg"
        ) from None
    client: WorkspaceClient = sdk.WorkspaceClient(config=sdk_config)
    return client


class Api:
    """Calls the SDK and turns its failures into IceBridge errors with the host, the call and the fix."""

    def __init__(self, config: Config, settings: DatabricksSettings) -> None:
        self.config = config
        self.settings = settings
        self.redact = Redactor(config, settings)
        self._client: WorkspaceClient | None = None
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        if self._client is not None and self._client.config.host:
            return str(self._client.config.host)
        return self.settings.host or "(host from profile/environment)"

    @property
    def w(self) -> WorkspaceClient:
        with self._lock:
            if self._client is None:
                self._client = build_client(self.config, self.settings)
            return self._client

    def call(self, what: str, fn: Callable[[WorkspaceClient], T]) -> T:
        """``fn(client)``, with SDK errors mapped: auth/permission/bad request terminal, throttling transient."""
        client = self.w
        from databricks.sdk import errors as sdk_errors

        try:
            return fn(client)
        except IceBridgeError:
            raise
        except sdk_errors.DatabricksError as exc:
            message = self.redact(f"Databricks at {self.host} refused {what}: {exc}")
            transient = (
                sdk_errors.TooManyRequests,
                sdk_errors.TemporarilyUnavailable,
                sdk_errors.InternalError,
                sdk_errors.DeadlineExceeded,
                sdk_errors.Aborted,
            )
            if isinstance(exc, transient):
                raise DatabricksApiTransientError(f"{message}; retrying later may succeed") from None
            if isinstance(exc, sdk_errors.Unauthenticated):
                raise DatabricksApiError(
                    f"{message}; check the credentials in engines.databricks (token, client_id/client_secret, profile)"
                ) from None
            if isinstance(exc, sdk_errors.PermissionDenied):
                raise DatabricksApiError(f"{message}; grant the principal the permission named above") from None
            raise DatabricksApiError(message) from None
        except Exception as exc:
            if _is_network_failure(exc):
                raise DatabricksUnreachableError(
                    self.redact(
                        f"cannot reach Databricks at {self.host} ({what}): {exc}; check engines.databricks.host and "
                        "the network, or raise engines.databricks.http_timeout_seconds / retry_timeout_seconds"
                    )
                ) from None
            raise

    def check_connection(self) -> str:
        """Who we are in the workspace (one cheap call); raises a clear error when the host is unreachable."""
        me = self.call("GET /api/2.0/preview/scim/v2/Me", lambda w: w.current_user.me())
        return str(me.user_name or me.display_name or me.id)


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


class DatabricksEngine:
    """Copies a foreign Iceberg table into a managed one with DEEP CLONE (CTAS fallback) on Databricks."""

    name = ENGINE
    strategies = frozenset({Strategy.DATABRICKS})

    def __init__(self, config: Config) -> None:
        self.config = config
        self.settings = load_settings(config)
        self.api = Api(config, self.settings)
        # Shared by every thread copying through this engine: the cluster quota is per workspace.
        self._slots = threading.BoundedSemaphore(self.settings.max_concurrent_runs)
        self._script_lock = threading.Lock()
        self._script_path: str | None = None

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
        if job.strategy not in self.strategies:
            raise TerminalError(f"{job.task}: the databricks engine cannot run strategy {job.strategy}")
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

    # -- pre-flight ------------------------------------------------------------------------------

    def preflight(self, source_ref: TableRef, destination_ref: TableRef) -> list[Any]:
        """Unity Catalog pre-flight for one table (see ``icebridge.governance.unity.preflight``)."""
        from icebridge.governance.unity import check_table

        return check_table(self.api, self.settings, source_ref, destination_ref)
