"""JSON-safe renderings of table values, for validation details stored in the state store and shown in reports.

Every value a report shows must survive a JSON round trip and stay distinguishable: ``-0.0`` from
``0.0``, NaN from null, an empty string from null, bytes from text. Floats that JSON cannot carry
(NaN, infinities) become strings; bytes become ``0x``-prefixed hex; long values are shortened.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from typing import Any

__all__ = ["MAX_TEXT", "to_json"]

MAX_TEXT = 200  # characters of a string (or bytes of a binary) kept in a report


def to_json(value: Any) -> Any:
    """``value`` (as returned by Arrow's ``to_pylist``) as a JSON-serialisable value."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        # PostgreSQL's JSON types refuse the NUL character; show it escaped
        text = value.replace("\x00", "\\x00") if "\x00" in value else value
        return text[:MAX_TEXT] + f"… ({len(text)} characters)" if len(text) > MAX_TEXT else text
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = "0x" + raw[:MAX_TEXT].hex()
        return text + f"… ({len(raw)} bytes)" if len(raw) > MAX_TEXT else text
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(e, tuple) and len(e) == 2 for e in value):
            # Arrow renders a map as a list of (key, value) pairs; Iceberg maps are unordered, so sort them
            if all(isinstance(k, str) for k, _ in value) and len({k for k, _ in value}) == len(value):
                return {k: to_json(v) for k, v in sorted(value)}
            pairs = [[to_json(k), to_json(v)] for k, v in value]
            return sorted(pairs, key=lambda p: repr(p[0]))
        return [to_json(e) for e in value]
    if hasattr(value, "isoformat"):  # pandas/numpy timestamps
        return str(value.isoformat())
    return repr(value)
