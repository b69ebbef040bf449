"""The Spark engine: runs the generated Spark SQL on a SparkSession (local, a cluster, or Spark Connect).

The scaffold happens before the copy through PyIceberg (it keeps field ids), so the engine's copy is
one statement, ``INSERT INTO dst SELECT cols FROM src VERSION AS OF <pinned snapshot>``, committed as
batch 0. Spark SQL in Spark 3.5 has no clause for snapshot properties, and Iceberg 1.10 reads
``snapshot-property.<key>`` only from write options (not from the session configuration), so the
``SELECT`` half runs as SQL and its result is appended through ``DataFrameWriterV2`` with the
checkpoint markers as ``snapshot-property.*`` options: one Iceberg commit carrying ``icebridge.task``,
``icebridge.source-snapshot-id``, ``icebridge.batching`` and ``icebridge.batch``.

The session gets one Spark catalog per catalog of the configuration, under the same name, so both
engines see the same tables: PyIceberg ``type: sql`` on PostgreSQL becomes Iceberg's JDBC catalog on
the same database (schema version V1, the one PyIceberg writes), with the same ``warehouse`` string.
pyspark is imported only when a session is needed (extra ``icebridge[spark]``).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from icebridge.engines import BaseEngine, BatchCommit, CatalogAccess, CopyJob, CopyResult, StrategySpec
from icebridge.engines.local import FILE_COPY, storage_probe
from icebridge.engines.spark_sql import (
    insert_select_sql,
    render_script,
    select_sql,
    table_name,
)
from icebridge.errors import (
    CatalogMappingError,
    CommitConflictError,
    ConfigError,
    CopyInterrupted,
    DestinationWriteError,
    EngineNotInstalledError,
    TerminalError,
)
from icebridge.model import Finding, PlanItem, Severity, TableFacts

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyspark.sql import SparkSession

    from icebridge.config import Config
    from icebridge.engines import EngineConfig
    from icebridge.model import TableRef
    from icebridge.validation.spark_exec import SparkExecutors

__all__ = [
    "DEFAULT_JARS_DIR",
    "EXTENSIONS",
    "SPARK_SQL",
    "SparkEngine",
    "SparkSettings",
    "StatementMetric",
    "build_session",
    "render_script",
    "spark_catalog_conf",
]

SPARK_SQL = "spark-sql"
EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
SPARK_CATALOG = "org.apache.iceberg.spark.SparkCatalog"
DEFAULT_JARS_DIR = Path("build/spark-jars")
CONNECT_DEFAULT_PORT = 15002
# how long to wait for the Spark Connect server's port before giving up (its client would retry for minutes)
CONNECT_PROBE_SECONDS = 5.0
RUNTIME_JAR_GLOB = "iceberg-spark-runtime-3.5_*.jar"
_JAVA_COMMIT_CONFLICTS = frozenset(
    {
        "org.apache.iceberg.exceptions.CommitFailedException",
        "org.apache.iceberg.exceptions.CommitStateUnknownException",
    }
)
# PyIceberg catalog properties that mean the same to Iceberg's Java catalogs
_SHARED_KEYS = ("warehouse", "credential", "token", "scope", "prefix", "oauth2-server-uri", "audience", "resource")
_SHARED_PREFIXES = ("s3.", "client.", "header.", "rest.", "gcs.", "adls.")


def pyspark_installed() -> bool:
    """Whether pyspark can be imported here (the ``icebridge[spark]`` extra)."""
    return importlib.util.find_spec("pyspark") is not None


class SparkSettings(BaseModel):
    """``engines.spark`` in ``icebridge.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master: str = Field(default="local[2]", min_length=1, description="local[N], spark://host:port, yarn, k8s://…")
    remote: str | None = Field(default=None, description="Spark Connect URL sc://host:port (instead of master).")
    app_name: str = Field(default="icebridge", min_length=1)
    driver_memory: str = Field(default="2g", pattern=r"^[0-9]+[kmgtKMGT]?$")
    jars_dir: Path | None = Field(
        default=None,
        description="Directory of jars added to spark.jars (default build/spark-jars from `make spark-runtime`).",
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark configuration, applied last.")

    @field_validator("remote")
    @classmethod
    def _check_remote(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith("sc://"):
            raise ValueError(f"{value!r} is not a Spark Connect URL; write sc://host:15002")
        try:
            _connect_address(value)
        except ValueError as exc:
            raise ValueError(f"{value!r}: {exc}; write sc://host:15002") from exc
        return value

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                str(k): (str(v).lower() if isinstance(v, bool) else str(v)) if v is not None else v
                for k, v in value.items()
            }
        return value

    @classmethod
    def from_config(cls, config: EngineConfig) -> SparkSettings:
        """Check ``engines.spark``; a mistake is a :class:`ConfigError` naming ``engines.spark.<key>``."""
        raw = config.engine_settings("spark")
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
            key = ".".join(str(p) for p in ("engines", "spark", *err["loc"]))
            if err["type"] == "extra_forbidden":
                msg = f"unknown key; allowed keys here: {', '.join(sorted(cls.model_fields))}"
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"{config.path}: {key}: {msg}") from exc
        if settings.remote and "master" in raw:
            raise ConfigError(
                f"{config.path}: engines.spark.master: set either master (a classic session) or remote "
                "(Spark Connect), not both"
            )
        if settings.jars_dir is not None and not settings.jars_dir.is_absolute():
            settings = settings.model_copy(update={"jars_dir": config.path.parent / settings.jars_dir})
        return settings


