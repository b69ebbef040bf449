"""What a cut-over or a roll back would change, table by table, read now without changing anything.

The wizard's confirmation shows it: the steps the pipeline takes for each table, and what the table's
governance adapter (:func:`icebridge.governance.governance_for`) would do at each of its steps, in the
adapter's own words (``none``: there are no grants to swap; ``unity``: the grants it would carry).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from icebridge.errors import IceBridgeError, NotFoundError
from icebridge.governance import adapter_name_for, governance_for
from icebridge.model import TableRef

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.governance import Action
    from icebridge.store import TaskRow


class CutoverPreviewRequest(BaseModel):
    """The tables a cut-over or a roll back is about to be started for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Literal["cutover", "rollback"]
    tables: list[str] = Field(min_length=1, max_length=500, description="Source table names, as the tasks list them.")


class TableChanges(BaseModel):
    """What the command would change for one table."""

    model_config = ConfigDict(frozen=True)

    source: str
    destination: str
    governance: str = Field(description="The governance adapter the table uses (none, unity, ...).")
    changes: list[str] = Field(description="What happens, in order, one line each.")
    governance_error: str | None = Field(default=None, description="Why the adapter's steps could not be read now.")


class CutoverPreview(BaseModel):
    """What a cut-over or a roll back of the chosen tables would change."""

    model_config = ConfigDict(frozen=True)

    command: str
    tables: list[TableChanges]


class CutoverPreviewService:
    """Describes a cut-over or a roll back before it starts: reads the store, the configuration and the
    governance adapters' state; writes nothing."""

    def __init__(self, app: AppContext) -> None:
        self.app = app

    def preview(self, request: CutoverPreviewRequest) -> CutoverPreview:
        """Each chosen table's changes (NotFoundError naming the tables that have no task)."""
        tasks = {t.source: t for t in self.app.store.list_tasks()}
        missing = [name for name in request.tables if name not in tasks]
        if missing:
            raise NotFoundError(
                f"no task for {', '.join(missing)} in the state store; GET /api/v1/tasks lists the tables"
            )
        return CutoverPreview(
            command=request.command, tables=[self._table(request.command, tasks[name]) for name in request.tables]
        )

    def _table(self, command: str, task: TaskRow) -> TableChanges:
        source, destination = TableRef.parse(task.source), TableRef.parse(task.destination)
        name = adapter_name_for(self.app.config, source, destination)
        actions: tuple[Action, Action] = ("freeze", "swap") if command == "cutover" else ("unswap", "unfreeze")
        error = None
        try:
            adapter = governance_for(self.app, source, destination)
            first, second = (adapter.describe(action, source, destination) for action in actions)
        except IceBridgeError as exc:
            error = self.app.config.redact(str(exc))
            first = second = f"cannot be read now: {error}"
        if command == "cutover":
            quiet = self.app.config.cutover.quiet_seconds
            changes = [
                f"Writers ({name} governance): {first}.",
                f"Quiet period: no source snapshot may arrive for {quiet:g} s, or the cut-over is refused and retried."
                if quiet
                else "Quiet period: none (cutover.quiet_seconds is 0).",
                "The source's commits since the copy are synced, then the table is validated again; "
                "a failure stops the cut-over here.",
                f"Grants ({name} governance): {second}.",
                f"The entry {task.source} is dropped from its catalog (no file is deleted) and its metadata "
                f"location archived for a roll back; readers then read {task.destination}.",
            ]
        else:
            archived = task.archived_metadata_location or "its archived metadata location"
            changes = [
                f"Refused if {task.destination} received commits after the cut-over.",
                f"{task.source} is registered again in its catalog from {archived}.",
                f"Grants ({name} governance): {first}.",
                f"Writers ({name} governance): {second}.",
                f"{task.destination} stays as it is; nothing is deleted.",
            ]
        return TableChanges(
            source=task.source, destination=task.destination, governance=name, changes=changes, governance_error=error
        )
