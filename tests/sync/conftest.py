"""A live source for the sync tests: one foreign table that keeps receiving commits, and the CLI over it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.expressions import EqualTo
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform

from icebridge.store import Store, open_store
from tests.integration import estate
from tests.integration.test_behaviour import Estate

SOURCE = "foreign.shop.events"


@dataclass
class Live(Estate):
    """A foreign catalog with ``shop.events``, a managed one, and an icebridge.yaml between them."""

    def managed(self) -> Catalog:
        if self.managed_props.get("type") == "sql":
            return super().managed()
        return load_catalog("managed", **self.managed_props)  # a REST catalog

    def source(self) -> Table:
        return self.foreign().load_table("shop.events")

    def destination(self) -> Table:
        return self.managed().load_table("shop.events")

    def store(self) -> Store:
        return open_store(self.state_url)

    def task(self) -> Any:
        store = self.store()
        try:
            return store.get_task(SOURCE)
        finally:
            store.close()

    def events(self) -> list[Any]:
        """Every event the store logged."""
        store = self.store()
        try:
            return list(store.events())
        finally:
            store.close()

    def rewrite_config(self, **rule: Any) -> None:
        config = yaml.safe_load(self.config.read_text())
        config["mappings"] = [{"source": "foreign.*.*", "target": "managed.{namespace}", **rule}]
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))


def make_live(root: Path, state_url: str = "", managed: dict[str, str] | None = None, **rule: Any) -> Live:
    """The live source on SQLite, mapped onto a managed SQLite catalog (or the catalog of ``managed``)."""
    foreign = estate.catalog_props("sqlite", root, "foreign")
    managed = managed or estate.catalog_props("sqlite", root, "managed")
    catalog = estate.open_catalog("foreign", foreign)
    catalog.create_namespace_if_not_exists("shop")
    table = catalog.create_table(
        "shop.events",
        estate.EVENTS_SCHEMA,
        partition_spec=PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region")),
    )
    table.append(estate.events_arrow(0, 200))
    state = state_url or f"sqlite:///{root}/state.db"
    config = {
        "state": state,
        "catalogs": {"foreign": foreign, "managed": managed},
        "mappings": [{"source": "foreign.*.*", "target": "managed.{namespace}", **rule}],
        "migrate": {"concurrency": 1, "backoff_seconds": 0.05},
    }
    path = root / "icebridge.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return Live(root, path, state, foreign, managed)


@pytest.fixture
def live(tmp_path: Path) -> Live:
    return make_live(tmp_path)


def rows(table: Table, snapshot_id: int | None = None) -> list[dict[str, Any]]:
    """Every row of ``table`` (at ``snapshot_id``), sorted by id, read by PyIceberg."""
    data = table.scan(snapshot_id=snapshot_id).to_arrow()
    target = pa.schema([pa.field(f.name, f.type) for f in data.schema])
    plain = pa.Table.from_batches([b.cast(target) for b in data.to_batches()], schema=target)
    return sorted(plain.to_pylist(), key=lambda r: r["id"])


def write_commits(table: Table) -> None:
    """An append, a partition overwrite and a copy-on-write delete."""
    table.append(estate.events_arrow(1000, 50))
    table.refresh()
    table.overwrite(
        estate.events_arrow(5000, 10).filter(pa.compute.equal(pa.compute.field("region"), "eu")),
        overwrite_filter=EqualTo("region", "eu"),
    )
    table.refresh()
    table.delete("id >= 1040")