@dataclass(frozen=True)
class StatementMetric:
    """One statement the engine ran: its text, how long it took, and what it committed."""

    task: str
    statement: str
    seconds: float
    rows_written: int | None
    files_written: int | None
    bytes_written: int | None
    snapshot_id: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "statement": self.statement,
            "seconds": self.seconds,
            "rows_written": self.rows_written,
            "files_written": self.files_written,
            "bytes_written": self.bytes_written,
            "snapshot_id": self.snapshot_id,
        }


def spark_catalog_conf(name: str, props: dict[str, str]) -> dict[str, str]:
    """The ``spark.sql.catalog.<name>.*`` settings for a PyIceberg catalog configured as ``props``.

    ``sql`` (PostgreSQL, SQLite) → Iceberg's JDBC catalog on the same database; ``rest``, ``hive`` and
    ``glue`` → their Iceberg Java equivalents, sharing properties both sides spell alike. Raises
    :class:`CatalogMappingError` naming the catalog for anything else.
    """
    prefix = f"spark.sql.catalog.{name}"
    kind = props.get("type") or _infer_type(props.get("uri", ""))
    out: dict[str, str] = {prefix: SPARK_CATALOG}
    if kind == "sql":
        out.update(_jdbc_conf(name, props.get("uri", ""), prefix))
    elif kind in ("rest", "hive"):
        out[f"{prefix}.type"] = kind
        if "uri" in props:
            out[f"{prefix}.uri"] = props["uri"]
    elif kind == "glue":
        out[f"{prefix}.type"] = "glue"
        if "glue.region" in props:
            out[f"{prefix}.client.region"] = props["glue.region"]
        if "glue.id" in props:
            out[f"{prefix}.glue.id"] = props["glue.id"]
    else:
        raise CatalogMappingError(
            f"catalogs.{name}: type {kind or '(none)'!r} has no Spark catalog mapping; "
            f"configure it yourself under engines.spark.conf as {prefix}.* (type sql, rest, hive and glue are mapped)"
        )
    for key, value in props.items():
        if key in _SHARED_KEYS or key.startswith(_SHARED_PREFIXES):
            out[f"{prefix}.{key}"] = value
    # PyIceberg commits to the same tables; Spark's table cache would hide those commits
    out[f"{prefix}.cache-enabled"] = "false"
    return out


def _infer_type(uri: str) -> str:
    # the same inference PyIceberg applies when 'type' is left out
    if uri.startswith(("http://", "https://")):
        return "rest"
    if uri.startswith("thrift://"):
        return "hive"
    return ""


