"""Frozen domain values shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar


class Severity(StrEnum):
    BLOCKER = "blocker"
    WARNING = "warning"
    INFO = "info"


class Strategy(str):
    """The name of a copy strategy: a plain string, declared by the engine that carries it out.

    The engine registry (``icebridge.engines``) knows every name; the constants below only spell the
    built-in ones, so that code outside the engines need not repeat the strings.
    """

    __slots__ = ()

    REWRITE: ClassVar[Strategy]
    FILE_COPY: ClassVar[Strategy]
    SPARK_SQL: ClassVar[Strategy]
    DATABRICKS: ClassVar[Strategy]
    REGISTER: ClassVar[Strategy]


Strategy.REWRITE = Strategy("rewrite")
Strategy.FILE_COPY = Strategy("file-copy")
Strategy.SPARK_SQL = Strategy("spark-sql")
Strategy.DATABRICKS = Strategy("databricks")
Strategy.REGISTER = Strategy("register")


class Phase(StrEnum):
    """Where a table is in the flow; a task moves forward through these."""

    PLANNED = "planned"
    SCAFFOLD = "scaffold"
    COPY = "copy"
    VALIDATE = "validate"
    MIGRATED = "migrated"
    CUTOVER = "cutover"
    CUT_OVER = "cut-over"
    ROLLED_BACK = "rolled-back"


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # an outcome only: the table was left to the run that holds it


@dataclass(frozen=True, order=True)
class TableRef:
    """A table in a named catalog: ``catalog.namespace[.sub].table``."""

    catalog: str
    namespace: tuple[str, ...]
    name: str

    @property
    def identifier(self) -> tuple[str, ...]:
        """The PyIceberg identifier (namespace parts then table name), without the catalog."""
        return (*self.namespace, self.name)

    @property
    def namespace_str(self) -> str:
        return ".".join(self.namespace)

    def __str__(self) -> str:
        """``catalog.ns.table``; a part holding a dot or a backtick is backtick-quoted (``a.`b.c```)."""
        return ".".join(_quote_part(p) for p in (self.catalog, *self.namespace, self.name))

    @classmethod
    def parse(cls, text: str) -> TableRef:
        """Parse ``catalog.ns.table`` (namespace may have several levels; parts may be backtick-quoted)."""
        parts = _split_parts(text)
        if parts is None or len(parts) < 3 or not all(parts):
            raise ValueError(f"{text!r} is not a table reference of the form catalog.namespace.table")
        return cls(parts[0], tuple(parts[1:-1]), parts[-1])


def _quote_part(part: str) -> str:
    if "." in part or part.startswith("`"):
        return "`" + part.replace("`", "``") + "`"
    return part


def _split_parts(text: str) -> list[str] | None:
    """Dot-separated parts, a part in backticks taken whole (a doubled backtick is one); None if malformed."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == "`":
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    return None  # unclosed quote
                if text[i] == "`":
                    if i + 1 < n and text[i + 1] == "`":
                        buf.append("`")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            parts.append("".join(buf))
            if i < n and text[i] != ".":
                return None  # text right after a closing quote
        else:
            end = text.find(".", i)
            end = n if end < 0 else end
            parts.append(text[i:end])
            i = end
        if i >= n:
            return parts
        i += 1  # the dot


@dataclass(frozen=True)
class Finding:
    """One pre-flight or plan observation about a table, with the fix when there is one."""

    table: str
    severity: Severity
    code: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class TableFacts:
    """What inventory learns about one source table."""

    table: str
    format_version: int
    location: str
    metadata_location: str
    table_uuid: str
    current_schema_id: int
    default_spec_id: int
    default_sort_order_id: int
    schema_count: int
    spec_count: int
    snapshot_count: int
    current_snapshot_id: int | None
    data_files: int
    delete_files: int
    position_delete_files: int
    equality_delete_files: int
    data_bytes: int
    delete_bytes: int
    records: int
    file_formats: tuple[str, ...]
    partition_fields: tuple[str, ...]
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def partition_evolved(self) -> bool:
        return self.spec_count > 1

    @property
    def schema_evolved(self) -> bool:
        return self.schema_count > 1

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["file_formats"] = list(self.file_formats)
        out["partition_fields"] = list(self.partition_fields)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableFacts:
        data = dict(data)
        data["file_formats"] = tuple(data.get("file_formats", ()))
        data["partition_fields"] = tuple(data.get("partition_fields", ()))
        return cls(**data)


@dataclass(frozen=True)
class PlanItem:
    """One source table's destination, strategy and the reasons behind them."""

    source: TableRef
    destination: TableRef | None
    strategy: str  # a strategy name (see Strategy)
    reason: str
    findings: tuple[Finding, ...] = ()
    bytes_to_move: int = 0
    estimate_seconds: float | None = None

    @property
    def blocked(self) -> bool:
        return any(f.severity is Severity.BLOCKER for f in self.findings)

    def with_findings(self, *findings: Finding) -> PlanItem:
        return replace(self, findings=(*self.findings, *findings))


@dataclass(frozen=True)
class Throughput:
    """Bytes per second one table moves with a strategy on this machine, and what the figure rests on."""

    strategy: str
    bytes_per_second: float
    basis: str
