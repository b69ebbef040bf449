"""Level 4, ``content-digest``: every row of both sides read by a reader other than the copy's, digested per partition.

Runs when level 4 is among the levels to run (rewrites), and for byte copies when some file was not
byte-identical at level 3, whose verdict then waits for this one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from icebridge.validation import metadata
from icebridge.validation.comparators.base import (
    MAX_LISTED,
    Comparator,
    Evidence,
    Executors,
    Options,
    Outcome,
    TablePair,
)
from icebridge.validation.digest import (
    Digest,
    PartitionDigests,
    library_version,
    merge_file_digests,
    partition_digests,
)
from icebridge.validation.partitions import WHOLE_TABLE
from icebridge.validation.spark_exec import Side

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from icebridge.validation.reader import SnapshotFiles

__all__ = ["ContentDigest"]


class ContentDigest(Comparator):
    """Per partition: count + sum + xor of a 64-bit row hash over all columns, and rows in a wrong partition."""

    level = 4
    level_name = "content digest"
    name = "content-digest"

    def wanted(self, options: Options, evidence: Evidence) -> bool:
        """When level 4 is to run, or an earlier verdict waits for it (a byte copy's file that differs)."""
        return self.level in options.levels or evidence.awaits(self.level)

    def planned(self, pair: TablePair, options: Options) -> tuple[int, int]:
        """Every data file of both sides, at the size its manifest records."""
        files = [t.data_file for side in (pair.source_files, pair.destination_files) for t in side.tasks]
        return len(files), sum(int(f.file_size_in_bytes) for f in files)

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        """Digest both sides per current partition, in this process, with one library version."""
        schema, spec = pair.schema, pair.spec

        def digests(table: Table, files: SnapshotFiles) -> PartitionDigests:
            return partition_digests(
                table,
                None,
                schema,
                spec,
                workers=options.workers,
                files=files,
                reader=options.digest_reader,
                progress=options.progress,
            )

        if options.executors is not None:
            s, d, where = _on_executors(options.executors, pair, options)
        else:
            s = digests(pair.source, pair.source_files)
            d = digests(pair.destination, pair.destination_files)
            where = {"where": "this process", "threads": options.workers}
        library = library_version()
        mismatches: list[dict[str, Any]] = []
        metrics: list[dict[str, Any]] = []
        for label in sorted(s.digests.keys() | d.digests.keys()):
            sd, dd = s.digests.get(label), d.digests.get(label)
            equal = sd is not None and dd is not None and sd.matches(dd)
            row = {"partition": label, "source": _digest_dict(sd), "destination": _digest_dict(dd)}
            if not equal:
                mismatches.append(row)
            if len(metrics) < metadata.MAX_METRICS or not equal:
                metrics.append(
                    {
                        "partition": label,
                        "metric": "rows",
                        "source": sd.count if sd else 0,
                        "destination": dd.count if dd else 0,
                        "equal": (sd.count if sd else 0) == (dd.count if dd else 0),
                    }
                )
                metrics.append(
                    {
                        "partition": label,
                        "metric": "row digest",
                        "source": _digest_text(sd),
                        "destination": _digest_text(dd),
                        "equal": equal,
                    }
                )

        def placement(p: PartitionDigests) -> list[tuple[Any, ...]]:
            return sorted((m["registered"], m["belongs"], m["rows"]) for m in p.misplaced)

        # rows the source itself keeps in a file of another partition are the source's layout, not a copy's fault
        misplaced = d.misplaced if placement(d) != placement(s) else []
        bad: list[str] = sorted(
            {str(m["partition"]) for m in mismatches}
            | {m["registered"] or WHOLE_TABLE for m in misplaced}
            | {m["belongs"] for m in misplaced}
        )
        st, dt_ = s.total(), d.total()
        passed = not mismatches and not misplaced
        if passed:
            summary = f"digests equal in all {len(s.digests)} partitions over {st.count} rows ({library})"
        else:
            parts = []
            if mismatches:
                first = mismatches[0]
                sc = first["source"]["count"] if first["source"] else 0
                dc = first["destination"]["count"] if first["destination"] else 0
                parts.append(
                    f"digests differ in {len(mismatches)} partition(s), e.g. {first['partition']} "
                    f"({sc} rows in source, {dc} in destination)"
                )
            if misplaced:
                m = misplaced[0]
                parts.append(
                    f"{sum(x['rows'] for x in misplaced)} destination row(s) in a file registered under another "
                    f"partition, e.g. {m['rows']} row(s) of {m['belongs']} in {m['file']} "
                    f"(registered as {m['registered']})"
                )
            summary = "; ".join(parts)
        result = self.result(
            passed,
            summary,
            f"all {st.count} rows, every column, are equal as a multiset in each of the {len(s.digests)} partitions "
            f"(count + sum + xor of a 64-bit row hash; {_readers(s, d)}), and every row sits in a file registered "
            f"under its partition",
            library=library,
            source=_digest_dict(st),
            destination=_digest_dict(dt_),
            source_rows=st.count,
            destination_rows=dt_.count,
            partitions_compared=len(s.digests.keys() | d.digests.keys()),
            mismatches=mismatches[:MAX_LISTED],
            mismatch_count=len(mismatches),
            misplaced=misplaced[:MAX_LISTED],
            partitions=bad[:MAX_LISTED],
            metrics=metrics,
            files_read=s.files + d.files,
            bytes_read=s.bytes + d.bytes,
            files_scanned_by_duckdb=s.scanned_files + d.scanned_files,
            executed_on=where,
        )
        # every row's partition was computed from its values: the table-wide group of level 2 is resolved
        return Outcome(result, frozenset(bad), locates_rows=True)


def _on_executors(
    executors: Executors, pair: TablePair, options: Options
) -> tuple[PartitionDigests, PartitionDigests, dict[str, Any]]:
    """Both sides' digests from per-file work done by ``executors``, folded here as the local path folds its own."""
    sides = [
        Side(files, dict(table.io.properties))
        for table, files in ((pair.source, pair.source_files), (pair.destination, pair.destination_files))
    ]
    per_side, where = executors.digest_files(sides, pair.schema, pair.spec, options.digest_reader)
    merged = []
    for side, (results, scanned) in zip(sides, per_side, strict=True):
        merged.append(merge_file_digests(side.files, side.files.tasks, results, scanned))
        if options.progress is not None:
            options.progress(len(side.files.tasks), sum(int(t.data_file.file_size_in_bytes) for t in side.files.tasks))
    return merged[0], merged[1], where


def _digest_dict(d: Digest | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"count": d.count, "sum": f"{d.sum:016x}", "xor": f"{d.xor:016x}"}


def _digest_text(d: Digest | None) -> str:
    return "" if d is None else f"{d.count}:{d.sum:016x}:{d.xor:016x}"


def _readers(s: PartitionDigests, d: PartitionDigests) -> str:
    """Which Parquet decoder read the files, in words for the proof."""
    scanned, files = s.scanned_files + d.scanned_files, s.files + d.files
    if scanned == 0:
        return "files read through IceBridge's own Parquet reader"
    if scanned == files:
        return "files read by DuckDB's Parquet reader, independent of the PyArrow writer"
    return (
        f"{scanned} of {files} files read by DuckDB's Parquet reader, the others (deletes, evolved or unusual "
        "layouts) through IceBridge's own reader"
    )
