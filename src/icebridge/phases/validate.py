"""Validate: prove the destination holds the source's data, cheapest comparator first.

Level 1 compares structure (schema with field ids, partition spec, sort order). Contents are compared
by row count and an order-independent digest computed from the Parquet files through IceBridge's own
reader, not the reader that did the copy, so a reader bug cannot corrupt both sides alike unseen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from icebridge.errors import ValidationError
from icebridge.validation.digest import table_digest
from icebridge.validation.structure import structure_differences

if TYPE_CHECKING:
    from pyiceberg.table import Table


@dataclass(frozen=True)
class ComparatorResult:
    """What one comparator proved (or disproved), stored as a validation row."""

    level: int
    comparator: str
    passed: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def compare_structure(source: Table, destination: Table) -> ComparatorResult:
    """Schema (field ids, names, types, nullability, docs), partition spec and sort order."""
    diffs = structure_differences(
        source.schema(),
        source.spec(),
        source.sort_order(),
        destination.schema(),
        destination.spec(),
        destination.sort_order(),
    )
    return ComparatorResult(
        level=1,
        comparator="structure",
        passed=not diffs,
        summary="schema, partition spec and sort order equal" if not diffs else "; ".join(diffs[:5]),
        details={"differences": diffs},
    )


def compare_content(source: Table, source_snapshot_id: int | None, destination: Table) -> list[ComparatorResult]:
    """Row counts and content digests of the pinned source snapshot and the destination's current one."""
    dest_snapshot = destination.current_snapshot()
    schema = source.schema()
    field_ids = [f.field_id for f in schema.fields]
    try:
        src = table_digest(source, source_snapshot_id, schema=schema) if source_snapshot_id else None
        dst = table_digest(destination, dest_snapshot.snapshot_id, schema=schema) if dest_snapshot else None
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(f"content could not be read for validation: {exc}") from exc
    src_count = src.count if src else 0
    dst_count = dst.count if dst else 0
    counts = ComparatorResult(
        level=1,
        comparator="row-count",
        passed=src_count == dst_count,
        summary=f"{src_count} rows in source, {dst_count} in destination",
        details={"source": src_count, "destination": dst_count},
    )
    if src is None or dst is None:
        both_empty = src_count == dst_count == 0
        digest = ComparatorResult(
            level=1,
            comparator="content-digest",
            passed=both_empty,
            summary="both sides empty" if both_empty else "one side has no snapshot",
            details={"source": src.to_dict() if src else None, "destination": dst.to_dict() if dst else None},
        )
    else:
        digest = ComparatorResult(
            level=1,
            comparator="content-digest",
            passed=src.matches(dst),
            summary=(
                f"digests equal over {src.count} rows ({src.library})"
                if src.matches(dst)
                else f"digests differ: source {src.to_dict()} destination {dst.to_dict()}"
            ),
            details={"source": src.to_dict(), "destination": dst.to_dict(), "field_ids": field_ids},
        )
    return [counts, digest]


def run(source: Table, source_snapshot_id: int | None, destination: Table) -> list[ComparatorResult]:
    """Every comparator of the first level, cheapest first; only reads."""
    structure = compare_structure(source, destination)
    return [structure, *compare_content(source, source_snapshot_id, destination)]
