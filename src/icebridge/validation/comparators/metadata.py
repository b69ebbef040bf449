"""Level 2, ``metadata-partitions`` and (byte copies) ``metadata-files``: manifests only, no data file opened."""

from __future__ import annotations

from icebridge.validation import metadata
from icebridge.validation.comparators.base import MAX_LISTED, Comparator, Evidence, Options, Outcome, TablePair
from icebridge.validation.identity import match_files

__all__ = ["MetadataFiles", "MetadataPartitions"]


class MetadataPartitions(Comparator):
    """Per partition: record, value, null and NaN counts and exact bounds as both sides' manifests record them."""

    level = 2
    level_name = "metadata"
    name = "metadata-partitions"

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        """Sum both sides' manifest statistics per partition (or for the whole table) and compare them."""
        src, dst, schema, byte_copy = pair.source_files, pair.destination_files, pair.schema, options.byte_copy
        whole = metadata.needs_whole_table(src, dst)
        cmp = metadata.compare(
            metadata.collect(src, schema, whole),
            metadata.collect(dst, schema, whole),
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
                f"manifest statistics differ in {len(bad)} partition(s), e.g. {first['partition']}: "
                f"{first['metric']} {first['source']} vs {first['destination']}"
            )
        result = self.result(
            cmp.passed,
            summary,
            f"per {scope} ({cmp.partitions_compared} compared): record counts, value/null/NaN counts and exact "
            "bounds of numeric, date and timestamp columns recorded in the manifests agree"
            + (", as do data-file counts" if byte_copy else "")
            + " (no data file opened)",
            partitions=bad[:MAX_LISTED],
            mismatches=cmp.mismatches[:MAX_LISTED],
            mismatch_count=len(cmp.mismatches),
            metrics=cmp.metrics,
            metrics_omitted=cmp.metrics_omitted,
            skipped=cmp.skipped[:MAX_LISTED],
            whole_table=cmp.whole_table,
            partitions_compared=cmp.partitions_compared,
            source_records=cmp.source_records,
            destination_records=cmp.destination_records,
        )
        return Outcome(result, frozenset(bad))


class MetadataFiles(Comparator):
    """Byte copies: every data file's manifest entry against its copy's, string bounds included."""

    level = 2
    level_name = "metadata"
    name = "metadata-files"

    def applies(self, byte_copy: bool) -> bool:
        """Only byte copies: a rewrite writes other files, with other entries."""
        return byte_copy

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        """Pair the data files (by ``options.file_mapping`` or base name) and compare their manifest entries."""
        src, dst = pair.source_files, pair.destination_files
        match = match_files(
            [t.data_file for t in src.tasks],
            [t.data_file for t in dst.tasks],
            options.file_mapping,
        )
        facts = metadata.compare_file_entries(match, src, dst)
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
                    f"{len(facts['extra'])} destination data file(s) not in the source, "
                    f"e.g. {facts['extra'][0]['file']}"
                )
            if facts["mismatches"]:
                m = facts["mismatches"][0]
                parts.append(f"{len(facts['mismatches'])} differing statistic(s), e.g. {m['file']}: {m['fact']}")
            summary = "; ".join(parts)
        result = self.result(
            not problems,
            summary,
            f"each of the {facts['pairs']} data files has a copy whose manifest entry (record count, size, "
            "value/null/NaN counts, all lower/upper bounds including strings) is the same",
            partitions=bad[:MAX_LISTED],
            pairs=facts["pairs"],
            mismatches=facts["mismatches"][:MAX_LISTED],
            missing=facts["missing"][:MAX_LISTED],
            extra=facts["extra"][:MAX_LISTED],
        )
        return Outcome(result, frozenset(bad))
