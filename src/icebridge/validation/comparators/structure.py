"""Level 1, ``structure``: the destination has the source's shape (no data file is read)."""

from __future__ import annotations

from icebridge.validation.comparators.base import Comparator, Evidence, Options, Outcome, TablePair
from icebridge.validation.structure import property_differences, structure_differences

__all__ = ["Structure"]


class Structure(Comparator):
    """Schema (field ids, names, types, nullability, docs), partition spec, sort order and portable properties."""

    level = 1
    level_name = "structure"
    name = "structure"

    def run(self, pair: TablePair, options: Options, evidence: Evidence) -> Outcome:
        """Compare both tables' current schema, spec, sort order and portable properties."""
        source, destination = pair.source, pair.destination
        diffs = structure_differences(
            source.schema(),
            source.spec(),
            source.sort_order(),
            destination.schema(),
            destination.spec(),
            destination.sort_order(),
        ) + property_differences(source.metadata.properties, destination.metadata.properties)
        return Outcome(
            self.result(
                not diffs,
                "schema, partition spec, sort order and properties equal" if not diffs else "; ".join(diffs[:5]),
                "the destination has the source's schema (field ids, names, types, nullability, docs), partition "
                "spec, sort order and portable table properties",
                differences=diffs,
            )
        )
