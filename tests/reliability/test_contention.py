"""Contention: many clients at once issue commands that cannot all succeed.

Exactly a valid subset succeeds (as many as fit, never more), every other request is a 409,
and no balance goes negative. Real HTTP against a real server on each backend."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from tests.api.conftest import Api
from tests.reliability.report import record

CLIENTS = 16


def all_at_once(api: Api, requests: list[tuple[str, dict[str, Any], str]]) -> list[httpx.Response]:
    """Sends every (path, body, token) from its own thread and client, released together."""
    barrier = threading.Barrier(len(requests))
    answers: list[httpx.Response | None] = [None] * len(requests)

    def send(i: int, path: str, body: dict[str, Any], token: str) -> None:
        with httpx.Client(base_url=api.server.url, timeout=120) as client:
            headers = api.headers(token, uuid.uuid4().hex)
            barrier.wait(timeout=60)
            answers[i] = client.post(path, json=body, headers=headers)

    threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert all(a is not None for a in answers), "a request got no answer"
    return answers  # type: ignore[return-value]


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


def account_fen(api: Api, code: str, account: str) -> int:
    sheet = api.get(
        f"/v1/organizations/{code}/statements/balance-sheet", params={"as_of": "2030-12-31"}
    )
    assert sheet.status_code == 200, sheet.text
    return sum(
        int(Decimal(line["amount"]) * 100)
        for line in sheet.json()["lines"]
        if line["account_code"] == account
    )


def no_negative_bank(api: Api) -> None:
    t = api.tree
    for code in (t.root, t.east, t.west, t.base_a, t.base_b, t.base_w):
        assert account_fen(api, code, "102") >= 0, code


def expect_valid_subset(answers: list[httpx.Response], fits: int) -> None:
    count = statuses(answers)
    assert set(count) <= {201, 409}, [a.text for a in answers if a.status_code not in (201, 409)]
    assert count[201] == fits, count


def test_two_transfers_of_one_member(api: Api) -> None:
    member_id = api.join()["member_id"]
    targets = [api.tree.base_w, api.tree.base_b]
    answers = all_at_once(
        api,
        [
            (
                f"/v1/members/{member_id}/transfers",
                {
                    "to_organization_code": targets[i % 2],
                    "effective_on": "2022-01-01",
                    "reason_code": 1,
                },
                "admin",
            )
            for i in range(CLIENTS)
        ],
    )
    expect_valid_subset(answers, fits=1)
    member = api.get(f"/v1/members/{member_id}").json()
    winner = next(a.json() for a in answers if a.status_code == 201)
    assert member["status"] == "transfer_pending"
    assert member["pending_transfer"]["transfer_id"] == winner["transfer_id"]


def fund(api: Api, code: str, amount: str) -> None:
    dues = api.post(
        "/v1/funds/dues",
        {
            "organization_code": code,
            "period": "2024-03",
            "amount": amount,
            "received_on": "2024-03-20",
        },
    )
    assert dues.status_code == 201, dues.text


def test_payouts_beyond_the_bank_balance(api: Api) -> None:
    code = api.tree.base_b
    fund(api, code, "100.00")
    balance_fen = account_fen(api, code, "102")
    expense = {
        "organization_code": code,
        "account_code": "501",
        "amount": "7.00",
        "earmarked": False,
        "description": "职工活动",
        "paid_on": "2024-04-22",
    }
    answers = all_at_once(api, [("/v1/funds/expenses", expense, "admin")] * CLIENTS)
    fits = balance_fen // 700
    assert fits < CLIENTS  # together they exceed the balance
    expect_valid_subset(answers, fits=fits)
    assert account_fen(api, code, "102") == balance_fen - fits * 700
    no_negative_bank(api)
    record(
        "contention_payouts",
        {
            "backend": api.backend.kind,
            "requests": CLIENTS,
            "succeeded": fits,
            "conflicts_409": CLIENTS - fits,
        },
    )


def test_remittances_beyond_what_is_owed(api: Api) -> None:
    t = api.tree
    levy = api.post(
        "/v1/funds/levies",
        {
            "receiving_organization_code": t.base_w,
            "base_organization_code": t.base_w,
            "employer_code": t.employer_w,
            "period": "2024-03",
            "payroll_total": "50000.00",
            "amount": "1000.00",
            "channel": "employer",
            "received_on": "2024-04-10",
        },
    )
    assert levy.status_code == 201, levy.text
    owed_fen = sum(
        int(Decimal(p["credit"]) * 100)
        for p in levy.json()["postings"]
        if p["account_code"] == "211"
    )
    step_fen = owed_fen // (CLIENTS // 2) + 1  # so that only about half of them fit
    remittance: Callable[[], dict[str, Any]] = lambda: {  # noqa: E731
        "from_organization_code": t.base_w,
        "to_organization_code": t.west,
        "kind": "upward",
        "amount": str(Decimal(step_fen) / 100),
        "period": "2024-03",
        "paid_on": "2024-04-15",
    }
    answers = all_at_once(api, [("/v1/funds/remittances", remittance(), "admin")] * CLIENTS)
    fits = owed_fen // step_fen
    expect_valid_subset(answers, fits=fits)
    # What is still owed (211, a liability: its balance is a credit) never goes below zero.
    assert account_fen(api, t.base_w, "211") == owed_fen - fits * step_fen >= 0
    no_negative_bank(api)
