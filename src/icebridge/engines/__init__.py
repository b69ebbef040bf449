"""Data-plane engines by name. Each loader imports its heavy library only when asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from icebridge.errors import TerminalError
from icebridge.model import Strategy

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.config import Config
    from icebridge.ledger import FileLedger
    from icebridge.model import TableRef

T = TypeVar("T")


class Cancel(Protocol):
    """Set when the work on a table must stop between two commits (Ctrl-C, a lost lease)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set or ``timeout`` seconds passed; whether it is set."""
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


@dataclass
class CopyJob:
    """What an engine needs to copy one table from a pinned source snapshot, resuming if asked."""

    task: str
    source_ref: TableRef
    destination_ref: TableRef
    source: Table
    destination: Table
    snapshot_id: int
    strategy: Strategy
    batching: Batching
    chunk_bytes: int
    committed_batches: frozenset[int] = frozenset()
    on_commit: Callable[[BatchCommit], None] = lambda _c: None
    on_progress: Callable[[int, int], None] = lambda _files, _bytes: None  # increments, from any thread
    cancel: Cancel | None = None
    ledger: FileLedger | None = None  # records every file written, before it is written
    summary_markers: dict[str, str] = field(default_factory=dict)


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


class Engine(Protocol):
    """A data plane: copies a pinned source snapshot into a scaffolded destination table.

    Engines are built with the whole configuration (``cls(config)``) and read their own section,
    ``config.engine_settings(name)``, raising ``ConfigError`` naming ``engines.<name>.<key>``.
    """

    name: str
    strategies: frozenset[Strategy]

    def copy(self, job: CopyJob) -> CopyResult:
        """Copy every batch not in ``job.committed_batches``; each commit carries the job's markers."""
        ...


class EngineNotInstalledError(TerminalError):
    """The engine's optional dependencies are not installed."""


# name -> (module, class, pip extra that provides its dependencies)
ENGINES: dict[str, tuple[str, str, str | None]] = {
    "local": ("icebridge.engines.local", "LocalEngine", None),
    "spark": ("icebridge.engines.spark", "SparkEngine", "spark"),
    "databricks": ("icebridge.engines.databricks", "DatabricksEngine", "databricks"),
}

# which engine carries out each strategy
STRATEGY_ENGINE: dict[Strategy, str] = {
    Strategy.REWRITE: "local",
    Strategy.FILE_COPY: "local",
    Strategy.SPARK_SQL: "spark",
    Strategy.DATABRICKS: "databricks",
}


def load_engine(name: str, config: Config) -> Engine:
    """Import and build the engine called ``name``; a missing extra is named in the error."""
    if name not in ENGINES:
        raise TerminalError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    module_name, class_name, extra = ENGINES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name == module_name:  # the engine module itself is not part of this installation
            raise EngineNotInstalledError(f"engine {name!r} is not available in this version of icebridge") from exc
        hint = f"pip install 'icebridge[{extra}]'" if extra else "reinstall icebridge"
        raise EngineNotInstalledError(f"engine {name!r} needs missing packages ({exc.name}): {hint}") from exc
    engine: Engine = getattr(module, class_name)(config)
    return engine


@dataclass(frozen=True)
class StrategySpec:
    """What the rest of IceBridge may know about a strategy; declared by the engine that carries it out."""

    name: str
    engine: str
    byte_copy: bool  # files reach the destination byte for byte, so file identity (level 3) proves them
    validation_levels: tuple[int, ...]  # the levels that fit, cheapest first (5 follows any mismatch)
    remote_markers: bool = False  # the engine keeps its resume markers itself instead of snapshot summaries


_SPECS: dict[Strategy, StrategySpec] = {
    Strategy.FILE_COPY: StrategySpec(Strategy.FILE_COPY, "local", byte_copy=True, validation_levels=(1, 2, 3)),
    Strategy.REWRITE: StrategySpec(Strategy.REWRITE, "local", byte_copy=False, validation_levels=(1, 2, 4)),
    Strategy.SPARK_SQL: StrategySpec(Strategy.SPARK_SQL, "spark", byte_copy=False, validation_levels=(1, 2, 4)),
    Strategy.DATABRICKS: StrategySpec(
        Strategy.DATABRICKS, "databricks", byte_copy=False, validation_levels=(1, 2, 4), remote_markers=True
    ),
    Strategy.REGISTER: StrategySpec(Strategy.REGISTER, "local", byte_copy=True, validation_levels=(1, 2, 3)),
}


def strategy_spec(strategy: str) -> StrategySpec:
    """The spec of a strategy by name; TerminalError for an unknown one."""
    try:
        return _SPECS[Strategy(strategy)]
    except (KeyError, ValueError) as exc:
        raise TerminalError(f"unknown strategy {strategy!r}; known: {', '.join(sorted(_SPECS))}") from exc


def engine_for(strategy: Strategy) -> str:
    """The engine that carries out ``strategy``."""
    if strategy not in STRATEGY_ENGINE:
        raise TerminalError(f"no engine carries out strategy {strategy}")
    return STRATEGY_ENGINE[strategy]


def available_strategies(config: Config) -> set[Strategy]:
    """Strategies whose engine can be imported here (the engine's own settings are checked when it runs)."""
    out: set[Strategy] = set()
    for strategy, name in STRATEGY_ENGINE.items():
        module_name, _class, _extra = ENGINES[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        strategies: frozenset[Strategy] = getattr(getattr(module, ENGINES[name][1]), "strategies", frozenset())
        if strategy in strategies:
            out.add(strategy)
    return out
