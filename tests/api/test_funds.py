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
    # 红字冲销: the same accounts on the same sides, in negative amounts.
    assert [(p["account_code"], p["debit"], p["credit"]) for p in reversal.json()["postings"]] == [
        ("501", "-300.00", "0.00"),
        ("102", "0.00", "-300.00"),
    ]
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


def test_a_back_dated_payout_is_checked_at_its_own_date(api: Api) -> None:
    code = api.tree.base_b
    dues = {"organization_code": code, "period": "2024-03", "amount": "100.00"}
    assert api.post("/v1/funds/dues", {**dues, "received_on": "2024-03-10"}).status_code == 201
    early = {
        "organization_code": code,
        "account_code": "501",
        "amount": "100.00",
        "earmarked": False,
        "description": "活动",
        "paid_on": "2024-03-01",
    }
    refused = api.post("/v1/funds/expenses", early)
    assert refused.status_code == 409, refused.text
    assert refused.json()["title"] == "InsufficientFunds"
    assert "2024-03-01" in refused.json()["detail"]
    sheet = api.get(
        f"/v1/organizations/{code}/statements/balance-sheet", params={"as_of": "2024-03-05"}
    ).json()
    bank = next(line for line in sheet["lines"] if line["account_code"] == "102")
    assert Decimal(bank["amount"]) == 0
    assert api.post("/v1/funds/expenses", {**early, "paid_on": "2024-03-10"}).status_code == 201


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
    closes = f"/v1/organizations/{code}/period-closes"
    reopenings = f"/v1/organizations/{code}/period-reopenings"
    # In order only, and never a month that has not ended (in China).
    skipped = api.post(closes, {"period": "2024-03"})
    assert skipped.status_code == 409 and skipped.json()["title"] == "PeriodOutOfOrder"
    assert "2024-02" in skipped.json()["detail"]
    assert api.post(closes, {"period": "2024-02"}).status_code == 201
    assert api.post(closes, {"period": "2024-03"}).status_code == 201
    assert api.post(closes, {"period": "2024-02"}).status_code == 409
    # A posting dated before the last closed month would change its opening balances.
    feb = {"organization_code": code, "period": "2024-02", "amount": "10.00"}
    refused = api.post("/v1/funds/dues", {**feb, "received_on": "2024-02-15"})
    assert refused.status_code == 409 and refused.json()["title"] == "PeriodClosed"
    # Reopening: admins only, the last closed month only, with a reason.
    body = {"period": "2024-03", "reason": "补记二月会费"}
    assert api.post(reopenings, body, token="clerk").status_code == 403
    assert api.post(reopenings, {**body, "period": "2024-02"}).status_code == 409
    assert api.post(reopenings, {"period": "2024-03"}).status_code == 422
    reopened = api.post(reopenings, body)
    assert reopened.status_code == 201, reopened.text
    assert reopened.json()["closed"] is False and isinstance(reopened.json()["position"], int)
    march = {"organization_code": code, "period": "2024-03", "amount": "10.00"}
    assert api.post("/v1/funds/dues", {**march, "received_on": "2024-03-31"}).status_code == 201
    assert api.post("/v1/funds/dues", {**feb, "received_on": "2024-02-15"}).status_code == 409
    periods = api.get(f"/v1/organizations/{code}/periods")
    assert periods.status_code == 200, periods.text
    listed = periods.json()
    assert listed["last_closed"] == "2024-02"
    assert [c["period"] for c in listed["closed"]] == ["2024-01", "2024-02", "2024-03"]
    assert all(c["closed_at"] and c["actor"] for c in listed["closed"])
    assert [(r["period"], r["reason"]) for r in listed["reopenings"]] == [
        ("2024-03", "补记二月会费")
    ]
    far = api.post(f"/v1/organizations/{api.tree.base_a}/period-closes", {"period": "2099-12"})
    assert far.status_code == 409 and "has not ended" in far.json()["detail"]
    assert api.get(f"/v1/organizations/{api.tree.base_a[:-1]}0/periods").status_code == 404
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


def lines_by_account(statement: dict) -> dict[str, dict]:
    return {line["account_code"]: line for line in statement["lines"]}


