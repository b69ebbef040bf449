"""Catalogs: the configured ones (secrets hidden), and whether each answers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from icebridge.config import is_secret_key
from icebridge.errors import CatalogUnreachableError, NotFoundError

if TYPE_CHECKING:
    from icebridge.context import AppContext

Role = Literal["source", "destination"]


class CatalogInfo(BaseModel):
    """One configured catalog: its type, what the mapping rules use it for, and its properties."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str | None
    roles: list[Role] = Field(description="source: a mapping rule reads from it; destination: one writes to it.")
    properties: dict[str, str] = Field(description="Its properties, secrets and passwords in URLs hidden.")


class CatalogList(BaseModel):
    """Every configured catalog, by name."""

    model_config = ConfigDict(frozen=True)

    catalogs: list[CatalogInfo]


class CatalogCheck(BaseModel):
    """Whether a catalog answered one round trip, how long it took, and why not."""

    model_config = ConfigDict(frozen=True)

    name: str
    reachable: bool
    seconds: float
    error: str | None = None


class CatalogService:
    """Shows the configured catalogs and tests their connections; changes nothing."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def list(self) -> CatalogList:
        """Every configured catalog with its roles and its properties (secrets hidden)."""
        config = self.app.config
        sources = {r.source_catalog for r in config.mappings}
        destinations = {r.target_catalog for r in config.mappings}
        catalogs = []
        for name in sorted(config.catalogs):
            props = config.catalogs[name]
            roles: list[Role] = [r for r, used in (("source", sources), ("destination", destinations)) if name in used]  # type: ignore[misc]
            shown = {k: "***" if is_secret_key(k) else config.redact(v) for k, v in sorted(props.items())}
            catalogs.append(CatalogInfo(name=name, type=props.get("type"), roles=roles, properties=shown))
        return CatalogList(catalogs=catalogs)

    def test(self, name: str) -> CatalogCheck:
        """Load catalog ``name`` and make one round trip (NotFoundError for a name not configured)."""
        if name not in self.app.config.catalogs:
            known = ", ".join(sorted(self.app.config.catalogs))
            raise NotFoundError(f"no catalog named {name!r} in the configuration (configured: {known})")
        started = time.perf_counter()
        try:
            self.app.catalogs.check_reachable(name)
        except CatalogUnreachableError as exc:
            return CatalogCheck(
                name=name,
                reachable=False,
                seconds=round(time.perf_counter() - started, 3),
                error=self.app.config.redact(str(exc)),
            )
        return CatalogCheck(name=name, reachable=True, seconds=round(time.perf_counter() - started, 3))
