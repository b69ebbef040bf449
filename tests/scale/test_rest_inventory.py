"""Control plane over REST at scale: inventory and plan of a catalog of many tables (1,000 by default;
``ICEBRIDGE_SCALE_TABLES=10000`` for the PRD's estate), each table loaded through the REST server.

The times are printed; the 60 s target for 10,000 tables is measured in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml
from benchmarks.bench_control_plane import stamp_estate

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


def test_inventory_and_plan_of_a_large_rest_catalog(rest: RestCatalogs, tmp_path: Path) -> None:
    owner = rest.owner("estate")  # the system whose tables the REST catalog serves
    stamp_estate(rest.server.db_url, owner.name, tmp_path / "estate", TABLES)
    owner.engine.dispose()
    source = rest.new("estate", read_only=True)
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
    code, inventory, inventory_seconds = _cli(config, "inventory", "--refresh")
    assert code == 0, inventory
    assert len(inventory["tables"]) == TABLES and not inventory["findings"]
    assert all(t["records"] == 3 and t["data_files"] == 1 for t in inventory["tables"])
    code, plan, plan_seconds = _cli(config, "plan")
    assert code == 0, plan
    assert len(plan["tables"]) == TABLES and plan["blocked"] == 0
    total = inventory_seconds + plan_seconds
    print(f"{TABLES} tables over REST: inventory {inventory_seconds:.1f} s + plan {plan_seconds:.1f} s = {total:.1f} s")
    # each planned destination is checked against every source folder: the index keeps that linear
    assert plan_seconds < inventory_seconds * 2, f"plan {plan_seconds:.1f} s, inventory {inventory_seconds:.1f} s"
