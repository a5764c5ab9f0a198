"""CSV (UTF-8 with a BOM) and XLSX exports: Chinese headers and names, amounts exact, the
statements laid out as filed."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

from openpyxl import load_workbook

from projections.read_models.models import ReadModels
from projections.reports import layouts
from projections.reports.documents import csv_chunks, write_xlsx
from service.commands import JoinMember, RecordDues, RecordExpense
from tests.service.scenario import found_tree, person

D = datetime.date


def test_exports_of_rolls_statements_and_journal(ledger, tmp_path):
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

    header = [("编制单位", "甲公司工会"), ("截至", "2024-12-31")]
    roll = rm.roll(tree.base_a, as_of=D(2024, 2, 1))
    lines = _csv(layouts.roll(header, roll["items"], unmasked=True))
    assert lines[0] == ["工会会员名册"] and lines[1] == ["编制单位", "甲公司工会"]
    assert lines[3][:3] == ["工会组织代码", "姓名", "身份证号"]
    assert lines[4][1:3] == ["王小丫", person(5)] and "正常" in lines[4]

    sheet = rm.balance_sheet(tree.base_a, as_of=D(2024, 12, 31))
    text = "\n".join(",".join(line) for line in _csv(layouts.balance_sheet(header, sheet)))
    assert text.startswith("资产负债表") and "编制单位,甲公司工会" in text
    assert "资产,102,银行存款,0.00,1234.45" in text and "负债和净资产总计,0.00,1234.45" in text
    assert text.endswith("单位负责人：,财务负责人：,复核：,制表：")

    ie = rm.income_expenditure(tree.base_a, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31))
    path = tmp_path / "ie.xlsx"
    write_xlsx(layouts.income_expenditure(header, ie), path)
    ws = load_workbook(path)["工会02表 收入支出表"]
    assert ws["A1"].value == "收入支出表"
    assert [c.value for c in ws[4]][:4] == ["类别", "科目编码", "项目", "本月数（专项）"]
    by_code = {row[1]: row for row in ws.iter_rows(min_row=5, values_only=True)}
    assert by_code["50404"][2] == "维权支出-困难职工帮扶"
    assert Decimal(str(by_code["50404"][9])) == Decimal("0.05")  # the period, earmarked
    assert Decimal(str(by_code["401"][11])) == Decimal("1234.50")  # the period's total
    assert ws.cell(row=5, column=12).number_format == "#,##0.00"

    journal = rm.journal(tree.base_a, date_from=D(2024, 1, 1), date_to=D(2024, 12, 31))
    text = "\n".join(",".join(line) for line in _csv(layouts.journal(header, journal["items"])))
    assert "凭证字号" in text and "收2024-01会费" in text
    rm.close()


def _csv(document) -> list[list[str]]:
    data = b"".join(csv_chunks(document))
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
