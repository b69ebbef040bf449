"""Object-store-native copy and proof on S3 (moto): server-side copies and the stores' own checksums."""

from __future__ import annotations

import base64
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
from pyiceberg.io.pyarrow import PyArrowFileIO

from icebridge import storage
from icebridge.errors import StorageTransientError, TerminalError
from icebridge.storage import ARROW, SERVER_SIDE, stored_checksum, transfer
from icebridge.store import open_store
from icebridge.validation.identity import READ, STORE_CHECKSUM
from tests.scale.conftest import S3Server, file_identity_details, identity_of


def io_for(s3: S3Server, key: str = "testing") -> PyArrowFileIO:
    return PyArrowFileIO(
        {"s3.endpoint": s3.endpoint, "s3.access-key-id": key, "s3.secret-access-key": key, "s3.region": "us-east-1"}
    )


def make_bucket(s3: S3Server, name: str) -> str:
    s3.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


def put(s3: S3Server, bucket: str, key: str, data: bytes, checksum: str | None = "CRC32") -> str:
    """An object with a full-object checksum, as AWS keeps for every new object, or (None) without one."""
    location = f"s3://{bucket}/{key}"
    if checksum is None:  # PyArrow's writer sends no checksum
        with io_for(s3).new_output(location).create(overwrite=True) as out:
            out.write(data)
    else:
        s3.client().put_object(Bucket=bucket, Key=key, Body=data, ChecksumAlgorithm=checksum)  # type: ignore[attr-defined]
    return location


def read(s3: S3Server, location: str) -> bytes:
    bucket, key = location[len("s3://") :].split("/", 1)
    return s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined,no-any-return]


def crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def reads_of(s3: S3Server, key: str, since: int) -> list[str]:
    return [r for r in s3.requests()[since:] if r.startswith("GET ") and key in r]


@pytest.fixture(scope="module")
def buckets(s3: S3Server) -> tuple[str, str]:
    return make_bucket(s3, "native-src"), make_bucket(s3, "native-dst")


