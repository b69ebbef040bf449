"""Tasks chosen by glob, as every command over saved tasks chooses them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from icebridge.selection import check_pattern, matches

if TYPE_CHECKING:
    from icebridge.context import AppContext
    from icebridge.store import TaskRow


def select_tasks(app: AppContext, pattern: str | None) -> list[TaskRow]:
    """The saved tasks whose source matches ``pattern`` (every task without one)."""
    check_pattern(pattern)
    return [t for t in app.store.list_tasks() if matches(t.source, pattern)]
