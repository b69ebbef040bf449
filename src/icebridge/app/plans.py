"""Plans: which destination and strategy each source table gets, with reasons, sizes and estimates.

Planning is a dry run: nothing is written to any catalog or storage; the plan is saved as the task
rows that ``migrate`` then works through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import IceBridgeError, PlanError
from icebridge.model import Finding, PlanItem, Severity, TableFacts, Throughput
from icebridge.phases.estimate import Estimates
from icebridge.selection import check_pattern, matches

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.store import TaskRow


class PlanRequest(BaseModel):
    """Which tables to plan, and the engine to plan them for (over the mapping rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: str | None = Field(default=None, description="Only tables matching this glob.")
    engine: str | None = Field(default=None, description="local, spark or databricks, over the mapping rules.")


class PlannedTable(BaseModel):
    """One source table's destination, strategy and reason, its size and estimated duration."""

    model_config = ConfigDict(frozen=True)

    source: str
    destination: str
    strategy: str
    reason: str
    blocked: bool
    bytes_to_move: int
    estimate_seconds: float | None
    findings: list[Finding]


class PlanResult(BaseModel):
    """The plan of every chosen table, its blockers and warnings, and what it will cost in time."""

    model_config = ConfigDict(frozen=True)

    tables: list[PlannedTable]
    findings: list[Finding] = Field(description="Findings about tables that could not be planned (unreadable).")
    blocked: int
    bytes_to_move: int
    estimate_seconds: float | None
    concurrency: int
    throughput: dict[str, Throughput]
    estimates: Estimates | None = Field(
        default=None, description="Duration and cost per table and in total on each engine, and the notebook way."
    )


class ScriptsResult(BaseModel):
    """The Spark SQL script of every planned table, for review."""

    model_config = ConfigDict(frozen=True)

    scripts: dict[str, str]


@dataclass(frozen=True)
class Prepared:
    """Inventory and plan of the chosen tables, before anything is saved."""

    facts: list[TableFacts]
    items: list[PlanItem]
    findings: list[Finding]


class PlanService:
    """Builds, saves and estimates plans."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def prepare(self, pattern: str | None, engine: str | None = None, refresh: bool = False) -> Prepared:
        """Inventory (saved or fresh) and plan, restricted to ``pattern``.

        Raises PlanError on a mapping rule that matches nothing, or a pattern that matches no table.
        """
        from icebridge.app.inventory import InventoryRequest, InventoryService
        from icebridge.phases import plan as plan_phase

        check_pattern(pattern)
        plan_phase.check_engine(self.app.config, engine)  # a bad --engine stops here, before any inventory
        inventory = InventoryService(self.app).inventory(InventoryRequest(refresh=refresh))
        facts, findings = inventory.tables, inventory.findings
        # unreadable tables still exist: a rule that matches only them is not a typo
        known = [t.source for t in self.app.store.list_tasks()] + [f.table for f in findings]
        plan_phase.check_rules(self.app, facts, known)
        items = [i for i in plan_phase.build(self.app, facts, engine=engine) if matches(str(i.source), pattern)]
        findings = [f for f in findings if matches(f.table, pattern)]
        if pattern and not items and not findings:
            raise PlanError(f"--tables {pattern!r} matches no planned table; see 'icebridge plan' for the names")
        return Prepared(facts, items, findings)

    def save(self, items: list[PlanItem]) -> list[tuple[PlanItem, TaskRow | None]]:
        """Record a task for every unblocked item (blocked ones get none), in one transaction."""
        ready = [i for i in items if not i.blocked and i.destination is not None]
        rows = [(str(i.source), str(i.destination), str(i.strategy), i.reason) for i in ready]
        saved = {t.source: t for t in self.app.store.plan_tasks(rows)}
        return [(item, saved.get(str(item.source))) for item in items]

    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan, save and estimate the chosen tables; writes nothing to any catalog or storage."""
        from icebridge.phases import plan as plan_phase

        prepared = self.prepare(request.tables, engine=request.engine)
        self.save(prepared.items)
        from icebridge.engines import strategy_spec
        from icebridge.phases import estimate as estimate_phase

        items, rates = plan_phase.with_estimates(self.app, prepared.items)
        concurrency = self.app.config.migrate.concurrency
        estimates = estimate_phase.estimate(items, rates, self.app.config.estimates, concurrency)
        self.app.store.set_estimates(
            (str(i.source), i.estimate_seconds, request.engine or strategy_spec(str(i.strategy)).engine)
            for i in items
            if not i.blocked
        )
        blocked = sum(i.blocked for i in items) + sum(f.severity is Severity.BLOCKER for f in prepared.findings)
        return PlanResult(
            tables=[_planned(i) for i in items],
            findings=prepared.findings,
            blocked=blocked,
            bytes_to_move=sum(i.bytes_to_move for i in items if not i.blocked),
            estimate_seconds=plan_phase.total_estimate(items, concurrency),
            concurrency=concurrency,
            throughput={str(k): v for k, v in rates.items()},
            estimates=estimates,
        )

    def scripts(self, request: PlanRequest) -> ScriptsResult:
        """The Spark SQL that migrates each planned table (scaffold, copy of the pinned snapshot, checks)."""
        from icebridge.engines.spark_sql import render_script

        prepared = self.prepare(request.tables, engine=request.engine)
        self.save(prepared.items)
        scripts: dict[str, str] = {}
        for item in prepared.items:
            if item.destination is None:
                continue
            try:
                source = self.app.catalogs.load_table(item.source)
                task = self.app.store.get_task(str(item.source))
                pinned = task.source_snapshot_id if task and task.source_snapshot_id is not None else None
                current = source.current_snapshot()
                if pinned is None and current is not None:
                    pinned = current.snapshot_id
                scripts[str(item.source)] = render_script(source, item.source, item.destination, pinned)
            except IceBridgeError as exc:
                scripts[str(item.source)] = f"-- cannot be expressed in Spark SQL: {exc}"
        return ScriptsResult(scripts=scripts)


def _planned(item: PlanItem) -> PlannedTable:
    return PlannedTable(
        source=str(item.source),
        destination=str(item.destination),
        strategy=str(item.strategy),
        reason=item.reason,
        blocked=item.blocked,
        bytes_to_move=item.bytes_to_move,
        estimate_seconds=item.estimate_seconds,
        findings=list(item.findings),
    )
