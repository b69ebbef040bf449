"""``register`` over real catalogs: an Iceberg REST destination that offers register takes it; Unity Catalog's
managed destination cannot register a metadata file, so plan, preflight and migrate refuse and create nothing."""

from __future__ import annotations

from pathlib import Path

import yaml
from pyiceberg.catalog import load_catalog

from tests.catalogs.conftest import Glue, RestCatalogs, glue, rest, rest_server  # noqa: F401  (the fixtures)
from tests.catalogs.test_flows import make
from tests.integration import estate
from tests.integration.test_behaviour import rows


def _register_everything(config: Path) -> None:
    body = yaml.safe_load(config.read_text())
    body["mappings"] = [{"source": "foreign.shop.*", "target": "managed.shop", "strategy": "register"}]
    config.write_text(yaml.safe_dump(body, sort_keys=False))


def test_an_iceberg_rest_destination_registers_the_source_files(tmp_path: Path, rest: RestCatalogs) -> None:  # noqa: F811
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    est = make(tmp_path, foreign, rest.new("managed"))
    _register_everything(est.config)
    code, report = est.cli_json("migrate", "--tables", "foreign.shop.events")
    assert code == 0, report
    source = est.foreign().load_table(("shop", "events"))
    destination = load_catalog("managed", **est.managed_props).load_table(("shop", "events"))
    assert rows(destination) == rows(source)
    assert {t.file.file_path for t in destination.scan().plan_files()} == {
        t.file.file_path for t in source.scan().plan_files()
    }
    code, checked = est.cli_json("validate", "--tables", "foreign.shop.events")
    assert code == 0, checked


def test_a_unity_managed_destination_is_refused_before_anything_is_created(
    tmp_path: Path,
    rest: RestCatalogs,  # noqa: F811
) -> None:
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    est = make(tmp_path, foreign, rest.new("main", flavor="unity"))
    _register_everything(est.config)
    code, plan = est.cli_json("plan")
    assert code == 1  # blocked
    for table in plan["tables"]:
        [refused] = [f for f in table["findings"] if f["code"] == "register-unsupported"]
        assert refused["severity"] == "blocker" and "cannot register a metadata file" in refused["message"]
        assert table["blocked"]
    code, preflight = est.cli_json("preflight")
    assert "register-unsupported" in {f["code"] for f in preflight["findings"] if f["severity"] == "blocker"}
    code, out = est.cli("migrate")
    assert code != 0 and "Traceback" not in out
    assert est.managed().list_namespaces() == []  # nothing was created in the destination


def test_a_glue_destination_registers_the_source_files(tmp_path: Path, glue: Glue) -> None:  # noqa: F811
    foreign = estate.catalog_props("sqlite", tmp_path, "foreign")
    est = make(tmp_path, foreign, glue.props(glue.bucket("glue-register")))
    _register_everything(est.config)
    code, report = est.cli_json("migrate", "--tables", "foreign.shop.regions")
    assert code == 0, report
    source = est.foreign().load_table(("shop", "regions"))
    destination = est.managed().load_table(("shop", "regions"))
    assert rows(destination) == rows(source)
    assert destination.metadata.location.startswith("s3://glue-register/")
    # on S3 only the destination's metadata; the data stays where the source has it
    assert glue.objects("glue-register") and all("/metadata/" in key for key in glue.objects("glue-register"))
    assert {t.file.file_path for t in destination.scan().plan_files()} == {
        t.file.file_path for t in source.scan().plan_files()
    }