def test_closing_december_closes_the_year_into_321_and_322(api: Api) -> None:
    from scripts.synthetic import employer_code, union_code
    from tests.api.conftest import EAST_REGION

    code = union_code(EAST_REGION, 701, base=True)
    employer = employer_code(EAST_REGION, 701)
    founded = api.post(
        "/v1/organizations",
        {
            "code": code,
            "name": "北京年终结账测试公司工会",
            "level": "base",
            "parent_code": api.tree.east,
            "region_code": EAST_REGION,
            "founded_on": "2024-01-01",
            "employer_code": employer,
            "employee_count": 50,
        },
    )
    assert founded.status_code == 201, founded.text
    dues = {"organization_code": code, "period": "2024-03", "amount": "300.00"}
    assert api.post("/v1/funds/dues", {**dues, "received_on": "2024-03-05"}).status_code == 201
    received = api.post(
        "/v1/funds/levies",
        {
            "receiving_organization_code": code,
            "base_organization_code": code,
            "employer_code": employer,
            "period": "2024-03",
            "payroll_total": "10000.00",
            "amount": "200.00",
            "channel": "employer",
            "received_on": "2024-04-10",
        },
    )
    assert received.status_code == 201, received.text  # 402: 120.00 (60%)
    spend = {"organization_code": code, "description": "活动", "paid_on": "2024-05-01"}
    for account, amount, earmarked in (("501", "120.00", False), ("50404", "50.00", True)):
        body = {**spend, "account_code": account, "amount": amount, "earmarked": earmarked}
        assert api.post("/v1/funds/expenses", body).status_code == 201
    next_year = {**dues, "period": "2025-01", "amount": "40.00", "received_on": "2025-01-10"}
    assert api.post("/v1/funds/dues", next_year).status_code == 201

    closed = api.post(f"/v1/organizations/{code}/period-closes", {"period": "2024-12"})
    assert closed.status_code == 201, closed.text
    first_close = closed.json()["year_end_voucher_id"]
    assert first_close

    def opening_2025() -> dict[str, dict]:
        trial = api.get(
            f"/v1/organizations/{code}/statements/trial-balance",
            params={"from": "2025-01-01", "to": "2025-01-31"},
        )
        assert trial.status_code == 200, trial.text
        return lines_by_account(trial.json())

    opening = opening_2025()
    for account in ("401", "402", "501", "504", "50404"):
        assert Decimal(opening[account]["opening"]) == 0, opening[account]
    # Earmarked: nothing in, 50.00 out: 321 is debited 50.00. General: 420.00 in, 120.00 out.
    assert Decimal(opening["321"]["opening"]) == Decimal("-50.00")
    assert Decimal(opening["322"]["opening"]) == Decimal("300.00")
    assert Decimal(opening["401"]["closing"]) == Decimal("40.00")  # 2025 stays in 2025
    sheet = api.get(
        f"/v1/organizations/{code}/statements/balance-sheet", params={"as_of": "2024-12-31"}
    ).json()
    assert sheet["balanced"] is True

    def statement_2024() -> dict:
        response = api.get(
            f"/v1/organizations/{code}/statements/income-expenditure",
            params={"from": "2024-01-01", "to": "2024-12-31"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    filed = statement_2024()
    assert Decimal(filed["totals"]["income"]) == Decimal("420.00")
    assert Decimal(filed["totals"]["expenditure"]) == Decimal("170.00")
    assert Decimal(filed["surplus"]) == Decimal("250.00")
    # The period is the year to date here (read once): both columns leave the close out.
    period = {k: v for k, v in filed["totals"].items() if k not in ("month", "year_to_date")}
    assert filed["totals"]["year_to_date"] == period
    # The closing voucher is taken back only by reopening December, never reversed directly.
    direct = api.post(
        f"/v1/funds/vouchers/{first_close}/reversal",
        {"effective_on": "2025-01-15", "reason": "冲销结账"},
    )
    assert direct.status_code == 409
    reopened = api.post(
        f"/v1/organizations/{code}/period-reopenings",
        {"period": "2024-12", "reason": "补记十二月支出"},
    )
    assert reopened.status_code == 201, reopened.text
    assert reopened.json()["year_end_reversal_id"]
    opening = opening_2025()
    assert Decimal(opening["401"]["opening"]) == Decimal("300.00")
    assert Decimal(opening["322"]["opening"]) == 0 and Decimal(opening["321"]["opening"]) == 0
    assert statement_2024()["totals"] == filed["totals"]
    extra = {**spend, "account_code": "501", "amount": "10.00", "earmarked": False}
    assert api.post("/v1/funds/expenses", {**extra, "paid_on": "2024-12-20"}).status_code == 201
    again = api.post(f"/v1/organizations/{code}/period-closes", {"period": "2024-12"})
    assert again.status_code == 201, again.text
    assert again.json()["year_end_voucher_id"] not in (None, first_close)
    opening = opening_2025()
    assert Decimal(opening["401"]["opening"]) == 0
    assert Decimal(opening["322"]["opening"]) == Decimal("290.00")
    assert Decimal(statement_2024()["totals"]["expenditure"]) == Decimal("180.00")


def test_a_voucher_is_read_whole_with_its_numbers(api: Api) -> None:
    code = api.tree.base_w
    dues = {"organization_code": code, "period": "2024-06", "amount": "50.00"}
    first = api.post("/v1/funds/dues", {**dues, "received_on": "2024-06-20"})
    assert first.status_code == 201, first.text
    later = api.post("/v1/funds/dues", {**dues, "period": "2024-07", "received_on": "2024-07-03"})
    back = api.post("/v1/funds/dues", {**dues, "received_on": "2024-06-05"})
    assert first.json()["numbers"] == {code: "记-2024-06-0001"}
    assert later.json()["numbers"] == {code: "记-2024-07-0001"}
    assert back.json()["numbers"] == {code: "记-2024-06-0002"}  # back-dated: its own month
    voucher_id = first.json()["voucher_id"]
    reversal = api.post(
        f"/v1/funds/vouchers/{voucher_id}/reversal",
        {"effective_on": "2024-07-10", "reason": "重复录入"},
    ).json()
    got = api.get(f"/v1/funds/vouchers/{voucher_id}", token="west_auditor")
    assert got.status_code == 200, got.text
    record = got.json()
    assert record["numbers"] == {code: "记-2024-06-0001"} and record["kind"] == "dues"
    assert record["reversed_by"] == reversal["voucher_id"] and record["reverses"] is None
    assert 0 < record["position"] <= first.json()["position"]
    assert record["actor"].startswith("token:") and record["recorded_at"]
    undo = api.get(f"/v1/funds/vouchers/{reversal['voucher_id']}").json()
    assert undo["reverses"] == voucher_id and undo["numbers"] == {code: "记-2024-07-0002"}
    assert undo["description"] == "重复录入"
    # Outside the token's scope, and unknown: 404 alike.
    assert api.get(f"/v1/funds/vouchers/{voucher_id}", token="east_auditor").status_code == 404
    assert api.get(f"/v1/funds/vouchers/{uuid.uuid4()}").status_code == 404
    journal = api.get(
        f"/v1/organizations/{code}/journal", params={"from": "2024-06-01", "to": "2024-06-30"}
    ).json()
    assert {line["number"] for line in journal["items"]} == {"记-2024-06-0001", "记-2024-06-0002"}


def test_the_root_pays_a_level_above_it_by_name(api: Api) -> None:
    """The root (a province) owes `national` its share of a levy it received; it pays it."""
    received = api.post(
        "/v1/funds/levies",
        {
            "receiving_organization_code": api.tree.root,
            "base_organization_code": api.tree.base_w,
            "employer_code": api.tree.employer_w,
            "period": "2024-08",
            "payroll_total": "50000.00",
            "amount": "1000.00",
            "channel": "tax",
            "received_on": "2024-09-10",
        },
    )
    assert received.status_code == 201, received.text
    owed = sum(
        Decimal(p["credit"])
        for p in received.json()["postings"]
        if p["account_code"] == "211" and p["counterparty"] == "national"
    )
    assert owed > 0
    body = {
        "from_organization_code": api.tree.root,
        "to_organization_code": "national",
        "kind": "upward",
        "amount": str(owed + Decimal("0.01")),
        "period": "2024-08",
        "paid_on": "2024-09-20",
    }
    too_much = api.post("/v1/funds/remittances", body)
    assert too_much.status_code == 409 and too_much.json()["title"] == "RemittanceExceedsOwed"
    early = api.post(
        "/v1/funds/remittances", {**body, "amount": str(owed), "paid_on": "2024-09-01"}
    )
    assert early.status_code == 409  # nothing was owed yet on 1 September
    paid = api.post("/v1/funds/remittances", {**body, "amount": str(owed)})
    assert paid.status_code == 201, paid.text
    assert sorted(
        (p["account_code"], p["debit"], p["credit"], p["counterparty"])
        for p in paid.json()["postings"]
    ) == [("102", "0.00", str(owed), None), ("211", str(owed), "0.00", "national")]
    # Only the root pays by name; anyone else pays its parent.
    below = {**body, "from_organization_code": api.tree.east, "amount": "1.00"}
    assert api.post("/v1/funds/remittances", below).status_code == 422
