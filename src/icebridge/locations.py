"""Storage locations compared as folders: one spelling per place, and whether two places overlap.

PyIceberg writes ``file:///a/b``, Spark ``file:/a/b``, users ``/a/b``; S3 has ``s3://``, ``s3a://`` and
``s3n://``. Two tables whose folders are the same, or one inside the other, must never both be
written by IceBridge: a cleanup or a copy in one would reach the other's files.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "abfss": "abfs", "wasbs": "wasb"}


def normalize(location: str) -> str:
    """One spelling of a storage folder: scheme aliases folded, ``file:`` dropped, no trailing slash."""
    text = location.strip()
    if "://" not in text and not text.startswith("file:"):
        return posixpath.normpath(text) if text else text
    parts = urlsplit(text)
    scheme = _SCHEME_ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme == "file":
        return posixpath.normpath("/" + parts.path.lstrip("/")) if parts.path else "/"
    path = posixpath.normpath("/" + parts.path.lstrip("/")) if parts.path else ""
    return f"{scheme}://{parts.netloc}{path.rstrip('/') if path != '/' else ''}"


def contains(outer: str, inner: str) -> bool:
    """Whether ``inner`` is ``outer`` or a place inside it (both normalised first)."""
    a, b = normalize(outer), normalize(inner)
    if a == b:
        return True
    return b.startswith(a.rstrip("/") + "/")


def overlap(a: str, b: str) -> bool:
    """The same folder, or one inside the other."""
    return contains(a, b) or contains(b, a)


@dataclass(frozen=True)
class Place:
    """A folder that belongs to something: a source table, a catalog's warehouse."""

    location: str
    owner: str


def first_overlap(location: str, places: Iterable[Place]) -> Place | None:
    """The first of ``places`` that overlaps ``location``, or None."""
    return next((p for p in places if overlap(location, p.location)), None)
