"""api/hot_posts.py: the short way for joins and dues answers exactly as FastAPI does.

Two servers on two stores founded alike, one with the short way and one without, get the same
requests in the same order; every answer must agree (status, content type, replay header and,
for refusals, the whole problem body; for writes, everything but ids and positions). A count
of FastAPI's dependency solving shows which way each request took.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import fastapi.routing
import httpx
import pytest

import service.tokens
from tests.api.conftest import Api, _open_api
from tests.conftest import BACKENDS

# Values that differ between two stores for the same request: derived ids and positions.
VOLATILE = {"member_id", "voucher_id", "id", "position", "recorded_at"}


@pytest.fixture(scope="module", params=BACKENDS)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Api]]:
    with ExitStack() as stack:
        # A process takes the short way only for a token it verified less than REVALIDATE_S
        # ago: on a loaded machine two seconds pass between requests, and the request would
        # go the long way by chance. The servers run in this process: trust a verified token
        # for the module's length (re-verification has its own tests).
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setattr(service.tokens, "REVALIDATE_S", 3600.0)
        apis = [
            stack.enter_context(
                contextmanager(_open_api)(
                    request.param,
                    tmp_path_factory.mktemp(f"hot-{request.param}-{short}"),
                    short_path=short,
                )
            )
            for short in (True, False)
        ]
        for api in apis:  # each server verifies every token once, as in a long-running process
            for name in api.tokens:
                api.get(f"/v1/organizations/{api.tree.base_a}", token=name)
        yield apis[0], apis[1]


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times FastAPI resolved a request's dependencies (both servers together)."""
    calls = [0]
    original = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return calls