def test_same_endpoint_and_credentials_copy_server_side(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    data = os.urandom(300_000)
    source = put(s3, src_bucket, "t/data/a.parquet", data)
    before = len(s3.requests())
    copied = transfer(io_for(s3), source, io_for(s3), f"s3://{dst_bucket}/t/data/a.parquet", len(data))
    assert copied.way == SERVER_SIDE and copied.bytes == len(data)
    assert reads_of(s3, "a.parquet", before) == [], "no byte of the object passed through IceBridge"
    assert read(s3, f"s3://{dst_bucket}/t/data/a.parquet") == data
    checksum = stored_checksum(io_for(s3), f"s3://{dst_bucket}/t/data/a.parquet")
    assert checksum is not None and checksum.algorithm == "s3:CRC32" and checksum.value == crc32(data)


def test_a_large_object_is_copied_in_parts_and_keeps_a_full_object_checksum(
    s3: S3Server, buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "S3_SINGLE_COPY_MAX_BYTES", 5 * 1024 * 1024)
    monkeypatch.setattr(storage, "S3_COPY_PART_BYTES", 5 * 1024 * 1024)
    src_bucket, dst_bucket = buckets
    data = os.urandom(12 * 1024 * 1024 + 17)
    source = put(s3, src_bucket, "t/data/big.parquet", data)
    before = len(s3.requests())
    target = f"s3://{dst_bucket}/t/data/big.parquet"
    copied = transfer(io_for(s3), source, io_for(s3), target, len(data))
    assert copied.way == SERVER_SIDE
    requests = s3.requests()[before:]
    assert sum(1 for r in requests if r.startswith("PUT ") and "partNumber=" in r) == 3, requests
    assert reads_of(s3, "big.parquet", before) == []
    assert read(s3, target) == data
    assert stored_checksum(io_for(s3), target) == stored_checksum(io_for(s3), source)


def test_other_credentials_stream_the_bytes(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    data = os.urandom(50_000)
    source = put(s3, src_bucket, "t/data/b.parquet", data)
    before = len(s3.requests())
    target = f"s3://{dst_bucket}/t/data/b.parquet"
    copied = transfer(io_for(s3), source, io_for(s3, key="other-principal"), target, len(data))
    assert copied.way == ARROW and copied.bytes == len(data)
    assert reads_of(s3, "b.parquet", before), "streamed: the source object was read"
    assert read(s3, target) == data


def test_a_source_shorter_than_its_manifest_says_is_refused_and_nothing_is_written(
    s3: S3Server, buckets: tuple[str, str]
) -> None:
    src_bucket, dst_bucket = buckets
    source = put(s3, src_bucket, "t/data/short.parquet", b"x" * 100)
    target = f"s3://{dst_bucket}/t/data/short.parquet"
    with pytest.raises(TerminalError, match="manifest says 150"):
        transfer(io_for(s3), source, io_for(s3), target, 150)
    with pytest.raises(Exception, match="404|Not Found|NoSuchKey"):
        read(s3, target)


def test_a_missing_source_is_terminal_not_retried(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    with pytest.raises(TerminalError, match="does not exist") as caught:
        transfer(io_for(s3), f"s3://{src_bucket}/nope.parquet", io_for(s3), f"s3://{dst_bucket}/nope.parquet", 10)
    assert not isinstance(caught.value, StorageTransientError)


def test_a_copy_refused_by_the_ledger_writes_nothing(s3: S3Server, buckets: tuple[str, str], tmp_path: Path) -> None:
    from icebridge.errors import LocationOverlapError
    from icebridge.ledger import FileLedger, bind
    from icebridge.locations import Place

    src_bucket, _ = buckets
    source = put(s3, src_bucket, "guarded/data/c.parquet", b"c" * 10)
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        ledger = FileLedger(store, 1, None, "test", [Place(f"s3://{src_bucket}/guarded", "source table guarded")])
        target = f"s3://{src_bucket}/guarded/data/copy.parquet"
        with pytest.raises(LocationOverlapError):
            transfer(io_for(s3), source, bind(io_for(s3), ledger), target, 10)
    finally:
        store.close()
    with pytest.raises(Exception, match="404|Not Found|NoSuchKey"):
        read(s3, target)


def _identity(s3: S3Server, pairs: list[tuple[str, str, int]]) -> Any:
    return identity_of(io_for(s3), io_for(s3), pairs)


def test_identity_by_the_stores_checksums_reads_no_byte(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    data = os.urandom(80_000)
    source = put(s3, src_bucket, "id/data/x.parquet", data)
    target = f"s3://{dst_bucket}/id/data/x.parquet"
    transfer(io_for(s3), source, io_for(s3), target, len(data))
    before = len(s3.requests())
    report = _identity(s3, [(source, target, len(data))])
    assert report.all_identical and report.proofs() == {STORE_CHECKSUM: 1} and report.bytes_read == 0
    assert report.checks[0].checksum == "s3:CRC32"
    assert reads_of(s3, "x.parquet", before) == []


def test_a_changed_object_differs_by_its_stored_checksum(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    data = os.urandom(40_000)
    source = put(s3, src_bucket, "id/data/y.parquet", data)
    target = put(s3, dst_bucket, "id/data/y.parquet", data[:-1] + bytes([data[-1] ^ 1]))
    report = _identity(s3, [(source, target, len(data))])
    assert not report.all_identical
    check = report.checks[0]
    assert check.proof == STORE_CHECKSUM and "s3:CRC32 differs" in check.problem()


def test_without_a_checksum_on_both_sides_the_files_are_read(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    data = os.urandom(30_000)
    source = put(s3, src_bucket, "id/data/z.parquet", data, checksum=None)
    target = put(s3, dst_bucket, "id/data/z.parquet", data)
    report = _identity(s3, [(source, target, len(data))])
    assert report.all_identical and report.proofs() == {READ: 1} and report.bytes_read == 2 * len(data)
    assert report.checks[0].checksum == "xxh3-128"


def test_a_truncated_copy_is_caught_by_size_against_the_manifest(s3: S3Server, buckets: tuple[str, str]) -> None:
    src_bucket, dst_bucket = buckets
    data = os.urandom(20_000)
    source = put(s3, src_bucket, "id/data/w.parquet", data)
    target = put(s3, dst_bucket, "id/data/w.parquet", data[:10_000])
    report = _identity(s3, [(source, target, len(data))])
    check = report.checks[0]
    assert check.proof == STORE_CHECKSUM and "manifest says 20000" in check.problem()


def test_migrate_bucket_to_bucket_copies_server_side_and_proves_by_checksum(s3: S3Server, tmp_path: Path) -> None:
    from tests.integration.test_s3 import check_migrated, make_s3_estate, s3_catalog

    foreign = s3_catalog(tmp_path, "foreign", s3.endpoint, make_bucket(s3, "e2e-foreign"))
    managed = s3_catalog(tmp_path, "managed", s3.endpoint, make_bucket(s3, "e2e-managed"))
    est = make_s3_estate(tmp_path, foreign, managed)
    # the objects as AWS keeps them, each with a full-object checksum (PyArrow's writer sends none)
    byte_copied = []
    catalog = est.foreign()
    for ident in [i for ns in catalog.list_namespaces() for i in catalog.list_tables(ns)]:
        if ident == ("shop", "customers"):  # rewritten by its mapping rule: its files are read
            continue
        for task in catalog.load_table(ident).scan().plan_files():
            path = task.file.file_path
            bucket, key = path[len("s3://") :].split("/", 1)
            put(s3, bucket, key, read(s3, path))
            byte_copied.append(key)
    assert byte_copied
    before = len(s3.requests())
    code, report = est.cli_json("migrate")
    assert code == 0, report
    during = s3.requests()[before:]
    assert not [r for r in during if r.startswith("GET ") and any(r.endswith(k) for k in byte_copied)], (
        "no byte of a byte-copied file passed through IceBridge, neither to copy nor to validate it"
    )
    identity, _strategies = file_identity_details(est.state_url)
    assert identity and sum(d["proofs"].get(STORE_CHECKSUM, 0) for d in identity) == len(byte_copied)
    assert all(set(d["proofs"]) <= {STORE_CHECKSUM} for d in identity), identity
    assert all(f["checksum"] == "s3:CRC32" for d in identity for f in d["proof_of_files"])
    check_migrated(est)
