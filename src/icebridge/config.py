"""The ``icebridge.yaml`` file: where state lives, which catalogs exist, how tables map.

Every mistake is a :class:`ConfigError` naming the file, the key and the fix; nothing is written
before the whole file has been checked.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from icebridge.errors import ConfigError
from icebridge.model import TableRef

CONFIG_ENV = "ICEBRIDGE_CONFIG"
API_TOKEN_ENV = "ICEBRIDGE_API_TOKEN"
MIN_TOKEN_LENGTH = 16
DEFAULT_CONFIG = "icebridge.yaml"
DEFAULT_STATE_DIR = ".icebridge"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_WORDS = ("secret", "password", "token", "credential", "key", "auth")
_GLOB_CHARS = set("*?[")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_REPORT_LINK = re.compile(r"(/reports/\d+/s/)[^/\s\"']+")  # a signed report link's token (access log lines)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MappingRule(_Strict):
    """``source: catalog.namespace-glob.table-glob`` → ``target: catalog.namespace``."""

    source: str
    target: str
    rename: str | None = Field(default=None, description="Destination table name; may use {table}.")
    strategy: str | None = Field(default=None, description="Force a strategy (a name an engine declares).")
    history: Literal["current", "all"] = Field(
        default="current",
        description="current: copy the current snapshot; all: replay every live source snapshot, oldest first.",
    )
    governance: str | None = Field(
        default=None, description="The governance adapter of these tables at cut-over (none, unity)."
    )

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) < 3 or not all(parts):
            raise ValueError(f"{value!r} must be <catalog>.<namespace-glob>.<table-glob>, e.g. foreign.sales.*")
        for part in parts:
            if part.count("[") != part.count("]"):
                raise ValueError(f"{value!r} has an unbalanced '[' in the glob {part!r}")
        if any(c in parts[0] for c in _GLOB_CHARS):
            raise ValueError(f"{value!r}: the catalog part must be a catalog name, not a glob")
        return value

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, value: str | None) -> str | None:
        # the engine registry is data (no engine is imported to read it)
        from icebridge.engines import strategy_names

        if value is not None and value not in strategy_names():
            raise ValueError(f"unknown strategy {value!r}; known strategies: {', '.join(strategy_names())}")
        return value

    @field_validator("governance")
    @classmethod
    def _check_governance(cls, value: str | None) -> str | None:
        return _check_adapter(value)

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) < 2 or not all(parts):
            raise ValueError(f"{value!r} must be <catalog>.<namespace>, e.g. managed.sales")
        if any(c in value for c in _GLOB_CHARS):
            raise ValueError(f"{value!r}: a target cannot be a glob; use {{namespace}} to keep the source's")
        return value

    @property
    def source_catalog(self) -> str:
        return self.source.split(".")[0]

    @property
    def target_catalog(self) -> str:
        return self.target.split(".")[0]

    def matches(self, ref: TableRef) -> bool:
        parts = self.source.split(".")
        return (
            ref.catalog == parts[0]
            and fnmatch.fnmatchcase(ref.namespace_str, ".".join(parts[1:-1]))
            and fnmatch.fnmatchcase(ref.name, parts[-1])
        )

    def destination(self, ref: TableRef) -> TableRef:
        cat, *ns = self.target.split(".")
        namespace = ".".join(ns).replace("{namespace}", ref.namespace_str)
        name = (self.rename or "{table}").replace("{table}", ref.name)
        return TableRef(cat, tuple(namespace.split(".")), name)


class MigrateSettings(_Strict):
    """How the copy runs."""

    concurrency: int = Field(default=2, ge=1, le=64, description="Tables copied at once.")
    # 250: with files of a few MiB, commits then cost under 5% of the copy time (benchmarks/RESULTS.md, commits)
    files_per_commit: int = Field(default=250, ge=1, description="At most this many source files per commit.")
    commit_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1,
        description="At most this many source bytes per commit (one file may exceed).",
    )
    chunk_bytes: int = Field(
        default=128 * 1024 * 1024,
        ge=1024,
        description="In-memory Arrow bytes buffered before a file is written.",
    )
    max_attempts: int = Field(default=4, ge=1, le=20, description="Tries per phase for transient errors.")
    lease_seconds: float = Field(
        default=60.0,
        ge=1.0,
        le=3600.0,
        description="How long a claim on a table outlives a silent holder (it heartbeats every quarter of this).",
    )
    backoff_seconds: float = Field(default=0.5, ge=0)
    validate_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Threads reading and hashing one table's files in validation (default: cores / concurrency).",
    )

    def validation_threads(self, cores: int | None = None) -> int:
        """Threads per table validation: the setting, or this machine's cores shared by ``concurrency`` tables."""
        if self.validate_threads is not None:
            return self.validate_threads
        available = cores if cores is not None else (os.cpu_count() or 1)
        return max(1, available // self.concurrency)


class ReportSettings(_Strict):
    """Where run reports go and what is rendered besides IceBridge's own HTML report."""

    folder: str | None = Field(default=None, description="Folder of the reports (relative to this file).")
    data_docs: bool = Field(
        default=False, description="Also build Great Expectations Data Docs (pip install 'icebridge[gx]')."
    )


class ServiceSettings(_Strict):
    """``icebridge serve``: its API token, who may call it from a browser, and its background workers."""

    token: str | None = Field(
        default=None, description=f"The API's bearer token (${API_TOKEN_ENV} wins); use a ${{VAR}} reference."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins a browser may call the API from (none by default)."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=1024 * 1024 * 1024, description="Larger request bodies are refused (413)."
    )
    workers: int = Field(default=2, ge=1, le=16, description="Runs carried out at once by one server.")
    worker_mode: Literal["process", "thread"] = Field(
        default="process",
        description="Where a server carries out its runs: worker processes of its own (process), so a copy "
        "never slows the API's answers, or threads of the server's process (thread).",
    )
    worker_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="process mode: how much lower the workers' CPU priority is than the server's (nice), so "
        "the API answers first when the machine is busy; 0 keeps them equal.",
    )
    poll_seconds: float = Field(
        default=1.0, ge=0.05, le=60.0, description="How often a server looks for accepted runs and cancellations."
    )
    lag_interval_seconds: float = Field(
        default=60.0, ge=1.0, le=86400.0, description="How often the sync-lag metrics are computed."
    )
    lag_max_tables: int = Field(
        default=100, ge=1, le=100_000, description="Source tables read per sync-lag computation (round robin)."
    )

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_REF.search(value) and len(value) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"the token is too short ({len(value)} characters); use at least {MIN_TOKEN_LENGTH}, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(
                    f"{origin!r} is not an origin; write scheme://host[:port], e.g. https://ui.example.com"
                )
        return value