def _jdbc_conf(name: str, uri: str, prefix: str) -> dict[str, str]:
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise CatalogMappingError(f"catalogs.{name}.uri: not a SQLAlchemy URL: {exc}") from exc
    backend = url.get_backend_name()
    out = {f"{prefix}.type": "jdbc", f"{prefix}.jdbc.schema-version": "V1"}
    if backend == "postgresql":
        host = url.host or "localhost"
        port = f":{url.port}" if url.port else ""
        query = f"?{urlencode(dict(url.query), doseq=True)}" if url.query else ""
        out[f"{prefix}.uri"] = f"jdbc:postgresql://{host}{port}/{url.database or ''}{query}"
        if url.username:
            out[f"{prefix}.jdbc.user"] = url.username
        if url.password:
            out[f"{prefix}.jdbc.password"] = str(url.password)
    elif backend == "sqlite":
        if not url.database or url.database == ":memory:":
            raise CatalogMappingError(
                f"catalogs.{name}.uri: an in-memory SQLite catalog cannot be shared with Spark; "
                "use a SQLite file or PostgreSQL"
            )
        out[f"{prefix}.uri"] = f"jdbc:sqlite:{Path(url.database).resolve()}"
    else:
        raise CatalogMappingError(
            f"catalogs.{name}.uri: SQL catalogs on {backend!r} have no JDBC driver in the Spark runtime; "
            "use PostgreSQL or SQLite, or configure the catalog under engines.spark.conf"
        )
    return out


def _import_pyspark() -> Any:
    try:
        import pyspark
    except ImportError as exc:
        raise EngineNotInstalledError(
            f"engine 'spark' needs missing packages ({exc.name}): pip install 'icebridge[spark]'"
        ) from exc
    return pyspark


def _connect_address(remote: str) -> tuple[str, int]:
    """Host and port of a ``sc://host[:port][/;params]`` URL; ValueError if the host or the port is bad."""
    parts = urlsplit(remote)
    if not parts.hostname:
        raise ValueError("no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("the port is not a number from 0 to 65535") from exc
    return parts.hostname, port or CONNECT_DEFAULT_PORT


def _import_connect_client() -> None:
    """Fail with the pip extra to install when the Spark Connect client's packages are missing."""
    try:
        from pyspark.sql.connect.utils import check_dependencies

        check_dependencies("icebridge")  # pandas, pyarrow and grpcio
        # pyspark 3.5's check leaves out the two packages its client imports for error details
        import google.rpc  # noqa: F401
        import grpc_status  # noqa: F401
    except ImportError as exc:
        raise EngineNotInstalledError(
            f"engines.spark.remote: the Spark Connect client needs missing packages ({_first_line(exc)}): "
            "pip install 'icebridge[spark]'"
        ) from exc


def _probe_connect_server(remote: str) -> None:
    """Raise a :class:`TerminalError` naming the URL when nothing accepts connections there."""
    host, port = _connect_address(remote)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_PROBE_SECONDS):
            pass
    except OSError as exc:
        raise TerminalError(
            f"engines.spark.remote: no Spark Connect server answers at {host}:{port} ({exc}); "
            "start it (it needs the Iceberg runtime jars and spark.sql.extensions) or fix the URL"
        ) from exc


def session_jars(settings: SparkSettings) -> list[str]:
    """The jars a classic session adds to ``spark.jars`` (empty when the user configured jars themselves)."""
    if settings.remote or {"spark.jars", "spark.jars.packages"} & settings.conf.keys():
        return []
    directory = settings.jars_dir or DEFAULT_JARS_DIR.resolve()
    if not any(directory.glob(RUNTIME_JAR_GLOB)):
        raise EngineNotInstalledError(
            f"engines.spark.jars_dir: {directory} has no Iceberg Spark runtime jar ({RUNTIME_JAR_GLOB}); "
            "run `make spark-runtime` first, or point jars_dir at a directory with the Iceberg runtime "
            "and JDBC driver jars, or set spark.jars.packages under engines.spark.conf"
        )
    return [str(p) for p in sorted(directory.glob("*.jar"))]


