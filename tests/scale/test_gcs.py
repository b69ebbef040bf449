"""Object-store-native copy and proof on Google Cloud Storage, against a GCS emulator on 127.0.0.1.

The emulator (``gcp-storage-emulator``, a dev dependency, served by ``gcs_emulator.py``) speaks GCS's
JSON API: PyArrow's GCS file system writes and reads through it, ``google-cloud-storage`` reads each
object's CRC32C from it, and it logs every request it answers, so the tests see that no byte of a
copied object was read.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from pyiceberg.io.pyarrow import PyArrowFileIO

from icebridge.errors import ValidationError
from icebridge.storage import ARROW, KERNEL, SERVER_SIDE, stored_checksum, transfer
from icebridge.validation.identity import READ, STORE_CHECKSUM
from tests.integration import estate
from tests.integration.test_behaviour import Estate, assert_same_table
from tests.integration.test_s3 import free_port
from tests.scale.conftest import file_identity_details, identity_of

PROJECT = "icebridge-test"
# PyArrow's GCS client takes a token only with its expiry; the emulator accepts any token
TOKEN = {"gcs.oauth2.token": "emulator-token", "gcs.oauth2.token-expires-at": "4102444800000"}


@dataclass(frozen=True)
class GcsServer:
    endpoint: str
    log: Path

    def props(self) -> dict[str, str]:
        return {"gcs.service.host": self.endpoint, "gcs.project-id": PROJECT, **TOKEN}

    def io(self) -> PyArrowFileIO:
        return PyArrowFileIO(self.props())

    def requests(self) -> list[str]:
        """The requests answered so far, e.g. ``GET /download/storage/v1/b/bucket/o/key?alt=media``."""
        found = re.finditer(r'"(GET|POST|PUT|DELETE|PATCH) (\S+)', self.log.read_text())
        return [f"{m.group(1)} {m.group(2)}" for m in found]


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.scale.gcs_emulator", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/storage/v1/b?project={PROJECT}", timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"the GCS emulator exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"the GCS emulator did not answer within 30 s: {log.read_text()}"
                time.sleep(0.2)
        yield GcsServer(endpoint, log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_bucket(gcs: GcsServer, name: str) -> str:
    from icebridge import gcs as gcs_access

    gcs_access.client(gcs_access.gcs_access(gcs.io())).create_bucket(name)
    return name


def put(gcs: GcsServer, location: str, data: bytes) -> str:
    with gcs.io().new_output(location).create(overwrite=True) as out:
        out.write(data)
    return location


def read(gcs: GcsServer, location: str) -> bytes:
    with gcs.io().new_input(location).open() as stream:
        return stream.read()


def crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def reads_of(gcs: GcsServer, name: str, since: int) -> list[str]:
    """Downloads of an object's bytes since request number ``since``."""
    return [r for r in gcs.requests()[since:] if "alt=media" in r and name in r]


@pytest.fixture(scope="module")
def buckets(gcs: GcsServer) -> tuple[str, str]:
    return make_bucket(gcs, "native-src"), make_bucket(gcs, "native-dst")


def test_bucket_to_bucket_copies_server_side_and_the_copy_keeps_its_crc32c(
    gcs: GcsServer, buckets: tuple[str, str]
) -> None:
    src, dst = buckets
    data = os.urandom(300_000)
    source = put(gcs, f"gs://{src}/t/data/a.parquet", data)
    before = len(gcs.requests())
    copied = transfer(gcs.io(), source, gcs.io(), f"gs://{dst}/t/data/a.parquet", len(data))
    assert copied.way == SERVER_SIDE and copied.bytes == len(data)
    assert any("/rewriteTo/" in r for r in gcs.requests()[before:]), "the store copied the object itself"
    assert reads_of(gcs, "a.parquet", before) == [], "no byte of the object passed through IceBridge"
    assert read(gcs, f"gs://{dst}/t/data/a.parquet") == data
    checksum = stored_checksum(gcs.io(), f"gs://{dst}/t/data/a.parquet")
    assert checksum is not None and checksum.algorithm == "gcs:CRC32C" and checksum.value == crc32c(data)
    assert checksum.size == len(data)


def test_gcs_to_local_disk_streams_and_local_files_have_no_stored_checksum(
    gcs: GcsServer, buckets: tuple[str, str], tmp_path: Path
) -> None:
    src, _dst = buckets
    data = os.urandom(50_000)
    source = put(gcs, f"gs://{src}/t/data/b.parquet", data)
    target = str(tmp_path / "b.parquet")
    copied = transfer(gcs.io(), source, PyArrowFileIO(), target, len(data))
    assert copied.way == ARROW and Path(target).read_bytes() == data
    assert stored_checksum(PyArrowFileIO(), target) is None
    again = transfer(PyArrowFileIO(), target, PyArrowFileIO(), str(tmp_path / "c.parquet"), len(data))
    assert again.way == KERNEL


def _identity(gcs: GcsServer, pairs: list[tuple[str, str, int]], destination_io: Any = None) -> Any:
    return identity_of(gcs.io(), destination_io or gcs.io(), pairs)


