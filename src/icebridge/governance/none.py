"""The ``none`` governance adapter: open catalogs, where anyone who reaches the catalog may read and write.

There is nothing to revoke and nothing to grant, so every step changes nothing and says so in its
message; cut-over, not this adapter, checks that no snapshot arrives during the quiet period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icebridge.governance import GovernanceStep

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.model import TableRef


class NoGovernance:
    """Governance of open catalogs: no privileges exist, so no step changes anything."""

    name = "none"

    def __init__(self, app: AppContext | None = None) -> None:
        self.app = app

    def _step(self, action: str, message: str) -> GovernanceStep:
        return GovernanceStep(adapter=self.name, action=action, before={}, after={}, message=message)

    def freeze(self, source: TableRef) -> GovernanceStep:
        return self._step(
            "freeze",
            f"no write privileges to revoke: catalog {source.catalog!r} is an open catalog; "
            "writers are stopped only by the quiet-period check",
        )

    def unfreeze(self, source: TableRef, done: GovernanceStep) -> GovernanceStep:
        return self._step("unfreeze", f"nothing to restore: freezing {source} revoked nothing")

    def swap(self, source: TableRef, destination: TableRef) -> GovernanceStep:
        catalogs = sorted({source.catalog, destination.catalog})
        which = " and ".join(repr(c) for c in catalogs)
        kind = "an open catalog" if len(catalogs) == 1 else "open catalogs"
        return self._step("swap", f"no grants to swap: {which} {'is' if len(catalogs) == 1 else 'are'} {kind}")

    def unswap(self, source: TableRef, destination: TableRef, done: GovernanceStep) -> GovernanceStep:
        return self._step("unswap", f"nothing to undo: the swap from {source} to {destination} changed no grant")