def _check_adapter(value: str | None) -> str | None:
    from icebridge.governance import adapter_names  # a registry of names: no adapter is imported

    if value is not None and value not in adapter_names():
        raise ValueError(f"unknown governance adapter {value!r}; known adapters: {', '.join(adapter_names())}")
    return value


class GovernanceSettings(_Strict):
    """Which governance adapter carries a catalog's grants at cut-over (a mapping rule's own wins)."""

    catalogs: dict[str, str] = Field(
        default_factory=dict,
        description="Catalog name -> adapter (none, unity); a table takes its source's, else its destination's.",
    )

    @field_validator("catalogs")
    @classmethod
    def _check_catalogs(cls, value: dict[str, str]) -> dict[str, str]:
        for adapter in value.values():
            _check_adapter(adapter)
        return value


class AuditSettings(_Strict):
    """Where the audit log goes besides the state store."""

    iceberg_table: bool = Field(
        default=False,
        description="Also append every table's steps to icebridge_audit.events in its destination catalog.",
    )


class CutoverSettings(_Strict):
    """How a cut-over freezes its source."""

    quiet_seconds: float = Field(
        default=0.0,
        ge=0.0,
        le=86_400.0,
        description="After freezing writers, wait this long and refuse (retried with backoff) if a source "
        "snapshot arrives meanwhile: the freeze check on catalogs with no privileges to revoke.",
    )


class LocalSpec(_Strict):
    """This machine, for the plan's estimates."""

    cores: int | None = Field(default=None, ge=1, le=4096, description="Cores billed (default: this machine's).")
    price_per_core_hour: float | None = Field(default=None, ge=0, description="Compute price of one core for an hour.")


class SparkSpec(_Strict):
    """A Spark cluster the plan estimates for."""

    executors: int = Field(default=2, ge=1, le=100_000, description="Executors of the cluster.")
    cores_per_executor: int = Field(default=1, ge=1, le=1024, description="Cores (task slots) of each executor.")
    price_per_executor_hour: float | None = Field(default=None, ge=0, description="Price of one executor for an hour.")


class DatabricksSpec(_Strict):
    """A Databricks job cluster the plan estimates for: its size and its price in DBU."""

    workers: int = Field(default=2, ge=1, le=100_000, description="Worker nodes of the job cluster.")
    cores_per_worker: int = Field(default=4, ge=1, le=1024, description="Cores of each worker node.")
    dbu_per_worker_hour: float | None = Field(default=None, ge=0, description="DBU one worker burns in an hour.")
    dbu_per_driver_hour: float | None = Field(default=None, ge=0, description="DBU the driver burns in an hour.")
    price_per_dbu: float | None = Field(default=None, ge=0, description="Price of one DBU.")


