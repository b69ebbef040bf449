"""The comparator registry: every validation level's comparators, cheapest first.

:func:`icebridge.phases.validate.run` walks :data:`COMPARATORS` in level order (comparators of one
level in the order listed here) and returns their results in that order. A new comparator is a module
in this package (a :class:`~icebridge.validation.comparators.base.Comparator` subclass) and one line
below; its place in the order comes from its ``level``.
"""

from __future__ import annotations

from icebridge.validation.comparators.base import Comparator
from icebridge.validation.comparators.digest import ContentDigest
from icebridge.validation.comparators.drilldown import DrillDown
from icebridge.validation.comparators.identity import FileIdentity
from icebridge.validation.comparators.metadata import MetadataFiles, MetadataPartitions
from icebridge.validation.comparators.structure import Structure

__all__ = ["COMPARATORS"]

COMPARATORS: tuple[Comparator, ...] = (
    Structure(),
    MetadataPartitions(),
    MetadataFiles(),
    FileIdentity(),
    ContentDigest(),
    DrillDown(),
)
