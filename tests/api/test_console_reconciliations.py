"""The console's 月末对账 pages over real HTTP on both stores: a run made through the API with
files that hold differences, listed and opened as an auditor reads it (every difference with
its row, the ledger's side and the file's side; the monitors; the whole-file exports through
the API's handler), masked for a token without the pii flag, and signed off through the
CSRF-protected form by auditors only."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from openpyxl import load_workbook

from tests.api.conftest import Api
from tests.api.console_walk import csrf_of, signed_in
from tests.api.test_console import _pii_reads
from tests.api.test_reconciliations import _files, _levy

MOBILE = "13912345678"
PAYEE = "张三丰"  # a person's name as a bank line's 对方户名
BAD_ROW_PAYEE = "李小龙"


@dataclass
class Runs:
    with_files: str
    books_only: str
    december_levy: str  # a voucher the January run finds missing from the bank statement


def _bank_file(voucher: str) -> bytes:
    """The bank statement of tests/api/test_reconciliations.py, with personal data in it: a
    mobile number in a 摘要 and people's names as counterparties."""
    return "\r\n".join(
        [
            "中国建设银行 单位账户交易明细",
            "账号：1100 1234 5678,户名：朝阳区总工会",
            "交易日期,摘要,借方发生额,贷方发生额,余额,对方户名,对方账号",
            f"2024-01-10,税务代收 {voucher},,1000.00,,国家金库,1",
            "2024-01-14,税务代收,,400.00,,国家金库,1",
            "2024-01-31,手续费,12.00,,,,",
            f"2024-01-31,坏金额,abc,,,{BAD_ROW_PAYEE},",
            f"2024-01-20,退款 联系 {MOBILE},50.00,,,{PAYEE},6222000011112222",
        ]
    ).encode("gbk")


def make_runs(api: Api) -> Runs:
    """Two runs of the east county made through the API by its clerk: January 2024 with both
    files (differences in each, personal data in the bank's), February with none."""
    t = api.tree
    voucher = _levy(api, t.employer_a, t.base_a, "1000.00", "2024-01-10")
    _levy(api, t.employer_b, t.base_b, "400.00", "2024-01-12")
    # Booked from the tax bureau's notice for December, in neither file (missing_in_file in
    # each: a difference with the ledger's side only).
    direct = {
        "receiving_organization_code": t.east,
        "base_organization_code": t.base_b,
        "employer_code": t.employer_b,
        "period": "2023-12",
        "payroll_total": "15000.00",
        "amount": "300.00",
        "channel": "tax",
        "received_on": "2024-01-25",
    }
    paid = api.post("/v1/funds/levies", direct, token="east_clerk")
    assert paid.status_code == 201, paid.text
    files = _files(api, voucher)
    files["bank_file"] = ("对账单.csv", _bank_file(voucher), "text/csv")
    form = {"organization_code": t.east, "period": "2024-01", "window_days": "3"}
    made = api.post("/v1/reconciliations", token="east_clerk", data=form, files=files)
    assert made.status_code == 201, made.text
    plain = api.post(
        "/v1/reconciliations",
        token="east_clerk",
        data={"organization_code": t.east, "period": "2024-02"},
    )
    assert plain.status_code == 201, plain.text
    return Runs(
        with_files=made.json()["run_id"],
        books_only=plain.json()["run_id"],
        december_levy=paid.json()["voucher_id"],
    )


@pytest.fixture(scope="module")
def runs(api: Api) -> Runs:
    return make_runs(api)


@pytest.fixture
def auditor(api: Api) -> Iterator[httpx.Client]:
    client = signed_in(api, "east_auditor")
    yield client
    client.close()


def _table(page: str, table_id: str) -> str:
    found = re.search(rf'<table class="data" id="{table_id}">(.*?)</table>', page, re.S)
    assert found is not None, table_id
    return found.group(1)


def _rows(table: str) -> list[list[str]]:
    """The body rows of a table, each as its cells' text."""
    return [cells for cells in map(_cells, re.findall(r"<tr>(.*?)</tr>", table, re.S)) if cells]


def _cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


