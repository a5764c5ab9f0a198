"""The contract fuzzed harder than tests/api does: many more schemathesis examples per
operation against the real server on PostgreSQL. No 5xx and no answer that contradicts the
OpenAPI document, whatever is sent."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.api.conftest import Api, _open_api
from tests.api.test_schemathesis import CHECKS, schema
from tests.reliability.report import record

EXAMPLES_PER_OPERATION = 100  # x 40 operations; tests/api runs 25 on each backend
calls: list[int] = []


@pytest.fixture(scope="module")
def pg_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from _open_api("postgres", tmp_path_factory.mktemp("deep-contract"))


@pytest.fixture(scope="module")
def member_of(pg_api: Api) -> str:
    return pg_api.join()["member_id"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
@pytest.mark.slow
def test_contract_deeply(case, pg_api: Api, member_of: str) -> None:
    params = case.path_parameters or {}
    if params and zlib.crc32(repr((case.query, case.body, params)).encode()) % 2:
        if "code" in params:
            params["code"] = pg_api.tree.base_a
        if "member_id" in params:
            params["member_id"] = member_of
    headers = {"Authorization": f"Bearer {pg_api.tokens['admin_pii']}"}
    if case.method.upper() == "POST" and not (case.headers or {}).get("Idempotency-Key"):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    calls.append(1)
    case.call_and_validate(base_url=pg_api.server.url, headers=headers, checks=CHECKS)


@pytest.mark.slow
def test_deep_contract_figures(pg_api: Api) -> None:
    metrics = pg_api.client.get("/metrics").text
    errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("ledger_http_requests_total") and 'status="5' in line
    ]
    assert not errors, errors
    record(
        "schemathesis",
        {"cases": len(calls), "examples_per_operation": EXAMPLES_PER_OPERATION, "server_errors": 0},
    )
