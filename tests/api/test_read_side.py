"""Rolls, statements, journal, history and audit through real HTTP, read right after writing."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from openpyxl import load_workbook

from tests.api.conftest import Api

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_roll_reads_its_own_writes(api: Api) -> None:
    code = api.tree.base_b
    before = api.get(
        f"/v1/organizations/{code}/roll/summary", params={"as_of": "2030-01-01"}
    ).json()["members"]
    member = api.join(code, token="east_clerk")
    roll = api.get(
        f"/v1/organizations/{code}/roll",
        params={"as_of": "2030-01-01", "page_size": 1000},
        token="east_clerk",
    )
    assert roll.status_code == 200, roll.text
    body = roll.json()
    assert {"items", "page", "page_size", "total"} <= body.keys()
    mine = [m for m in body["items"] if m["member_id"] == member["member_id"]]
    assert len(mine) == 1 and "*" in mine[0]["id_number"] and "****" in mine[0]["mobile"]
    summary = api.get(f"/v1/organizations/{code}/roll/summary", params={"as_of": "2030-01-01"})
    assert summary.json()["members"] == before + 1
    subtree = api.get(
        f"/v1/organizations/{api.tree.east}/roll/summary",
        params={"as_of": "2030-01-01", "scope": "subtree"},
    ).json()
    assert subtree["members"] >= before + 1
    changes = api.get(
        f"/v1/organizations/{code}/roll/changes", params={"from": "2020-01-01", "to": "2030-01-01"}
    ).json()
    assert any(
        c["member_id"] == member["member_id"] and c["change_code"] == 1 for c in changes["items"]
    )
    history = api.get(f"/v1/members/{member['member_id']}/history").json()
    assert [h["change_code"] for h in history["items"]] == [1]
    assert isinstance(history["items"][0]["position"], int)
    # Before the joining date, and as known before the write, the member is not there.
    early = api.get(f"/v1/organizations/{code}/roll/summary", params={"as_of": "2019-01-01"})
    assert early.json()["members"] == 0
    known = api.get(
        f"/v1/organizations/{code}/roll/summary",
        params={"as_of": "2030-01-01", "known_at": "2001-01-01T00:00:00+08:00"},
    )
    assert known.status_code == 200 and known.json()["members"] == 0


def test_roll_exports(api: Api) -> None:
    code = api.tree.base_b
    api.join(code, name="赵敏")
    response = api.get(
        f"/v1/organizations/{code}/roll", params={"format": "csv", "as_of": "2030-01-01"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")
    text = response.content.decode("utf-8-sig")
    # Masked: the name's first character, the birth year and never the birth date.
    assert "姓名" in text and "赵*" in text and "赵敏" not in text
    assert "出生年份" in text and "出生日期" not in text
    assert not any(
        len(row) > 2 and row[2].isdigit() and len(row[2]) == 18
        for row in csv.reader(io.StringIO(text))
    )  # identity numbers masked
    unmasked = api.get(
        f"/v1/organizations/{code}/roll",
        token="admin_pii",
        params={"format": "csv", "as_of": "2030-01-01"},
    )
    text = unmasked.content.decode("utf-8-sig")
    assert "赵敏" in text and "出生年份" in text and "出生日期" in text
    response = api.get(
        f"/v1/organizations/{code}/roll", params={"format": "xlsx", "as_of": "2030-01-01"}
    )
    assert response.status_code == 200 and response.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    assert any("赵*" in [str(v) for v in row] for row in sheet.iter_rows(values_only=True))


def test_statements_and_journal(api: Api) -> None:
    code = api.tree.base_a
    body = {
        "organization_code": code,
        "period": "2025-02",
        "amount": "12.34",
        "received_on": "2025-02-10",
    }
    voucher = api.post("/v1/funds/dues", body).json()
    sheet = api.get(
        f"/v1/organizations/{code}/statements/balance-sheet", params={"as_of": "2025-12-31"}
    )
    assert sheet.status_code == 200, sheet.text
    assert sheet.json()["balanced"] is True and sheet.json()["totals"]
    bank = [line for line in sheet.json()["lines"] if line["account_code"] == "102"]
    assert Decimal(bank[0]["amount"]) >= Decimal("12.34")
    period = {"from": "2025-02-01", "to": "2025-02-28"}
    income = api.get(f"/v1/organizations/{code}/statements/income-expenditure", params=period)
    assert income.status_code == 200
    dues_line = [ln for ln in income.json()["lines"] if ln["account_code"] == "401"]
    assert dues_line[0]["amount"] == "12.34" and dues_line[0]["general"] == "12.34"
    trial = api.get(f"/v1/organizations/{code}/statements/trial-balance", params=period).json()
    assert trial["balanced"] is True
    journal = api.get(f"/v1/organizations/{code}/journal", params=period).json()
    assert {ln["voucher_id"] for ln in journal["items"]} == {voucher["voucher_id"]}
    assert journal["total"] == 2
    for path in (
        "statements/balance-sheet",
        "statements/income-expenditure",
        "statements/trial-balance",
        "journal",
    ):
        for fmt in ("csv", "xlsx"):
            response = api.get(
                f"/v1/organizations/{code}/{path}",
                params={**({} if "balance" in path else period), "format": fmt},
            )
            assert response.status_code == 200, (path, fmt, response.text)
    bad = api.get(
        f"/v1/organizations/{code}/journal", params={"from": "2025-03-01", "to": "2025-02-01"}
    )
    assert bad.status_code == 422
    assert (
        api.get(f"/v1/organizations/{code}/journal", params={"page_size": 1001}).status_code == 422
    )
    assert (
        api.get(
            f"/v1/organizations/{code}/statements/balance-sheet", params={"known_at": "yesterday"}
        ).status_code
        == 422
    )
    assert (
        api.get(
            f"/v1/organizations/{code}/statements/balance-sheet", params={"format": "pdf"}
        ).status_code
        == 422
    )


def test_audit_endpoints(api: Api) -> None:
    member = api.join()
    events = api.get("/v1/audit/events", params={"after": 0, "limit": 1000}, token="auditor")
    assert events.status_code == 200, events.text
    items = events.json()["items"]
    positions = [e["position"] for e in items]
    assert positions == sorted(positions)
    joined = [e for e in items if e["stream_id"] == member["member_id"]]
    assert joined and "*" in joined[0]["data"]["id_number"]
    assert {"position", "recorded_at", "stream_id", "version", "type", "data", "actor"} <= (
        joined[0].keys()
    )
    scoped = api.get("/v1/audit/events", token="west_auditor").json()["items"]
    assert all(e["stream_id"] != member["member_id"] for e in scoped)
    assert (
        api.get(
            "/v1/audit/events", params={"organization_code": api.tree.base_a}, token="west_auditor"
        ).status_code
        == 403
    )
    assert api.get("/v1/audit/events", token="clerk").status_code == 403
    assert api.post("/v1/audit/seals", token="auditor").status_code == 403
    sealed = api.post("/v1/audit/seals", key="seal-1")
    assert sealed.status_code == 201, sealed.text
    assert {"position", "chain_hash", "signature", "sealed_at"} <= sealed.json().keys()
    replay = api.post("/v1/audit/seals", key="seal-1")
    assert replay.json() == sealed.json() and replay.headers["Idempotent-Replayed"] == "true"
    seals = api.get("/v1/audit/seals", token="auditor").json()
    assert sealed.json()["position"] in [s["position"] for s in seals["items"]]
    verified = api.get("/v1/audit/verification", token="auditor").json()
    assert verified["ok"] is True and verified["seals_checked"] >= 1
