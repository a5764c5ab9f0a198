"""The registers over HTTP: hardship files and model workers, payouts that follow them,
masking and recorded unmasked reads, scope, the lists and the assistance report in JSON, CSV
and XLSX. Both stores."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.api.conftest import Api, person


def _dues(api: Api, org: str, amount: str = "20000.00") -> None:
    response = api.post(
        "/v1/funds/dues",
        {
            "organization_code": org,
            "period": "2025-01",
            "amount": amount,
            "received_on": "2025-01-05",
        },
    )
    assert response.status_code == 201, response.text


def _file(api: Api, member_id: str, *, token: str = "admin", **extra) -> dict:
    body = {
        "member_id": member_id,
        "category": "deep",
        "causes": ["illness", "unemployment"],
        "household_size": 4,
        "monthly_income_per_head": "520.00",
        "opened_on": "2025-02-01",
        **extra,
    }
    return api.post("/v1/hardship-files", body, token=token)


def _pay(api: Api, payer: str, member_id: str, programme: str, on: str, amount: str = "600.00"):
    return api.post(
        "/v1/funds/subsidies",
        {
            "payer_organization_code": payer,
            "recipient": {"member_id": member_id},
            "programme": programme,
            "amount": amount,
            "earmarked": True,
            "approval_ref": "朝工帮〔2025〕2号",
            "paid_on": on,
        },
    )


def test_hardship_files_over_http(api: Api) -> None:
    t = api.tree
    _dues(api, t.base_a)
    member = api.join(t.base_a, name="欧阳娜娜")
    member_id = member["member_id"]
    refused = _pay(api, t.base_a, member_id, "hardship", "2025-02-10")
    assert refused.status_code == 409, refused.text
    assert "hardship file open on 2025-02-10" in refused.json()["detail"]
    # Another union may not open the file; a clerk outside the member's scope sees no member.
    assert _file(api, member_id, organization_code=t.base_b).status_code == 409
    outside = _file(api, member_id, token="west_clerk")
    unknown = _file(api, "00000000-0000-0000-0000-000000000000", token="west_clerk")
    assert outside.status_code == unknown.status_code == 422
    assert outside.json()["detail"].split("'")[0] == unknown.json()["detail"].split("'")[0]
    assert api.get("/v1/organizations/x/hardship-files").status_code == 404
    bad = _file(api, member_id, monthly_income_per_head=520)
    assert bad.status_code == 422
    opened = _file(api, member_id, token="east_clerk")
    assert opened.status_code == 201, opened.text
    body = opened.json()
    # Masked for a token without pii: no health cause, no income, the name's first character.
    assert body["causes"] == ["unemployment"]
    assert body["monthly_income_per_head"] is None and body["name"] == "欧***"
    assert body["status"] == "open" and body["organization_code"] == t.base_a
    assert isinstance(body["position"], int)
    file_id = body["file_id"]
    assert _file(api, member_id, opened_on="2025-03-01").status_code == 409
    paid = _pay(api, t.base_a, member_id, "hardship", "2025-02-10")
    assert paid.status_code == 201, paid.text
    assert paid.json()["details"]["hardship_file_id"] == file_id

    full = api.get(f"/v1/hardship-files/{file_id}", token="east_clerk_pii")
    assert full.status_code == 200
    assert full.json()["causes"] == ["illness", "unemployment"]
    assert full.json()["monthly_income_per_head"] == "520.00"
    assert api.get(f"/v1/hardship-files/{file_id}", token="west_clerk").status_code == 404
    # The unmasked read is recorded in the audit stream.
    events = api.get("/v1/audit/events", params={"limit": 1000}, token="admin").json()
    reads = [e for e in events["items"] if e["type"].startswith("ledger:PiiRead")]
    assert any(e["data"]["purpose"] == "GET /v1/hardship-files/{file_id}" for e in reads)
    # The audit stream masks the file's own events too.
    opened_events = [e for e in events["items"] if e["type"] == "ledger:HardshipFile.Opened"]
    assert opened_events and opened_events[-1]["data"]["causes"] == ["unemployment"]
    assert opened_events[-1]["data"]["income_fen"] is None

    review = api.post(
        f"/v1/hardship-files/{file_id}/reviews",
        {
            "reviewed_on": "2025-12-01",
            "category": "relative",
            "household_size": 4,
            "monthly_income_per_head": "900.00",
        },
        token="a_clerk",
    )
    assert review.status_code == 201, review.text
    assert review.json()["category"] == "relative"
    listed = api.get(
        f"/v1/organizations/{t.east}/hardship-files",
        params={"scope": "subtree", "as_of": "2025-12-31"},
        token="east_auditor",
    )
    assert listed.status_code == 200, listed.text
    mine = [f for f in listed.json()["items"] if f["file_id"] == file_id]
    assert mine and mine[0]["category"] == "relative" and mine[0]["causes"] == ["unemployment"]
    assert (
        api.get(f"/v1/organizations/{t.east}/hardship-files", token="west_clerk").status_code == 403
    )

    closed = api.post(
        f"/v1/hardship-files/{file_id}/closure",
        {"closed_on": "2025-12-15", "reason": "再就业，收入稳定"},
        token="east_clerk",
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    after = _pay(api, t.base_a, member_id, "hardship", "2025-12-16")
    assert after.status_code == 409, after.text

    csv_text = api.get(
        f"/v1/organizations/{t.base_a}/hardship-files",
        params={"format": "csv", "as_of": "2025-12-31"},
        token="east_auditor",
    ).content.decode("utf-8-sig")
    assert "困难职工档案" in csv_text and "深度困难" not in csv_text  # now relative
    assert "相对困难" in csv_text and "因病" not in csv_text and "欧阳娜娜" not in csv_text


def test_model_workers_over_http(api: Api) -> None:
    t = api.tree
    _dues(api, t.base_b)
    number = api.next_person()
    member_id = api.join(t.base_b, id_number=number, name="李建国")["member_id"]
    body = {
        "id_number": number,
        "name": "李建国",
        "honour": "全国五一劳动奖章",
        "level": "national",
        "awarded_year": 2019,
        "organization_code": t.east,
    }
    assert api.post("/v1/model-workers", body, token="west_clerk").status_code == 403
    created = api.post("/v1/model-workers", body, token="east_clerk")
    assert created.status_code == 201, created.text
    worker = created.json()
    assert worker["member_id"] == member_id  # the roll's keyed id
    assert worker["id_number"] == number[:6] + "********" + number[14:]
    paid = _pay(api, t.base_b, member_id, "model_worker", "2025-03-01", "1500.00")
    assert paid.status_code == 201, paid.text
    assert paid.json()["details"]["model_worker_id"] == worker["model_worker_id"]
    listed = api.get(
        f"/v1/organizations/{t.east}/model-workers",
        params={"level": "national"},
        token="east_auditor",
    )
    assert listed.status_code == 200 and listed.json()["total"] >= 1
    revoked = api.post(
        f"/v1/model-workers/{worker['model_worker_id']}/revocation",
        {"revoked_on": "2025-06-01", "reason": "违法违纪，撤销称号"},
        token="west_clerk",
    )
    assert revoked.status_code == 404
    revoked = api.post(
        f"/v1/model-workers/{worker['model_worker_id']}/revocation",
        {"revoked_on": "2025-06-01", "reason": "违法违纪，撤销称号"},
        token="east_clerk",
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    after = _pay(api, t.base_b, member_id, "model_worker", "2025-06-01")
    assert after.status_code == 409 and "revoked" in after.json()["detail"]
    xlsx = api.get(
        f"/v1/organizations/{t.east}/model-workers", params={"format": "xlsx"}, token="east_auditor"
    )
    assert xlsx.status_code == 200
    cells = [
        c
        for row in load_workbook(io.BytesIO(xlsx.content)).active.iter_rows(values_only=True)
        for c in row
    ]
    assert "李建国" not in cells and "李**" in cells
    assert person(1) not in cells


def test_the_assistance_report(api: Api) -> None:
    t = api.tree
    _dues(api, t.base_w)
    member_id = api.join(t.base_w, name="王芳")["member_id"]
    file = _file(api, member_id, opened_on="2025-01-10", causes=["education"])
    assert file.status_code == 201, file.text
    assert _pay(api, t.base_w, member_id, "hardship", "2025-02-01", "700.00").status_code == 201
    assert _pay(api, t.base_w, member_id, "hardship", "2025-09-01", "300.00").status_code == 201
    report = api.get(
        f"/v1/organizations/{t.west}/reports/assistance",
        params={"from": "2025-01-01", "to": "2025-12-31", "scope": "subtree"},
        token="west_auditor",
    )
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["hardship"]["households_on_file"] == 1
    assert (
        body["hardship"]["paid"] == "1000.00"
        and body["hardship"]["paid_per_household"] == "1000.00"
    )
    assert {c["cause"]: c["households"] for c in body["hardship"]["by_cause"]}["education"] == 1
    assert body["hardship"]["households"][0]["name"] == "王*"
    checks = {c["account_code"]: c for c in body["ledger_check"]}
    assert checks["50404"]["paid_to_persons"] == checks["50404"]["ledger"] == "1000.00"
    statement = api.get(
        f"/v1/organizations/{t.west}/statements/income-expenditure",
        params={"from": "2025-01-01", "to": "2025-12-31", "scope": "subtree"},
        token="west_auditor",
    ).json()
    lines = {line["account_code"]: line["amount"] for line in statement["lines"]}
    assert lines["504"] == checks["504"]["ledger"]
    assert (
        api.get(f"/v1/organizations/{t.west}/reports/assistance", token="east_clerk").status_code
        == 403
    )
    for fmt in ("csv", "xlsx"):
        exported = api.get(
            f"/v1/organizations/{t.west}/reports/assistance",
            params={"from": "2025-01-01", "to": "2025-12-31", "scope": "subtree", "format": fmt},
            token="west_auditor",
        )
        assert exported.status_code == 200, exported.text
        if fmt == "xlsx":
            sheet = load_workbook(io.BytesIO(exported.content)).active
            checks_rows = [r for r in sheet.iter_rows(values_only=True) if "与账簿核对" in r]
            assert checks_rows and all(
                isinstance(r[3], int | float) and isinstance(r[4], int | float) for r in checks_rows
            )
    csv_text = exported_csv = api.get(
        f"/v1/organizations/{t.west}/reports/assistance",
        params={"from": "2025-01-01", "to": "2025-12-31", "scope": "subtree", "format": "csv"},
        token="west_auditor",
    ).content.decode("utf-8-sig")
    assert (
        "困难职工帮扶和劳模工作统计" in csv_text
        and "因学" in exported_csv
        and "王芳" not in csv_text
    )
