"""Plan: one destination and one strategy per source table, each with a reason. Writes nothing to any catalog."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from typing import TYPE_CHECKING

from icebridge.errors import IceBridgeError, PlanError
from icebridge.model import Finding, PlanItem, Severity, Strategy, TableFacts, TableRef
from icebridge.validation.structure import structure_differences

if TYPE_CHECKING:
    from icebridge.context import Context


def choose_strategy(facts: TableFacts, forced: Strategy | None, available: set[Strategy]) -> tuple[Strategy, str]:
    """The strategy for one table and the human reason for it."""
    if forced is not None:
        return forced, f"{forced}: forced by the mapping rule"
    if not facts.current_snapshot_id:
        return Strategy.FILE_COPY, "file-copy: no snapshot, only the table is created"
    reasons = []
    if facts.delete_files:
        reasons.append(f"{facts.delete_files} delete file(s) are applied while reading")
    non_parquet = [f for f in facts.file_formats if f != "PARQUET"]
    if non_parquet:
        reasons.append(f"{'/'.join(non_parquet)} data files are re-encoded as Parquet")
    if reasons or Strategy.FILE_COPY not in available:
        return Strategy.REWRITE, "rewrite: " + ("; ".join(reasons) or "file-copy is not available")
    return Strategy.FILE_COPY, "file-copy: plain Parquet without delete files, copied byte for byte, nothing decoded"


def strategy_findings(table: str, facts: TableFacts, strategy: Strategy, available: set[Strategy]) -> list[Finding]:
    """Features of the table that the chosen strategy cannot carry."""
    out: list[Finding] = []
    if strategy not in available:
        out.append(
            Finding(
                table,
                Severity.BLOCKER,
                "strategy-unavailable",
                f"strategy {strategy} is not available in this installation (available: "
                f"{', '.join(sorted(available))})",
                "remove 'strategy' from the mapping rule or install the engine that provides it",
            )
        )
    if strategy is Strategy.FILE_COPY and (facts.delete_files or set(facts.file_formats) - {"PARQUET"}):
        out.append(
            Finding(
                table,
                Severity.BLOCKER,
                "file-copy-unsupported",
                f"file-copy cannot carry this table ({facts.delete_files} delete file(s), formats "
                f"{', '.join(facts.file_formats)})",
                "use strategy rewrite for this table (remove 'strategy: file-copy' from its mapping rule)",
            )
        )
    if strategy is Strategy.REWRITE and facts.equality_delete_files:
        out.append(
            Finding(
                table,
                Severity.BLOCKER,
                "equality-deletes",
                f"{facts.equality_delete_files} equality delete file(s): the local reader cannot apply them",
                "compact the source table (rewrite_data_files) first, or use an engine that reads equality deletes",
            )
        )
    if facts.format_version > 2:
        out.append(
            Finding(
                table,
                Severity.BLOCKER,
                "format-version",
                f"format version {facts.format_version} is not supported yet",
                "migrate this table with an engine that supports v3",
            )
        )
    if facts.format_version == 1:
        out.append(
            Finding(
                table,
                Severity.INFO,
                "format-upgrade",
                "source is format v1; the destination is created as v2",
                "",
            )
        )
    return out


def select(refs: list[str], pattern: str | None) -> list[str]:
    """Tables whose full name (``catalog.ns.table``) or name within the catalog matches ``pattern``."""
    if not pattern:
        return refs
    return [r for r in refs if fnmatch.fnmatchcase(r, pattern) or fnmatch.fnmatchcase(r.split(".", 1)[1], pattern)]


def build(ctx: Context, facts: list[TableFacts], check_destinations: bool = True) -> list[PlanItem]:
    """A plan item for every inventoried table that a mapping rule matches."""
    from icebridge.engines import available_strategies

    available = available_strategies(ctx.config)
    items: list[PlanItem] = []
    for fact in sorted(facts, key=lambda f: f.table):
        ref = TableRef.parse(fact.table)
        rule = ctx.config.rule_for(ref)
        if rule is None:
            continue
        destination = rule.destination(ref)
        strategy, reason = choose_strategy(fact, rule.strategy, available)
        findings = strategy_findings(fact.table, fact, strategy, available)
        items.append(PlanItem(ref, destination, strategy, reason, tuple(findings)))
    items = _mark_collisions(items)
    if check_destinations:
        items = [_check_destination(ctx, item) for item in items]
    return items


def unmatched_rules(ctx: Context, facts: list[TableFacts], known_sources: list[str]) -> list[str]:
    """Mapping rules that match no source table (neither live nor already migrated): almost always a typo."""
    refs = [TableRef.parse(f.table) for f in facts] + [TableRef.parse(s) for s in known_sources]
    out = []
    for i, rule in enumerate(ctx.config.mappings):
        if not any(rule.matches(r) for r in refs):
            out.append(f"{ctx.config.path}: mappings[{i}].source: {rule.source!r} matches no table")
    return out


def check_rules(ctx: Context, facts: list[TableFacts], known_sources: list[str]) -> None:
    """Raise :class:`PlanError` when a mapping rule matches nothing."""
    problems = unmatched_rules(ctx, facts, known_sources)
    if problems:
        raise PlanError(
            "; ".join(problems) + ". Fix the glob (see 'icebridge inventory' for the table names) or remove the rule"
        )


def _mark_collisions(items: list[PlanItem]) -> list[PlanItem]:
    by_destination: dict[str, list[PlanItem]] = defaultdict(list)
    for item in items:
        by_destination[str(item.destination)].append(item)
    out = []
    for item in items:
        others = [str(o.source) for o in by_destination[str(item.destination)] if o is not item]
        if others:
            finding = Finding(
                str(item.source),
                Severity.BLOCKER,
                "destination-collision",
                f"{item.source} and {', '.join(others)} all map to {item.destination}",
                "add a mapping rule with 'rename' so every source gets its own destination",
            )
            item = PlanItem(item.source, item.destination, item.strategy, item.reason, (*item.findings, finding))
        out.append(item)
    return out


def _check_destination(ctx: Context, item: PlanItem) -> PlanItem:
    assert item.destination is not None
    try:
        if not ctx.catalogs.table_exists(item.destination):
            return item
        existing = ctx.catalogs.load_table(item.destination)
        source = ctx.catalogs.load_table(item.source)
    except IceBridgeError as exc:
        finding = Finding(str(item.source), Severity.BLOCKER, "unreadable", str(exc), "")
        return PlanItem(item.source, item.destination, item.strategy, item.reason, (*item.findings, finding))
    diffs = structure_differences(
        source.schema(),
        source.spec(),
        source.sort_order(),
        existing.schema(),
        existing.spec(),
        existing.sort_order(),
    )
    if diffs:
        finding = Finding(
            str(item.source),
            Severity.BLOCKER,
            "destination-differs",
            f"{item.destination} exists with a different shape: {'; '.join(diffs[:3])}",
            "drop or rename the destination table, or map this source elsewhere",
        )
    else:
        finding = Finding(
            str(item.source),
            Severity.INFO,
            "destination-exists",
            f"{item.destination} exists with the same shape and will be adopted",
            "",
        )
    return PlanItem(item.source, item.destination, item.strategy, item.reason, (*item.findings, finding))