class EstimateSettings(_Strict):
    """The compute the plan's estimates are made for, and its prices (a cost is shown only when priced)."""

    currency: str = Field(default="USD", min_length=1, max_length=8)
    local: LocalSpec = LocalSpec()
    spark: SparkSpec = SparkSpec()
    databricks: DatabricksSpec = DatabricksSpec()


class FileConfig(_Strict):
    state: str | None = None
    reports: str | ReportSettings | None = Field(
        default=None, description="Folder of the reports, or {folder: ..., data_docs: true}."
    )
    catalogs: dict[str, dict[str, Any]]
    mappings: list[MappingRule] = Field(min_length=1)
    migrate: MigrateSettings = MigrateSettings()
    engines: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings per engine (a name of the engine registry), checked by the engine."
    )
    service: ServiceSettings = ServiceSettings()
    governance: GovernanceSettings = GovernanceSettings()
    audit: AuditSettings = AuditSettings()
    cutover: CutoverSettings = CutoverSettings()
    estimates: EstimateSettings = EstimateSettings()


@dataclass(frozen=True)
class Config:
    """A checked configuration with environment references resolved."""

    path: Path
    state_url: str
    catalogs: dict[str, dict[str, str]]
    mappings: tuple[MappingRule, ...]
    migrate: MigrateSettings
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: str | None = None
    data_docs: bool = False
    service: ServiceSettings = field(default_factory=ServiceSettings)
    state_configured: bool = True  # False: ``state:`` was left out and the default store is used
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    cutover: CutoverSettings = field(default_factory=CutoverSettings)
    estimates: EstimateSettings = field(default_factory=EstimateSettings)

    def api_token(self) -> str | None:
        """The service's bearer token: ``$ICEBRIDGE_API_TOKEN``, else ``service.token``."""
        return os.environ.get(API_TOKEN_ENV) or self.service.token

    @property
    def reports_dir(self) -> Path:
        """Where validation reports go: ``reports`` (relative to the file), else ``.icebridge/reports`` beside it."""
        base = self.path.resolve().parent
        if self.reports:
            folder = Path(self.reports)
            return folder if folder.is_absolute() else base / folder
        return base / DEFAULT_STATE_DIR / "reports"

    def engine_settings(self, name: str) -> dict[str, Any]:
        """The ``engines.<name>`` section (environment references resolved), empty when absent."""
        return dict(self.engines.get(name, {}))

    def catalog_properties(self, name: str) -> dict[str, str]:
        return dict(self.catalogs[name])

    def redacted_catalogs(self) -> dict[str, dict[str, str]]:
        """Catalog properties with secret values hidden, for printing."""
        return {
            name: {k: ("***" if is_secret_key(k) else v) for k, v in props.items()}
            for name, props in self.catalogs.items()
        }

    def redact(self, text: str) -> str:
        """``text`` with every secret of this configuration (and any password inside a URL) hidden."""
        for props in self.catalogs.values():
            for key, value in props.items():
                if is_secret_key(key) and len(value) >= 4:
                    text = text.replace(value, "***")
        for token in (self.service.token, os.environ.get(API_TOKEN_ENV)):
            if token:
                text = text.replace(token, "***")
        return _REPORT_LINK.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))

    def rule_for(self, ref: TableRef) -> MappingRule | None:
        """The first mapping rule that matches (first match wins)."""
        return next((rule for rule in self.mappings if rule.matches(ref)), None)

    @property
    def source_catalogs(self) -> list[str]:
        return list(dict.fromkeys(rule.source_catalog for rule in self.mappings))


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def resolve_config_path(path: str | os.PathLike[str] | None) -> Path:
    """``-c`` first, then ``$ICEBRIDGE_CONFIG``, then ``./icebridge.yaml``."""
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def default_state_url(config_path: Path) -> str:
    """The embedded store: SQLite in ``.icebridge/`` beside the configuration file (not the current folder)."""
    return f"sqlite:///{config_path.resolve().parent / DEFAULT_STATE_DIR / 'state.db'}"


