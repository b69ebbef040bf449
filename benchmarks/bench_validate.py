"""Validation speed: the level-4 digest against plain decoding, level-3 file identity against ``cp``.

- **decode only**, by each of the two Parquet decoders the digest uses, every value of every data file
  decoded and thrown away — the floor the digest cannot beat, since it must decode every value:
  IceBridge's validation reader (PyArrow, the same files, columns, projection and thread pool as the
  general path), and DuckDB's ``read_parquet`` with the same field-id schema map as the scan (each
  column folded by ``max``, which makes DuckDB decode it; no hashing). The faster one is the baseline;
- **level-4 digest**: ``partition_digests`` on the same table (decode + per-row partition + row hash
  + per-partition aggregation), as validation runs it (DuckDB's scan where it applies), and forced
  through the general path (IceBridge's reader, hashed batch by batch);
- **level-3 identity**: size + xxh3-128 of every data file and of its byte copy (reads both);
- **cp**: ``cp -r`` of the data folder (then ``sync``), which made that byte copy.

The page cache is warm for all of them (each is run after a first read), so the numbers are CPU
costs, not disk speed. From the measured bytes/s per core, the last table works out the cores (and
8-core executors) needed to validate 1 TiB in under 30 minutes.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import GIB, MIB, fmt_bytes, fmt_rate, fmt_ratio, md_table, sync_disks, verdict
from benchmarks.data import data_folder, lineitem_table

FULL_BYTES = 2 * GIB
QUICK_BYTES = 3 * MIB
TARGET_DIGEST_VS_DECODE = 0.9
TARGET_SECONDS = 30 * 60
TIB = 1024**4
EXECUTOR_CORES = 8


def _best(fn: Callable[[], object], rounds: int) -> float:
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(data_dir: Path, quick: bool) -> str:
    """Measure and return the Markdown section for RESULTS.md."""
    from icebridge.validation.digest import library_version, partition_digests
    from icebridge.validation.identity import compare_files, match_files
    from icebridge.validation.parquet_scan import local_path, scan_plan
    from icebridge.validation.reader import SnapshotFiles

    nbytes = QUICK_BYTES if quick else FULL_BYTES
    rounds = 1 if quick else 2
    cores = os.cpu_count() or 1
    _catalog, table = lineitem_table(data_dir, nbytes)
    schema, spec = table.schema(), table.spec()
    files = SnapshotFiles(table, None)
    size = sum(t.data_file.file_size_in_bytes for t in files.tasks)
    rows = sum(t.data_file.record_count for t in files.tasks)

    def decode_only() -> None:
        def one(task: object) -> int:
            return sum(b.num_rows for b in files.read(task, schema))  # type: ignore[arg-type]

        with ThreadPoolExecutor(max_workers=cores) as pool:
            total = sum(pool.map(one, files.tasks))
        assert total == rows, (total, rows)

    scan = scan_plan(schema, spec)
    assert scan is not None, "the benchmark table should be one DuckDB's scan reads"
    paths = [local_path(t.data_file.file_path) for t in files.tasks]
    folds = ", ".join(f"max(c{i})" for i in range(len(scan.field_ids)))
    listed = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"

    def decode_duckdb() -> None:
        import duckdb

        con = duckdb.connect()
        try:
            con.execute(f"SET threads = {cores}")
            [count] = con.sql(
                f"SELECT count(*), {folds} FROM read_parquet({listed}, schema = {scan.schema_map()})"
            ).fetchall()
        finally:
            con.close()
        assert count[0] == rows, (count[0], rows)

    def digest(reader: str) -> Callable[[], None]:
        def run_it() -> None:
            result = partition_digests(table, None, schema, spec, workers=cores, files=files, reader=reader)
            assert result.rows == rows, (result.rows, rows)
            assert result.scanned_files == (len(files.tasks) if reader == "auto" else 0)

        return run_it

    decode_only()  # warm the page cache and the imports
    decode_s = _best(decode_only, rounds)
    decode_duck_s = _best(decode_duckdb, rounds)
    digest_s = _best(digest("auto"), rounds)
    general_s = _best(digest("arrow"), rounds)
    baseline_s = min(decode_s, decode_duck_s)
    speed_ratio = baseline_s / digest_s

    scratch = Path(tempfile.mkdtemp(prefix="bench-validate-", dir=data_dir))
    try:
        copy_dir = scratch / "data"
        sync_disks()
        t0 = time.perf_counter()
        subprocess.run(["cp", "-r", str(data_folder(table)), str(copy_dir)], check=True)
        cp_s = time.perf_counter() - t0 + sync_disks()
        from pyiceberg.io.pyarrow import PyArrowFileIO

        copies = []
        for task in files.tasks:
            rel = Path(task.data_file.file_path.removeprefix("file://")).relative_to(data_folder(table))
            copies.append(str(copy_dir / rel))
        mapping = {t.data_file.file_path: c for t, c in zip(files.tasks, copies, strict=True)}
        from icebridge.validation.identity import FileMatch

        # the copies are not in any manifest: pair each source file with a stand-in entry for its copy
        match = match_files([t.data_file for t in files.tasks], [t.data_file for t in files.tasks])
        pairs = [(s, _relocated(s, mapping[s.file_path])) for s, _ in match.pairs]
        io = PyArrowFileIO()

        def identity() -> None:
            report = compare_files(io, io, FileMatch(pairs, [], []), workers=max(2, cores * 2))
            assert report.all_identical

        identity()
        identity_s = _best(identity, rounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    identity_ratio = cp_s / identity_s

    # 1 TiB of source Parquet: level 4 decodes both sides (2 TiB), level 3 reads both sides' bytes (2 TiB)
    # digest_s is one side; a validation digests both, so a source byte costs two digest bytes
    digest_per_core = size / (2 * digest_s) / cores
    general_per_core = size / (2 * general_s) / cores
    need_general = TIB / TARGET_SECONDS / general_per_core
    identity_per_core = size / identity_s / cores  # source bytes proven per second per core (both sides read)
    need_digest = TIB / TARGET_SECONDS / digest_per_core
    need_identity = TIB / TARGET_SECONDS / identity_per_core

    measured = md_table(
        ["what", "time", "rate", "vs baseline"],
        [
            [
                "decode only: IceBridge's reader (PyArrow), no hashing",
                f"{decode_s:.2f} s",
                fmt_rate(size, decode_s),
                fmt_ratio(baseline_s / decode_s),
            ],
            [
                "decode only: DuckDB's Parquet reader, no hashing",
                f"{decode_duck_s:.2f} s",
                fmt_rate(size, decode_duck_s),
                fmt_ratio(baseline_s / decode_duck_s),
            ],
            [
                "level-4 digest, as validation runs it (DuckDB's scan)",
                f"{digest_s:.2f} s",
                fmt_rate(size, digest_s),
                fmt_ratio(speed_ratio),
            ],
            [
                "level-4 digest, general path (IceBridge's reader, hashed per batch)",
                f"{general_s:.2f} s",
                fmt_rate(size, general_s),
                fmt_ratio(baseline_s / general_s),
            ],
            ["cp -r of the data files (+ sync)", f"{cp_s:.2f} s", fmt_rate(size, cp_s), "1.00×"],
            [
                "level-3 identity (xxh3-128, both sides)",
                f"{identity_s:.2f} s",
                fmt_rate(size, identity_s),
                fmt_ratio(identity_ratio),
            ],
        ],
    )
    plan = md_table(
        ["level", "per core", f"cores for 1 TiB in {TARGET_SECONDS // 60} min", f"{EXECUTOR_CORES}-core executors"],
        [
            [
                "4 (rewrite: decode + hash both sides, DuckDB's scan)",
                fmt_rate(digest_per_core, 1),
                f"{math.ceil(need_digest)}",
                f"{math.ceil(need_digest / EXECUTOR_CORES)}",
            ],
            [
                "4, general path (files without field ids, nested renames)",
                fmt_rate(general_per_core, 1),
                f"{math.ceil(need_general)}",
                f"{math.ceil(need_general / EXECUTOR_CORES)}",
            ],
            [
                "3 (byte copy: checksum both sides)",
                fmt_rate(identity_per_core, 1),
                f"{math.ceil(need_identity)}",
                f"{math.ceil(need_identity / EXECUTOR_CORES)}",
            ],
        ],
    )
    return "\n\n".join(
        [
            "## Validation speed",
            f"Table: TPC-H lineitem, {fmt_bytes(size)} of Parquet in {len(files.tasks)} files, {rows:,} rows, "
            f"{len(spec.fields)} partition field(s); {cores} cores; warm page cache; best of {rounds}. "
            f"Hashes by {library_version()}.",
            measured,
            "The decode-only rows and both digests are ratios to the faster decode-only reader (1.00×). "
            f"Level-4 digest speed vs decode-only: {fmt_ratio(speed_ratio)} (target ≥ "
            f"{TARGET_DIGEST_VS_DECODE}×: {verdict(speed_ratio >= TARGET_DIGEST_VS_DECODE)}); the general path, "
            "which files without field ids or from before a nested rename take, runs at "
            f"{fmt_ratio(baseline_s / general_s)}. "
            f"Level-3 identity vs cp: {fmt_ratio(identity_ratio)} (identity reads both sides, cp reads one and "
            "writes one).",
            "### Validating 1 TiB in under 30 minutes",
            "Rates are per core on this machine, for 1 TiB of source Parquet (the destination is read too). "
            "Per-partition digests merge by addition, so files can be spread over cores and machines; this release "
            "runs one process (DuckDB's threads, or a thread pool on the general path), so beyond one machine's "
            "cores tables must be split across processes (e.g. `icebridge validate --tables` per table). The "
            "general path's rate is in the last row.",
            plan,
        ]
    )


def _relocated(df: object, path: str) -> object:
    from pyiceberg.manifest import DataFile

    assert isinstance(df, DataFile)
    return DataFile.from_args(
        content=df.content,
        file_path=path,
        file_format=df.file_format,
        partition=df.partition,
        record_count=df.record_count,
        file_size_in_bytes=df.file_size_in_bytes,
    )