def build_session(settings: SparkSettings) -> SparkSession:
    """A SparkSession with Iceberg's extensions (reuses the process's active session if there is one).

    With ``remote`` the session is a Spark Connect client: the server must already run with the Iceberg
    runtime and JDBC driver jars and ``spark.sql.extensions``; catalogs are then set per session.
    """
    _import_pyspark()
    from pyspark.sql import SparkSession

    builder: Any = SparkSession.builder.appName(settings.app_name)
    if settings.remote:
        _import_connect_client()
        _probe_connect_server(settings.remote)
        builder = builder.remote(settings.remote)
    else:
        builder = builder.master(settings.master)
        jars = session_jars(settings)
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        builder = (
            builder.config("spark.sql.extensions", EXTENSIONS)
            .config("spark.driver.memory", settings.driver_memory)
            .config("spark.ui.showConsoleProgress", "false")
        )
    for key, value in settings.conf.items():
        builder = builder.config(key, value)
    try:
        session: SparkSession = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no java, bad conf, unreachable master
        raise TerminalError(
            f"engine 'spark': cannot start a SparkSession ({_first_line(exc)}); "
            "check that Java 17 is installed and engines.spark.master/remote are right"
        ) from exc
    extensions = session.conf.get("spark.sql.extensions", "") or ""
    if EXTENSIONS not in extensions:
        raise TerminalError(
            f"engine 'spark': the SparkSession has no Iceberg SQL extensions (spark.sql.extensions={extensions!r}); "
            f"set spark.sql.extensions={EXTENSIONS} on the cluster, or stop the other session in this process"
        )
    return session


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _java_class_names(exc: BaseException) -> list[str]:
    """The Java exception classes behind a pyspark error, as the error itself carries them.

    A classic session hands over the Java exception (``java_exception`` of a Py4J error, or of the
    ``_origin`` of pyspark's converted one): its class and its causes', outermost first. A Spark
    Connect client keeps only text, but the gRPC error it was raised from (its ``__context__``)
    carries the server's ``ErrorInfo``: the exception's class and every class it inherits from.
    """
    throwable = getattr(exc, "java_exception", None)
    if throwable is None:
        throwable = getattr(getattr(exc, "_origin", None), "java_exception", None)
    names: list[str] = []
    depth = 0
    while throwable is not None and depth < 20:
        try:
            names.append(str(throwable.getClass().getName()))
            throwable = throwable.getCause()
        except Exception:  # a detached py4j object: nothing more to learn
            break
        depth += 1
    return names or _connect_class_names(exc)


def _connect_class_names(exc: BaseException) -> list[str]:
    """The class names in the ``ErrorInfo`` of the gRPC error behind a Spark Connect exception (empty if none)."""
    try:
        import grpc
        from google.rpc import error_details_pb2
        from grpc_status import rpc_status
    except ImportError:  # not a Connect client installation: no gRPC error can be behind ``exc``
        return []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, grpc.RpcError) and isinstance(current, grpc.Call):
            try:
                status = rpc_status.from_call(current)
            except ValueError:  # the status details disagree with the call's code: nothing reliable
                return []
            for detail in status.details if status is not None else ():
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    try:
                        inherited = json.loads(info.metadata.get("classes", "[]"))
                    except ValueError:
                        inherited = []
                    return [info.reason, *(str(c) for c in inherited if c != info.reason)]
            return []
        current = current.__cause__ or current.__context__
    return []


