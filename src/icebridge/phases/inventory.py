"""Inventory: the facts of every source table, read from its metadata and manifests (never its data)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pyiceberg.manifest import DataFileContent

from icebridge.errors import IceBridgeError
from icebridge.events import Progress
from icebridge.model import Finding, Severity, TableFacts, TableRef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.context import AppContext


def discover(ctx: AppContext) -> list[TableRef]:
    """Every table of every source catalog named by a mapping rule."""
    refs: list[TableRef] = []
    for catalog_name in ctx.config.source_catalogs:
        refs.extend(ctx.catalogs.list_tables(catalog_name))
    return refs


def table_facts(ref: TableRef, table: Table) -> TableFacts:
    """Facts of one loaded table at its current snapshot."""
    metadata = table.metadata
    snapshot = table.current_snapshot()
    counts = {
        DataFileContent.DATA: 0,
        DataFileContent.POSITION_DELETES: 0,
        DataFileContent.EQUALITY_DELETES: 0,
    }
    data_bytes = delete_bytes = records = 0
    formats: set[str] = set()
    if snapshot is not None:
        for manifest in snapshot.manifests(table.io):
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                data_file = entry.data_file
                counts[data_file.content] += 1
                formats.add(
                    str(
                        data_file.file_format.value
                        if hasattr(data_file.file_format, "value")
                        else data_file.file_format
                    ).upper()
                )
                if data_file.content == DataFileContent.DATA:
                    data_bytes += data_file.file_size_in_bytes
                    records += data_file.record_count
                else:
                    delete_bytes += data_file.file_size_in_bytes
    spec = table.spec()
    schema = table.schema()
    partition_fields = tuple(f"{pf.transform}({schema.find_column_name(pf.source_id)})" for pf in spec.fields)
    return TableFacts(
        table=str(ref),
        format_version=metadata.format_version,
        location=metadata.location,
        metadata_location=table.metadata_location,
        table_uuid=str(metadata.table_uuid),
        current_schema_id=metadata.current_schema_id,
        default_spec_id=metadata.default_spec_id,
        default_sort_order_id=metadata.default_sort_order_id,
        schema_count=len(metadata.schemas),
        spec_count=len(metadata.partition_specs),
        snapshot_count=len(metadata.snapshots),
        current_snapshot_id=snapshot.snapshot_id if snapshot else None,
        data_files=counts[DataFileContent.DATA],
        delete_files=counts[DataFileContent.POSITION_DELETES] + counts[DataFileContent.EQUALITY_DELETES],
        position_delete_files=counts[DataFileContent.POSITION_DELETES],
        equality_delete_files=counts[DataFileContent.EQUALITY_DELETES],
        data_bytes=data_bytes,
        delete_bytes=delete_bytes,
        records=records,
        file_formats=tuple(sorted(formats)),
        partition_fields=partition_fields,
        properties=dict(metadata.properties),
    )


INVENTORY_WORKERS = 8
# A REST catalog's load is mostly waiting for its server (which answers several at once): more loads in flight
# pay. Measured on the reference server with 1,000 tables: 8 at once 10.8 s, 16 4.4 s, 32 2.7 s, 64 3.9 s.
REST_INVENTORY_WORKERS = 32


def _facts_or_finding(ctx: AppContext, ref: TableRef) -> TableFacts | Finding:
    ctx.bus.publish(Progress(phase="inventory", table=str(ref), files=1))
    try:
        return table_facts(ref, ctx.catalogs.load_table(ref))
    except IceBridgeError as exc:
        return Finding(str(ref), Severity.BLOCKER, "source-unreadable", str(exc), "repair or remove the table")
    except Exception as exc:  # a corrupt manifest surfaces as many PyIceberg/Avro error types
        return Finding(
            str(ref),
            Severity.BLOCKER,
            "source-unreadable",
            f"{ref}: manifests cannot be read: {exc}",
            "repair the table's metadata or exclude it from the mappings",
        )


def collect(ctx: AppContext) -> Iterator[TableFacts | Finding]:
    """Facts for each source table, in catalog order; an unreadable table yields a blocker finding.

    Tables are read several at a time: each costs a catalog round trip and a few small metadata reads,
    so the time is waiting, not computing.
    """
    refs = [ref for ref in discover(ctx) if ctx.config.rule_for(ref) is not None]
    with ThreadPoolExecutor(max_workers=_workers(ctx, refs), thread_name_prefix="inventory") as pool:
        yield from pool.map(lambda ref: _facts_or_finding(ctx, ref), refs)


def _workers(ctx: AppContext, refs: list[TableRef]) -> int:
    """Loads in flight: more when a source is a REST catalog (the time is its server's), never more than tables.

    A REST catalog's HTTP session keeps 10 connections per host by default; with more loads in flight the
    others would each open and drop a connection, so its pool is widened to the loads in flight (1,000
    loads, 32 at once: 5.0 s with the default pool, 2.9 s widened).
    """
    from pyiceberg.catalog.rest import RestCatalog

    rest = [c for c in (ctx.catalogs.get(name) for name in {r.catalog for r in refs}) if isinstance(c, RestCatalog)]
    workers = max(1, min(len(refs), REST_INVENTORY_WORKERS if rest else INVENTORY_WORKERS))
    for catalog in rest:
        _widen_http_pool(catalog, workers)
    return workers


def _widen_http_pool(catalog: object, connections: int) -> None:
    import requests
    from requests.adapters import HTTPAdapter

    session = getattr(catalog, "_session", None)  # PyIceberg's RestCatalog keeps its requests.Session here
    if not isinstance(session, requests.Session):
        return
    for prefix, adapter in list(session.adapters.items()):
        if type(adapter) is HTTPAdapter and adapter._pool_maxsize < connections:  # type: ignore[attr-defined]
            session.mount(prefix, HTTPAdapter(pool_connections=4, pool_maxsize=connections))


def run(ctx: AppContext) -> tuple[list[TableFacts], list[Finding]]:
    """A fresh inventory: the facts of every mapped source table, and a blocker for each unreadable one."""
    facts: list[TableFacts] = []
    findings: list[Finding] = []
    for item in collect(ctx):
        if isinstance(item, TableFacts):
            facts.append(item)
        else:
            findings.append(item)
    return facts, findings
