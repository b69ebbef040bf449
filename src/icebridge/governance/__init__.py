"""Governance: who may read and write what, checked before a migration and carried over at cut-over.

One interface, :class:`Governance`, with one adapter per kind of catalog: ``none`` for open
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

from icebridge.errors import ConfigError, GovernanceError

if TYPE_CHECKING:
    from icebridge.config import Config
    from icebridge.context import AppContext
    from icebridge.model import TableRef

Action = Literal["freeze", "unfreeze", "swap", "unswap"]

# name -> (module, class); each adapter's class is built as ``cls(app)``.
ADAPTERS: dict[str, tuple[str, str]] = {
    "none": ("icebridge.governance.none", "NoGovernance"),
}

__all__ = [
    "ADAPTERS",
    "Governance",
    "GovernanceError",
    "GovernanceStep",
    "adapter_name_for",
    "adapter_names",
    "governance_for",
]


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
