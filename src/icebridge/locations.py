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


class PlaceIndex:
    """Many places, normalised once, asked for overlaps in time that grows with a location's depth, not with
    the number of places (a plan of 10,000 tables asks each destination against every source folder)."""

    def __init__(self, places: Iterable[Place]) -> None:
        self._places = list(places)
        self._by_key: dict[str, list[int]] = {}
        for i, place in enumerate(self._places):
            self._by_key.setdefault(normalize(place.location), []).append(i)
        self._keys = sorted(self._by_key)

    def first_overlap(self, location: str) -> Place | None:
        """The first place (in the order given) that overlaps ``location``, as :func:`first_overlap` answers."""
        import bisect

        key = normalize(location)
        hits: list[int] = []
        # places that are the location or hold it: the location itself and each of its parents
        probe = key
        while True:
            hits.extend(self._by_key.get(probe, ()))
            parent = _parent(probe)
            if parent is None or parent == probe:
                break
            probe = parent
        # places inside the location: keys that start with "location/"
        prefix = key.rstrip("/") + "/"
        start = bisect.bisect_left(self._keys, prefix)
        for inner in self._keys[start:]:
            if not inner.startswith(prefix):
                break
            hits.extend(self._by_key[inner])
        return self._places[min(hits)] if hits else None


def _parent(key: str) -> str | None:
    """The folder holding a normalised location, or None at the top (a bucket, the root)."""
    if "://" in key:
        scheme, rest = key.split("://", 1)
        if "/" not in rest:
            return None
        head, _tail = rest.rsplit("/", 1)
        return f"{scheme}://{head}"
    if key in ("", "/"):
        return None
    parent = posixpath.dirname(key)
    return parent if parent and parent != key else None