def _beside(state: str, config_path: Path) -> str:
    """A relative SQLite path is taken relative to the configuration file, as every other path in it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(state)
    except (ArgumentError, ValueError):
        return state  # the store reports a malformed URL itself, without the password
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or Path(database).is_absolute():
        return state
    if "mode=memory" in state:
        return state
    return url.set(database=str(config_path.resolve().parent / database)).render_as_string(hide_password=False)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _expand_env(value: Any, key: str, path: Path) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise ConfigError(
                    f"{path}: {key}: environment variable {var} is not set; export it or remove ${{{var}}}"
                )
            return os.environ[var]

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{key}.{k}", path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{key}[{i}]", path) for i, v in enumerate(value)]
    return value


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the configuration file; raise :class:`ConfigError` on any mistake."""
    cfg_path = resolve_config_path(path)
    if not cfg_path.is_file():
        raise ConfigError(
            f"{cfg_path}: configuration file not found; pass -c PATH, set {CONFIG_ENV}, "
            "or run 'icebridge demo' to generate an example"
        )
    try:
        raw = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{cfg_path}: not valid YAML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{cfg_path}: not UTF-8 text (byte {exc.start} cannot be decoded); save the file as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"{cfg_path}: cannot be read: {exc.strerror or exc}; check the path and its permissions"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{cfg_path}: expected a mapping with keys state, catalogs, mappings")
    try:
        parsed = FileConfig.model_validate(raw)
    except ValidationError as exc:
        # an unknown key usually explains a "missing" one (a typo), so report it first
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        key = _location(tuple(err["loc"]))
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(tuple(err["loc"][:-1]))
            msg = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{cfg_path}: {key}: {msg}") from exc

    catalogs: dict[str, dict[str, str]] = {}
    for name, props in parsed.catalogs.items():
        if not isinstance(props, dict) or not props:
            raise ConfigError(f"{cfg_path}: catalogs.{name}: expected PyIceberg catalog properties (type, uri, ...)")
        expanded = _expand_env(props, f"catalogs.{name}", cfg_path)
        catalogs[name] = {str(k): str(v) for k, v in expanded.items()}
    for i, rule in enumerate(parsed.mappings):
        for side, cat in (("source", rule.source_catalog), ("target", rule.target_catalog)):
            if cat not in catalogs:
                known = ", ".join(sorted(catalogs)) or "none"
                raise ConfigError(
                    f"{cfg_path}: mappings[{i}].{side}: unknown catalog {cat!r}; "
                    f"define it under 'catalogs' (known: {known})"
                )
    state = (
        _beside(_expand_env(parsed.state, "state", cfg_path), cfg_path) if parsed.state else default_state_url(cfg_path)
    )
    if "://" not in state:
        raise ConfigError(
            f"{cfg_path}: state: {state!r} is not a SQLAlchemy URL; "
            "use sqlite:///path/state.db or postgresql://user@host/db"
        )
    reports = ReportSettings(folder=parsed.reports) if isinstance(parsed.reports, str) else parsed.reports
    reports = reports or ReportSettings()
    if reports.data_docs and importlib.util.find_spec("great_expectations") is None:
        raise ConfigError(
            f"{cfg_path}: reports.data_docs: Great Expectations is not installed; "
            "pip install 'icebridge[gx]', or set data_docs: false"
        )
    reports = ReportSettings(folder=parsed.reports) if isinstance(parsed.reports, str) else parsed.reports
    reports = reports or ReportSettings()
    if reports.data_docs and importlib.util.find_spec("great_expectations") is None:
        raise ConfigError(
            f"{cfg_path}: reports.data_docs: Great Expectations is not installed; "
            "pip install 'icebridge[gx]', or set data_docs: false"
        )
    engines = {name: _expand_env(section, f"engines.{name}", cfg_path) for name, section in parsed.engines.items()}
    service = parsed.service
    if service.token is not None:
        try:
            service = ServiceSettings.model_validate(
                {**service.model_dump(), "token": _expand_env(service.token, "service.token", cfg_path)}
            )
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{cfg_path}: service.token: {msg}") from exc
    config = Config(
        path=cfg_path,
        state_url=state,
        catalogs=catalogs,
        mappings=tuple(parsed.mappings),
        migrate=parsed.migrate,
        engines=engines,
        reports=reports.folder,
        data_docs=reports.data_docs,
        service=service,
        state_configured=parsed.state is not None,
        governance=parsed.governance,
        audit=parsed.audit,
        cutover=parsed.cutover,
        estimates=parsed.estimates,
    )
    _check_engines(config)
    for name in config.governance.catalogs:
        if name not in catalogs:
            raise ConfigError(
                f"{cfg_path}: governance.catalogs.{name}: unknown catalog {name!r}; "
                f"define it under 'catalogs' (known: {', '.join(sorted(catalogs))})"
            )
    return config


def _check_engines(config: Config) -> None:
    """Every ``engines.<name>`` names a registered engine, and each engine in use accepts its section.

    An engine is in use when it has a section or a mapping rule forces one of its strategies; its own
    settings model decides (a mistake names ``engines.<name>.<key>``).
    """
    from icebridge.engines import check_engine_settings, engine_for, engine_names

    for name in config.engines:
        if name not in engine_names():
            raise ConfigError(
                f"{config.path}: engines.{name}: unknown engine; known engines: {', '.join(engine_names())}"
            )
    used = set(config.engines) | {engine_for(rule.strategy) for rule in config.mappings if rule.strategy}
    for name in sorted(used):
        check_engine_settings(name, config)


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = FileConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = model.model_fields.get(str(part))
        if field_info is None:
            break
        annotation = field_info.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = next((a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if nested is None:
            break
        model = nested
    return sorted(model.model_fields)
