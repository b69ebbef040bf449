"""Data-plane engines by name: a registry of lazily imported engines, each declaring its own strategies.

Adding an engine is its module plus one line in :data:`ENGINES`. The module's class (a
:class:`BaseEngine`) declares the strategies it introduces (:class:`StrategySpec`) and its hooks:
choosing a strategy for a table with a reason, the findings for what a strategy cannot carry, its own
pre-flight checks, and the copy itself. The registry line names the strategies too, so names are known
(and configuration checked) without importing any engine.

This module reads the configuration only through :class:`EngineConfig`: ``icebridge.config``
checks strategy and engine names against this registry, so it must not import that module back.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from icebridge.errors import ConfigError, EngineNotInstalledError, TerminalError
from icebridge.model import Finding, PlanItem, TableFacts

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from icebridge.ledger import FileLedger
    from icebridge.model import TableRef

T = TypeVar("T")

__all__ = [
    "ENGINES",
    "BaseEngine",
    "BatchCommit",
    "Batching",
    "Cancel",
    "CopyJob",
    "CopyResult",
    "Engine",
    "EngineConfig",
    "EngineEntry",
    "EngineNotInstalledError",
    "StrategySpec",
    "available_strategies",
    "check_engine_settings",
    "engine_class",
    "engine_for",
    "engine_installed",
    "engine_names",
    "load_engine",
    "strategy_names",
    "strategy_spec",
]


class Cancel(Protocol):
    """Set when the work on a table must stop between two commits (Ctrl-C, a lost lease)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds passed; whether it is set."""
        ...


class CatalogAccess(Protocol):
    """What an engine's pre-flight asks of the configured catalogs (``icebridge.catalogs.Catalogs`` is one)."""

    def get(self, name: str) -> Catalog:
        """The loaded catalog called ``name``."""
        ...

    def planned_location(self, ref: TableRef) -> str | None:
        """Where table ``ref`` is or would be created, when the catalog can tell."""
        ...

    def places_tables(self, name: str) -> bool:
        """Whether this client (not the catalog's server) decides where a new table goes."""
        ...

    def supports_register(self, name: str) -> bool:
        """Whether the catalog can register a metadata file IceBridge wrote."""
        ...


class EngineConfig(Protocol):
    """What the registry reads of a configuration (``icebridge.config.Config`` is one)."""

    @property
    def path(self) -> Path: ...

    def engine_settings(self, name: str) -> dict[str, Any]:
        """The ``engines.<name>`` section, empty when absent."""
        ...


@dataclass(frozen=True)
class BatchCommit:
    """One destination commit: which source batch it holds and what it added."""

    batch: int
    dest_snapshot_id: int | None
    files: int
    rows: int
    bytes: int
    seconds: float | None = None


@dataclass(frozen=True)
class Batching:
    """How source files are grouped into destination commits; recorded in every commit so resume regroups alike."""

    files: int
    bytes: int

    def marker(self) -> str:
        return f"files={self.files},bytes={self.bytes}"

    @classmethod
    def parse(cls, marker: str) -> Batching:
        parts = dict(item.split("=", 1) for item in marker.split(","))
        return cls(files=int(parts["files"]), bytes=int(parts["bytes"]))

    def group(self, items: list[T], size_of: Callable[[T], int]) -> list[list[T]]:
        """Consecutive groups of at most ``files`` items and ``bytes`` bytes (a single larger item stands alone)."""
        groups: list[list[T]] = []
        current: list[T] = []
        current_bytes = 0
        for item in items:
            size = size_of(item)
            if current and (len(current) >= self.files or current_bytes + size > self.bytes):
                groups.append(current)
                current, current_bytes = [], 0
            current.append(item)
            current_bytes += size
        if current:
            groups.append(current)
        return groups


def _no_commit(_commit: BatchCommit) -> None:
    return None


def _no_progress(_files: int, _bytes: int) -> None:
    return None


def _no_event(_kind: str, _message: str, _data: dict[str, Any]) -> None:
    return None


