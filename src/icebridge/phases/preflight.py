"""Pre-flight: checks that return findings (blocker, warning, info) with the fix; never exceptions.

Probes are real: a data file's footer is read, a destination namespace is created and dropped when it
does not exist yet, and a small object is written, read back and deleted in destination storage.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from pyiceberg.exceptions import NamespaceAlreadyExistsError

from icebridge import governance
from icebridge.engines import engine_for
from icebridge.errors import IceBridgeError
from icebridge.events import Progress
from icebridge.model import Finding, PlanItem, Severity, TableRef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import AppContext


def check_source(ctx: AppContext, ref: TableRef) -> tuple[Table | None, list[Finding]]:
    """Source metadata loads and one data file's Parquet footer can be read."""
    table_name = str(ref)
    try:
        table = ctx.catalogs.load_table(ref)
    except IceBridgeError as exc:
        return None, [
            Finding(
                table_name,
                Severity.BLOCKER,
                "source-metadata",
                str(exc),
                "repair the table's metadata or exclude it from the mappings",
            )
        ]
    snapshot = table.current_snapshot()
    if snapshot is None:
        return table, [
            Finding(table_name, Severity.INFO, "source-empty", "table has no snapshot; only its shape is copied")
        ]
    try:
        first = next((t.file for t in table.scan(snapshot_id=snapshot.snapshot_id).plan_files()), None)
    except Exception as exc:
        return table, [
            Finding(
                table_name,
                Severity.BLOCKER,
                "source-manifests",
                f"manifests of snapshot {snapshot.snapshot_id} cannot be read: {exc}",
                "repair the table's metadata",
            )
        ]
    if first is None:
        return table, []
    try:
        if str(first.file_format.value).upper() == "PARQUET":
            with table.io.new_input(first.file_path).open() as stream:
                pq.ParquetFile(stream).metadata  # noqa: B018 - reading the footer is the probe
        else:
            with table.io.new_input(first.file_path).open() as stream:
                stream.read(16)
    except Exception as exc:
        return table, [
            Finding(
                table_name,
                Severity.BLOCKER,
                "source-data-unreadable",
                f"data file {first.file_path} cannot be read: {exc}",
                "grant read access to the source storage for this machine's credentials",
            )
        ]
    return table, []


def check_namespace(ctx: AppContext, dest: TableRef) -> list[Finding]:
    """The destination namespace exists, or can be created (created and dropped again to prove it)."""
    catalog = ctx.catalogs.get(dest.catalog)
    try:
        if catalog.namespace_exists(dest.namespace):
            return []
        probe = (*dest.namespace[:-1], f"icebridge_probe_{uuid.uuid4().hex[:12]}")
        try:
            catalog.create_namespace(probe)
        except NamespaceAlreadyExistsError:
            pass
        catalog.drop_namespace(probe)
        return [
            Finding(
                str(dest),
                Severity.INFO,
                "namespace-created",
                f"namespace {dest.namespace_str!r} will be created in {dest.catalog!r}",
            )
        ]
    except Exception as exc:
        return [
            Finding(
                str(dest),
                Severity.BLOCKER,
                "namespace-not-creatable",
                f"cannot create namespace {dest.namespace_str!r} in {dest.catalog!r}: {exc}",
                "create the namespace yourself or grant CREATE on the catalog",
            )
        ]


def run(ctx: AppContext, items: list[PlanItem], engine: str | None = None) -> list[Finding]:
    """Every finding for every planned table: plan blockers first, then the probes, then the engines' own checks.

    Each table's engine (``engine`` for this run when it carries the table's strategy) runs its own
    pre-flight: the local and Spark engines probe the destination storage, the Databricks engine asks
    Unity Catalog.
    """
    per_table: dict[str, list[Finding]] = defaultdict(list)
    namespace_cache: dict[tuple[str, tuple[str, ...]], list[Finding]] = {}
    by_engine: dict[str, list[PlanItem]] = defaultdict(list)
    for item in items:
        table = str(item.source)
        ctx.bus.publish(Progress(phase="preflight", table=table, files=1))
        per_table[table].extend(item.findings)
        _table, source_findings = check_source(ctx, item.source)
        per_table[table].extend(source_findings)
        if item.destination is None:
            continue
        key = (item.destination.catalog, item.destination.namespace)
        if key not in namespace_cache:
            namespace_cache[key] = check_namespace(ctx, item.destination)
        per_table[table].extend(Finding(table, f.severity, f.code, f.message, f.fix) for f in namespace_cache[key])
        by_engine[engine_for(item.strategy, preferred=engine)].append(item)
    for name, engine_items in by_engine.items():
        for finding in engine_preflight(ctx, name, engine_items):
            per_table[finding.table].append(finding)
    for finding in governance.preflight(ctx, items):  # what would stop the grant swap at cut-over
        per_table[finding.table].append(finding)
    return [f for item in items for f in per_table.pop(str(item.source), [])]


def engine_preflight(ctx: AppContext, name: str, items: list[PlanItem]) -> list[Finding]:
    """The findings of engine ``name`` for the items it will copy; an engine that cannot run is a blocker."""
    try:
        engine = ctx.engine(name)
        return engine.preflight(items, ctx.catalogs)
    except Exception as exc:  # pre-flight reports, it never raises
        message = str(exc) if isinstance(exc, IceBridgeError) else f"{type(exc).__name__}: {exc}"
        return [
            Finding(
                str(item.source),
                Severity.BLOCKER,
                "engine-unavailable",
                f"the {name} engine cannot check this table: {ctx.config.redact(message)}",
                f"install the engine's extra or fix engines.{name} in the configuration",
            )
            for item in items
        ]