def _send(
    api: Api,
    path: str,
    body: Any,
    token: str | None,
    key: str | None,
    headers: list[tuple[str, str]] | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    sent: list[tuple[str, str]] = []
    if token is not None:
        sent.append(("Authorization", f"Bearer {api.tokens.get(token, token)}"))
    if key is not None:
        sent.append(("Idempotency-Key", key))
    sent.append(("Content-Type", content_type))
    for name, value in headers or []:  # "Bearer <token name>" names one of the api's tokens
        scheme, _, rest = value.partition(" ")
        sent.append((name, f"{scheme} {api.tokens[rest]}" if rest in api.tokens else value))
    content = raw if raw is not None else json.dumps(body).encode()
    return api.client.post(path, content=content, headers=sent)


def _comparable(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if response.status_code < 300:
        body = {k: v for k, v in body.items() if k not in VOLATILE}
    return {
        "status": response.status_code,
        "type": response.headers["content-type"],
        "replayed": response.headers.get("idempotent-replayed"),
        "body": body,
    }


def both(
    pair: tuple[Api, Api],
    path: str,
    body: Any = None,
    *,
    token: str | None = "admin",
    key: str | None = "fresh",
    **kwargs: Any,
) -> dict[str, Any]:
    key = uuid.uuid4().hex if key == "fresh" else key
    hot, plain = (_comparable(_send(api, path, body, token, key, **kwargs)) for api in pair)
    assert hot == plain
    return hot


def join_body(api: Api, **extra: Any) -> dict[str, Any]:
    return {
        "id_number": api.next_person(),
        "name": "赵敏",
        "organization_code": api.tree.base_a,
        "joined_on": "2020-05-01",
        "mobile": "13812345678",
        **extra,
    }


def joins(pair: tuple[Api, Api], **extra: Any) -> dict[str, Any]:
    """The same new person for both (each Api counts people from the same start)."""
    bodies = [join_body(api, **extra) for api in pair]
    assert bodies[0] == bodies[1]
    return bodies[0]


def test_a_join_takes_the_short_way_and_answers_alike(pair, solved) -> None:
    hot, plain = pair
    body = joins(pair)
    before = solved[0]
    response = _send(hot, "/v1/members", body, "admin", "join-short-1")
    assert response.status_code == 201, response.text
    assert solved[0] == before  # FastAPI never resolved this request's dependencies
    assert _comparable(response) == _comparable(
        _send(plain, "/v1/members", body, "admin", "join-short-1")
    )
    assert solved[0] == before + 1
    # The retry replays, the same key with another body is refused, the person can't join twice.
    assert both(pair, "/v1/members", body, key="join-short-1")["replayed"] == "true"
    assert (
        both(pair, "/v1/members", {**body, "name": "赵敏敏"}, key="join-short-1")["status"] == 422
    )
    assert both(pair, "/v1/members", body)["status"] == 409
    # Counted under the route's template, as FastAPI's routing would have it.
    metrics = hot.get("/metrics").text
    assert 'ledger_http_requests_total{method="POST",route="/v1/members",status="201"}' in metrics
    counters = {
        line.split()[0]: int(float(line.split()[1]))
        for line in metrics.splitlines()
        if line.startswith("ledger_writer_")
    }
    assert counters["ledger_writer_batches_total"] >= 1
    assert counters["ledger_writer_commands_total"] >= counters["ledger_writer_batches_total"]
    assert "ledger_writer_decided_again_total" in counters
    assert "ledger_writer_commands_decided_again_total" in counters
    assert "ledger_writer_tree_reads_total" in counters
    assert "ledger_writer_snapshots_written_total" in counters
    assert counters["ledger_writer_snapshots_dropped_total"] == 0
    seconds = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith(("ledger_writer_lock_wait_seconds", "ledger_writer_turn_seconds"))
    }
    # Every batch waited for its turn and held it for its insert and commit: some time each.
    assert seconds["ledger_writer_lock_wait_seconds_total"] > 0
    assert seconds["ledger_writer_turn_seconds_total"] > 0


def test_dues_take_the_short_way_and_answer_alike(pair, solved) -> None:
    tree = pair[0].tree
    body = {
        "organization_code": tree.base_a,
        "period": "2024-03",
        "amount": "40.00",
        "received_on": "2024-03-20",
    }
    before = solved[0]
    response = _send(pair[0], "/v1/funds/dues", body, "admin", "dues-short-1")
    assert response.status_code == 201 and solved[0] == before, response.text
    assert _comparable(response) == _comparable(
        _send(pair[1], "/v1/funds/dues", body, "admin", "dues-short-1")
    )
    assert both(pair, "/v1/funds/dues", body, token="a_clerk")["status"] == 201
    assert both(pair, "/v1/funds/dues", {**body, "organization_code": tree.east})["status"] == 422
    assert both(pair, "/v1/funds/dues", {**body, "amount": "-1"})["status"] == 422
    assert both(pair, "/v1/funds/dues", {**body, "amount": 40.0})["status"] == 422
    assert both(pair, "/v1/funds/dues", {**body, "period": "2024-13"})["status"] == 422
    assert both(pair, "/v1/funds/dues", body, token="west_clerk")["status"] == 403


@pytest.mark.parametrize(
    "case",
    [
        "no token",
        "unknown token",
        "auditor",
        "out of scope",
        "no key",
        "bad key",
        "long key",
        "two keys",
        "two tokens",
        "text body",
        "not json",
        "json array",
        "empty body",
        "bad identity number",
        "unknown organisation",
        "extra field",
        "before founding",
        "pii token",
        "charset",
        "lowercase scheme",
    ],
)
def test_refusals_and_odd_requests_answer_alike(pair, case: str) -> None:
    body = joins(pair)
    expected: dict[str, Any] = {
        "no token": dict(token=None),
        "unknown token": dict(token="not-a-token"),
        "auditor": dict(token="auditor"),
        "out of scope": dict(token="west_clerk"),
        "no key": dict(key=None),
        "bad key": dict(key="has space"),
        "long key": dict(key="k" * 129),
        "two keys": dict(headers=[("Idempotency-Key", "second")]),
        "two tokens": dict(headers=[("Authorization", "Bearer clerk")]),
        "text body": dict(content_type="text/plain"),
        "not json": dict(raw=b"{not json"),
        "json array": dict(raw=b"[]"),
        "empty body": dict(raw=b""),
        "bad identity number": dict(
            body={
                **body,
                "id_number": body["id_number"][:-1] + "0"
                if body["id_number"][-1] != "0"
                else body["id_number"][:-1] + "1",
            }
        ),
        "unknown organisation": dict(body={**body, "organization_code": "9" * 18}),
        "extra field": dict(body={**body, "salary": "1"}),
        "before founding": dict(body={**body, "joined_on": "1999-12-31"}),
        "pii token": dict(token="east_clerk_pii"),
        "charset": dict(content_type="application/json; charset=utf-8"),
        "lowercase scheme": dict(token=None, headers=[("Authorization", "bearer admin")]),
    }[case]
    answer = both(pair, "/v1/members", expected.pop("body", body), **expected)
    assert answer["status"] in (201, 400, 401, 403, 409, 415, 422), answer