@dataclass
class CopyJob:
    """What an engine needs to copy one table from a pinned source snapshot, resuming if asked.

    The callbacks are how an engine reports back: ``on_commit`` after each destination commit,
    ``on_progress(files, bytes)`` with the increments of work just done (a file copied or written; a
    retried batch reports its files again), ``on_event(kind, message, data)`` with anything worth
    keeping in the run's event log (a Spark statement and its metrics, an injected fault). Progress and
    events may be reported from the engine's worker threads.
    """

    task: str
    source_ref: TableRef
    destination_ref: TableRef
    source: Table
    destination: Table
    snapshot_id: int
    strategy: str
    batching: Batching
    chunk_bytes: int
    committed_batches: frozenset[int] = frozenset()
    on_commit: Callable[[BatchCommit], None] = _no_commit
    cancel: Cancel | None = None
    ledger: FileLedger | None = None  # records every file written, before it is written
    summary_markers: dict[str, str] = field(default_factory=dict)
    on_progress: Callable[[int, int], None] = _no_progress
    on_event: Callable[[str, str, dict[str, Any]], None] = _no_event


@dataclass(frozen=True)
class CopyResult:
    batches_total: int
    batches_skipped: int
    commits: tuple[BatchCommit, ...]

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.commits)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.commits)


@dataclass(frozen=True)
class StrategySpec:
    """What the rest of IceBridge may know about a strategy; declared by the engine that carries it out."""

    name: str
    engine: str
    byte_copy: bool  # files reach the destination byte for byte, so file identity (level 3) proves them
    validation_levels: tuple[int, ...]  # the levels that fit, cheapest first (5 follows any mismatch)
    remote_markers: bool = False  # the engine keeps its resume markers itself instead of snapshot summaries


class Engine(Protocol):
    """A data plane: copies a pinned source snapshot into a scaffolded destination table.

    Engines are built with the whole configuration (``cls(config)``) and read their own section,
    ``config.engine_settings(name)``, raising ``ConfigError`` naming ``engines.<name>.<key>``.
    Building one must stay cheap (no session, no connection, no heavy import): the planner builds the
    engines it asks.
    """

    @property
    def name(self) -> str: ...

    @property
    def strategies(self) -> frozenset[str]:
        """The strategies the engine carries out."""
        ...

    def copy(self, job: CopyJob) -> CopyResult:
        """Copy every batch not in ``job.committed_batches``; each commit carries the job's markers."""
        ...

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        """The strategy for a table no mapping rule forces one on, and the human reason for it."""
        ...

    def strategy_findings(self, table: str, facts: TableFacts, strategy: str) -> list[Finding]:
        """Features of the table that ``strategy`` (one of this engine's) cannot carry."""
        ...

    def preflight(self, items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
        """This engine's own pre-flight findings for the items it will copy; never raises."""
        ...

    def destination_findings(self, item: PlanItem, catalogs: CatalogAccess) -> list[Finding]:
        """What the item's destination catalog cannot do for this engine's strategy (plan asks it)."""
        ...


class BaseEngine(ABC):
    """The hooks every engine has, with the defaults of an engine that needs none of them.

    ``specs`` are the strategies the engine declares; ``strategies`` those it carries out (its own,
    or, for a stand-in such as the fault-injecting engine, another engine's).
    """

    name: ClassVar[str]
    specs: ClassVar[tuple[StrategySpec, ...]] = ()
    strategies: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: EngineConfig) -> None:
        """Engines are built with the whole configuration and read their own section of it."""
        self.config = config

    @abstractmethod
    def copy(self, job: CopyJob) -> CopyResult:
        """Copy every batch not in ``job.committed_batches``; each commit carries the job's markers."""

    @classmethod
    def installed(cls) -> bool:
        """Whether the engine's optional packages can be imported here."""
        return True

    @classmethod
    def check_config(cls, config: EngineConfig) -> None:
        """Raise :class:`ConfigError` naming ``engines.<name>.<key>`` for a mistake in the engine's section."""
        section = config.engine_settings(cls.name)
        if section:
            raise ConfigError(
                f"{config.path}: engines.{cls.name}: this engine takes no settings "
                f"(found {', '.join(sorted(section))}); remove the section"
            )

    def choose_strategy(self, facts: TableFacts) -> tuple[str, str]:
        """The engine's first strategy for every table."""
        name = self.specs[0].name if self.specs else sorted(self.strategies)[0]
        return name, f"{name}: the {self.name} engine carries every table"

    def strategy_findings(self, table: str, facts: TableFacts, strategy: str) -> list[Finding]:
        """Nothing the engine's strategies cannot carry."""
        return []

    def preflight(self, items: Sequence[PlanItem], catalogs: CatalogAccess) -> list[Finding]:
        """No checks of the engine's own."""
        return []

    def destination_findings(self, item: PlanItem, catalogs: CatalogAccess) -> list[Finding]:
        """Every destination catalog will do."""
        return []

    def check_strategy(self, job: CopyJob) -> None:
        """Refuse a job whose strategy this engine does not carry out."""
        if job.strategy not in self.strategies:
            raise TerminalError(f"{job.task}: the {self.name} engine cannot run strategy {job.strategy}")


