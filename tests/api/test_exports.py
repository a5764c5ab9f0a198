"""Exports are whole filed documents: every row (never one page), the header block that says what
they reflect, totals that add up, amounts as numbers, the same rows in CSV and XLSX."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from projections.read_models import rolls
from tests.api.conftest import Api

PERIOD = {"from": "2024-01-01", "to": "2024-03-31"}
MEMBERS = 130  # more than a JSON page (100) and many export chunks (patched below)
DUES = 60  # 120 journal lines


@pytest.fixture(scope="module")
def filled(api: Api) -> Api:
    code = api.tree.base_b
    for _ in range(MEMBERS):
        api.join(code, joined_on="2024-01-15")
    for n in range(DUES):
        paid = api.post(
            "/v1/funds/dues",
            {
                "organization_code": code,
                "period": "2024-01",
                "amount": f"{10 + n}.05",
                "received_on": "2024-01-20",
            },
        )
        assert paid.status_code == 201, paid.text
    spent = api.post(
        "/v1/funds/expenses",
        {
            "organization_code": code,
            "account_code": "50404",
            "amount": "100.10",
            "earmarked": True,
            "description": "困难职工帮扶",
            "paid_on": "2024-03-05",
        },
    )
    assert spent.status_code == 201, spent.text
    return api


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The server runs in this process: small chunks make every export span many of them.
    monkeypatch.setattr(rolls, "EXPORT_CHUNK_ROWS", 7)


def _csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def _xlsx(content: bytes) -> tuple[Any, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(content))
    sheet = book.worksheets[0]
    return sheet, [tuple(row) for row in sheet.iter_rows(values_only=True)]


def _table(rows: list[Any], heading: str) -> tuple[list[Any], list[Any]]:
    """The headings row (the first whose first cell is `heading`) and the rows below it."""
    at = next(i for i, row in enumerate(rows) if row and row[0] == heading)
    return list(rows[at]), [row for row in rows[at + 1 :] if any(c not in (None, "") for c in row)]


def _both(api: Api, path: str, params: dict[str, Any], token: str = "admin") -> dict[str, Any]:
    found = {}
    for fmt in ("csv", "xlsx"):
        response = api.get(path, params={**params, "format": fmt}, token=token)
        assert response.status_code == 200, response.text
        found[fmt] = response.content
    return found


def _header_names(rows: list[Any], api: Api, code: str, *words: str) -> None:
    text = " ".join(str(c) for row in rows[:12] for c in row if c is not None)
    assert code in text and "事件位置" in text and "最新封印" in text
    for word in words:
        assert word in text, (word, text)


def _same_rows(csv_rows: list[list[str]], xlsx_rows: list[tuple[Any, ...]], n: int) -> None:
    """The CSV and the workbook hold the same rows, cell by cell as text."""
    assert len(csv_rows) == len(xlsx_rows) == n
    for c_row, x_row in zip(csv_rows, xlsx_rows, strict=True):
        for c, x in zip(c_row, x_row, strict=False):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                assert Decimal(c) == Decimal(str(x)), (c_row, x_row)
            elif isinstance(x, datetime.datetime):
                assert c == x.date().isoformat()
            else:
                assert c == ("" if x is None else str(x)), (c_row, x_row)


@pytest.mark.parametrize("token", ["admin", "admin_pii"])
def test_roll_export_is_whole_and_filed(filled: Api, token: str) -> None:
    api, code = filled, filled.tree.base_b
    path = f"/v1/organizations/{code}/roll"
    total = api.get(path, params={"as_of": "2024-06-30"}, token=token).json()["total"]
    assert total == MEMBERS
    files = _both(api, path, {"as_of": "2024-06-30", "page_size": 10, "page": 3}, token)
    csv_rows = _csv(files["csv"])
    sheet, xlsx_rows = _xlsx(files["xlsx"])
    assert sheet.title == "会员名册"
    assert sheet.freeze_panes is not None
    _header_names(xlsx_rows, api, code, "北京顺达物流有限公司工会委员会", "2024-06-30")
    headings, body = _table(xlsx_rows, "工会组织代码")
    assert "姓名" in headings and ("出生日期" in headings) == (token == "admin_pii")
    assert len(body) == MEMBERS
    joined = headings.index("入会日期")
    assert all(isinstance(row[joined], datetime.datetime) for row in body)
    _, csv_body = _table(csv_rows, "工会组织代码")
    _same_rows(csv_body, body, MEMBERS)
    if token == "admin":  # masked: names keep their first character only
        assert all(row[headings.index("姓名")] == "王*" for row in body)


def test_changes_and_journal_exports_are_whole(filled: Api) -> None:
    api, code = filled, filled.tree.base_b
    changes = f"/v1/organizations/{code}/roll/changes"
    total = api.get(changes, params=PERIOD).json()["total"]
    assert total == MEMBERS
    files = _both(api, changes, PERIOD)
    _, body = _table(_xlsx(files["xlsx"])[1], "工会组织代码")
    _, csv_body = _table(_csv(files["csv"]), "工会组织代码")
    _same_rows(csv_body, body, total)

    journal = f"/v1/organizations/{code}/journal"
    total = api.get(journal, params=PERIOD).json()["total"]
    assert total == 2 * DUES + 2
    files = _both(api, journal, PERIOD)
    sheet, rows = _xlsx(files["xlsx"])
    headings, body = _table(rows, "日期")
    _same_rows(_table(_csv(files["csv"]), "日期")[1], body, total)
    debit, credit = headings.index("借方金额"), headings.index("贷方金额")
    assert all(isinstance(row[debit], (int, float)) for row in body)
    assert sum(Decimal(str(r[debit])) for r in body) == sum(Decimal(str(r[credit])) for r in body)
    assert sheet.cell(row=rows.index(tuple(headings)) + 2, column=debit + 1).number_format == (
        "#,##0.00"
    )


def test_journal_filters_an_account_and_its_subaccounts(filled: Api) -> None:
    api, code = filled, filled.tree.base_b
    journal = f"/v1/organizations/{code}/journal"
    for account, expected in (("504", 1), ("50404", 1), ("401", DUES), ("102", DUES + 1)):
        found = api.get(journal, params={**PERIOD, "account_code": account}).json()
        assert found["total"] == expected, account
        assert all(i["account_code"].startswith(account) for i in found["items"])
        files = _both(api, journal, {**PERIOD, "account_code": account})
        assert len(_table(_xlsx(files["xlsx"])[1], "日期")[1]) == expected
    unknown = api.get(journal, params={**PERIOD, "account_code": "999"})
    assert unknown.status_code == 422, unknown.text


def _top_sum(lines: list[dict[str, Any]], kind: str, key: str) -> Decimal:
    """The sum of a section's top-level lines (a parent's line already holds its subaccounts)."""
    return sum(
        (
            Decimal(line[key])
            for line in lines
            if line["kind"] == kind
            and (line["account_code"] is None or len(line["account_code"]) == 3)
        ),
        Decimal(0),
    )


def test_balance_sheet_opening_closing_and_filed_totals(filled: Api) -> None:
    api, code = filled, filled.tree.base_b
    path = f"/v1/organizations/{code}/statements/balance-sheet"
    body = api.get(path, params={"as_of": "2024-03-31"}).json()
    assert body["balanced"] and body["as_of"] == "2024-03-31" and body["scope"] == "self"
    assert isinstance(body["position"], int) and body["position"] > 0
    totals = body["totals"]
    for column in ("opening", "closing"):
        assert Decimal(totals["assets"][column]) == Decimal(
            totals["liabilities_and_net_assets"][column]
        )
        for kind, key in (
            ("asset", "assets"),
            ("liability", "liabilities"),
            ("net_assets", "net_assets"),
        ):
            assert _top_sum(body["lines"], kind, column) == Decimal(totals[key][column])
    dues = sum(Decimal(f"{10 + n}.05") for n in range(DUES))
    assert Decimal(totals["surplus"]["closing"]) == dues - Decimal("100.10")

    files = _both(api, path, {"as_of": "2024-03-31"})
    sheet, rows = _xlsx(files["xlsx"])
    assert sheet.title == "工会01表 资产负债表"
    _header_names(rows, api, code, "2024-03-31")
    assert any(row and str(row[0]).startswith("单位负责人") for row in rows[-3:])
    headings, table = _table(rows, "类别")
    opening, closing = headings.index("年初数"), headings.index("期末数")
    by_name = {row[2]: row for row in table}
    for label, key in (("资产合计", "assets"), ("负债和净资产总计", "liabilities_and_net_assets")):
        assert Decimal(str(by_name[label][closing])) == Decimal(totals[key]["closing"])
        assert Decimal(str(by_name[label][opening])) == Decimal(totals[key]["opening"])
    assert by_name["资产合计"][closing] == by_name["负债和净资产总计"][closing]
    assert isinstance(by_name["资产合计"][closing], (int, float))
    csv_headings, csv_table = _table(_csv(files["csv"]), "类别")
    assert csv_headings == headings
    _same_rows(csv_table, table, len(table))


def test_income_expenditure_month_and_year_to_date(filled: Api) -> None:
    api, code = filled, filled.tree.base_b
    path = f"/v1/organizations/{code}/statements/income-expenditure"
    body = api.get(path, params={"from": "2024-03-01", "to": "2024-03-31"}).json()
    lines = {line["account_code"]: line for line in body["lines"]}
    dues = sum(Decimal(f"{10 + n}.05") for n in range(DUES))
    assert lines["401"]["amount"] == "0.00"  # none in March
    assert Decimal(lines["401"]["year_to_date"]["general"]) == dues
    assert lines["504"]["month"] == {"earmarked": "100.10", "general": "0.00", "amount": "100.10"}
    assert Decimal(body["totals"]["year_to_date"]["surplus"]) == dues - Decimal("100.10")
    assert body["totals"]["month"]["surplus"] == "-100.10"

    files = _both(api, path, {"from": "2024-03-01", "to": "2024-03-31"})
    sheet, rows = _xlsx(files["xlsx"])
    assert sheet.title == "工会02表 收入支出表"
    headings, table = _table(rows, "类别")
    year = headings.index("本年累计数")
    by_name = {row[2]: row for row in table}
    income = sum(
        Decimal(str(row[year])) for row in table if row[0] == "收入" and row[1] and len(row[1]) == 3
    )
    assert Decimal(str(by_name["收入合计"][year])) == income == dues
    assert Decimal(str(by_name["收支结余"][year])) == dues - Decimal("100.10")
    _same_rows(_table(_csv(files["csv"]), "类别")[1], table, len(table))


def test_trial_balance_export_totals(filled: Api) -> None:
    api, code = filled, filled.tree.base_b
    path = f"/v1/organizations/{code}/statements/trial-balance"
    body = api.get(path, params=PERIOD).json()
    files = _both(api, path, PERIOD)
    _, rows = _xlsx(files["xlsx"])
    headings, table = _table(rows, "科目编码")
    total = next(row for row in table if row[1] == "合计")
    assert Decimal(str(total[headings.index("本期借方")])) == Decimal(body["totals"]["debit"])
    assert total[headings.index("本期借方")] == total[headings.index("本期贷方")]
    _same_rows(_table(_csv(files["csv"]), "科目编码")[1], table, len(table))


def test_statement_known_at_names_its_position(filled: Api) -> None:
    api, code = filled, filled.tree.base_b
    path = f"/v1/organizations/{code}/statements/balance-sheet"
    before = api.get(path, params={"as_of": "2024-03-31"}).json()
    moment = datetime.datetime.now(datetime.UTC).isoformat()
    spent = api.post(
        "/v1/funds/expenses",
        {
            "organization_code": code,
            "account_code": "501",
            "amount": "1.00",
            "earmarked": False,
            "description": "更正",
            "paid_on": "2024-03-20",
        },
    )
    assert spent.status_code == 201
    then = api.get(path, params={"as_of": "2024-03-31", "known_at": moment}).json()
    now = api.get(path, params={"as_of": "2024-03-31"}).json()
    assert then["known_at"] == moment and then["position"] == before["position"]
    assert then["totals"] == before["totals"]
    assert now["position"] == spent.json()["position"] > then["position"]
    assert (
        Decimal(now["totals"]["assets"]["closing"])
        == Decimal(then["totals"]["assets"]["closing"]) - 1
    )


def test_consolidation_nets_what_moved_inside_the_subtree(api: Api) -> None:
    t = api.tree

    def levy(received_on: str) -> Decimal:
        """A levy at base_a; what base_a then owes east of it."""
        levied = api.post(
            "/v1/funds/levies",
            {
                "receiving_organization_code": t.base_a,
                "base_organization_code": t.base_a,
                "employer_code": t.employer_a,
                "period": "2025-01",
                "payroll_total": "10000.00",
                "amount": "200.00",
                "channel": "employer",
                "received_on": received_on,
            },
        )
        assert levied.status_code == 201, levied.text
        return sum(
            (
                Decimal(p["credit"])
                for p in levied.json()["postings"]
                if p["account_code"] == "211" and p.get("counterparty") == t.east
            ),
            Decimal(0),
        )

    # The first levy's share is remitted to east (which can then pay a subsidy), the
    # second's is still owed at the end of January.
    remitted = levy("2025-01-05")
    assert remitted > 0
    paid = api.post(
        "/v1/funds/remittances",
        {
            "from_organization_code": t.base_a,
            "to_organization_code": t.east,
            "kind": "upward",
            "amount": str(remitted),
            "period": "2025-01",
            "paid_on": "2025-01-06",
        },
    )
    assert paid.status_code == 201, paid.text
    assert levy("2025-01-07") > 0
    subsidy = api.post(
        "/v1/funds/subsidies",
        {
            "payer_organization_code": t.east,
            "recipient": {"organization_code": t.base_a},
            "programme": "general",
            "amount": "10.00",
            "earmarked": False,
            "approval_ref": "东总〔2025〕1号",
            "paid_on": "2025-01-20",
        },
    )
    assert subsidy.status_code == 201, subsidy.text
    path = f"/v1/organizations/{t.east}/statements"
    period = {"from": "2025-01-01", "to": "2025-01-31", "scope": "subtree"}
    plain = api.get(f"{path}/income-expenditure", params=period).json()
    merged = api.get(f"{path}/income-expenditure", params={**period, "consolidated": "true"})
    assert merged.status_code == 200, merged.text
    merged_body = merged.json()
    assert merged_body["consolidated"] is True and plain["consolidated"] is False

    def line(body: dict[str, Any], code: str) -> Decimal:
        return Decimal(next(x["amount"] for x in body["lines"] if x["account_code"] == code))

    assert line(plain, "508") == line(plain, "403") == Decimal("10.00")
    assert line(merged_body, "508") == line(merged_body, "403") == 0
    # What members of the subtree owe each other (211 towards east, from the journal's own
    # counterparties) is the group's levy income once consolidated.
    journal = api.get(
        f"/v1/organizations/{t.east}/journal",
        params={**period, "account_code": "211", "page_size": 1000},
    ).json()["items"]
    inside = {t.east, t.base_a, t.base_b}
    owed_inside = sum(
        (
            Decimal(i["credit"]) - Decimal(i["debit"])
            for i in journal
            if i["counterparty"] in inside
        ),
        Decimal(0),
    )
    assert owed_inside > 0
    assert line(merged_body, "402") - line(plain, "402") == owed_inside
    assert Decimal(merged_body["surplus"]) - Decimal(plain["surplus"]) == owed_inside

    day = {"as_of": "2025-01-31", "scope": "subtree"}
    sheet = api.get(f"{path}/balance-sheet", params=day).json()
    merged_sheet = api.get(f"{path}/balance-sheet", params={**day, "consolidated": "true"}).json()
    assert sheet["balanced"] and merged_sheet["balanced"]
    assert line(sheet, "211") - line(merged_sheet, "211") == owed_inside
    assert line(sheet, "102") == line(merged_sheet, "102")

    refused = api.get(
        f"{path}/balance-sheet", params={"as_of": "2025-01-31", "consolidated": "true"}
    )
    assert refused.status_code == 422, refused.text
    xlsx = api.get(
        f"{path}/balance-sheet", params={**day, "consolidated": "true", "format": "xlsx"}
    )
    assert "合并" in " ".join(str(c) for row in _xlsx(xlsx.content)[1][:8] for c in row if c)
