"""The Databricks workspace as IceBridge reaches it: settings, the SDK client and its errors, SQL statements.

Shared by the ``databricks`` engine (job runs) and ``icebridge.governance.unity`` (Unity Catalog
checks and grants); the Databricks SDK is imported only when a call is made (extra
``icebridge[databricks]``).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from icebridge import __version__
from icebridge.engines import databricks_sql as dsql
from icebridge.errors import (
    ConfigError,
    DatabricksApiError,
    DatabricksApiTransientError,
    DatabricksUnreachableError,
    EngineNotInstalledError,
    IceBridgeError,
    TerminalError,
    TransientError,
)

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from icebridge.config import Config
    from icebridge.engines import EngineConfig
    from icebridge.model import TableRef

T = TypeVar("T")

ENGINE = "databricks"


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


def load_settings(config: EngineConfig) -> DatabricksSettings:
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


# --------------------------------------------------------------------------------- statement execution


def run_statement(
    api: Api, settings: DatabricksSettings, statement: str, parameters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run one statement on the SQL warehouse; rows as dicts by column name (lower-cased)."""
    from databricks.sdk.service.sql import (
        Disposition,
        ExecuteStatementRequestOnWaitTimeout,
        Format,
        StatementParameterListItem,
        StatementState,
    )

    if not settings.warehouse_id:
        raise TerminalError("no SQL warehouse configured: set engines.databricks.warehouse_id")
    warehouse_id = settings.warehouse_id
    params = [StatementParameterListItem(name=k, value=v, type="STRING") for k, v in (parameters or {}).items()]
    response = api.call(
        "POST /api/2.0/sql/statements",
        lambda w: w.statement_execution.execute_statement(
            statement=statement,
            warehouse_id=warehouse_id,
            wait_timeout=f"{settings.statement_wait_seconds}s",
            on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CONTINUE,
            disposition=Disposition.INLINE,
            format=Format.JSON_ARRAY,
            parameters=params or None,
        ),
    )
    # A stopped warehouse takes minutes to start; keep asking within the run timeout.
    deadline = time.monotonic() + settings.run_timeout_seconds
    pending = {StatementState.PENDING, StatementState.RUNNING}
    while response.status is not None and response.status.state in pending:
        if time.monotonic() > deadline:
            raise TransientError(f"SQL warehouse {warehouse_id} did not answer within {settings.run_timeout_seconds}s")
        time.sleep(settings.poll_interval_seconds)
        response = api.call(
            "GET /api/2.0/sql/statements", functools.partial(_get_statement, str(response.statement_id))
        )
    status = response.status
    if status is None or status.state != StatementState.SUCCEEDED:
        state = status.state.value if status is not None and status.state is not None else "UNKNOWN"
        error = status.error.message if status is not None and status.error is not None else ""
        raise TerminalError(api.redact(f"SQL warehouse {warehouse_id}: statement {state}: {error}".rstrip(": ")))
    columns = [
        (col.name or "").lower()
        for col in (response.manifest.schema.columns or [] if response.manifest and response.manifest.schema else [])
    ]
    rows: list[dict[str, Any]] = []
    chunk = response.result
    while chunk is not None:
        for values in chunk.data_array or []:
            rows.append(dict(zip(columns, values, strict=False)))
        if chunk.next_chunk_index is None:
            break
        chunk = api.call(
            "GET /api/2.0/sql/statements/result/chunks",
            functools.partial(_get_chunk, str(response.statement_id), chunk.next_chunk_index),
        )
    return rows


def _get_statement(statement_id: str, w: Any) -> Any:
    return w.statement_execution.get_statement(statement_id)


def _get_chunk(statement_id: str, index: int, w: Any) -> Any:
    return w.statement_execution.get_statement_result_chunk_n(statement_id, index)
