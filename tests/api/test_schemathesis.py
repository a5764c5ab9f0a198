"""Property-based contract testing with schemathesis: over every operation of the OpenAPI
document, against the real server on each backend, no 5xx and no response that contradicts
the schema (status codes, content types, headers, bodies).

The document is built from the application at collection time (building it touches no
database) and the test checks that the server serves exactly that document. schemathesis's
lazy fixture loader does not work with this pytest version, hence from_dict.
"""

from __future__ import annotations

import uuid
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from storage.settings import Settings
from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 25  # ~40 operations x 2 backends: a few minutes on 2 cores
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
DOCUMENT = create_app(Settings(database_url="sqlite:///:memory:")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_served_document_is_the_tested_one(api: Api, known_member: str) -> None:
    served = api.client.get("/openapi.json").json()
    assert served == DOCUMENT
    operations = {
        (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
    }
    # Every endpoint of the contract so far (v1.1 adds more as they are built).
    assert len(operations) >= 41
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            body = operation.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                ref = body["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
                assert DOCUMENT["components"]["schemas"][ref].get("examples"), ref


@pytest.fixture(scope="module")
def known_member(api: Api) -> str:
    """A member joined before the generated requests can dissolve or close anything."""
    return api.join()["member_id"]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_contract(case, api: Api, known_member: str) -> None:
    # Random codes and ids name nothing; every other case names a real organisation or
    # member instead, so that the success paths' answers are checked against the schema too.
    params = case.path_parameters or {}
    if params and zlib.crc32(repr((case.query, case.body, params)).encode()) % 2:
        if "code" in params:
            params["code"] = api.tree.base_a
        if "member_id" in params:
            params["member_id"] = known_member
    headers = {"Authorization": f"Bearer {api.tokens['admin_pii']}"}
    if case.method.upper() == "POST" and not (case.headers or {}).get("Idempotency-Key"):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    case.call_and_validate(base_url=api.server.url, headers=headers, checks=CHECKS)


def test_contract_reached_the_ledger(api: Api) -> None:
    """The generated requests were not all refused at the door: writes succeeded too."""
    metrics = api.client.get("/metrics").text
    succeeded = [
        line
        for line in metrics.splitlines()
        if line.startswith("ledger_http_requests_total")
        and 'method="POST"' in line
        and 'status="201"' in line
    ]
    assert len(succeeded) >= 3
