"""Planning many tasks in one transaction reads the existing tasks once; the answers must be those of
planning them one by one: collisions refused, re-plans applied, a destination freed by a re-plan reusable."""

from __future__ import annotations

from pathlib import Path

import pytest

from icebridge.errors import StateError
from icebridge.store import open_store


def test_bulk_plan_answers_as_one_by_one(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/state.db")
    try:
        first = store.plan_tasks([("c.a", "m.x", "file-copy", "r"), ("c.b", "m.y", "file-copy", "r")])
        assert [(t.source, t.destination, t.version) for t in first] == [("c.a", "m.x", 1), ("c.b", "m.y", 1)]
        assert all(t.id for t in first)

        # a swap: a's new destination is still b's when a is planned
        with pytest.raises(StateError, match="c.a and c.b both target m.y"):
            store.plan_tasks([("c.a", "m.y", "file-copy", "r"), ("c.b", "m.x", "file-copy", "r")])
        assert {t.source: t.destination for t in store.list_tasks()} == {"c.a": "m.x", "c.b": "m.y"}

        # a moves away first, so b may take the destination a just left, in the same transaction
        moved = store.plan_tasks([("c.a", "m.z", "rewrite", "r2"), ("c.b", "m.x", "file-copy", "r")])
        assert [(t.destination, t.strategy, t.version) for t in moved] == [
            ("m.z", "rewrite", 2),
            ("m.x", "file-copy", 2),
        ]

        # two new sources onto one destination within one call
        with pytest.raises(StateError, match="c.d and c.c both target m.w"):
            store.plan_tasks([("c.c", "m.w", "file-copy", "r"), ("c.d", "m.w", "file-copy", "r")])
        assert {t.source for t in store.list_tasks()} == {"c.a", "c.b"}

        # unchanged items keep their version
        again = store.plan_tasks([("c.a", "m.z", "rewrite", "r2"), ("c.b", "m.x", "file-copy", "r")])
        assert [t.version for t in again] == [2, 2]
    finally:
        store.close()
