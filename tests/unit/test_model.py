"""Table references round-trip through their text form, whatever the names hold."""

from __future__ import annotations

import pytest

from icebridge.model import TableRef


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        (TableRef("cat", ("sales",), "orders"), "cat.sales.orders"),
        (TableRef("cat", ("a", "b"), "t"), "cat.a.b.t"),
        (TableRef("cat", ("sales",), "daily.v2"), "cat.sales.`daily.v2`"),
        (TableRef("cat", ("sales",), "`odd"), "cat.sales.```odd`"),
        (TableRef("cat", ("sales",), "a`b"), "cat.sales.a`b"),
        (TableRef("cat", ("sales",), "ünï cødé"), "cat.sales.ünï cødé"),
    ],
)
def test_text_form_round_trips(ref: TableRef, text: str) -> None:
    assert str(ref) == text
    assert TableRef.parse(text) == ref


@pytest.mark.parametrize("text", ["cat.sales", "cat..t", "cat.`sales.t", "cat.`a`x.t", ""])
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="catalog.namespace.table"):
        TableRef.parse(text)
