"""Pre-flight: every check a table must pass before it is copied, recorded as a run with its findings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.model import Finding, Severity
from icebridge.phases import preflight as preflight_phase

if TYPE_CHECKING:
    from icebridge.context import AppContext


class PreflightRequest(BaseModel):
    """Which tables to check, for which engine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: str | None = Field(default=None, description="Only tables matching this glob.")
    engine: str | None = Field(default=None, description="Check for this engine, over the mapping rules.")


class PreflightResult(BaseModel):
    """Findings per table (blocker, warning, info), each with its fix."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    checked: int = Field(description="How many planned tables were checked.")
    findings: list[Finding]
    blockers: int


class PreflightService:
    """Runs the pre-flight checks on a fresh inventory and records them."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def preflight(self, request: PreflightRequest) -> PreflightResult:
        """Check every planned table: source readable, namespace creatable, storage writable, features carried."""
        from icebridge.app.plans import PlanService

        prepared = PlanService(self.app).prepare(request.tables, engine=request.engine, refresh=True)
        store = self.app.store
        run = store.start_run("preflight", str(self.app.config.path), {"tables": request.tables})
        findings: list[Finding] = []
        status = "failed"
        try:
            findings = prepared.findings + preflight_phase.run(self.app, prepared.items, engine=request.engine)
            store.add_findings(run.id, findings)
            blockers = sum(f.severity is Severity.BLOCKER for f in findings)
            status = "failed" if blockers else "succeeded"
        finally:
            store.finish_run(
                run.id,
                status,
                {"findings": len(findings), "blockers": sum(f.severity is Severity.BLOCKER for f in findings)},
            )
        return PreflightResult(run_id=run.id, checked=len(prepared.items), findings=findings, blockers=blockers)
