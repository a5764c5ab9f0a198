"""CSV (UTF-8 with a BOM) and XLSX exports: Chinese headers and names, amounts exact, the
statements laid out as filed."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

from openpyxl import load_workbook

from projections.read_models.models import ReadModels
from projections.reports.exports import (
    balance_sheet_table,
    income_expenditure_table,
    journal_table,
    roll_table,
    to_csv,
    to_xlsx,
)
from service.commands import JoinMember, RecordDues, RecordExpense
from tests.service.scenario import found_tree, person

D = datetime.date


def test_exports_of_rolls_statements_and_journal(ledger):
    tree = found_tree(ledger)
    ledger.execute(
        JoinMember(
            id_number=person(5),
            name="王小丫",
            organization_code=tree.base_a,
            joined_on="2024-01-02",
            migrant_worker=True,
        )
    )
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="1234.50",
            received_on="2024-01-20",
        )
    )
    ledger.execute(
        RecordExpense(
            organization_code=tree.base_a,
            account_code="50404",
            amount="0.05",
            earmarked=True,
            description="帮扶",
            paid_on="2024-01-25",
        )
    )
    rm = ReadModels(ledger)
    rm.catch_up()

    roll = rm.roll(tree.base_a, as_of=D(2024, 2, 1))
    title, columns, rows, subtitle = roll_table(roll["items"], code=tree.base_a, as_of="2024-02-01")
    data = to_csv(title, columns, rows, subtitle=subtitle)
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == ["会员名册"]
    assert lines[2][:3] == ["工会组织代码", "姓名", "身份证号"]
    assert lines[3][1:3] == ["王小丫", person(5)] and "正常" in lines[3]

    sheet = rm.balance_sheet(tree.base_a, as_of=D(2024, 12, 31))
    title, columns, rows, subtitle = balance_sheet_table(sheet, "甲公司工会")
    text = to_csv(title, columns, rows, subtitle=subtitle).decode("utf-8-sig")
    assert text.startswith("工会01表 资产负债表") and "编制单位：甲公司工会" in text
    assert "银行存款,1234.45" in text and "负债和净资产总计,1234.45" in text

    ie = rm.income_expenditure(tree.base_a, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31))
    title, columns, rows, subtitle = income_expenditure_table(ie)
    book = load_workbook(
        io.BytesIO(to_xlsx(title, columns, rows, subtitle=subtitle, sheet="工会02表"))
    )
    ws = book["工会02表"]
    assert ws["A1"].value == "工会02表 收入支出表"
    assert [c.value for c in ws[3]] == ["类别", "科目编码", "项目", "专项", "非专项", "合计"]
    by_code = {row[1]: row for row in ws.iter_rows(min_row=4, values_only=True)}
    assert by_code["50404"][2] == "维权支出-困难职工帮扶"
    assert Decimal(str(by_code["50404"][3])) == Decimal("0.05")
    assert Decimal(str(by_code["401"][5])) == Decimal("1234.50")

    journal = rm.journal(tree.base_a, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31))
    title, columns, rows, subtitle = journal_table(
        journal["items"], code=tree.base_a, date_from="2024-01-01", date_to="2024-12-31"
    )
    text = to_csv(title, columns, rows, subtitle=subtitle).decode("utf-8-sig")
    assert "凭证号" in text and "收2024-01会费" in text
    rm.close()
