"""Choosing tables by glob: ``--tables``, as every command and route means it."""

from __future__ import annotations

import fnmatch

from icebridge.errors import UsageError


def check_pattern(pattern: str | None) -> None:
    """An empty ``--tables`` is a mistake, never "every table"."""
    if pattern is not None and not pattern.strip():
        raise UsageError("--tables '': an empty pattern matches nothing; leave --tables out to mean every table")


def matches(name: str, pattern: str | None) -> bool:
    """Whether a table's full name (``catalog.ns.table``) or its name in the catalog matches ``pattern``."""
    if pattern is None:
        return True
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name.split(".", 1)[-1], pattern)


def select(names: list[str], pattern: str | None) -> list[str]:
    """The names that match ``pattern`` (all of them without one), in their order."""
    return [n for n in names if matches(n, pattern)]
