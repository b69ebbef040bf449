"""Level 3, ``file-identity``: byte copies' files compared by size and checksum — the stores' own full-object
checksums where both sides have one (nothing read), else xxh3-128 of every byte on both sides.

When every file is identical the content is proven without decoding a row. When some file differs, the
verdict waits for level 4: a file whose bytes differ but whose rows the content digest proves equal
(rewritten with another compression, say) passes; a file shorter than its manifest says never does.
"""

from __future__ import annotations

from typing import Any

from icebridge.validation.comparators.base import (
    MAX_LISTED,
    Comparator,
    Evidence,
    Options,
    Outcome,
    Provisional,
    TablePair,
)
from icebridge.validation.identity import (
    CHUNK_BYTES,
    STORE_CHECKSUM,
    IdentityReport,
    compare_files,
    identity_report,
    match_files,
)
from icebridge.validation.partitions import WHOLE_TABLE, file_label

__all__ = ["FileIdentity"]

# The level whose verdict decides files that differ: the content digest reads their rows.
PROVEN_BY = 4


class FileIdentity(Comparator):
    """Size and checksum of every data and delete file and its copy: the stores' own, or xxh3-128 of the bytes."""

    level = 3
    level_name = "file identity"
    name = "file-identity"

    def applies(self, byte_copy: bool) -> bool:
        """Only byte copies: a rewrite's files are new ones."""
        return byte_copy

    def planned(self, pair: TablePair, options: Options) -> tuple[int, int]:
        """Every data and delete file of both sides, at the size its manifest records."""
        files = [
            f
            for side in (pair.source_files, pair.destination_files)
            for f in (*(t.data_file for t in side.tasks), *side.delete_files())
        ]
        return len(files), sum(int(f.file_size_in_bytes) for f in files)

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome | Provisional:
        """Checksum every paired file; final when all are identical, else provisional until level 4 has run."""
        src, dst = pair.source_files, pair.destination_files
        data = match_files([t.data_file for t in src.tasks], [t.data_file for t in dst.tasks], options.file_mapping)
        deletes = match_files(src.delete_files(), dst.delete_files(), options.file_mapping)
        merged = type(data)(data.pairs + deletes.pairs, data.missing + deletes.missing, data.extra + deletes.extra)
        if options.executors is not None:
            checks, where = options.executors.check_files(
                pair.source.io, pair.destination.io, merged.pairs, CHUNK_BYTES
            )
            report = identity_report(checks, merged)
            if options.progress is not None:
                options.progress(2 * len(checks), sum(c.source_size + c.destination_size for c in checks))
        else:
            workers = max(2, options.workers * 2)
            report = compare_files(
                pair.source.io, pair.destination.io, merged, workers=workers, progress=options.progress
            )
            where = {"where": "this process", "threads": workers}
        if report.all_identical:
            return self._outcome(report, pair, None, where)
        return Provisional(PROVEN_BY, lambda later: self._outcome(report, pair, later.level_verdict(PROVEN_BY), where))

    def _outcome(
        self, report: IdentityReport, pair: TablePair, content_proven: bool | None, executed_on: dict[str, Any]
    ) -> Outcome:
        src, dst = pair.source_files, pair.destination_files
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
        proofs = report.proofs()
        by_store = proofs.get(STORE_CHECKSUM, 0)
        how = f"{by_store} by the stores' own checksums, nothing read; " if by_store else ""
        how += f"{len(report.checks) - by_store} read, {report.bytes_read} bytes"
        algorithms = "/".join(report.algorithms()) or "xxh3-128"
        if all_same:
            summary = f"all {total} files byte-identical ({algorithms}; {how})"
            proves = (
                f"every one of the {total} data and delete files is byte-identical to its copy (size + "
                f"{algorithms}): the content is proven without decoding"
            )
        else:
            parts = [f"{identical} of {total} files byte-identical"]
            if broken:
                b = broken[0]
                parts.append(
                    f"{len(broken)} file(s) not as long as the manifest says, e.g. {b.destination}: {b.problem()}"
                )
            elif differing:
                parts.append(f"{len(differing)} differ, e.g. {differing[0].destination}: {differing[0].problem()}")
            if report.missing:
                parts.append(f"{len(report.missing)} without a copy, e.g. {report.missing[0].file_path}")
            if report.extra:
                parts.append(f"{len(report.extra)} extra in the destination, e.g. {report.extra[0].file_path}")
            if not broken and content_proven is not None:
                parts.append("content proven equal at level 4" if content_proven else "content differs at level 4")
            parts.append(how)
            summary = "; ".join(parts)
            proves = (
                f"{identical} of {total} files are byte-identical (size + {algorithms}); the others' rows were "
                "proven equal by the content digest (level 4)"
            )
        bad = sorted(
            {r["partition"] for r in rows} | {m["partition"] for m in missing} | {e["partition"] for e in extra}
        )
        result = self.result(
            passed,
            summary,
            proves,
            checksum=algorithms,
            proofs=proofs,
            proof_of_files=[
                {"source": c.source, "destination": c.destination, "proof": c.proof, "checksum": c.checksum}
                for c in report.checks[:MAX_LISTED]
            ],
            files=total,
            identical=identical,
            bytes_read=report.bytes_read,
            differing=rows[:MAX_LISTED],
            missing=missing[:MAX_LISTED],
            extra=extra[:MAX_LISTED],
            partitions=bad[:MAX_LISTED] if not passed else [],
            executed_on=executed_on,
        )
        return Outcome(result, frozenset(bad) if not passed else frozenset())
