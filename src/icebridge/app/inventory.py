"""Inventory: the facts of every mapped source table, read from metadata only, saved and reused."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.model import Finding, Severity, TableFacts
from icebridge.phases import inventory as inventory_phase

if TYPE_CHECKING:
    from icebridge.context import AppContext


class InventoryRequest(BaseModel):
    """Whether to read the catalogs again instead of the saved facts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    refresh: bool = Field(default=False, description="Read the catalogs again instead of the saved facts.")


class InventoryResult(BaseModel):
    """The facts of every source table, and a blocker for each unreadable one."""

    model_config = ConfigDict(frozen=True)

    tables: list[TableFacts]
    findings: list[Finding]
    captured_at: datetime | None
    run_id: int | None = Field(default=None, description="The inventory run that read them.")

    @property
    def blocked(self) -> bool:
        return any(f.severity is Severity.BLOCKER for f in self.findings)


class InventoryService:
    """Reads (or reuses) the inventory; only the source catalogs are touched, and only read."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def inventory(self, request: InventoryRequest) -> InventoryResult:
        """The saved inventory, or a fresh one (saved, with its findings) when asked or when none is saved."""
        store = self.app.store
        captured = store.inventory_captured_at()
        if not request.refresh and captured is not None:
            last = next((r for r in store.list_runs(limit=1000) if r.kind == "inventory"), None)
            saved = [row.to_finding() for row in store.findings(run_id=last.id)] if last else []
            return InventoryResult(
                tables=store.load_inventory(), findings=saved, captured_at=captured, run_id=last.id if last else None
            )
        for name in self.app.config.source_catalogs:
            self.app.catalogs.check_reachable(name)
        run = store.start_run("inventory", str(self.app.config.path), {"refresh": request.refresh})
        status = "failed"
        facts: list[TableFacts] = []
        findings: list[Finding] = []
        try:
            # the facts saved before: a table whose metadata location has not moved since is not read again
            known = {f.table: f for f in store.load_inventory()} if captured is not None else {}
            facts, findings = inventory_phase.run(self.app, known)
            store.save_inventory(facts)
            store.add_findings(run.id, findings)
            status = "failed" if any(f.severity is Severity.BLOCKER for f in findings) else "succeeded"
        finally:
            store.finish_run(run.id, status, {"tables": len(facts), "unreadable": len(findings)})
        return InventoryResult(
            tables=facts, findings=findings, captured_at=store.inventory_captured_at(), run_id=run.id
        )
