"""Control plane over REST at scale: inventory and plan of a catalog of many tables (1,000 by default;
``ICEBRIDGE_SCALE_TABLES=10000`` for the PRD's estate), each table loaded through the REST server; and an
inventory run again reads only the tables whose metadata moved, which must still be read.

The times are printed (never asserted); the 60 s target for 10,000 tables is measured in
``benchmarks/RESULTS.md`` (``python -m benchmarks.run --only control_plane``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import yaml
from benchmarks.bench_control_plane import stamp_estate
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField

from tests.catalogs.conftest import RestCatalogs

TABLES = int(os.environ.get("ICEBRIDGE_SCALE_TABLES", "1000"))


def _cli(config: Path, *args: str) -> tuple[int, dict, float]:  # type: ignore[type-arg]
    """The icebridge CLI in its own process, as a user runs it: exit code, JSON answer, seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "icebridge", *args, "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=os.environ,
    )
    seconds = time.monotonic() - started
    out = result.stdout
    assert "{" in out, result.stderr[-2000:]
    return result.returncode, json.loads(out[out.index("{") :]), seconds


def _config(tmp_path: Path, source: dict[str, str]) -> Path:
    config = tmp_path / "icebridge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state": f"sqlite:///{tmp_path}/state.db",
                "catalogs": {
                    "foreign": source,
                    "managed": {
                        "type": "sql",
                        "uri": f"sqlite:///{tmp_path}/managed.db",
                        "warehouse": f"file://{tmp_path}/managed",
                    },
                },
                "mappings": [{"source": "foreign.*.*", "target": "managed.{namespace}"}],
            }
        )
    )
    return config


def test_inventory_and_plan_of_a_large_rest_catalog(rest: RestCatalogs, tmp_path: Path) -> None:
    owner = rest.owner("estate")  # the system whose tables the REST catalog serves
    stamp_estate(rest.server.db_url, owner.name, tmp_path / "estate", TABLES)
    owner.engine.dispose()
    config = _config(tmp_path, rest.new("estate", read_only=True))
    code, inventory, inventory_seconds = _cli(config, "inventory", "--refresh")
    assert code == 0, inventory
    assert len(inventory["tables"]) == TABLES and not inventory["findings"]
    assert all(t["records"] == 3 and t["data_files"] == 1 for t in inventory["tables"])
    code, plan, plan_seconds = _cli(config, "plan")
    assert code == 0, plan
    assert len(plan["tables"]) == TABLES and plan["blocked"] == 0
    assert {t["source"] for t in plan["tables"]} == {t["table"] for t in inventory["tables"]}
    total = inventory_seconds + plan_seconds
    print(f"{TABLES} tables over REST: inventory {inventory_seconds:.1f} s + plan {plan_seconds:.1f} s = {total:.1f} s")


def test_inventory_again_reads_only_the_tables_whose_metadata_moved(rest: RestCatalogs, tmp_path: Path) -> None:
    owner = rest.owner("again")
    owner.create_namespace("sales")
    schema = Schema(NestedField(1, "id", LongType(), required=False))
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    for name in ("kept", "moved"):
        owner.create_table(("sales", name), schema).append(rows)
    config = _config(tmp_path, rest.new("again", read_only=True))
    code, first, _ = _cli(config, "inventory", "--refresh")
    assert code == 0, first
    before = {t["table"].rsplit(".", 1)[-1]: t for t in first["tables"]}
    assert before["kept"]["records"] == before["moved"]["records"] == 3

    # the unchanged table's manifest list is spoiled: read again, it could not give its facts back
    kept = owner.load_table(("sales", "kept"))
    manifest_list = Path(kept.current_snapshot().manifest_list.removeprefix("file://"))  # type: ignore[union-attr]
    manifest_list.write_bytes(b"not an avro file")
    # the other table gets a new snapshot, hence a new metadata location: it must be read again
    owner.load_table(("sales", "moved")).append(rows)

    code, second, _ = _cli(config, "inventory", "--refresh")
    assert code == 0, second
    after = {t["table"].rsplit(".", 1)[-1]: t for t in second["tables"]}
    assert after["kept"] == before["kept"]  # reused: its metadata location is the one it was read from
    assert after["moved"]["metadata_location"] != before["moved"]["metadata_location"]
    assert (after["moved"]["records"], after["moved"]["data_files"], after["moved"]["snapshot_count"]) == (6, 2, 2)

    # a table whose metadata moved is read, even when what it now names is unreadable: a blocker, not reuse
    moved = owner.load_table(("sales", "moved"))
    moved.append(rows)
    Path(moved.current_snapshot().manifest_list.removeprefix("file://")).write_bytes(b"spoiled")  # type: ignore[union-attr]
    code, third, _ = _cli(config, "inventory", "--refresh")
    assert code != 0
    assert [(f["table"].rsplit(".", 1)[-1], f["code"]) for f in third["findings"]] == [("moved", "source-unreadable")]
    assert [t["table"].rsplit(".", 1)[-1] for t in third["tables"]] == ["kept"]
    owner.engine.dispose()
