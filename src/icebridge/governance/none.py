"""The ``none`` governance adapter: open catalogs, where anyone who reaches the catalog may read and write.

There is nothing to revoke and nothing to grant, so every step changes nothing and says so in its
message; cut-over, not this adapter, checks that no snapshot arrives during the quiet period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from icebridge.governance import GovernanceStep

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.governance import Action
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
        unity = [c for c in catalogs if self._is_unity(c)]
        if unity:
            names = " and ".join(repr(c) for c in unity)
            return self._step(
                "swap",
                f"no grants swapped: governance is 'none' for this table, though {names} "
                f"{'is a Unity Catalog endpoint' if len(unity) == 1 else 'are Unity Catalog endpoints'}; "
                f"set governance.catalogs.{unity[0]}: unity to carry grants at cut-over",
            )
        which = " and ".join(repr(c) for c in catalogs)
        kind = "an open catalog" if len(catalogs) == 1 else "open catalogs"
        return self._step("swap", f"no grants to swap: {which} {'is' if len(catalogs) == 1 else 'are'} {kind}")

    def _is_unity(self, catalog: str) -> bool:
        """Whether the configuration reaches ``catalog`` through Unity Catalog's Iceberg REST endpoint."""
        from icebridge.catalogs import UNITY_REST_PATH

        if self.app is None:
            return False
        uri = self.app.config.catalogs.get(catalog, {}).get("uri", "")
        return UNITY_REST_PATH in uri

    def unswap(self, source: TableRef, destination: TableRef, done: GovernanceStep) -> GovernanceStep:
        return self._step("unswap", f"nothing to undo: the swap from {source} to {destination} changed no grant")

    def describe(self, action: Action, source: TableRef, destination: TableRef) -> str:
        """What a step would do: here nothing, in the words the step itself says (no step reads anything)."""
        nothing = GovernanceStep(self.name, action, {}, {}, "")
        steps = {
            "freeze": lambda: self.freeze(source),
            "unfreeze": lambda: self.unfreeze(source, nothing),
            "swap": lambda: self.swap(source, destination),
            "unswap": lambda: self.unswap(source, destination, nothing),
        }
        return steps[action]().message