def test_identity_by_the_stores_crc32c_reads_no_byte(gcs: GcsServer, buckets: tuple[str, str]) -> None:
    src, dst = buckets
    data = os.urandom(80_000)
    source = put(gcs, f"gs://{src}/id/data/x.parquet", data)
    target = f"gs://{dst}/id/data/x.parquet"
    transfer(gcs.io(), source, gcs.io(), target, len(data))
    before = len(gcs.requests())
    report = _identity(gcs, [(source, target, len(data))])
    assert report.all_identical and report.proofs() == {STORE_CHECKSUM: 1} and report.bytes_read == 0
    assert report.checks[0].checksum == "gcs:CRC32C"
    assert reads_of(gcs, "x.parquet", before) == []


def test_a_changed_object_differs_by_its_crc32c(gcs: GcsServer, buckets: tuple[str, str]) -> None:
    src, dst = buckets
    data = os.urandom(40_000)
    source = put(gcs, f"gs://{src}/id/data/y.parquet", data)
    target = put(gcs, f"gs://{dst}/id/data/y.parquet", data[:-1] + bytes([data[-1] ^ 1]))
    report = _identity(gcs, [(source, target, len(data))])
    assert not report.all_identical
    check = report.checks[0]
    assert check.proof == STORE_CHECKSUM and "gcs:CRC32C differs" in check.problem()


def test_a_truncated_copy_is_caught_by_size_against_the_manifest(gcs: GcsServer, buckets: tuple[str, str]) -> None:
    src, dst = buckets
    data = os.urandom(20_000)
    source = put(gcs, f"gs://{src}/id/data/w.parquet", data)
    target = put(gcs, f"gs://{dst}/id/data/w.parquet", data[:10_000])
    check = _identity(gcs, [(source, target, len(data))]).checks[0]
    assert check.proof == STORE_CHECKSUM and "manifest says 20000" in check.problem()


def test_against_a_local_copy_the_files_are_read(gcs: GcsServer, buckets: tuple[str, str], tmp_path: Path) -> None:
    src, _dst = buckets
    data = os.urandom(30_000)
    source = put(gcs, f"gs://{src}/id/data/z.parquet", data)
    target = tmp_path / "z.parquet"
    target.write_bytes(data)
    report = _identity(gcs, [(source, str(target), len(data))], destination_io=PyArrowFileIO())
    assert report.all_identical and report.proofs() == {READ: 1} and report.bytes_read == 2 * len(data)


def test_a_missing_object_is_a_clear_validation_failure(gcs: GcsServer, buckets: tuple[str, str]) -> None:
    src, dst = buckets
    data = os.urandom(1_000)
    source = put(gcs, f"gs://{src}/id/data/v.parquet", data)
    with pytest.raises(ValidationError, match=r"never-written\.parquet for its checksum: the object does not exist"):
        _identity(gcs, [(source, f"gs://{dst}/id/data/never-written.parquet", len(data))])


def gcs_catalog(root: Path, name: str, gcs: GcsServer, bucket: str) -> dict[str, str]:
    return {"type": "sql", "uri": f"sqlite:///{root}/{name}.db", "warehouse": f"gs://{bucket}/warehouse", **gcs.props()}


def test_migrate_bucket_to_bucket_on_gcs_copies_server_side_and_proves_by_crc32c(
    gcs: GcsServer, tmp_path: Path
) -> None:
    foreign = gcs_catalog(tmp_path, "foreign", gcs, make_bucket(gcs, "e2e-foreign"))
    managed = gcs_catalog(tmp_path, "managed", gcs, make_bucket(gcs, "e2e-managed"))
    estate.build(estate.open_catalog("foreign", foreign))
    config = estate.write_config(tmp_path, f"sqlite:///{tmp_path}/state.db", foreign, managed)
    est = Estate(tmp_path, config, f"sqlite:///{tmp_path}/state.db", foreign, managed)
    catalog = est.foreign()
    byte_copied = [
        task.file.file_path.rsplit("/", 1)[1]
        for ident in [i for ns in catalog.list_namespaces() for i in catalog.list_tables(ns)]
        if ident != ("shop", "customers")  # rewritten by its mapping rule: its files are read
        for task in catalog.load_table(ident).scan().plan_files()
    ]
    assert byte_copied
    before = len(gcs.requests())
    code, report = est.cli_json("migrate")
    assert code == 0, report
    downloads = [r for r in gcs.requests()[before:] if "alt=media" in r]
    assert not [r for r in downloads if any(name in r for name in byte_copied)], (
        "no byte of a byte-copied file passed through IceBridge, neither to copy nor to validate it"
    )
    identity, strategies = file_identity_details(est.state_url)
    assert strategies == {"file-copy", "rewrite"}
    assert identity and sum(d["proofs"].get(STORE_CHECKSUM, 0) for d in identity) == len(byte_copied)
    assert all(f["checksum"] == "gcs:CRC32C" for d in identity for f in d["proof_of_files"])
    managed_catalog = est.managed()
    for ident in [i for ns in catalog.list_namespaces() for i in catalog.list_tables(ns)]:
        destination = managed_catalog.load_table(ident)
        assert destination.metadata.location.startswith("gs://e2e-managed/")
        assert_same_table(catalog.load_table(ident), destination)
