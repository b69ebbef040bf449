"""S3 (moto): server-side copy against a streamed copy of the same objects; checksum identity against read identity.

Every object is written with a full-object CRC32, as AWS keeps one for every new object. The server-side
copy (same endpoint and credentials: ``CopyObject``, no byte through this process) and the streamed one
(another principal: Arrow reads and writes every byte) copy the same objects to two buckets, alternately;
level 3 then proves the copies once by the stores' checksums (HeadObject only) and once by reading both
sides (xxh3-128). moto keeps objects in its own process's memory, so its server-side copy is a memory copy:
the ratio says what a copy through this process costs, not what S3's own copy takes.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import MIB, SHARED, BenchmarkError, fmt_bytes, fmt_rate, fmt_ratio, md_table

ROUNDS = 2
BY_SUM = "stores' checksums (HeadObject)"
BY_READ = "read both sides"


def _moto(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        raise BenchmarkError("moto_server is missing: pip install 'moto[server]>=5.2.3'")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with log.open("wb") as out:
        proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1).close()
            return proc, endpoint
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise BenchmarkError(f"moto_server did not start: {log.read_text()[-500:]}") from exc
            time.sleep(0.2)


def _io(endpoint: str, key: str) -> Any:
    from pyiceberg.io.pyarrow import PyArrowFileIO

    return PyArrowFileIO(
        {"s3.endpoint": endpoint, "s3.access-key-id": key, "s3.secret-access-key": key, "s3.region": "us-east-1"}
    )


def _copy_all(pairs: list[tuple[str, str]], source: Any, dest: Any, size: int, workers: int) -> tuple[float, set[str]]:
    from icebridge.storage import transfer

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        ways = set(pool.map(lambda p: transfer(source, p[0], dest, p[1], size).way, pairs))
    return time.perf_counter() - started, ways


class _File:
    def __init__(self, path: str, size: int) -> None:
        self.file_path = path
        self.file_size_in_bytes = size
        self.content = "DATA"


def run(data_dir: Path, quick: bool) -> str:
    import boto3

    from icebridge.storage import ARROW, SERVER_SIDE, STREAM
    from icebridge.validation.identity import compare_files, match_files

    files, size = (16, 4 * MIB) if quick else (48, 8 * MIB)
    workers = 4
    with tempfile.TemporaryDirectory() as scratch:
        proc, endpoint = _moto(Path(scratch) / "moto.log")
        try:
            client = boto3.client(
                "s3",
                endpoint_url=endpoint,
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
                region_name="us-east-1",
            )
            for bucket in ("src", "same", "other"):
                client.create_bucket(Bucket=f"bench-{bucket}")
            payload = os.urandom(size)
            sources = []
            for i in range(files):
                key = f"t/data/part-{i:04d}.parquet"
                body = payload[:-8] + i.to_bytes(8, "big")
                client.put_object(Bucket="bench-src", Key=key, Body=body, ChecksumAlgorithm="CRC32")
                sources.append(f"s3://bench-src/{key}")
            src_io, other_io = _io(endpoint, "bench"), _io(endpoint, "other-principal")
            total = files * size
            rows: list[list[object]] = []
            best: dict[str, float] = {}
            for round_no in range(1, ROUNDS + 1):
                for label, dest_io, bucket, expected in (
                    ("server-side (same endpoint and credentials)", src_io, "bench-same", {SERVER_SIDE}),
                    ("streamed (another principal)", other_io, "bench-other", {ARROW, STREAM}),
                ):
                    pairs = [(s, s.replace("bench-src", bucket)) for s in sources]
                    seconds, ways = _copy_all(pairs, src_io, dest_io, size, workers)
                    if not ways <= expected:
                        raise BenchmarkError(f"{label}: the copies went {sorted(ways)}, expected {sorted(expected)}")
                    best[label] = min(best.get(label, seconds), seconds)
                    rows.append(
                        [
                            round_no,
                            label,
                            "/".join(sorted(ways)),
                            fmt_bytes(total),
                            f"{seconds:.2f} s",
                            fmt_rate(total, seconds),
                        ]
                    )
            pairs = [(s, s.replace("bench-src", "bench-same")) for s in sources]
            match = match_files(
                [_File(s, size) for s, _ in pairs],  # type: ignore[misc]
                [_File(d, size) for _, d in pairs],  # type: ignore[misc]
                mapping=dict(pairs),
            )
            id_rows: list[list[object]] = []
            id_best: dict[str, float] = {}
            for round_no in range(1, ROUNDS + 1):
                for label, chosen in (
                    ("stores' checksums (HeadObject)", "store-checksum"),
                    ("read both sides", "read"),
                ):
                    started = time.perf_counter()
                    report = compare_files(src_io, src_io, match, workers=workers, store_checksums=chosen != "read")
                    seconds = time.perf_counter() - started
                    if not report.all_identical or set(report.proofs()) != {chosen}:
                        raise BenchmarkError(f"{label}: proofs {report.proofs()}, identical={report.all_identical}")
                    id_best[label] = min(id_best.get(label, seconds), seconds)
                    id_rows.append(
                        [
                            round_no,
                            label,
                            files,
                            fmt_bytes(report.bytes_read),
                            f"{seconds:.2f} s",
                            fmt_rate(total, seconds),
                        ]
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    server = best["server-side (same endpoint and credentials)"]
    streamed = best["streamed (another principal)"]
    by_sum, by_read = id_best[BY_SUM], id_best[BY_READ]
    SHARED["s3_server_side_bytes_per_second"] = total / server
    SHARED["s3_streamed_bytes_per_second"] = total / streamed
    return "\n".join(
        [
            "## S3: server-side copy against streamed, checksum identity against read",
            "",
            f"{files} objects of {fmt_bytes(size)} ({fmt_bytes(total)}) on moto_server, {workers} copies at a time, "
            f"{ROUNDS} alternating rounds.",
            "",
            md_table(["round", "copy", "way", "bytes", "time", "throughput"], rows),
            "",
            md_table(["round", "level 3 proof", "files", "bytes read", "time", "files' bytes / time"], id_rows),
            "",
            f"- Server-side copy against the streamed copy (best rounds): **{fmt_ratio(streamed / server)}** faster; "
            "no byte of a server-side copy reached this process.",
            f"- Checksum identity against read identity: **{fmt_ratio(by_read / by_sum)}** faster, 0 bytes read "
            f"instead of {fmt_bytes(2 * total)}.",
        ]
    )
