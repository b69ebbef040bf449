"""Pre-flight: checks that return findings (blocker, warning, info) with the fix; never exceptions.

Probes are real: a data file's footer is read, a destination namespace is created and dropped when it
does not exist yet, and a small object is written, read back and deleted in destination storage.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from pyiceberg.exceptions import NamespaceAlreadyExistsError
from pyiceberg.io import load_file_io

from icebridge.catalogs import warehouse_location
from icebridge.errors import IceBridgeError
from icebridge.events import Progress
from icebridge.model import Finding, PlanItem, Severity, Strategy, TableRef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import AppContext

PROBE_BYTES = b"icebridge storage probe\n"


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


def storage_root(ctx: AppContext, dest: TableRef) -> str | None:
    """Where new destination tables will be written: the namespace location or the catalog warehouse."""
    catalog = ctx.catalogs.get(dest.catalog)
    try:
        if catalog.namespace_exists(dest.namespace):
            location = catalog.load_namespace_properties(dest.namespace).get("location")
            if location:
                return str(location).rstrip("/")
    except Exception:
        pass
    warehouse = warehouse_location(catalog)
    if warehouse:
        return warehouse.rstrip("/")
    # a REST server that decides locations itself (its 'warehouse' may be a catalog name): probe the folder
    # it would put the table in
    planned = ctx.catalogs.planned_location(dest)
    return planned.rstrip("/").rsplit("/", 1)[0] if planned else None


def check_storage(ctx: AppContext, dest: TableRef, cache: dict[str, list[Finding]]) -> list[Finding]:
    """Write, read back and delete a small object where the destination table will live."""
    root = storage_root(ctx, dest)
    if root is None and ctx.catalogs.capabilities(dest.catalog).kind in ("rest", "unity"):
        return [
            Finding(
                str(dest),
                Severity.INFO,
                "storage-chosen-by-server",
                f"catalog {dest.catalog!r} is a REST catalog whose server chooses table locations; "
                f"its storage is first written when {dest} is created",
            )
        ]
    if root is None:
        return [
            Finding(
                str(dest),
                Severity.WARNING,
                "storage-unknown",
                f"catalog {dest.catalog!r} has no warehouse location to probe",
                "set 'warehouse' in the catalog's properties",
            )
        ]
    if root in cache:
        return [Finding(str(dest), f.severity, f.code, f.message, f.fix) for f in cache[root]]
    catalog = ctx.catalogs.get(dest.catalog)
    path = f"{root}/.icebridge-probe-{uuid.uuid4().hex}"
    findings: list[Finding] = []
    try:
        io = load_file_io({**catalog.properties}, root)
        with io.new_output(path).create(overwrite=True) as out:
            out.write(PROBE_BYTES)
        with io.new_input(path).open() as stream:
            if stream.read() != PROBE_BYTES:
                raise OSError("read back different bytes")
        io.delete(path)
    except Exception as exc:
        findings.append(
            Finding(
                str(dest),
                Severity.BLOCKER,
                "storage-not-writable",
                f"destination storage {root} is not writable: {exc}",
                "grant write access to the warehouse location or change the catalog's 'warehouse'",
            )
        )
    cache[root] = findings
    return findings


def run(ctx: AppContext, items: list[PlanItem]) -> list[Finding]:
    """Every finding for every planned table: plan blockers first, then the probes."""
    findings: list[Finding] = []
    storage_cache: dict[str, list[Finding]] = {}
    namespace_cache: dict[tuple[str, tuple[str, ...]], list[Finding]] = {}
    for item in items:
        ctx.bus.publish(Progress(phase="preflight", table=str(item.source), files=1))
        findings.extend(item.findings)
        _table, source_findings = check_source(ctx, item.source)
        findings.extend(source_findings)
        if item.destination is None:
            continue
        key = (item.destination.catalog, item.destination.namespace)
        if key not in namespace_cache:
            namespace_cache[key] = check_namespace(ctx, item.destination)
        findings.extend(Finding(str(item.source), f.severity, f.code, f.message, f.fix) for f in namespace_cache[key])
        if item.strategy is Strategy.DATABRICKS:
            # Unity Catalog decides: privileges, external access, masks and row filters, via a SQL warehouse
            from icebridge.governance.unity import preflight as unity_preflight

            findings.extend(
                Finding(str(item.source), f.severity, f.code, f.message, f.fix)
                for f in unity_preflight(ctx.config, item.source, item.destination)
            )
            continue
        findings.extend(
            Finding(str(item.source), f.severity, f.code, f.message, f.fix)
            for f in check_storage(ctx, item.destination, storage_cache)
        )
    return findings
