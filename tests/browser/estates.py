"""Estates for the browser tests: a small one with a hostile table name, and a large saved inventory."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog

from icebridge.demo import catalog_properties
from icebridge.model import Finding, Severity, TableFacts
from icebridge.store import open_store

HOSTILE = "<img src=x onerror=alert(1)>"


def write_config(root: Path, extra: str = "") -> Path:
    """An icebridge.yaml for the ``foreign`` and ``managed`` SQL catalogs under ``root``."""
    props = catalog_properties(root)
    lines = [f"state: sqlite:///{root / 'state.db'}", "catalogs:"]
    for name, values in props.items():
        Path(values["warehouse"].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        lines.append(f"  {name}:")
        lines.extend(f'    {k}: "{v}"' for k, v in values.items())
    lines += ["mappings:", "  - source: foreign.*.*", "    target: managed.{namespace}", ""]
    config = root / "icebridge.yaml"
    config.write_text("\n".join(lines) + extra)
    return config


def hostile_estate(root: Path, files: int) -> Path:
    """A foreign table named like an HTML injection, written as ``files`` appends (one data file each)."""
    root.mkdir(parents=True, exist_ok=True)
    config = write_config(root)
    foreign = SqlCatalog("foreign", **catalog_properties(root)["foreign"])
    SqlCatalog("managed", **catalog_properties(root)["managed"]).list_namespaces()
    foreign.create_namespace("xss")
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("label", pa.string())])
    table = foreign.create_table(("xss", HOSTILE), schema=schema)
    for i in range(files):
        table.append(pa.table({"id": [i * 10 + j for j in range(10)], "label": [HOSTILE] * 10}, schema=schema))
    return config


def large_inventory(root: Path, tables: int, blocked_every: int = 50) -> Path:
    """A configuration whose store holds a saved inventory of ``tables`` tables over 20 namespaces, one in
    ``blocked_every`` of them with a blocker recorded by an inventory run. No table exists in a catalog:
    the discover page reads only the saved inventory."""
    root.mkdir(parents=True, exist_ok=True)
    config = write_config(root)
    facts = [facts_of(i) for i in range(tables)]
    store = open_store(f"sqlite:///{root / 'state.db'}")
    try:
        store.save_inventory(facts)
        run = store.start_run("inventory", str(config), {"refresh": True})
        blockers = [
            Finding(f.table, Severity.BLOCKER, "unreadable", f"{f.table}: metadata file missing", "restore the file")
            for i, f in enumerate(facts)
            if i % blocked_every == 7
        ]
        store.add_findings(run.id, blockers)
        store.finish_run(run.id, "failed", {"tables": tables, "unreadable": len(blockers)})
    finally:
        store.close()
    return config


def facts_of(i: int) -> TableFacts:
    """Table ``i`` of a large estate: sizes spread so that sorting has something to do."""
    size = (i * 7919) % 100_003 * 1024
    return TableFacts(
        table=f"foreign.ns_{i % 20:02d}.table_{i:05d}",
        format_version=2 if i % 10 else 1,
        location=f"file:///nowhere/ns_{i % 20:02d}/table_{i:05d}",
        metadata_location=f"file:///nowhere/ns_{i % 20:02d}/table_{i:05d}/metadata/v1.metadata.json",
        table_uuid=f"00000000-0000-0000-0000-{i:012d}",
        current_schema_id=0,
        default_spec_id=0,
        default_sort_order_id=0,
        schema_count=1 + int(i % 3 == 0),
        spec_count=1,
        snapshot_count=1 + i % 9,
        current_snapshot_id=i + 1,
        data_files=1 + i % 40,
        delete_files=int(i % 4 == 0),
        position_delete_files=int(i % 4 == 0),
        equality_delete_files=0,
        data_bytes=size,
        delete_bytes=0,
        records=size // 100,
        file_formats=("PARQUET",),
        partition_fields=("day",) if i % 2 else (),
    )