class SparkEngine(BaseEngine):
    """Copies with Spark SQL; one SparkSession per engine, built on first use and shared by its threads."""

    name = "spark"
    specs = (StrategySpec(SPARK_SQL, "spark", byte_copy=False, validation_levels=(1, 2, 4)),)
    # file-copy is declared by the local engine (same traits); here the executors copy the files
    strategies = frozenset({SPARK_SQL, FILE_COPY})

    def __init__(self, config: Config, session: SparkSession | None = None) -> None:
        self._config = config
        self.settings = SparkSettings.from_config(config)
        self._session = session
        self._lock = threading.Lock()
        self._catalog_conf: dict[str, dict[str, str]] = {}
        self._catalog_errors: dict[str, CatalogMappingError] = {}
        for catalog, props in config.catalogs.items():
            if f"spark.sql.catalog.{catalog}" in self.settings.conf:
                continue  # the user configured this one by hand
            try:
                self._catalog_conf[catalog] = spark_catalog_conf(catalog, props)
            except CatalogMappingError as exc:
                self._catalog_errors[catalog] = exc
        self._metrics: list[StatementMetric] = []
        self.session_seconds: float | None = None

    # ------------------------------------------------------------------ planning

    @classmethod
    def installed(cls) -> bool:
        """pyspark can be imported (the ``icebridge[spark]`` extra); without it the module still renders SQL."""
        return pyspark_installed()

    @classmethod
    def check_config(cls, config: EngineConfig) -> None:
        """``engines.spark`` as :class:`SparkSettings` reads it."""
        SparkSettings.from_config(config)

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        """spark-sql for every table."""
        return SPARK_SQL, "spark-sql: one INSERT … SELECT of the pinned snapshot, run by Spark"

    def preflight(self, items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
        """Every catalog of a table has a Spark catalog; Spark writes into the destination's storage (probed)."""
        findings: list[Finding] = []
        for item in items:
            for ref in (item.source, item.destination):
                if ref is not None and ref.catalog in self._catalog_errors:
                    findings.append(
                        Finding(
                            str(item.source),
                            Severity.BLOCKER,
                            "spark-catalog-unmapped",
                            str(self._catalog_errors[ref.catalog]),
                            f"configure spark.sql.catalog.{ref.catalog}.* under engines.spark.conf",
                        )
                    )
        return findings + storage_probe(items, catalogs)

    # ------------------------------------------------------------------ session

    def session(self) -> SparkSession:
        """The engine's SparkSession with every mappable catalog configured (built on first call)."""
        with self._lock:
            if self._session is None:
                started = time.monotonic()
                self._session = build_session(self.settings)
                self.session_seconds = round(time.monotonic() - started, 3)
            if not self.settings.remote:
                from icebridge.validation.spark_exec import ship_code

                # before any executor task imports icebridge: a reused Python worker keeps what it imported
                ship_code(self._session)
            for catalog, conf in self._catalog_conf.items():
                self._apply_catalog(self._session, catalog, conf)
            return self._session

    def validation_executors(self) -> SparkExecutors | None:
        """The executors that run validation's levels 3 and 4 for ``--engine spark`` (``validation.spark_exec``);
        None for a Spark Connect session, which validates on this process's threads."""
        if self.settings.remote:
            return None
        from icebridge.validation.spark_exec import SparkExecutors

        return SparkExecutors(self.session)  # the session starts when level 3 or 4 first needs it

    def _apply_catalog(self, session: SparkSession, catalog: str, conf: dict[str, str]) -> None:
        # catalog settings are runtime SQL settings, read when Spark first loads the catalog; a
        # different value already set means another configuration owns this name in this session
        for key, value in conf.items():
            current = session.conf.get(key, None)
            if current is not None and current != value:
                shown = "***" if "password" in key else current
                raise TerminalError(
                    f"engine 'spark': this SparkSession already has {key}={shown!r}; catalog {catalog!r} of "
                    f"{self._config.path} needs another value. Use distinct catalog names or a new process"
                )
            if current is None:
                session.conf.set(key, value)

    def _check_catalogs(self, *refs: TableRef) -> None:
        for ref in refs:
            if ref.catalog in self._catalog_errors:
                raise self._catalog_errors[ref.catalog]

    def sql(self, statement: str, task: str = "") -> Any:
        """Run one statement, recording its text and duration; returns the collected rows."""
        session = self.session()
        started = time.monotonic()
        rows = session.sql(statement).collect()
        self._record(StatementMetric(task, statement, round(time.monotonic() - started, 3), None, None, None, None))
        return rows

    # ------------------------------------------------------------------ metrics

    def _record(self, metric: StatementMetric) -> None:
        with self._lock:
            self._metrics.append(metric)

    @property
    def metrics(self) -> tuple[StatementMetric, ...]:
        """Every statement run by this engine, in order."""
        with self._lock:
            return tuple(self._metrics)

    def metrics_for(self, task: str) -> tuple[StatementMetric, ...]:
        """The statements run for one task (its source table name), to store as events."""
        return tuple(m for m in self.metrics if m.task == task)

    # ------------------------------------------------------------------ copy

    def copy(self, job: CopyJob) -> CopyResult:
        """spark-sql: the pinned snapshot with one ``INSERT … SELECT … VERSION AS OF`` committed as batch 0;
        file-copy: the data files copied by the executors, batch by batch (``engines.spark_copy``)."""
        self.check_strategy(job)
        if job.strategy == FILE_COPY:
            from icebridge.engines import spark_copy

            return spark_copy.copy(self, job)
        if 0 in job.committed_batches:
            return CopyResult(batches_total=1, batches_skipped=1, commits=())
        if job.cancel is not None and job.cancel.is_set():
            raise CopyInterrupted(f"{job.task}: interrupted before the Spark copy started")
        self._check_catalogs(job.source_ref, job.destination_ref)
        session = self.session()
        schema = job.source.schema()
        markers = {**job.summary_markers, "icebridge.batch": "0"}
        statement = insert_select_sql(schema, job.source_ref, job.destination_ref, job.snapshot_id)
        started = time.monotonic()
        try:
            with self._cancellable(session, job):
                writer = session.sql(select_sql(schema, job.source_ref, job.snapshot_id)).writeTo(
                    table_name(job.destination_ref)
                )
                for key, value in markers.items():
                    writer = writer.option(f"snapshot-property.{key}", value)
                writer.append()
        except Exception as exc:
            if job.cancel is not None and job.cancel.is_set():
                raise CopyInterrupted(
                    f"{job.task}: interrupted; the Spark job was cancelled before its commit"
                ) from exc
            raise self._error(job, exc) from exc
        seconds = round(time.monotonic() - started, 3)
        commit = self._find_commit(job.destination, job.task, markers, seconds)
        metric = StatementMetric(
            job.task, statement, seconds, commit.rows, commit.files, commit.bytes, commit.dest_snapshot_id
        )
        self._record(metric)
        job.on_progress(commit.files, commit.bytes)
        job.on_event("statement", statement, metric.to_dict())
        job.on_commit(commit)
        return CopyResult(batches_total=1, batches_skipped=0, commits=(commit,))

    @contextmanager
    def _cancellable(self, session: SparkSession, job: CopyJob) -> Iterator[None]:
        """Cancel the Spark job if the run is interrupted while it runs (nothing is committed then)."""
        cancel = job.cancel
        if cancel is None:
            yield
            return
        tag = f"icebridge-{uuid.uuid4().hex}"
        context = getattr(session, "sparkContext", None) if not self.settings.remote else None
        if context is not None:
            context.setJobGroup(tag, f"IceBridge copy of {job.task}", interruptOnCancel=True)
        else:
            session.addTag(tag)
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if cancel.wait(0.2):
                    if context is not None:
                        context.cancelJobGroup(tag)
                    else:
                        session.interruptTag(tag)
                    return

        watcher = threading.Thread(target=watch, name=f"{tag}-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()
            if context is not None:
                context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
            else:
                session.removeTag(tag)

    def _error(self, job: CopyJob, exc: Exception) -> Exception:
        message = self._config.redact(_first_line(exc))
        if _JAVA_COMMIT_CONFLICTS & set(_java_class_names(exc)):
            return CommitConflictError(f"{job.task}: the Spark commit to {job.destination_ref} conflicted: {message}")
        return DestinationWriteError(f"{job.task}: Spark copy into {job.destination_ref} failed: {message}")

    @staticmethod
    def _find_commit(destination: Table, task: str, markers: dict[str, str], seconds: float) -> BatchCommit:
        destination.refresh()
        for snapshot in reversed(destination.metadata.snapshots):
            summary = snapshot.summary.additional_properties if snapshot.summary else {}
            if summary.get("icebridge.task") == task and summary.get("icebridge.batch") == markers["icebridge.batch"]:
                return BatchCommit(
                    batch=0,
                    dest_snapshot_id=snapshot.snapshot_id,
                    files=int(summary.get("added-data-files", 0)),
                    rows=int(summary.get("added-records", 0)),
                    bytes=int(summary.get("added-files-size", 0)),
                    seconds=seconds,
                )
        raise DestinationWriteError(
            f"{task}: Spark reported success but the destination has no snapshot with the batch markers; "
            "check that the Spark catalog and IceBridge's catalog point at the same database and warehouse"
        )
