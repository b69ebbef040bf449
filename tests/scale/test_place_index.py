"""The plan's location check asks an index of source folders: the same answers as comparing with each one."""

from __future__ import annotations

import random

from icebridge.locations import Place, PlaceIndex, first_overlap

SPELLINGS = ["file:///w", "file:/w", "/w", "s3://lake", "s3a://lake", "gs://b"]


def _location(rng: random.Random) -> str:
    base = rng.choice(SPELLINGS)
    parts = [rng.choice(["a", "b", "ab", "a.b", "c"]) for _ in range(rng.randint(0, 3))]
    tail = "/" if rng.random() < 0.2 else ""
    return "/".join([base, *parts]) + tail


def test_the_index_answers_as_the_pairwise_check() -> None:
    rng = random.Random(7)
    for _ in range(300):
        places = [Place(_location(rng), f"p{i}") for i in range(rng.randint(0, 12))]
        index = PlaceIndex(places)
        for _ in range(20):
            location = _location(rng)
            assert index.first_overlap(location) == first_overlap(location, places), (location, places)


def test_a_sibling_with_a_common_prefix_is_no_overlap() -> None:
    index = PlaceIndex([Place("s3://lake/shop/events", "source table shop.events")])
    assert index.first_overlap("s3://lake/shop/events_copy") is None
    assert index.first_overlap("s3a://lake/shop/events/data") is not None
    assert index.first_overlap("s3://lake/shop") is not None
    assert index.first_overlap("s3://other/shop/events") is None
