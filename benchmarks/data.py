"""Benchmark data: TPC-H ``lineitem`` as a partitioned Iceberg table, generated once and cached.

The table lives in its own PyIceberg SQL catalog on SQLite under ``<data_dir>/lineitem-<bytes>/`` and is
partitioned by ``month(l_shipdate)``. Its scale factor is chosen so the table holds at least the asked
number of Parquet bytes: a small calibration table (cached too) tells how many bytes one scale-factor unit
takes with this PyIceberg/PyArrow, and a build that still falls short is redone at a larger scale factor.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import MonthTransform

from icebridge.demo import find_tpchgen, normalize_strings, tpch_schema

NAMESPACE = "tpch"
TABLE = "lineitem"
IDENTIFIER = (NAMESPACE, TABLE)
READY = "READY.json"
CALIBRATION_SF = 0.1
SMALL_CALIBRATION_SF = 0.01  # for tables under SMALL_TABLE bytes (quick runs): fast, precise enough
SMALL_TABLE = 64 * 1024 * 1024
# Scale-factor units per generated part: each part is loaded with one append, so this bounds the
# memory of the load (about 1 GB of Arrow per unit).
SF_PER_PART = 2.0
# Small per-file overhead makes the calibration table slightly denser than a big one; aim a bit higher.
SIZE_MARGIN = 1.08
MAX_BUILDS = 3


def catalog_properties(root: Path) -> dict[str, str]:
    """PyIceberg properties of the SQL catalog (on SQLite) kept under ``root``."""
    root = root.resolve()
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": f"file://{root / 'warehouse'}"}


def open_catalog(root: Path, name: str = "bench") -> SqlCatalog:
    """The SQL catalog under ``root`` (created on first use)."""
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    props = catalog_properties(root)
    return SqlCatalog(name, uri=props["uri"], warehouse=props["warehouse"])


def data_bytes(table: Table) -> int:
    """Bytes of the data files of the table's current snapshot (from its summary)."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-files-size", 0))


def record_count(table: Table) -> int:
    """Rows of the table's current snapshot (from its summary)."""
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-records", 0))


def data_folder(table: Table) -> Path:
    """The local folder holding the table's data files."""
    return Path(table.metadata.location.removeprefix("file://")) / "data"


def lineitem_table(data_dir: Path, min_bytes: int) -> tuple[Catalog, Table]:
    """TPC-H ``lineitem`` as a ``month(l_shipdate)``-partitioned Iceberg table of at least ``min_bytes`` bytes.

    Built under ``data_dir`` with ``tpchgen-cli`` on first use and reused afterwards; a half-built table
    (no ``READY.json``) is removed and built again.
    """
    root = data_dir / f"lineitem-{min_bytes}"
    if (root / READY).is_file():
        catalog = open_catalog(root)
        return catalog, catalog.load_table(IDENTIFIER)
    calibration_sf = SMALL_CALIBRATION_SF if min_bytes < SMALL_TABLE else CALIBRATION_SF
    scale = _round_up(min_bytes / _bytes_per_scale_unit(data_dir, calibration_sf) * SIZE_MARGIN)
    for _ in range(MAX_BUILDS):
        shutil.rmtree(root, ignore_errors=True)
        catalog, table = _build(root, scale)
        size = data_bytes(table)
        if size >= min_bytes:
            info = {"scale_factor": scale, "bytes": size, "rows": record_count(table), "files": _file_count(table)}
            (root / READY).write_text(json.dumps(info, indent=2))
            return catalog, table
        scale = _round_up(scale * min_bytes / max(size, 1) * SIZE_MARGIN)
    raise RuntimeError(f"could not build a lineitem table of {min_bytes} bytes under {root} in {MAX_BUILDS} tries")


def table_info(data_dir: Path, min_bytes: int) -> dict[str, float]:
    """What :func:`lineitem_table` recorded about the cached table (scale factor, bytes, rows, files)."""
    info: dict[str, float] = json.loads((data_dir / f"lineitem-{min_bytes}" / READY).read_text())
    return info


def _round_up(scale: float) -> float:
    return math.ceil(scale * 1000) / 1000


def _file_count(table: Table) -> int:
    snapshot = table.current_snapshot()
    if snapshot is None or snapshot.summary is None:
        return 0
    return int(snapshot.summary.additional_properties.get("total-data-files", 0))


def _bytes_per_scale_unit(data_dir: Path, scale: float) -> float:
    """Iceberg Parquet bytes of one TPC-H scale-factor unit of lineitem, measured at ``scale`` once and cached."""
    cached = data_dir / f"calibration-{scale:g}.json"
    if cached.is_file():
        return float(json.loads(cached.read_text())["bytes_per_scale_unit"])
    root = data_dir / f"calibration-{scale:g}"
    shutil.rmtree(root, ignore_errors=True)
    _catalog, table = _build(root, scale)
    per_unit = data_bytes(table) / scale
    shutil.rmtree(root, ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"bytes_per_scale_unit": per_unit, "scale_factor": scale}))
    return per_unit


def _build(root: Path, scale: float) -> tuple[SqlCatalog, Table]:
    root.mkdir(parents=True, exist_ok=True)
    catalog = open_catalog(root)
    parts = max(1, math.ceil(scale / SF_PER_PART))
    with tempfile.TemporaryDirectory(prefix="tpchgen-", dir=root) as tmp:
        cmd = [
            find_tpchgen(),
            "parquet",
            f"--scale-factor={scale}",
            "--tables=lineitem",
            f"--parts={parts}",
            f"--output-dir={tmp}",
            "--quiet",
            "--no-progress",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"tpchgen-cli failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
        files = sorted(Path(tmp).rglob("*.parquet"))
        if not files:
            raise RuntimeError(f"tpchgen-cli wrote no Parquet file under {tmp}")
        table: Table | None = None
        for path in files:
            data = normalize_strings(pq.read_table(path))
            if table is None:
                catalog.create_namespace_if_not_exists(NAMESPACE)
                schema = tpch_schema(data.schema)
                table = catalog.create_table(IDENTIFIER, schema=schema, partition_spec=_spec(schema))
            table.append(data)
            del data
            path.unlink()  # the temporary copy is not needed once appended; keeps the disk peak low
    assert table is not None
    return catalog, table


def _spec(schema: Schema) -> PartitionSpec:
    # month partitions give ~84 files per append: many mid-sized files, as real tables have
    source_id = schema.find_field("l_shipdate").field_id
    return PartitionSpec(
        PartitionField(source_id=source_id, field_id=1000, transform=MonthTransform(), name="l_shipdate_month")
    )
