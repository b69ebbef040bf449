"""The managed storage location: where a destination catalog would write new tables, and whether it can.

The check is pre-flight's own storage probe: a small object is written where the tables will live,
read back and deleted again; nothing else is written, and no table or namespace is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import CatalogUnreachableError, NotFoundError
from icebridge.model import PlanItem, Severity, TableRef

if TYPE_CHECKING:
    from icebridge.context import AppContext

PROBE_TABLE = "icebridge_storage_check"


class StorageCheckRequest(BaseModel):
    """The destination catalog (and namespace) whose storage to check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog: str = Field(max_length=255)
    namespace: str | None = Field(
        default=None, max_length=1024, description="A namespace whose 'location' to probe (else the warehouse)."
    )


class StorageCheck(BaseModel):
    """Where new tables would be written, and whether a probe could be written, read back and deleted there."""

    model_config = ConfigDict(frozen=True)

    catalog: str
    namespace: str | None
    location: str | None = Field(description="The folder probed (None: the catalog's server chooses it).")
    writable: bool | None = Field(description="None: nothing to probe (the server places tables).")
    message: str
    fix: str = ""


class StorageCheckService:
    """Probes a destination catalog's storage as pre-flight does."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def check(self, request: StorageCheckRequest) -> StorageCheck:
        """Probe the storage of ``request.catalog`` (NotFoundError for a catalog not configured)."""
        from icebridge.engines.local import storage_probe, storage_root

        config = self.app.config
        if request.catalog not in config.catalogs:
            known = ", ".join(sorted(config.catalogs))
            raise NotFoundError(f"no catalog named {request.catalog!r} in the configuration (configured: {known})")
        namespace = tuple(p for p in (request.namespace or "").split(".") if p) or ("icebridge_storage_check",)
        dest = TableRef(request.catalog, namespace, PROBE_TABLE)
        item = PlanItem(source=dest, destination=dest, strategy="file-copy", reason="storage check")
        try:
            root = storage_root(self.app.catalogs, dest)
            findings = storage_probe([item], self.app.catalogs)
        except CatalogUnreachableError as exc:
            return StorageCheck(
                catalog=request.catalog,
                namespace=request.namespace,
                location=None,
                writable=False,
                message=config.redact(str(exc)),
                fix=f"check catalogs.{request.catalog} in {config.path}",
            )
        blocker = next((f for f in findings if f.severity is Severity.BLOCKER), None)
        other = next(iter(findings), None)
        if blocker is not None:
            return StorageCheck(
                catalog=request.catalog,
                namespace=request.namespace,
                location=root,
                writable=False,
                message=config.redact(blocker.message),
                fix=blocker.fix,
            )
        if root is None:
            return StorageCheck(
                catalog=request.catalog,
                namespace=request.namespace,
                location=None,
                writable=None,
                message=other.message if other else "the catalog's server chooses where tables go",
                fix=other.fix if other else "",
            )
        return StorageCheck(
            catalog=request.catalog,
            namespace=request.namespace,
            location=root,
            writable=True,
            message=f"wrote, read back and deleted a probe under {root}",
        )
