"""The spark engine against a cluster master URL (``spark://…``), not local mode.

A Spark standalone master and one worker are started from pyspark's own jars; ``icebridge migrate``
runs as a separate process whose engine connects to that master, so the copy runs in an executor JVM
the worker launched, with the Iceberg runtime shipped to it through ``spark.jars``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import LongType, NestedField, StringType

from icebridge.store import open_store
from tests.spark.conftest import shared_catalog, spark_settings

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

START_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def master_state(ui_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        state: dict[str, Any] = json.load(response)
    return state


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A standalone master and one worker (2 cores, 2 GiB); yields the master URL and its web UI port."""
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    root = tmp_path_factory.mktemp("spark-cluster")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_NO_DAEMONIZE": "1"}
    spark_class = str(home / "bin" / "spark-class")
    url = f"spark://127.0.0.1:{port}"
    logs = {name: (root / f"{name}.log").open("wb") for name in ("master", "worker")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
                + ["--port", str(port), "--webui-port", str(ui)],
                env=env,
                stdout=logs["master"],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        procs.append(
            subprocess.Popen(
                [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1"]
                + ["--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui), "--work-dir", str(root / "work")],
                env=env,
                stdout=logs["worker"],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                if master_state(ui).get("aliveworkers", 0) >= 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                text = "\n".join((root / f"{n}.log").read_text(errors="replace")[-3000:] for n in logs)
                pytest.fail(f"the standalone cluster did not come up with a worker:\n{text}", pytrace=False)
            time.sleep(1)
        yield url, ui
    finally:
        _stop(procs)
        for fh in logs.values():
            fh.close()


def test_migrate_on_a_standalone_cluster_runs_in_its_executors_and_validates(
    tmp_path: Path, pg_server: str, cluster: tuple[str, int]
) -> None:
    url, ui = cluster
    # the migrate process builds its own session against the cluster: the catalogs are not set in this one
    foreign = shared_catalog(tmp_path, pg_server, "foreign", None)
    managed = shared_catalog(tmp_path, pg_server, "managed", None)
    source = foreign.pyiceberg()
    source.create_namespace("shop")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
    )
    orders = source.create_table(
        "shop.orders", schema, partition_spec=PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"))
    )
    rows = pa.table(
        {"id": pa.array(range(3000), pa.int64()), "region": [("eu", "us", "apac")[i % 3] for i in range(3000)]}
    )
    orders.append(rows.slice(0, 1500))
    orders.append(rows.slice(1500))
    managed.pyiceberg().create_namespace("shop")

    settings = spark_settings()
    settings["master"] = url
    settings["conf"].update({"spark.driver.host": "127.0.0.1", "spark.executor.memory": "1g"})
    config = tmp_path / "icebridge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state": f"sqlite:///{tmp_path}/state.db",
                "catalogs": {foreign.name: foreign.props, managed.name: managed.props},
                "mappings": [
                    {
                        "source": f"{foreign.name}.*.*",
                        "target": f"{managed.name}.{{namespace}}",
                        "strategy": "spark-sql",
                    }
                ],
                "engines": {"spark": settings},
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "icebridge", "migrate", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout[done.stdout.index("{") :])
    [outcome] = report["tables"]
    assert outcome["status"] == "succeeded", outcome
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        assert [t.strategy for t in store.list_tasks()] == ["spark-sql"]
    finally:
        store.close()

    copied = managed.pyiceberg().load_table("shop.orders")
    assert sorted(copied.scan().to_arrow().column("id").to_pylist()) == list(range(3000))
    # the work ran on the cluster: the master lists the finished application and its executor
    state = master_state(ui)
    apps = state.get("completedapps", []) + state.get("activeapps", [])
    assert apps, state
    assert any(app.get("cores", 0) >= 1 for app in apps), apps