def test_a_unions_runs_listed_and_one_opened(api: Api, runs: Runs, auditor) -> None:
    t = api.tree
    organization = auditor.get(f"/console/organizations/{t.east}")
    assert f'href="/console/organizations/{t.east}/reconciliations"' in organization.text
    listed = auditor.get(f"/console/organizations/{t.east}/reconciliations")
    assert listed.status_code == 200 and "月末对账" in listed.text
    rows = _table(listed.text, "runs")
    # Newest first: the February run (books only) above January's.
    assert rows.index(runs.books_only[:8]) < rows.index(runs.with_files[:8])
    assert "未签核" in rows
    only_january = auditor.get(
        f"/console/organizations/{t.east}/reconciliations", params={"period": "2024-01"}
    )
    assert runs.with_files[:8] in only_january.text
    assert runs.books_only[:8] not in only_january.text
    bad = auditor.get(f"/console/organizations/{t.east}/reconciliations", params={"period": "1"})
    assert bad.status_code == 422

    page = auditor.get(f"/console/reconciliations/{runs.with_files}")
    assert page.status_code == 200 and "2024-01 月末对账" in page.text
    # The summary per file: rows read, matched and by which rule, differences.
    summary = {cells[0]: cells[1:] for cells in _rows(_table(page.text, "run-summary"))}
    assert summary["拨缴经费（税务代收）"] == ["4", "2", "2", "0", "0", "2", "✗ 不一致"]
    # Bank: 5 rows read; matched by reference and by window; the fee, the refund, a bad row
    # and December's levy, which the statement lacks.
    assert summary["银行存款"] == ["5", "2", "1", "0", "1", "4", "✗ 不一致"]
    assert summary["账簿与读模型"][-1] == "✓ 一致"
    assert "表头在第 3 行" in page.text and "对账单.csv" in page.text
    # Every difference, with its row number, the ledger's side and the file's side.
    differences = _rows(_table(page.text, "differences"))
    by_row = {(d[0], d[2]): d for d in differences}
    assert len(differences) == 6
    [lacking] = [d for d in differences if d[1] == "外部文件缺少"]
    assert lacking[0] == "银行存款" and lacking[2] == ""
    assert lacking[4] == runs.december_levy[:8] and lacking[5:7] == ["2024-01-25", "300.00"]
    assert f'href="/console/vouchers/{runs.december_levy}"' in page.text
    assert by_row[("银行存款", "8")][1] == "账簿缺少" and by_row[("银行存款", "8")][9] == "-50.00"
    assert by_row[("银行存款", "6")][1] == "账簿缺少"
    assert by_row[("银行存款", "6")][9] == "-12.00" and by_row[("银行存款", "6")][10] == "手续费"
    assert by_row[("银行存款", "7")][1] == "无法读取的行"
    assert by_row[("拨缴经费（税务代收）", "5")][1] == "账簿缺少"
    assert t.employer_w in by_row[("拨缴经费（税务代收）", "5")][10]
    assert by_row[("拨缴经费（税务代收）", "6")][1] == "无法读取的行"
    # The monitors: the employer the bureau collected from that the ledger lacks.
    monitors = _table(page.text, "monitors")
    assert "税务已代收而账簿无记录的单位" in monitors and t.employer_w in monitors
    # The whole-file exports, answered by the API's handler.
    assert f'href="/console/reconciliations/{runs.with_files}/export.csv"' in page.text
    exported = auditor.get(f"/console/reconciliations/{runs.with_files}/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    text = exported.content.decode("utf-8-sig")
    assert text.count("无法读取的行") == 2 and text.count("一致（") == 4
    workbook = auditor.get(f"/console/reconciliations/{runs.with_files}/export.xlsx")
    assert workbook.status_code == 200
    assert load_workbook(io.BytesIO(workbook.content)).sheetnames == ["汇总", "明细"]
    assert auditor.get(f"/console/reconciliations/{runs.with_files}/export.pdf").status_code == 404
    assert auditor.get("/console/reconciliations/not-a-run").status_code == 404


def test_a_run_is_masked_for_a_token_without_the_pii_flag(api: Api, runs: Runs, auditor) -> None:
    path = f"/console/reconciliations/{runs.with_files}"
    page = auditor.get(path)
    assert page.status_code == 200
    assert "139****5678" in page.text and "李**" in page.text
    for secret in (MOBILE, PAYEE, BAD_ROW_PAYEE):
        assert secret not in page.text, secret
    exported = auditor.get(f"{path}/export.csv").content.decode("utf-8-sig")
    assert MOBILE not in exported and BAD_ROW_PAYEE not in exported
    # A pii token sees the file's lines whole, and its view is recorded as the API records it.
    before = _pii_reads(api)
    pii = signed_in(api, "east_clerk_pii")
    try:
        page = pii.get(path)
        assert MOBILE in page.text and BAD_ROW_PAYEE in page.text
    finally:
        pii.close()
    assert _pii_reads(api) == before + 1


def test_other_unions_see_no_run(api: Api, runs: Runs) -> None:
    client = signed_in(api, "west_auditor")
    try:
        assert client.get(f"/console/reconciliations/{runs.with_files}").status_code == 403
        assert (
            client.get(f"/console/organizations/{api.tree.east}/reconciliations").status_code == 403
        )
        assert (
            client.get(f"/console/reconciliations/{runs.with_files}/export.csv").status_code == 403
        )
        # Its form, posted to another union's run, signs nothing.
        csrf = csrf_of(client.get("/console").text)
        posted = client.post(
            f"/console/reconciliations/{runs.with_files}/sign-off",
            data={"csrf": csrf, "note": "ok", "idempotency_key": "west-1"},
        )
        assert posted.status_code == 403
        assert api.get(f"/v1/reconciliations/{runs.with_files}").json()["status"] == "open"
    finally:
        client.close()


def _form(page: str) -> dict[str, str]:
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert key is not None
    return {"csrf": csrf_of(page), "idempotency_key": key.group(1)}


def test_sign_off_with_the_form_by_auditors_only(api: Api, runs: Runs, auditor) -> None:
    path = f"/console/reconciliations/{runs.books_only}"
    clerk = signed_in(api, "east_clerk")
    try:
        page = clerk.get(path)
        assert page.status_code == 200 and "/sign-off" not in page.text
        assert clerk.get(f"{path}/sign-off").status_code == 403
        refused = clerk.post(
            f"{path}/sign-off",
            data={"note": "ok", "csrf": csrf_of(page.text), "idempotency_key": "k1"},
        )
        assert refused.status_code == 403
    finally:
        clerk.close()
    assert api.get(path.replace("/console/", "/v1/")).json()["status"] == "open"

    page = auditor.get(path)
    assert f'href="{path}/sign-off"' in page.text
    form_page = auditor.get(f"{path}/sign-off")
    assert form_page.status_code == 200 and 'id="sign-off-form"' in form_page.text
    form = _form(form_page.text)
    # Without the CSRF value, or from another site: refused, nothing signed.
    without = {"note": "已核对", "idempotency_key": form["idempotency_key"]}
    assert auditor.post(f"{path}/sign-off", data=without).status_code == 403
    cross_site = auditor.post(
        f"{path}/sign-off",
        data={**form, "note": "已核对"},
        headers={"Origin": "http://evil.example"},
    )
    assert cross_site.status_code == 403
    empty = auditor.post(f"{path}/sign-off", data={**form, "note": "  "})
    assert empty.status_code == 422 and "请填写签核意见" in empty.text
    too_long = auditor.post(f"{path}/sign-off", data={**form, "note": "长" * 2001})
    assert too_long.status_code == 422 and "请填写签核意见" in too_long.text
    # Signed out: the form's POST leads to the sign-in page and signs nothing.
    with httpx.Client(base_url=api.server.url, timeout=60) as stranger:
        stranger_form = stranger.get("/console/sign-in")
        refused = stranger.post(
            f"{path}/sign-off",
            data={**form, "csrf": csrf_of(stranger_form.text), "note": "已核对"},
        )
        assert refused.status_code == 303 and "/console/sign-in" in refused.headers["location"]
    assert api.get(path.replace("/console/", "/v1/")).json()["status"] == "open"

    signed = auditor.post(f"{path}/sign-off", data={**form, "note": "已核对，手续费下月入账"})
    assert signed.status_code == 303 and signed.headers["location"] == path
    run = api.get(path.replace("/console/", "/v1/")).json()
    assert run["status"] == "signed_off" and run["note"] == "已核对，手续费下月入账"
    shown = auditor.get(path)
    assert "✓ 已签核" in shown.text and run["signed_off_by"] in shown.text
    assert "已核对，手续费下月入账" in shown.text and f'href="{path}/sign-off"' not in shown.text
    again = auditor.get(f"{path}/sign-off")
    assert (
        again.status_code == 200
        and '<form method="post" action="/console/reconciliations' not in again.text
    )
    assert "此次对账已签核" in again.text
    # The same form sent twice replays the first sign-off; a new one is refused (409).
    replay = auditor.post(f"{path}/sign-off", data={**form, "note": "已核对，手续费下月入账"})
    assert replay.status_code == 303
    second = auditor.post(
        f"{path}/sign-off", data={**form, "idempotency_key": "another", "note": "再签一次"}
    )
    assert second.status_code == 409
    listed = auditor.get(f"/console/organizations/{api.tree.east}/reconciliations")
    assert "✓ 已签核" in listed.text
