"""月末对账 over real HTTP on both stores: a run with files made as banks and tax bureaus make
them, listed and shown (CSV/XLSX whole), signed off once; bad input stores nothing."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook, load_workbook

from projections.reconciliation.report import line_rows
from tests.api.conftest import Api

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _levy(api: Api, employer: str, base: str, amount: str, day: str) -> str:
    body = {
        "receiving_organization_code": api.tree.east,
        "base_organization_code": base,
        "employer_code": employer,
        "period": "2024-01",
        "payroll_total": str(int(amount.replace(".", "")) // 2),
        "amount": amount,
        "channel": "tax",
        "received_on": day,
    }
    response = api.post("/v1/funds/levies", body, token="east_clerk")
    assert response.status_code == 201, response.text
    return response.json()["voucher_id"]


def _files(api: Api, voucher: str) -> dict:
    t = api.tree
    bank = "\r\n".join(
        [
            "中国建设银行 单位账户交易明细",
            "账号：1100 1234 5678,户名：朝阳区总工会",
            "交易日期,摘要,借方发生额,贷方发生额,余额,对方户名,对方账号",
            f"2024-01-10,税务代收 {voucher},,1000.00,,国家金库,1",
            "2024-01-14,税务代收,,400.00,,国家金库,1",
            "2024-01-31,手续费,12.00,,,,",
            "2024-01-31,坏金额,abc,,,,",
        ]
    ).encode("gbk")
    workbook = Workbook()
    sheet = workbook.active
    for row in (
        ["工会经费代收入库明细"],
        ["纳税人识别号", "所属期", "工资总额", "实缴金额", "入库日期"],
        [t.employer_a, "2024年01月", 50000, 1000, "2024-01-10"],
        [t.employer_b, "2024-01", 20000, 400, "2024-01-12"],
        [t.employer_w, "2024-01", 10000, 200, "2024-01-12"],
        ["911101050000000001", "2024-01", 10000, 200, "2024-01-12"],
    ):
        sheet.append(row)
    levy = io.BytesIO()
    workbook.save(levy)
    return {
        "bank_file": ("对账单.csv", bank, "text/csv"),
        "levy_file": ("levy.xlsx", levy.getvalue(), XLSX_TYPE),
    }


def test_a_run_over_http_then_listed_exported_and_signed_off_once(api: Api) -> None:
    t = api.tree
    voucher = _levy(api, t.employer_a, t.base_a, "1000.00", "2024-01-10")
    _levy(api, t.employer_b, t.base_b, "400.00", "2024-01-12")
    form = {"organization_code": t.east, "period": "2024-01", "window_days": "3"}
    response = api.post(
        "/v1/reconciliations", token="east_clerk", data=form, files=_files(api, voucher)
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "open" and run["position"] > 0 and run["window_days"] == 3
    assert run["comparison"]["equal"] is True
    levy, bank = run["files"]
    assert levy["rows_read"] == 4 and levy["rows_matched"] == 2
    assert [(d["row"], d["kind"]) for d in levy["differences"]] == [
        (5, "missing_in_ledger"),
        (6, "bad_row"),
    ]
    assert bank["matched_by"] == {"reference": 1, "date_and_amount": 0, "window": 1}
    assert [(d["row"], d["kind"]) for d in bank["differences"]] == [
        (6, "missing_in_ledger"),
        (7, "bad_row"),
    ]
    assert bank["differences"][0]["file"]["amount"] == "-12.00"
    assert run["differences"] == 4
    told = {(m["kind"], m.get("employer_code")) for m in run["monitors"]}
    assert ("employer_without_levy", t.employer_w) in told
    assert ("levy_payable_overdue", None) not in told  # January 2024's payables are not late yet

    listed = api.get(
        "/v1/reconciliations", token="east_auditor", params={"organization_code": t.east}
    )
    assert listed.status_code == 200 and listed.json()["total"] == 1
    assert listed.json()["items"][0]["run_id"] == run["run_id"]
    path = f"/v1/reconciliations/{run['run_id']}"
    shown = api.get(path, token="east_auditor").json()
    assert shown["files"] == run["files"]
    exported = api.get(path, params={"format": "csv"}).content.decode("utf-8-sig")
    assert exported.count("无法读取的行") == 2 and exported.count("一致（") == 4
    sheet = load_workbook(io.BytesIO(api.get(path, params={"format": "xlsx"}).content))["明细"]
    assert sum(1 for r in sheet.iter_rows(values_only=True) if r[1] == "账簿缺少") == 2
    # The whole run, in both files: every line of the JSON below the headings, the header
    # naming the union and the period, amounts as numbers.
    lines = line_rows(shown)
    csv_rows = list(csv.reader(io.StringIO(exported)))
    heading = next(i for i, r in enumerate(csv_rows) if r and r[0] == "核对项目")
    assert len(csv_rows) - heading - 1 == len(lines)
    cells = list(sheet.iter_rows(values_only=True))
    at = next(i for i, r in enumerate(cells) if r and r[0] == "核对项目")
    assert len(cells) - at - 1 == len(lines)
    assert {t.east, shown["period"]} <= {str(c) for r in cells[:at] for c in r if c}
    amount = list(cells[at]).index("账簿金额")
    assert all(
        isinstance(r[amount], (int, float)) for r in cells[at + 1 :] if r[amount] is not None
    )

    assert api.post(f"{path}/sign-off", {"note": "ok"}, token="east_clerk").status_code == 403
    assert api.post(f"{path}/sign-off", {"note": "ok"}, token="west_auditor").status_code == 403
    signed = api.post(f"{path}/sign-off", {"note": "手续费待入账"}, token="east_auditor")
    assert signed.status_code == 200, signed.text
    body = signed.json()
    assert body["status"] == "signed_off" and body["note"] == "手续费待入账"
    assert body["signed_off_by"].startswith("token:") and body["signed_off_at"]
    again = api.post(f"{path}/sign-off", {"note": "again"}, token="east_auditor")
    assert again.status_code == 409
    after = api.get(path).json()
    assert after["files"] == run["files"] and after["note"] == "手续费待入账"


def test_bad_input_stores_nothing(api: Api) -> None:
    t = api.tree
    before = api.get("/v1/reconciliations", params={"organization_code": t.west}).json()["total"]
    no_heading = {"bank_file": ("b.csv", b"a,b\n1,2\n", "text/csv")}
    form = {"organization_code": t.west, "period": "2024-01"}
    response = api.post("/v1/reconciliations", data=form, files=no_heading)
    assert response.status_code == 422 and "heading" in response.text
    bad_period = api.post("/v1/reconciliations", data={**form, "period": "2024-13"})
    assert bad_period.status_code == 422
    outside = api.post("/v1/reconciliations", token="east_clerk", data=form)
    assert outside.status_code == 403
    auditor = api.post("/v1/reconciliations", token="west_auditor", data=form)
    assert auditor.status_code == 403
    after = api.get("/v1/reconciliations", params={"organization_code": t.west}).json()["total"]
    assert after == before
    assert api.get("/v1/reconciliations/not-a-run").status_code == 404
    assert api.post("/v1/reconciliations/not-a-run/sign-off", {"note": "x"}).status_code == 404


def test_alerts_name_overdue_levy_payables_and_unions_without_dues(api: Api) -> None:
    t = api.tree
    _levy(api, t.employer_b, t.base_b, "300.00", "2024-02-10")
    early = api.get(f"/v1/organizations/{t.east}/alerts", params={"as_of": "2024-03-31"})
    assert early.status_code == 200
    assert not [a for a in early.json()["items"] if a["kind"] == "levy_payable_overdue"]
    late = api.get(f"/v1/organizations/{t.east}/alerts", token="east_auditor").json()
    overdue = {
        (a["organization_code"], a["account_code"], a["counterparty"])
        for a in late["items"]
        if a["kind"] == "levy_payable_overdue"
    }
    assert (t.east, "211", t.root) in overdue and (t.east, "212", t.base_b) in overdue
    no_dues = {a["organization_code"] for a in late["items"] if a["kind"] == "no_dues"}
    assert {t.base_a, t.base_b} <= no_dues and t.base_w not in no_dues
    dues = {
        "organization_code": t.base_a,
        "period": late["as_of"][:7],
        "amount": "10.00",
        "received_on": late["as_of"],
    }
    assert api.post("/v1/funds/dues", dues, token="a_clerk").status_code == 201
    again = api.get(f"/v1/organizations/{t.east}/alerts").json()
    assert t.base_a not in {
        a["organization_code"] for a in again["items"] if a["kind"] == "no_dues"
    }
    assert api.get(f"/v1/organizations/{t.west}/alerts", token="east_auditor").status_code == 403


def test_a_retried_run_replays_and_another_file_under_the_same_key_is_refused(api: Api) -> None:
    t = api.tree
    form = {"organization_code": t.base_w, "period": "2024-01"}
    bank = "交易日期,摘要,金额\r\n2024-01-05,利息,1.00\r\n".encode("gbk")
    first = api.post(
        "/v1/reconciliations", key="run-w-1", data=form, files={"bank_file": ("b.csv", bank)}
    )
    assert first.status_code == 201, first.text
    again = api.post(
        "/v1/reconciliations", key="run-w-1", data=form, files={"bank_file": ("b.csv", bank)}
    )
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["run_id"] == first.json()["run_id"]
    other = api.post(
        "/v1/reconciliations",
        key="run-w-1",
        data=form,
        files={"bank_file": ("b.csv", bank + b"2024-01-06,x,2.00\r\n")},
    )
    assert other.status_code == 422
    listed = api.get("/v1/reconciliations", params={"organization_code": t.base_w}).json()
    assert listed["total"] == 1
    assert (
        api.get(
            "/v1/reconciliations", params={"organization_code": t.base_w, "page": 2, "page_size": 1}
        ).json()["items"]
        == []
    )


def test_a_statement_larger_than_a_json_body_is_taken(api: Api) -> None:
    line = "2023-12-01," + "利息" * 30 + ",1.00\r\n"
    bank = ("交易日期,摘要,金额\r\n" + line * 20_000).encode("gbk")
    assert len(bank) > 1024 * 1024  # the cap of a JSON body
    response = api.post(
        "/v1/reconciliations",
        data={"organization_code": api.tree.base_b, "period": "2024-01"},
        files={"bank_file": ("big.csv", bank)},
    )
    assert response.status_code == 201, response.text
    (bank_section,) = response.json()["files"]
    assert bank_section["rows_read"] == 20_000 and bank_section["rows_outside_period"] == 20_000
