"""Audit trust through real HTTP: the server seals by itself and at every month close, and
GET /v1/audit/verification is for deployment-wide tokens, answered per position."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.tokens import Tokens
from tests.api.conftest import BACKENDS, Api, ServerThread, Tree, found_tree, mint_tokens
from tests.conftest import Backend
from tests.projections.test_audit import Raw

TIMEOUT_S = 30.0


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A deployment of its own per test (these tests count seals). Its first event is stored
    before the server starts, so that the server's sealer finds it on its first look (it
    looks again only a minute later)."""
    backend = Backend(request.param, tmp_path)
    tokens = Tokens(backend.open())
    admin = tokens.mint(role="admin")[1]
    server = ServerThread(backend.settings).start()
    tree = Tree()
    client = httpx.Client(base_url=server.url, timeout=120)
    api = Api(client, {"admin": admin}, tree, backend, server)
    try:
        found_tree(api)
        api.tokens |= mint_tokens(tokens, tree)
        yield api
    finally:
        client.close()
        server.stop()
        backend.close()


def seals(api: Api) -> list[dict]:
    response = api.get("/v1/audit/seals", token="auditor")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def eventually_sealed(api: Api) -> list[dict]:
    deadline = time.monotonic() + TIMEOUT_S
    while not (found := seals(api)):
        assert time.monotonic() < deadline, f"no seal within {TIMEOUT_S:.0f}s"
        time.sleep(0.05)
    return found


def test_a_month_close_is_sealed(api: Api) -> None:
    code = api.tree.base_b
    eventually_sealed(api)  # the server's own first seal: from here it is not due for an hour
    before = len(seals(api))
    dues = api.post(
        "/v1/funds/dues",
        {
            "organization_code": code,
            "period": "2024-01",
            "amount": "10.00",
            "received_on": "2024-01-20",
        },
    )
    assert dues.status_code == 201, dues.text
    closed = api.post(
        f"/v1/organizations/{code}/period-closes", {"period": "2024-01"}, key="close-2024-01"
    )
    assert closed.status_code == 201, closed.text
    after = seals(api)
    assert len(after) == before + 1
    assert after[-1]["position"] >= closed.json()["position"] > dues.json()["position"]
    # A replayed close stored nothing new, and seals nothing new.
    replay = api.post(
        f"/v1/organizations/{code}/period-closes", {"period": "2024-01"}, key="close-2024-01"
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(seals(api)) == before + 1


def test_the_server_seals_by_itself(api: Api) -> None:
    sealed = eventually_sealed(api)  # events were written (the tree), nobody asked for a seal
    assert sealed[0]["position"] >= 1


def test_verification_is_for_deployment_wide_tokens_and_cached_per_position(api: Api) -> None:
    eventually_sealed(api)
    assert api.post("/v1/audit/seals").status_code == 201  # through the head
    assert api.get("/v1/audit/verification", token="east_auditor").status_code == 403
    assert api.get("/v1/audit/verification", token="west_auditor").status_code == 403
    first = api.get("/v1/audit/verification", token="auditor").json()
    assert first["ok"] is True and first["sealed_through"] == first["verified_through"] > 0
    again = api.get("/v1/audit/verification", token="auditor").json()
    assert first["cached"] is False and again["cached"] is True
    assert {k: v for k, v in again.items() if k != "cached"} == {
        k: v for k, v in first.items() if k != "cached"
    }
    # Tampering in place writes no event: the cached answer stands until the next one.
    raw = Raw(api.backend)
    try:
        target = raw.positions()[2]
        raw.flip_byte(target, 20)
    finally:
        raw.close()
    assert api.get("/v1/audit/verification", token="auditor").json()["cached"] is True
    Tokens(api.backend.open()).mint(role="clerk")  # any new event
    fresh = api.get("/v1/audit/verification", token="auditor").json()
    assert fresh["cached"] is False and fresh["ok"] is False
    assert fresh["first_bad_position"] == target
