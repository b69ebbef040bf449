"""Level 5, ``drill-down``: after a mismatch at levels 2 to 4, the rows on one side only in the suspect partitions.

Never asked for by level: it follows what the levels before it found, and reads only the files of the
partitions they name (the whole table when only a table-wide group is suspect).
"""

from __future__ import annotations

from icebridge.validation.comparators.base import MAX_LISTED, Comparator, Evidence, Options, Outcome, TablePair
from icebridge.validation.drilldown import drill_down

__all__ = ["DrillDown"]


class DrillDown(Comparator):
    """How many rows each side has that the other lacks, per suspect partition, and a capped sample of them."""

    level = 5
    level_name = "drill-down"
    name = "drill-down"
    follow_up = True

    def wanted(self, options: Options, evidence: Evidence) -> bool:
        """After a failed result between structure and this level, with a partition to look into."""
        mismatch = any(not r.passed for r in evidence.results() if 1 < r.level < self.level)
        return options.sample_rows > 0 and mismatch and bool(evidence.suspects())

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        """Find the differing rows of the suspect partitions; always a failed result, as it follows a mismatch."""
        suspects = sorted(evidence.suspects())
        drill = drill_down(
            pair.source_files,
            pair.destination_files,
            pair.schema,
            pair.spec,
            suspects,
            sample_rows=options.sample_rows,
            progress=options.progress,
        )
        n = drill.differing_rows
        summary = (
            f"{n} row(s) on one side only in {len(drill.partitions)} partition(s); "
            f"{len(drill.source_only)} source and {len(drill.destination_only)} destination row(s) sampled"
            if n
            else f"no row differs in the {len(suspects)} suspect partition(s) (the mismatch is in the metadata)"
        )
        return Outcome(self.result(False, summary, "", suspects=suspects[:MAX_LISTED], **drill.to_dict()))
