"""Catalog capabilities, detected per catalog: SQL, REST (Iceberg's contract and Unity Catalog's) and Glue."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pyiceberg.catalog import load_catalog

from icebridge.catalogs import CatalogCapabilities, Catalogs
from icebridge.config import load_config
from icebridge.errors import CatalogUnreachableError
from tests.catalogs.conftest import Glue, RestCatalogs
from tests.integration import estate


def catalogs_for(root: Path, props: dict[str, str]) -> Catalogs:
    """IceBridge's catalogs for an icebridge.yaml whose foreign catalog has ``props``."""
    managed = estate.catalog_props("sqlite", root, "managed")
    return Catalogs(load_config(estate.write_config(root, f"sqlite:///{root}/state.db", props, managed)))


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def check_measured(catalogs: Catalogs, detected: CatalogCapabilities) -> None:
    """The probe measures a rate, changes nothing else, and leaves no namespace behind."""
    catalog = catalogs.get("foreign")
    namespaces = catalog.list_namespaces()
    measured = catalogs.capabilities("foreign", measure_commits=True)
    assert measured.commits_per_second is not None and measured.commits_per_second > 0
    assert dataclasses.replace(measured, commits_per_second=None) == detected
    assert catalog.list_namespaces() == namespaces
    assert catalogs.capabilities("foreign").commits_per_second is None  # measured only when asked


def test_sql_catalog(tmp_path: Path) -> None:
    props = estate.catalog_props("sqlite", tmp_path, "foreign")
    catalogs = catalogs_for(tmp_path, props)
    detected = catalogs.capabilities("foreign")
    assert detected == CatalogCapabilities(
        catalog="foreign",
        kind="sql",
        register=True,
        purge_on_drop=True,
        views=False,  # PyIceberg's SQL catalog has no views
        max_namespace_depth=None,
        vends_credentials=False,
    )
    check_measured(catalogs, detected)
    assert files_under(tmp_path / "foreign-warehouse") == []  # the scratch table was purged with its metadata


def test_iceberg_rest_catalog(tmp_path: Path, rest: RestCatalogs) -> None:
    catalogs = catalogs_for(tmp_path, rest.new("caps"))
    detected = catalogs.capabilities("foreign")
    assert detected == CatalogCapabilities(
        catalog="foreign",
        kind="rest",
        register=True,
        purge_on_drop=True,
        views=True,
        max_namespace_depth=None,
        vends_credentials=False,
    )
    check_measured(catalogs, detected)
    assert files_under(rest.root) == []


def test_unity_catalog_rest_endpoint(tmp_path: Path, rest: RestCatalogs) -> None:
    props = rest.new("uc", flavor="unity", vended={"s3.session-token": "t"})
    catalogs = catalogs_for(tmp_path, props)
    detected = catalogs.capabilities("foreign")
    assert detected == CatalogCapabilities(
        catalog="foreign",
        kind="unity",
        register=False,  # Unity Catalog does not register metadata files
        purge_on_drop=True,
        views=False,
        max_namespace_depth=1,  # namespaces are UC schemas
        vends_credentials=True,
    )
    assert not catalogs.supports_register("foreign")
    check_measured(catalogs, detected)


def test_commit_probe_on_a_read_only_foreign_catalog_fails_clearly(tmp_path: Path, rest: RestCatalogs) -> None:
    owner = rest.owner("fed")
    owner.create_namespace("sales")
    props = rest.new("fed", flavor="unity", read_only=True)
    catalogs = catalogs_for(tmp_path, props)
    assert catalogs.capabilities("foreign").kind == "unity"
    with pytest.raises(CatalogUnreachableError, match=r"catalogs\.foreign: the commit-rate probe failed .*read-only"):
        catalogs.capabilities("foreign", measure_commits=True)
    assert load_catalog("c", **props).list_namespaces() == [("sales",)]


def test_glue_catalog(tmp_path: Path, glue: Glue) -> None:
    catalogs = catalogs_for(tmp_path, glue.props(glue.bucket("glue-caps")))
    detected = catalogs.capabilities("foreign")
    assert detected == CatalogCapabilities(
        catalog="foreign",
        kind="glue",
        register=True,
        purge_on_drop=True,
        views=False,
        max_namespace_depth=1,  # Glue databases do not nest
        vends_credentials=False,
    )
    check_measured(catalogs, detected)
    # purged with its metadata; only empty folders remain (Arrow marks one when it deletes a folder's last file)
    assert [key for key in glue.objects("glue-caps") if not key.endswith("/")] == []
