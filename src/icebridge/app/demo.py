"""The demo: build the sample foreign estate, then inventory → preflight → plan → migrate → cut over it.

The flow is a sequence of steps, each the result of one service, so any surface can show it as it
goes (the CLI prints each step's table; the API could stream them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from icebridge.context import AppContext


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo and the result its service returned."""

    name: str  # inventory, preflight, plan, migrate, cutover
    result: BaseModel


def build(directory: Path, scale: float, overwrite: bool, say: Callable[[str], None]) -> Path:
    """Lay out the sample estate and its icebridge.yaml under ``directory``; returns the configuration's path."""
    from icebridge import demo as estate

    return estate.build_estate(directory, scale, overwrite=overwrite, progress=say)


def steps(app: AppContext) -> Iterator[DemoStep]:
    """Carry out the demo's flow on the estate ``app`` is configured for, one step at a time."""
    from icebridge.app.inventory import InventoryRequest, InventoryService
    from icebridge.app.plans import PlanRequest, PlanService
    from icebridge.app.preflight import PreflightRequest, PreflightService
    from icebridge.app.runs import RunRequest, RunService

    yield DemoStep("inventory", InventoryService(app).inventory(InventoryRequest(refresh=True)))
    yield DemoStep("preflight", PreflightService(app).preflight(PreflightRequest()))
    yield DemoStep("plan", PlanService(app).plan(PlanRequest()))
    runs = RunService(app)
    migrated = runs.run(RunRequest(command="migrate"))
    yield DemoStep("migrate", migrated)
    if not migrated.failed:
        yield DemoStep("cutover", runs.run(RunRequest(command="cutover")))
