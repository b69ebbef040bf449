"""Validate: prove the destination holds the source's data, cheapest comparator first, and say what each proved.

Levels (each a named comparator whose result is stored per table and run):

1. ``structure`` — schema (field ids, names, types, nullability, docs), partition spec, sort order and
   the source's portable table properties;
2. ``metadata-partitions`` — per partition, counts and exact bounds from the manifests of both sides
   (no data file opened); for byte copies also ``metadata-files``, every data file's manifest entry
   against its copy's (string bounds included, as the files are the same bytes);
3. ``file-identity`` — byte copies only: size and xxh3-128 of every data and delete file on both
   sides; when all are identical the content is proven without decoding a row;
4. ``content-digest`` — every row read through IceBridge's own Parquet reader (not the reader that did
   the copy) and digested per partition: count + sum + xor of a salted, type-aware, null-safe 64-bit
   row hash, both sides in this process with one library version (recorded); rows sitting in a file
   registered under another partition are reported too;
5. ``drill-down`` — after a mismatch at level 2, 3 or 4: the partitions involved, how many rows each
   side has that the other lacks, and a capped sample of those rows (paired where only some columns
   changed).

Only reads: neither table is changed. A level that cannot run raises
:class:`~icebridge.errors.ValidationError` — never a pass. When an earlier level has already failed,
a later level that cannot run (a truncated file found at level 3 cannot be decoded at level 4) is
recorded as a failed result instead, so the evidence gathered so far is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icebridge.errors import IceBridgeError, ValidationError
from icebridge.model import Strategy
from icebridge.validation import metadata as metadata_level
from icebridge.validation.digest import Digest, PartitionDigests, library_version, partition_digests
from icebridge.validation.drilldown import drill_down
from icebridge.validation.identity import CHECKSUM, IdentityReport, compare_files, match_files
from icebridge.validation.partitions import WHOLE_TABLE, file_label
from icebridge.validation.reader import SnapshotFiles
from icebridge.validation.structure import property_differences, structure_differences

if TYPE_CHECKING:
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table

__all__ = [
    "BYTE_COPY_STRATEGIES",
    "LEVELS_FOR_STRATEGY",
    "LEVEL_NAMES",
    "ComparatorResult",
    "compare_structure",
    "levels_to_run",
    "run",
]

LEVEL_NAMES: dict[int, str] = {
    1: "structure",
    2: "metadata",
    3: "file identity",
    4: "content digest",
    5: "drill-down",
}

# Level 5 is not listed: it runs by itself after a mismatch at level 2, 3 or 4. For byte copies level 4
# runs only when some file is not byte-identical (or when asked for explicitly).
LEVELS_FOR_STRATEGY: dict[Strategy, tuple[int, ...]] = {
    Strategy.REWRITE: (1, 2, 4),
    Strategy.SPARK_SQL: (1, 2, 4),
    Strategy.DATABRICKS: (1, 2, 4),
    Strategy.FILE_COPY: (1, 2, 3),
    Strategy.REGISTER: (1, 2, 3),
}

BYTE_COPY_STRATEGIES = frozenset({Strategy.FILE_COPY, Strategy.REGISTER})

_MAX_LISTED = 200  # files/partitions listed in one result's details (counts are always complete)


@dataclass(frozen=True)
class ComparatorResult:
    """What one comparator proved (or disproved), stored as a validation row.

    ``details`` is JSON-serialisable and self-contained (it repeats ``proves``), so a report can be
    rendered from stored rows alone.
    """

    level: int
    comparator: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    proves: str = ""


def _result(level: int, comparator: str, passed: bool, summary: str, proves: str, **details: Any) -> ComparatorResult:
    body = {"level_name": LEVEL_NAMES[level], "proves": proves if passed else "", **details}
    return ComparatorResult(level, comparator, passed, summary, body, proves if passed else "")


def levels_to_run(strategy: Strategy, levels: Sequence[int] | None) -> tuple[tuple[int, ...], bool]:
    """(levels, level 4 forced) for a strategy and an optional request.

    ``levels=None`` gives the strategy's levels (:data:`LEVELS_FOR_STRATEGY`). Otherwise the request
    means "up to and including ``max(levels)``" (``icebridge validate --level N`` passes ``[N]``):
    every level from 1 to N that applies to the strategy — level 3 applies to byte copies only, and a
    requested level 4 runs even on byte copies whose files all proved identical.
    """
    if levels is None:
        return LEVELS_FOR_STRATEGY[strategy], False
    if not levels or any(not 1 <= int(n) <= 5 for n in levels):
        raise ValueError(f"validation levels must be between 1 and 5, got {list(levels)}")
    top = max(int(n) for n in levels)
    chosen = tuple(n for n in range(1, min(top, 4) + 1) if n != 3 or strategy in BYTE_COPY_STRATEGIES)
    return chosen, top >= 4


def compare_structure(source: Table, destination: Table) -> ComparatorResult:
    """Level 1: schema (field ids, names, types, nullability, docs), partition spec, sort order, properties."""
    diffs = structure_differences(
        source.schema(),
        source.spec(),
        source.sort_order(),
        destination.schema(),
        destination.spec(),
        destination.sort_order(),
    ) + property_differences(source.metadata.properties, destination.metadata.properties)
    return _result(
        1,
        "structure",
        not diffs,
        "schema, partition spec, sort order and properties equal" if not diffs else "; ".join(diffs[:5]),
        "the destination has the source's schema (field ids, names, types, nullability, docs), partition spec, "
        "sort order and portable table properties",
        differences=diffs,
    )


def _metadata_partitions(
    src: SnapshotFiles, dst: SnapshotFiles, schema: Schema, byte_copy: bool
) -> tuple[ComparatorResult, list[str]]:
    whole = metadata_level.needs_whole_table(src, dst)
    cmp = metadata_level.compare(
        metadata_level.collect(src, schema, whole),
        metadata_level.collect(dst, schema, whole),
        schema,
        compare_file_counts=byte_copy,
    )
    scope = "the whole table (files under older partition specs)" if cmp.whole_table else "partition"
    bad = cmp.mismatching_partitions()
    if cmp.passed:
        summary = (
            f"manifest statistics equal per {scope}: {cmp.partitions_compared} compared, "
            f"{cmp.source_records} records recorded on each side"
        )
        if cmp.skipped:
            summary += f"; {len(cmp.skipped)} partitions with row-level deletes left to level 4"
    else:
        first = cmp.mismatches[0]
        summary = (
            f"manifest statistics differ in {len(bad)} partition(s), e.g. {first['partition']}: {first['metric']} "
            f"{first['source']} vs {first['destination']}"
        )
    result = _result(
        2,
        "metadata-partitions",
        cmp.passed,
        summary,
        f"per {scope} ({cmp.partitions_compared} compared): record counts, value/null/NaN counts and exact bounds "
        "of numeric, date and timestamp columns recorded in the manifests agree"
        + (", as do data-file counts" if byte_copy else "")
        + " (no data file opened)",
        partitions=bad[:_MAX_LISTED],
        mismatches=cmp.mismatches[:_MAX_LISTED],
        mismatch_count=len(cmp.mismatches),
        metrics=cmp.metrics,
        metrics_omitted=cmp.metrics_omitted,
        skipped=cmp.skipped[:_MAX_LISTED],
        whole_table=cmp.whole_table,
        partitions_compared=cmp.partitions_compared,
        source_records=cmp.source_records,
        destination_records=cmp.destination_records,
    )
    return result, bad


def _metadata_files(
    src: SnapshotFiles, dst: SnapshotFiles, mapping: Mapping[str, str] | None
) -> tuple[ComparatorResult, list[str]]:
    match = match_files(
        [t.data_file for t in src.tasks],
        [t.data_file for t in dst.tasks],
        mapping,
    )
    facts = metadata_level.compare_file_entries(match, src, dst)
    problems = len(facts["mismatches"]) + len(facts["missing"]) + len(facts["extra"])
    bad = sorted(
        {m["partition"] for m in facts["mismatches"]}
        | {m["partition"] for m in facts["missing"]}
        | {m["partition"] for m in facts["extra"]}
    )
    if not problems:
        summary = f"all {facts['pairs']} data files have a counterpart with the same manifest statistics"
    else:
        parts = []
        if facts["missing"]:
            parts.append(
                f"{len(facts['missing'])} source data file(s) without a copy, e.g. {facts['missing'][0]['file']}"
            )
        if facts["extra"]:
            parts.append(
                f"{len(facts['extra'])} destination data file(s) not in the source, e.g. {facts['extra'][0]['file']}"
            )
        if facts["mismatches"]:
            m = facts["mismatches"][0]
            parts.append(f"{len(facts['mismatches'])} differing statistic(s), e.g. {m['file']}: {m['fact']}")
        summary = "; ".join(parts)
    result = _result(
        2,
        "metadata-files",
        not problems,
        summary,
        f"each of the {facts['pairs']} data files has a copy whose manifest entry (record count, size, value/null/NaN "
        "counts, all lower/upper bounds including strings) is the same",
        partitions=bad[:_MAX_LISTED],
        pairs=facts["pairs"],
        mismatches=facts["mismatches"][:_MAX_LISTED],
        missing=facts["missing"][:_MAX_LISTED],
        extra=facts["extra"][:_MAX_LISTED],
    )
    return result, bad


def _identity_result(
    report: IdentityReport, src: SnapshotFiles, dst: SnapshotFiles, content_proven: bool | None
) -> tuple[ComparatorResult, list[str]]:
    differing = report.differing()
    broken = [
        c
        for c in differing
        if c.source_size != c.source_recorded_size or c.destination_size != c.destination_recorded_size
    ]
    total = len(report.checks) + len(report.missing)
    identical = len(report.checks) - len(differing)
    all_same = report.all_identical
    src_labels = {t.data_file.file_path: file_label(src.metadata, t.data_file) for t in src.tasks}
    dst_labels = {t.data_file.file_path: file_label(dst.metadata, t.data_file) for t in dst.tasks}

    def where(path: str, labels: dict[str, str | None]) -> str:
        return labels.get(path) or WHOLE_TABLE

    passed = all_same or (not broken and bool(content_proven))
    rows = [{**c.to_dict(), "partition": where(c.source, src_labels)} for c in differing]
    missing = [{"file": f.file_path, "partition": where(f.file_path, src_labels)} for f in report.missing]
    extra = [{"file": f.file_path, "partition": where(f.file_path, dst_labels)} for f in report.extra]
    if all_same:
        summary = f"all {total} files byte-identical ({CHECKSUM}, {report.bytes_read} bytes read)"
        proves = (
            f"every one of the {total} data and delete files is byte-identical to its copy (size + {CHECKSUM}): "
            "the content is proven without decoding"
        )
    else:
        parts = [f"{identical} of {total} files byte-identical"]
        if broken:
            b = broken[0]
            parts.append(f"{len(broken)} file(s) not as long as the manifest says, e.g. {b.destination}: {b.problem()}")
        elif differing:
            parts.append(f"{len(differing)} differ, e.g. {differing[0].destination}: {differing[0].problem()}")
        if report.missing:
            parts.append(f"{len(report.missing)} without a copy, e.g. {report.missing[0].file_path}")
        if report.extra:
            parts.append(f"{len(report.extra)} extra in the destination, e.g. {report.extra[0].file_path}")
        if not broken and content_proven is not None:
            parts.append("content proven equal at level 4" if content_proven else "content differs at level 4")
        summary = "; ".join(parts)
        proves = (
            f"{identical} of {total} files are byte-identical (size + {CHECKSUM}); the others' rows were proven "
            "equal by the content digest (level 4)"
        )
    bad = sorted({r["partition"] for r in rows} | {m["partition"] for m in missing} | {e["partition"] for e in extra})
    result = _result(
        3,
        "file-identity",
        passed,
        summary,
        proves,
        checksum=CHECKSUM,
        files=total,
        identical=identical,
        bytes_read=report.bytes_read,
        differing=rows[:_MAX_LISTED],
        missing=missing[:_MAX_LISTED],
        extra=extra[:_MAX_LISTED],
        partitions=bad[:_MAX_LISTED] if not passed else [],
    )
    return result, (bad if not passed else [])


def _digest_dict(d: Digest | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"count": d.count, "sum": f"{d.sum:016x}", "xor": f"{d.xor:016x}"}


def _content_digest(
    source: Table,
    src: SnapshotFiles,
    destination: Table,
    dst: SnapshotFiles,
    schema: Schema,
    spec: PartitionSpec,
    workers: int,
    reader: str = "auto",
) -> tuple[ComparatorResult, list[str]]:
    s: PartitionDigests = partition_digests(source, None, schema, spec, workers=workers, files=src, reader=reader)
    d: PartitionDigests = partition_digests(destination, None, schema, spec, workers=workers, files=dst, reader=reader)
    library = library_version()
    mismatches: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    for label in sorted(s.digests.keys() | d.digests.keys()):
        sd, dd = s.digests.get(label), d.digests.get(label)
        equal = sd is not None and dd is not None and sd.matches(dd)
        row = {"partition": label, "source": _digest_dict(sd), "destination": _digest_dict(dd)}
        if not equal:
            mismatches.append(row)
        if len(metrics) < metadata_level.MAX_METRICS or not equal:
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
                f"{sum(x['rows'] for x in misplaced)} destination row(s) in a file registered under another partition, "
                f"e.g. {m['rows']} row(s) of {m['belongs']} in {m['file']} (registered as {m['registered']})"
            )
        summary = "; ".join(parts)
    result = _result(
        4,
        "content-digest",
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
        mismatches=mismatches[:_MAX_LISTED],
        mismatch_count=len(mismatches),
        misplaced=misplaced[:_MAX_LISTED],
        partitions=bad[:_MAX_LISTED],
        metrics=metrics,
        files_read=s.files + d.files,
        bytes_read=s.bytes + d.bytes,
        files_scanned_by_duckdb=s.scanned_files + d.scanned_files,
    )
    return result, bad


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


def _digest_text(d: Digest | None) -> str:
    return "" if d is None else f"{d.count}:{d.sum:016x}:{d.xor:016x}"


def _source_files(source: Table, source_snapshot_id: int | None) -> SnapshotFiles:
    files = SnapshotFiles(source, source_snapshot_id)
    if source_snapshot_id is None:
        # a task pinned no snapshot because the source was empty then: compare against nothing
        files.snapshot = None
        files.tasks = []
    return files


def run(
    source: Table,
    source_snapshot_id: int | None,
    destination: Table,
    strategy: Strategy = Strategy.REWRITE,
    levels: Sequence[int] | None = None,
    sample_rows: int = 20,
    *,
    file_mapping: Mapping[str, str] | None = None,
    workers: int = 2,
    digest_reader: str = "auto",
) -> list[ComparatorResult]:
    """Run the validation levels for ``strategy``, cheapest first; only reads.

    ``source_snapshot_id`` is the pinned source snapshot (None: the source was empty when pinned); the
    destination is compared at its current snapshot. ``levels=None`` runs
    ``LEVELS_FOR_STRATEGY[strategy]``; ``levels=[N]`` runs every applicable level up to and including
    N (see :func:`levels_to_run`). Drill-down (level 5) follows any mismatch at levels 2-4 unless
    ``sample_rows`` is 0. ``file_mapping`` (source path -> destination path) pairs files for byte-copy
    levels; without it they pair by base name. ``workers`` threads read files in parallel.

    Raises:
        ValidationError: a level cannot run (a table vanished, a manifest or file unreadable) and no
            earlier level had failed.
    """
    strategy = Strategy(strategy)
    chosen, force_digest = levels_to_run(strategy, levels)
    byte_copy = strategy in BYTE_COPY_STRATEGIES
    results: list[ComparatorResult] = []
    suspects: set[str] = set()

    def guarded(level: int, comparator: str, fn: Any, failed_before: bool = False) -> Any:
        try:
            return fn()
        except Exception as exc:
            error = exc if isinstance(exc, IceBridgeError) else ValidationError(f"{comparator} could not run: {exc}")
            if failed_before or any(not r.passed for r in results):
                results.append(_result(level, comparator, False, f"could not run: {error}", "", error=str(error)))
                return None
            if error is exc:
                raise
            raise error from exc

    try:
        src = _source_files(source, source_snapshot_id)
        dst = SnapshotFiles(destination, None)
    except IceBridgeError:
        raise
    except Exception as exc:
        raise ValidationError(f"validation could not read the tables' metadata: {exc}") from exc
    schema = source.schema()
    spec = source.spec()

    if 1 in chosen:
        results.append(compare_structure(source, destination))
    if 2 in chosen:
        out = guarded(2, "metadata-partitions", lambda: _metadata_partitions(src, dst, schema, byte_copy))
        if out is not None:
            results.append(out[0])
            suspects.update(out[1])
        if byte_copy:
            out = guarded(2, "metadata-files", lambda: _metadata_files(src, dst, file_mapping))
            if out is not None:
                results.append(out[0])
                suspects.update(out[1])
    identity: IdentityReport | None = None
    if 3 in chosen:

        def level3() -> IdentityReport:
            data = match_files([t.data_file for t in src.tasks], [t.data_file for t in dst.tasks], file_mapping)
            deletes = match_files(src.delete_files(), dst.delete_files(), file_mapping)
            merged = type(data)(data.pairs + deletes.pairs, data.missing + deletes.missing, data.extra + deletes.extra)
            return compare_files(source.io, destination.io, merged, workers=max(2, workers * 2))

        identity = guarded(3, "file-identity", level3)
    run_digest = 4 in chosen or force_digest or (identity is not None and not identity.all_identical)
    content_proven: bool | None = None
    digest_result: ComparatorResult | None = None
    digest_bad: list[str] = []
    if run_digest:
        # a file whose bytes differ from its source has already failed level 3 unless level 4 proves its rows
        # (level 3's result needs level 4's outcome, so it is recorded after it): if it cannot be decoded,
        # that is a failed result with the evidence kept, not an error
        differs = identity is not None and not identity.all_identical
        out = guarded(
            4,
            "content-digest",
            lambda: _content_digest(source, src, destination, dst, schema, spec, workers, digest_reader),
            failed_before=differs,
        )
        if out is not None:
            digest_result, digest_bad = out
            content_proven = digest_result.passed
    if identity is not None:
        id_result, id_bad = _identity_result(identity, src, dst, content_proven)
        results.append(id_result)
        suspects.update(id_bad)
    if digest_result is not None:
        results.append(digest_result)
        suspects.update(digest_bad)
        # level 4 placed every row in its current partition: a table-wide level-2 group adds nothing to look at
        suspects.discard(WHOLE_TABLE)
    results.sort(key=lambda r: r.level)  # stable: comparators of one level keep their order

    mismatch = any(not r.passed for r in results if r.level in (2, 3, 4))
    if mismatch and sample_rows > 0 and suspects:
        drill = guarded(
            5, "drill-down", lambda: drill_down(src, dst, schema, spec, sorted(suspects), sample_rows=sample_rows)
        )
        if drill is not None:
            n = drill.differing_rows
            summary = (
                f"{n} row(s) on one side only in {len(drill.partitions)} partition(s); "
                f"{len(drill.source_only)} source and {len(drill.destination_only)} destination row(s) sampled"
                if n
                else f"no row differs in the {len(suspects)} suspect partition(s) (the mismatch is in the metadata)"
            )
            results.append(
                ComparatorResult(
                    5,
                    "drill-down",
                    False,
                    summary,
                    {
                        "level_name": LEVEL_NAMES[5],
                        "proves": "",
                        "suspects": sorted(suspects)[:_MAX_LISTED],
                        **drill.to_dict(),
                    },
                )
            )
    return results
