"""The sync lag of every copied table (or those matching a glob), read now: what the wizard's sync step shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from icebridge.app.lag import LagService, TableLag
from icebridge.selection import check_pattern, matches

if TYPE_CHECKING:
    from icebridge.context import AppContext


class LagRequest(BaseModel):
    """Which copied tables to read the lag of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: str | None = Field(default=None, max_length=1024, description="Only tables matching this glob.")
    limit: int = Field(default=500, ge=1, le=10_000, description="At most this many tables (each costs a round trip).")


class LagReport(BaseModel):
    """The lag of each copied table, by source."""

    model_config = ConfigDict(frozen=True)

    tables: list[TableLag]
    more: int = Field(description="Copied tables left out by the limit.")


class LagReportService:
    """Reads the lag of the copied tables a request chooses (one catalog round trip per table)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def report(self, request: LagRequest) -> LagReport:
        """The lag of the copied tables matching ``request.tables``, at most ``request.limit`` of them."""
        check_pattern(request.tables)
        lag = LagService(self.app)
        chosen = [t for t in lag.candidates() if matches(t.source, request.tables)]
        return LagReport(tables=lag.lag(chosen[: request.limit]), more=max(0, len(chosen) - request.limit))
