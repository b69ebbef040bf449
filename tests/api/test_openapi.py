"""Property-based tests over the service's own OpenAPI document (schemathesis): whatever a client sends to
any operation, the server never answers 5xx and every answer fits the schema it documents."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.conftest import TOKEN, Server, start_server
from tests.integration.test_behaviour import make_estate

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 20  # per operation and mode: enough to reach every branch of these small schemas


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server over a small migrated estate, so runs, tasks, reports and events exist to be asked for."""
    root = tmp_path_factory.mktemp("openapi")
    est = make_estate(root, {"kind": "sqlite", "state": f"sqlite:///{root}/state.db", "foreign": "", "managed": ""})
    assert est.cli("migrate")[0] == 0
    server = start_server(est.config, root / "server.log")
    yield server
    server.stop(signal.SIGTERM)
    assert "Traceback" not in server.log_text(), server.log_text()[-4000:]


def test_no_server_error_and_every_answer_fits_its_schema(live: Server) -> None:
    """Valid and invalid requests for every documented operation (examples are generated from the schema)."""
    from hypothesis import given
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    tried: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=AUTH, checks=[not_a_server_error, response_schema_conformance])

            try:
                check()
            except Unsatisfiable:
                # an operation that takes nothing (GET /api/v1/catalogs) has no invalid request to make
                assert mode is GenerationMode.NEGATIVE, operation.label
                assert not operation.path_parameters and not operation.query and not operation.body, operation.label
                continue
            tried.append(f"{operation.label} ({mode.value})")
    assert len(tried) > len(operations), tried
