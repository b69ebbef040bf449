"""Governance: who may read and write what, checked before a migration and carried over at cut-over.

One interface, :class:`Governance` (the four steps, and :meth:`~Governance.describe`: what a step would
do, read without changing anything, for a confirmation), with one adapter per kind of catalog: ``none`` for open
catalogs (nothing to freeze or swap, and every step says so) and ``unity`` for Unity Catalog (write
privileges revoked on the source to freeze it; grants carried from source to destination at the
swap, read back to verify). Cut-over and rollback call the adapter that :func:`governance_for`
chooses; each step returns a :class:`GovernanceStep` (what was read before, what was read back
after) that cut-over records and the audit log shows, and raises :class:`GovernanceError` with the
reason when it cannot be done.

Adapters are named in a registry of lazy loaders (``ADAPTERS``), so the configuration is checked
against the names without importing the Databricks SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from icebridge.errors import ConfigError, GovernanceError, IceBridgeError
from icebridge.model import Finding, Severity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from icebridge.config import Config
    from icebridge.context import AppContext
    from icebridge.model import PlanItem, TableRef

Action = Literal["freeze", "unfreeze", "swap", "unswap"]

# name -> (module, class); each adapter's class is built as ``cls(app)``.
ADAPTERS: dict[str, tuple[str, str]] = {
    "none": ("icebridge.governance.none", "NoGovernance"),
    "unity": ("icebridge.governance.unity", "UnityGovernance"),
}

__all__ = [
    "ADAPTERS",
    "Governance",
    "GovernanceError",
    "GovernanceStep",
    "adapter_name_for",
    "adapter_names",
    "governance_for",
    "last_step",
    "preflight",
    "record",
]

STEP_KIND = "governance-{action}"  # the event log's kind of a recorded step


@dataclass(frozen=True)
class GovernanceStep:
    """What one step did, for the cut-over record and the audit log (JSON-friendly via ``asdict``)."""

    adapter: str  # "none" | "unity"
    action: str  # "freeze" | "unfreeze" | "swap" | "unswap"
    before: dict[str, Any]  # e.g. {"grants": [...]} as read before the step
    after: dict[str, Any]  # as read back after it
    message: str  # one line for a person

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GovernanceStep:
        """A step back from its recorded form (``dataclasses.asdict``); a malformed record is an error."""
        try:
            return cls(
                adapter=str(data["adapter"]),
                action=str(data["action"]),
                before=dict(data.get("before") or {}),
                after=dict(data.get("after") or {}),
                message=str(data.get("message") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GovernanceError(f"a recorded governance step is malformed ({exc}): {data!r}") from exc


class Governance(Protocol):
    """Freeze writers on a source and swap its grants onto the destination; each step undoable from its record."""

    name: str

    def freeze(self, source: TableRef) -> GovernanceStep:
        """Stop writers on the source (unity: revoke write privileges; none: nothing, and says so)."""
        ...

    def unfreeze(self, source: TableRef, done: GovernanceStep) -> GovernanceStep:
        """Undo :meth:`freeze` from its record."""
        ...

    def swap(self, source: TableRef, destination: TableRef) -> GovernanceStep:
        """Grant on the destination what the source had, revoke it on the source, read both back."""
        ...

    def unswap(self, source: TableRef, destination: TableRef, done: GovernanceStep) -> GovernanceStep:
        """Undo :meth:`swap` from its record."""
        ...

    def describe(self, action: Action, source: TableRef, destination: TableRef) -> str:
        """One line for a person: what ``action`` would do to this table now, read without changing anything
        (the undoing actions from the table's recorded steps)."""
        ...


def adapter_names() -> list[str]:
    """Every governance adapter's name (no adapter is imported)."""
    return list(ADAPTERS)


def adapter_name_for(config: Config, source: TableRef, destination: TableRef) -> str:
    """The adapter a table uses: its mapping rule's ``governance``, else ``governance.catalogs`` of its
    source catalog, else of its destination catalog, else ``none``."""
    rule = config.rule_for(source)
    if rule is not None and rule.governance:
        return rule.governance
    by_catalog = config.governance.catalogs
    return by_catalog.get(source.catalog) or by_catalog.get(destination.catalog) or "none"


def governance_for(app: AppContext, source: TableRef, destination: TableRef) -> Governance:
    """The governance adapter for one table (see :func:`adapter_name_for`), built for this process."""
    name = adapter_name_for(app.config, source, destination)
    if name not in ADAPTERS:
        raise ConfigError(
            f"{app.config.path}: governance adapter {name!r} is unknown; known adapters: {', '.join(ADAPTERS)}"
        )
    module, cls = ADAPTERS[name]
    adapter: Governance = getattr(importlib.import_module(module), cls)(app)
    return adapter


def preflight(app: AppContext, items: Sequence[PlanItem]) -> list[Finding]:
    """What would stop each table's governance steps at cut-over, found now; never raises.

    An adapter that cannot be built (its settings are missing or wrong) is a blocker; an adapter with
    checks of its own (``preflight(source, destination)``) adds its findings.
    """
    findings: list[Finding] = []
    for item in items:
        if item.destination is None:
            continue
        table = str(item.source)
        try:
            adapter = governance_for(app, item.source, item.destination)
            check = getattr(adapter, "preflight", None)
            if check is not None:
                findings.extend(check(item.source, item.destination))
        except IceBridgeError as exc:
            name = adapter_name_for(app.config, item.source, item.destination)
            findings.append(
                Finding(
                    table,
                    Severity.BLOCKER,
                    "governance-unavailable",
                    f"the {name} governance adapter cannot run for this table: {app.config.redact(str(exc))}",
                    "fix the adapter's settings, or choose another with 'governance' in the mapping rule",
                )
            )
    return findings


def record(app: AppContext, source: TableRef, step: GovernanceStep) -> None:
    """Keep ``step`` in the event log as an entry of the source's table (its grants before and after are
    then the audit entry's), stamped with the run that holds the table."""
    import dataclasses

    from icebridge.events import Note

    task = app.store.get_task(str(source))
    app.bus.publish(
        Note(
            name=STEP_KIND.format(action=step.action),
            text=step.message,
            details=dataclasses.asdict(step),
            run_id=task.run_id if task is not None else None,
            task_id=task.id if task is not None else None,
            table=str(source),
        )
    )


def last_step(app: AppContext, source: TableRef, action: str, undone_by: str) -> GovernanceStep | None:
    """The newest recorded ``action`` step of the source's table, unless an ``undone_by`` step followed it."""
    task = app.store.get_task(str(source))
    if task is None:
        return None
    kinds = [STEP_KIND.format(action=action), STEP_KIND.format(action=undone_by)]
    rows = app.store.events(task_id=task.id, kinds=kinds, limit=1)
    if not rows or rows[-1].kind != kinds[0] or not rows[-1].data:
        return None
    return GovernanceStep.from_dict(rows[-1].data)
