"""Sizes and durations in words, one unit system throughout (binary: KiB, MiB, GiB)."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: int | float | None) -> str:
    """``512 B``, ``3.2 MiB``, ``1.0 TiB``."""
    size = float(n or 0)
    for unit in _UNITS:
        if size < 1024 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float | None) -> str:
    """``under a second``, ``42 s``, ``17 min``, ``3.5 h``; ``?`` when unknown."""
    if seconds is None:
        return "? (no throughput measured yet)"
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
