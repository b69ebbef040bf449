"""The copy through an S3 API (moto_server on 127.0.0.1): bucket to bucket, and local files to S3."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pyarrow as pa
import pytest
import yaml

from icebridge.phases.copy import referenced_files
from icebridge.storage import list_files
from icebridge.store import open_store
from icebridge.validation.digest import partition_digests
from tests.integration import estate
from tests.integration.test_behaviour import Estate, assert_same_table

S3_KEYS = {"s3.access-key-id": "testing", "s3.secret-access-key": "testing", "s3.region": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """A moto server (every AWS service it mocks: S3, Glue, ...) on 127.0.0.1, stopped on exit; yields its URL."""
    # the project's own moto (5.2.3+: older servers answer CompleteMultipartUpload in a shape PyArrow rejects)
    server = str(Path(sys.executable).parent / "moto_server")
    assert Path(server).exists(), "moto_server is missing: pip install -e '.[dev]'"
    port = free_port()
    log = log_dir / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"moto_server exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"moto_server did not answer within 30 s: {log.read_text()}"
                time.sleep(0.2)
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1, stopped after the module."""
    with moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


def bucket(endpoint: str, name: str) -> str:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=name)
    return name


def s3_catalog(root: Path, name: str, endpoint: str, bucket_name: str) -> dict[str, str]:
    return {
        "type": "sql",
        "uri": f"sqlite:///{root}/{name}.db",
        "warehouse": f"s3://{bucket_name}/warehouse",
        "s3.endpoint": endpoint,
        **S3_KEYS,
    }


def make_s3_estate(root: Path, foreign: dict[str, str], managed: dict[str, str]) -> Estate:
    estate.build(estate.open_catalog("foreign", foreign))
    config = estate.write_config(root, f"sqlite:///{root}/state.db", foreign, managed)
    return Estate(root, config, f"sqlite:///{root}/state.db", foreign, managed)


def check_migrated(est: Estate) -> None:
    code, report = est.cli_json("migrate")
    assert code == 0, report
    strategies = {t.source: t.strategy for t in est.tasks().values()}  # type: ignore[attr-defined]
    assert set(strategies.values()) == {"file-copy", "rewrite"}
    foreign, managed = est.foreign(), est.managed()
    for ident in [i for ns in foreign.list_namespaces() for i in foreign.list_tables(ns)]:
        source, destination = foreign.load_table(ident), managed.load_table(ident)
        assert destination.metadata.location.startswith("s3://")
        assert_same_table(source, destination)
        location = destination.metadata.location
        stored = {f.path for folder in ("data", "metadata") for f in list_files(destination.io, f"{location}/{folder}")}
        assert stored <= referenced_files(destination), "no orphan objects"


def test_bucket_to_bucket(tmp_path: Path, s3_endpoint: str) -> None:
    foreign = s3_catalog(tmp_path, "foreign", s3_endpoint, bucket(s3_endpoint, "foreign-lake"))
    managed = s3_catalog(tmp_path, "managed", s3_endpoint, bucket(s3_endpoint, "managed-lake"))
    est = make_s3_estate(tmp_path, foreign, managed)
    check_migrated(est)
    # level 4 of the rewritten table (bucketed; columns added, renamed and dropped) read every object with
    # DuckDB, through the tables' own S3 settings
    store = open_store(est.state_url)
    try:
        digests = [
            v.details
            for task in store.list_tasks()
            if task.strategy == "rewrite"
            for v in store.validations(task.id)
            if v.comparator == "content-digest"
        ]
    finally:
        store.close()
    assert digests and all(d["files_scanned_by_duckdb"] == d["files_read"] > 0 for d in digests), digests


def test_the_duckdb_scan_of_objects_gives_the_general_paths_digests(tmp_path: Path, s3_endpoint: str) -> None:
    props = s3_catalog(tmp_path, "lake", s3_endpoint, bucket(s3_endpoint, "scan-lake"))
    catalog = estate.open_catalog("lake", props)
    catalog.create_namespace("ns")
    table = catalog.create_table(
        ("ns", "t"),
        pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string()), pa.field("x", pa.float64())]),
    )
    for start in (0, 700):
        ids = range(start, start + 700)
        table.append(
            pa.table(
                {
                    "id": pa.array(ids, pa.int64()),
                    "name": [f"n{i}" if i % 5 else None for i in ids],
                    "x": [-0.0 if i == 3 else i / 7 for i in ids],
                }
            )
        )
    schema, spec = table.schema(), table.spec()
    fast = partition_digests(table, None, schema, spec, reader="auto")
    slow = partition_digests(table, None, schema, spec, reader="arrow")
    assert fast.scanned_files == fast.files == 2
    assert fast.digests == slow.digests and fast.rows == 1400


def test_local_files_to_s3(tmp_path: Path, s3_endpoint: str) -> None:
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = s3_catalog(tmp_path, "managed", s3_endpoint, bucket(s3_endpoint, "managed-from-local"))
    est = make_s3_estate(tmp_path, foreign, managed)
    code, preflight = est.cli_json("preflight")
    assert code == 0 and preflight["blockers"] == 0, preflight
    check_migrated(est)


def test_missing_bucket_is_a_preflight_blocker(tmp_path: Path, s3_endpoint: str) -> None:
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    managed = s3_catalog(tmp_path, "managed", s3_endpoint, "no-such-bucket")
    est = make_s3_estate(tmp_path, foreign, managed)
    config = yaml.safe_load(est.config.read_text())
    assert config["catalogs"]["managed"]["warehouse"] == "s3://no-such-bucket/warehouse"
    code, preflight = est.cli_json("preflight")
    assert code == 1
    assert {f["code"] for f in preflight["findings"] if f["severity"] == "blocker"} == {"storage-not-writable"}
