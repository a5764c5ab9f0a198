"""A token whose verification lapsed (every REVALIDATE_S) is read again once for all the
requests presenting it meanwhile (api/security.py: verified), and a join or dues receipt
still takes the short way (api/hot_posts.py) rather than FastAPI's whole stack."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import fastapi.routing
import pytest

import service.tokens
from api.security import verified
from service.tokens import Principal
from tests.api.conftest import Api

PRINCIPAL = Principal("t-1", "clerk", None, False)


class _SlowTokens:
    """already_verified() never vouches; verify() takes a while and counts its calls."""

    def __init__(self, answer: Principal | None) -> None:
        self.answer = answer
        self.reads = 0
        self._lock = threading.Lock()

    def already_verified(self, presented: str) -> Principal | None:
        return None

    def verify(self, presented: str) -> Principal | None:
        with self._lock:
            self.reads += 1
        time.sleep(0.05)
        return self.answer if presented == "good" else None


class _Services:
    def __init__(self, tokens: _SlowTokens) -> None:
        self.tokens = tokens
        self.verifying: dict[str, asyncio.Future] = {}


def _concurrently(svc: Any, presented: list[str]) -> list[Principal | None]:
    async def main() -> list[Principal | None]:
        return list(await asyncio.gather(*(verified(svc, p) for p in presented)))

    return asyncio.run(main())


def test_requests_presenting_one_token_share_one_read() -> None:
    svc = _Services(_SlowTokens(PRINCIPAL))
    answers = _concurrently(svc, ["good"] * 40)
    assert answers == [PRINCIPAL] * 40
    assert svc.tokens.reads == 1
    assert svc.verifying == {}  # nothing left behind: the next lapse reads again
    _concurrently(svc, ["good"] * 3)
    assert svc.tokens.reads == 2


def test_each_presented_text_is_verified_on_its_own() -> None:
    svc = _Services(_SlowTokens(PRINCIPAL))
    answers = _concurrently(svc, ["good", "bad", "good", "bad"])
    assert answers == [PRINCIPAL, None, PRINCIPAL, None]
    assert svc.tokens.reads == 2


def test_a_request_that_goes_away_does_not_cancel_the_shared_read() -> None:
    svc = _Services(_SlowTokens(PRINCIPAL))

    async def main() -> Principal | None:
        first = asyncio.ensure_future(verified(svc, "good"))
        await asyncio.sleep(0.01)
        first.cancel()
        return await verified(svc, "good")

    assert asyncio.run(main()) == PRINCIPAL
    assert svc.tokens.reads == 1


def test_a_lapsed_token_still_takes_the_short_way(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.join()  # the admin token verified by this server
    monkeypatch.setattr(service.tokens, "REVALIDATE_S", 0.0)  # every request finds it lapsed
    solved = [0]
    original = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved[0] += 1
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    api.join()
    dues = api.post(
        "/v1/funds/dues",
        {
            "organization_code": api.tree.base_a,
            "period": "2024-03",
            "amount": "12.50",
            "received_on": "2024-03-20",
        },
    )
    assert dues.status_code == 201, dues.text
    assert solved[0] == 0
    # A token that no longer verifies is still refused, by FastAPI, as before.
    refused = api.post("/v1/members", {"id_number": api.next_person()}, token="admin.wrong")
    assert refused.status_code == 401
    assert solved[0] == 1