@dataclass(frozen=True)
class EngineEntry:
    """One line of the registry: where an engine lives, the pip extra it needs, the strategies it carries out."""

    module: str
    cls: str
    extra: str | None
    strategies: tuple[str, ...]  # the first engine listing a strategy declares it (its StrategySpec)


ENGINES: dict[str, EngineEntry] = {
    "local": EngineEntry("icebridge.engines.local", "LocalEngine", None, ("file-copy", "rewrite")),
    "spark": EngineEntry("icebridge.engines.spark", "SparkEngine", "spark", ("spark-sql", "file-copy")),
    "databricks": EngineEntry("icebridge.engines.databricks", "DatabricksEngine", "databricks", ("databricks",)),
    "faulty": EngineEntry("icebridge.engines.faulty", "FaultyEngine", None, ("file-copy", "rewrite")),
    "register": EngineEntry("icebridge.engines.register", "RegisterEngine", None, ("register",)),
}


def engine_names() -> list[str]:
    """Every engine of the registry, sorted."""
    return sorted(ENGINES)


def strategy_names() -> list[str]:
    """Every strategy some engine of the registry carries out, sorted."""
    return sorted({s for entry in ENGINES.values() for s in entry.strategies})


def _entry(name: str) -> EngineEntry:
    if name not in ENGINES:
        raise TerminalError(f"unknown engine {name!r}; known engines: {', '.join(engine_names())}")
    return ENGINES[name]


def engine_class(name: str) -> type[BaseEngine]:
    """Import the engine module called ``name`` and return its class; a missing extra is named in the error."""
    entry = _entry(name)
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        if exc.name == entry.module:  # the engine module itself is not part of this installation
            raise EngineNotInstalledError(f"engine {name!r} is not available in this version of icebridge") from exc
        hint = f"pip install 'icebridge[{entry.extra}]'" if entry.extra else "reinstall icebridge"
        raise EngineNotInstalledError(f"engine {name!r} needs missing packages ({exc.name}): {hint}") from exc
    cls = getattr(module, entry.cls)
    if not (isinstance(cls, type) and issubclass(cls, BaseEngine)) or cls.name != name:
        raise TerminalError(f"{entry.module}.{entry.cls} is not the BaseEngine called {name!r} the registry names")
    return cls


def load_engine(name: str, config: EngineConfig) -> Engine:
    """Import and build the engine called ``name``; a missing extra is named in the error."""
    engine: Engine = engine_class(name)(config)
    return engine


def engine_installed(name: str) -> bool:
    """Whether the engine called ``name`` can run here (its module and its optional packages import)."""
    try:
        return engine_class(name).installed()
    except EngineNotInstalledError:
        return False


def available_strategies() -> set[str]:
    """Strategies whose declaring engine can run here (the engine's own settings are checked when it is built)."""
    return {s for s in strategy_names() if engine_installed(engine_for(s))}


def engine_for(strategy: str, preferred: str | None = None) -> str:
    """The engine that carries out ``strategy``: ``preferred`` when it carries it, else the engine declaring it."""
    if preferred is not None and strategy in _entry(preferred).strategies:
        return preferred
    for name, entry in ENGINES.items():
        if strategy in entry.strategies:
            return name
    raise TerminalError(f"no engine carries out strategy {strategy!r}; known strategies: {', '.join(strategy_names())}")


def strategy_spec(strategy: str) -> StrategySpec:
    """The spec of a strategy by name, as its declaring engine's module states it; TerminalError for an unknown one."""
    try:
        name = engine_for(strategy)
    except TerminalError as exc:
        raise TerminalError(f"unknown strategy {strategy!r}; known: {', '.join(strategy_names())}") from exc
    for spec in engine_class(name).specs:
        if spec.name == strategy:
            return spec
    raise TerminalError(f"the registry says engine {name!r} declares strategy {strategy!r}, but its module does not")


def check_engine_settings(name: str, config: EngineConfig) -> None:
    """Check the ``engines.<name>`` section as the engine reads it; ConfigError naming the key.

    An engine whose module cannot be imported here is left alone: using it fails with the extra to install.
    """
    try:
        cls = engine_class(name)
    except EngineNotInstalledError:
        return
    cls.check_config(config)
