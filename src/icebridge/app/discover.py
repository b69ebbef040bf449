"""Discover: the saved inventory as pages — searched, sorted and cut on the server, so thousands of tables
stay quick in a browser.

Each table is one row: size, files, snapshots, the features a migration must carry (deletes, evolved
schema or partitioning, formats) and the blockers recorded for it (unreadable at inventory, the newest
pre-flight's blockers). The rows are built once per saved inventory and pre-flight and kept in memory;
a search is then a pass over plain strings.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from icebridge.model import Severity, TableFacts, TableRef

if TYPE_CHECKING:
    from icebridge.context import AppContext

SortKey = Literal["table", "namespace", "bytes", "files", "snapshots", "records", "format_version", "blockers"]


class InventoryPageRequest(BaseModel):
    """Which page of the inventory: a search, a sort, an offset and a page size."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: str | None = Field(
        default=None,
        max_length=200,
        description="Words that must all appear in the table's name or its features (case-insensitive).",
    )
    sort: SortKey = "table"
    desc: bool = False
    offset: int = Field(default=0, ge=0, le=10_000_000)
    limit: int = Field(default=50, ge=1, le=500)


class TableBlocker(BaseModel):
    """Something that keeps a table from being migrated, with its fix."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    fix: str


class InventoryRow(BaseModel):
    """One source table as the discover page shows it."""

    model_config = ConfigDict(frozen=True)

    table: str
    catalog: str
    namespace: str
    name: str
    format_version: int
    bytes: int = Field(description="Data and delete file bytes.")
    files: int = Field(description="Data and delete files.")
    delete_files: int
    snapshots: int
    records: int
    features: list[str]
    blockers: list[TableBlocker]


class NamespaceBytes(BaseModel):
    """How much the matching tables of one namespace hold."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    tables: int
    bytes: int


class InventoryPage(BaseModel):
    """One page of the matching tables, how many match, and the bytes per namespace of all that match."""

    model_config = ConfigDict(frozen=True)

    captured_at: datetime | None = Field(description="When the inventory was read (None: never; read it first).")
    total: int = Field(description="Tables in the saved inventory.")
    matched: int = Field(description="Tables matching the search.")
    offset: int
    limit: int
    rows: list[InventoryRow]
    namespaces: list[NamespaceBytes] = Field(description="The matching tables' bytes per namespace, largest first.")


def features(facts: TableFacts) -> list[str]:
    """What a migration of this table must carry, in words a person searches for."""
    out = [f"v{facts.format_version}"]
    if facts.position_delete_files:
        out.append("position deletes")
    if facts.equality_delete_files:
        out.append("equality deletes")
    if facts.partition_fields:
        out.append("partitioned")
    if facts.partition_evolved:
        out.append("partition evolution")
    if facts.schema_evolved:
        out.append("schema evolution")
    if not facts.current_snapshot_id:
        out.append("no snapshot")
    out.extend(fmt.lower() for fmt in facts.file_formats if fmt.lower() != "parquet")
    return out


class _Indexed:
    """The rows of one saved inventory and pre-flight, with what a search looks at."""

    def __init__(self, rows: list[InventoryRow]) -> None:
        self.rows = rows
        self.text = [f"{r.table} {' '.join(r.features)} {'blocked' if r.blockers else ''}".lower() for r in rows]


_CACHE: dict[tuple[int, object, int | None, int | None], _Indexed] = {}
_LOCK = threading.Lock()


class DiscoverService:
    """Serves the saved inventory page by page; reads only the store."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def page(self, request: InventoryPageRequest) -> InventoryPage:
        """The page of tables ``request`` asks for."""
        store = self.app.store
        captured = store.inventory_captured_at()
        if captured is None:
            return InventoryPage(
                captured_at=None, total=0, matched=0, offset=request.offset, limit=request.limit, rows=[], namespaces=[]
            )
        indexed = self._indexed(captured)
        words = (request.q or "").lower().split()
        hits = [r for r, text in zip(indexed.rows, indexed.text, strict=True) if all(w in text for w in words)]
        key = _SORTS[request.sort]
        hits.sort(key=lambda r: r.table)  # the tie-breaker, whichever the order
        hits.sort(key=key, reverse=request.desc)
        by_namespace: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in hits:
            entry = by_namespace[f"{row.catalog}.{row.namespace}"]
            entry[0] += 1
            entry[1] += row.bytes
        namespaces = sorted(
            (NamespaceBytes(namespace=ns, tables=n, bytes=b) for ns, (n, b) in by_namespace.items()),
            key=lambda x: (-x.bytes, x.namespace),
        )
        return InventoryPage(
            captured_at=captured,
            total=len(indexed.rows),
            matched=len(hits),
            offset=request.offset,
            limit=request.limit,
            rows=hits[request.offset : request.offset + request.limit],
            namespaces=namespaces[:12],
        )

    def _indexed(self, captured: datetime) -> _Indexed:
        store = self.app.store
        runs = store.list_runs(limit=1000)
        inventory_run = next((r.id for r in runs if r.kind == "inventory"), None)
        preflight_run = next((r.id for r in runs if r.kind == "preflight"), None)
        key = (id(store), captured, inventory_run, preflight_run)
        with _LOCK:
            if key in _CACHE:
                return _CACHE[key]
        blockers: dict[str, list[TableBlocker]] = defaultdict(list)
        for run_id in (inventory_run, preflight_run):
            if run_id is None:
                continue
            for finding in store.findings(run_id=run_id):
                if finding.severity is Severity.BLOCKER:
                    blocker = TableBlocker(code=finding.code, message=finding.message, fix=finding.fix)
                    blockers[finding.table].append(blocker)
        rows = [_row(facts, blockers.get(facts.table, [])) for facts in store.load_inventory()]
        indexed = _Indexed(rows)
        with _LOCK:
            _CACHE.clear()  # one inventory at a time per process is all a page needs
            _CACHE[key] = indexed
        return indexed


def _row(facts: TableFacts, blockers: list[TableBlocker]) -> InventoryRow:
    ref = TableRef.parse(facts.table)
    return InventoryRow(
        table=facts.table,
        catalog=ref.catalog,
        namespace=ref.namespace_str,
        name=ref.name,
        format_version=facts.format_version,
        bytes=facts.data_bytes + facts.delete_bytes,
        files=facts.data_files + facts.delete_files,
        delete_files=facts.delete_files,
        snapshots=facts.snapshot_count,
        records=facts.records,
        features=features(facts),
        blockers=blockers,
    )


_SORTS = {
    "table": lambda r: r.table,
    "namespace": lambda r: (r.catalog, r.namespace),
    "bytes": lambda r: r.bytes,
    "files": lambda r: r.files,
    "snapshots": lambda r: r.snapshots,
    "records": lambda r: r.records,
    "format_version": lambda r: r.format_version,
    "blockers": lambda r: len(r.blockers),
}
