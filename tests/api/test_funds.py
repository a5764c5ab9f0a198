"""Funds through real HTTP: policies, receipts, remittances, payouts, reversals, closes."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tests.api.conftest import SHARES, Api


def balanced(voucher: dict) -> bool:
    debit = sum(Decimal(p["debit"]) for p in voucher["postings"])
    credit = sum(Decimal(p["credit"]) for p in voucher["postings"])
    return debit == credit > 0


def levy(api: Api, amount: str = "10000.00", payroll: str = "500000.00", **extra) -> dict:
    body = {
        "receiving_organization_code": api.tree.base_a,
        "base_organization_code": api.tree.base_a,
        "employer_code": api.tree.employer_a,
        "period": "2024-03",
        "payroll_total": payroll,
        "amount": amount,
        "channel": "employer",
        "received_on": "2024-04-10",
        **extra,
    }
    return api.post("/v1/funds/levies", body, token="a_clerk")


def test_levy_policies(api: Api) -> None:
    policy = api.get("/v1/levy-policies", params={"region_code": "110105", "on": "2024-01-01"})
    assert policy.status_code == 200 and policy.json()["shares"]["base"] in ("60", "60.00")
    assert (
        api.get(
            "/v1/levy-policies", params={"region_code": "120101", "on": "2024-01-01"}
        ).status_code
        == 404
    )
    assert (
        api.get("/v1/levy-policies", params={"region_code": "11x", "on": "2024-01-01"}).status_code
        == 422
    )
    body = {"region_code": "1101", "effective_from": "2024-01-01", "shares": SHARES}
    assert api.post("/v1/levy-policies", body, token="clerk").status_code == 403
    assert api.post("/v1/levy-policies", body, token="east_admin").status_code == 403
    adopted = api.post("/v1/levy-policies", body)
    assert adopted.status_code == 201, adopted.text
    assert isinstance(adopted.json()["position"], int)
    wrong = {**body, "region_code": "1102", "shares": {**SHARES, "base": "61"}}
    response = api.post("/v1/levy-policies", wrong)
    assert response.status_code == 422 and response.json()["errors"]


def test_receipts_remittance_and_payouts(api: Api) -> None:
    received = levy(api)
    assert received.status_code == 201, received.text
    voucher = received.json()
    assert voucher["kind"] == "levy" and balanced(voucher)
    assert any(
        p["organization_code"] == api.tree.base_a
        and p["account_code"] == "102"
        and p["debit"] == "10000.00"
        for p in voucher["postings"]
    )
    assert levy(api, amount="9999.99").status_code == 422  # not 2% of payroll
    dues = api.post(
        "/v1/funds/dues",
        {
            "organization_code": api.tree.base_a,
            "period": "2024-03",
            "amount": "40.00",
            "received_on": "2024-03-20",
        },
    )
    assert dues.status_code == 201 and balanced(dues.json())
    owed_up = sum(Decimal(p["credit"]) for p in voucher["postings"] if p["account_code"] == "211")
    too_much = api.post(
        "/v1/funds/remittances",
        {
            "from_organization_code": api.tree.base_a,
            "to_organization_code": api.tree.east,
            "kind": "upward",
            "amount": str(owed_up + 1),
            "period": "2024-03",
            "paid_on": "2024-04-15",
        },
    )
    assert too_much.status_code == 409
    remitted = api.post(
        "/v1/funds/remittances",
        {
            "from_organization_code": api.tree.base_a,
            "to_organization_code": api.tree.east,
            "kind": "upward",
            "amount": str(owed_up),
            "period": "2024-03",
            "paid_on": "2024-04-15",
        },
    )
    assert remitted.status_code == 201, remitted.text
    assert {p["organization_code"] for p in remitted.json()["postings"]} == {
        api.tree.base_a,
        api.tree.east,
    }
    member_id = api.join()["member_id"]
    hardship = api.post(
        "/v1/hardship-files",
        {
            "member_id": member_id,
            "category": "relative",
            "causes": ["unemployment"],
            "household_size": 3,
            "monthly_income_per_head": "800.00",
            "opened_on": "2024-04-01",
        },
    )
    assert hardship.status_code == 201, hardship.text
    subsidy = api.post(
        "/v1/funds/subsidies",
        {
            "payer_organization_code": api.tree.base_a,
            "recipient": {"member_id": member_id},
            "programme": "hardship",
            "amount": "500.00",
            "earmarked": False,
            "approval_ref": "星火工帮〔2024〕3号",
            "paid_on": "2024-04-20",
        },
    )
    assert subsidy.status_code == 201, subsidy.text
    to_union = api.post(
        "/v1/funds/subsidies",
        {
            "payer_organization_code": api.tree.east,
            "recipient": {"organization_code": api.tree.base_b},
            "programme": "general",
            "amount": "100.00",
            "earmarked": True,
            "approval_ref": "朝工〔2024〕8号",
            "paid_on": "2024-04-21",
        },
    )
    assert to_union.status_code == 201, to_union.text
    broke = api.post(
        "/v1/funds/expenses",
        {
            "organization_code": api.tree.base_a,
            "account_code": "501",
            "amount": "99999999.00",
            "earmarked": False,
            "description": "职工运动会",
            "paid_on": "2024-04-22",
        },
    )
    assert broke.status_code == 409
    expense = api.post(
        "/v1/funds/expenses",
        {
            "organization_code": api.tree.base_a,
            "account_code": "501",
            "amount": "300.00",
            "earmarked": False,
            "description": "职工运动会",
            "paid_on": "2024-04-22",
        },
    )
    assert expense.status_code == 201 and balanced(expense.json())
    voucher_id = expense.json()["voucher_id"]
    reversal = api.post(
        f"/v1/funds/vouchers/{voucher_id}/reversal",
        {"effective_on": "2024-04-30", "reason": "重复录入"},
    )
    assert reversal.status_code == 201 and reversal.json()["reverses"] == voucher_id
    assert (
        api.post(
            f"/v1/funds/vouchers/{voucher_id}/reversal",
            {"effective_on": "2024-04-30", "reason": "再次冲销"},
        ).status_code
        == 409
    )
    assert (
        api.post(
            f"/v1/funds/vouchers/{uuid.uuid4()}/reversal",
            {"effective_on": "2024-04-30", "reason": "不存在"},
        ).status_code
        == 404
    )


def test_period_close(api: Api) -> None:
    code = api.tree.base_b
    closed = api.post(f"/v1/organizations/{code}/period-closes", {"period": "2024-01"})
    assert closed.status_code == 201 and closed.json()["closed"] is True
    late = api.post(
        "/v1/funds/dues",
        {
            "organization_code": code,
            "period": "2024-01",
            "amount": "10.00",
            "received_on": "2024-01-31",
        },
    )
    assert late.status_code == 409
    assert (
        api.post(f"/v1/organizations/{code}/period-closes", {"period": "2024-13"}).status_code
        == 422
    )
    assert (
        api.post(
            f"/v1/organizations/{api.tree.base_a[:-1]}0/period-closes", {"period": "2024-01"}
        ).status_code
        == 404
    )


def test_amounts_must_be_strings(api: Api) -> None:
    response = api.post(
        "/v1/funds/dues",
        {
            "organization_code": api.tree.base_a,
            "period": "2024-05",
            "amount": 40.0,
            "received_on": "2024-05-20",
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "amount"
    for amount in ("40.001", "1e3", "-5", "4,000", " 40"):
        response = api.post(
            "/v1/funds/dues",
            {
                "organization_code": api.tree.base_a,
                "period": "2024-05",
                "amount": amount,
                "received_on": "2024-05-20",
            },
        )
        assert response.status_code == 422, amount


def test_fund_scope(api: Api) -> None:
    body = {
        "organization_code": api.tree.base_a,
        "period": "2024-06",
        "amount": "10.00",
        "received_on": "2024-06-20",
    }
    assert api.post("/v1/funds/dues", body, token="west_clerk").status_code == 403
    assert api.post("/v1/funds/dues", body, token="east_auditor").status_code == 403
    assert api.post("/v1/funds/dues", body, token="east_clerk").status_code == 201
