"""The files month-end reconciliation reads, made the way banks and tax bureaus make them."""

from __future__ import annotations

import datetime
import io

import pytest
from openpyxl import Workbook

from api.reconciliation_files import read_file
from domain.errors import InvalidValue

GOOD_CODE = "91440106000000005A"
OTHER_CODE = "91440106000000007G"


def bank_rows() -> list[list[object]]:
    return [
        ["中国工商银行账户明细"],
        ["账号：3602000109000012345", "户名：天河区总工会"],
        ["起止日期：2024-01-01至2024-01-31"],
        [],
        ["交易日期", "摘要", "借方发生额", "贷方发生额", "余额", "对方户名", "对方账号"],
        ["2024-01-10", "税务代收 拨缴经费", "", "2,469.14", "12,469.14", "国家金库", "1001"],
        ["2024/01/31", "手续费", "15.00", "", "12,454.14", "", ""],
        ["2024-01-32", "坏日期", "", "1.00", "", "", ""],
        ["合计", "", "15.00", "2,470.14", "", "", ""],
    ]


def csv_bytes(rows: list[list[object]], encoding: str) -> bytes:
    text = "\r\n".join(",".join(str(c) if "," not in str(c) else f'"{c}"' for c in r) for r in rows)
    return (text + "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_a_bank_csv_with_title_lines_and_debit_credit_columns(encoding: str) -> None:
    read = read_file(io.BytesIO(csv_bytes(bank_rows(), encoding)), "bank", "b.csv")
    assert read.heading_row == 5
    assert [(line.row, line.day, line.amount_fen) for line in read.lines] == [
        (6, datetime.date(2024, 1, 10), 246914),
        (7, datetime.date(2024, 1, 31), -1500),
    ]
    assert read.lines[0].balance_fen == 1246914 and read.lines[0].counterparty_name == "国家金库"
    assert [(b.row, b.field) for b in read.bad_rows] == [(8, "交易日期")]
    assert read.rows_read == 3


def test_a_bank_xlsx_with_title_rows_dates_and_numbers_as_cells() -> None:
    rows = bank_rows()
    rows[5] = [datetime.datetime(2024, 1, 10), "税务代收", None, 2469.14, 12469.14, "国家金库", "1"]
    rows[6] = [datetime.datetime(2024, 1, 31), "手续费", 15, None, 12454.14, None, None]
    read = read_file(io.BytesIO(xlsx_bytes(rows)), "bank", "b.xlsx")
    assert [(line.row, line.amount_fen) for line in read.lines] == [(6, 246914), (7, -1500)]
    assert [b.row for b in read.bad_rows] == [8]


def test_a_bank_statement_with_one_signed_amount() -> None:
    rows = [["date", "amount", "reference"], ["2024-01-10", "-15.00", "fee"], ["x", "1", ""]]
    read = read_file(io.BytesIO(csv_bytes(rows, "utf-8")), "bank")
    assert [(line.row, line.amount_fen) for line in read.lines] == [(2, -1500)]
    assert read.bad_rows[0].row == 3


def test_a_levy_file_in_gbk_with_a_bad_credit_code_among_good_rows() -> None:
    rows = [
        ["国家税务总局广州市天河区税务局 工会经费代收明细"],
        ["纳税人识别号", "纳税人名称", "所属期", "计费依据", "实缴金额", "入库日期"],
        [GOOD_CODE, "甲公司", "2024年01月", "123,457.00", "2469.14", "20240110"],
        ["91440106000000005B", "乙公司", "202401", "1000", "20.00", "2024-01-11"],
        [OTHER_CODE, "丙公司", "2024-01-01至2024-01-31", "25000", "500", "2024-01-12"],
        [OTHER_CODE, "丙公司", "2024-01", "25000", "五百", "2024-01-12"],
    ]
    read = read_file(io.BytesIO(csv_bytes(rows, "gbk")), "levy", "levy.csv")
    assert read.heading_row == 2
    assert [(x.row, x.employer_code, x.period, x.amount_fen) for x in read.lines] == [
        (3, GOOD_CODE, "2024-01", 246914),
        (5, OTHER_CODE, "2024-01", 50000),
    ]
    assert read.lines[0].payroll_fen == 12345700
    assert read.lines[0].paid_on == datetime.date(2024, 1, 10)
    assert [(b.row, b.field) for b in read.bad_rows] == [(4, "统一社会信用代码"), (6, "实缴金额")]


def test_a_levy_file_with_the_other_headings() -> None:
    rows = [["统一社会信用代码", "所属期", "工资总额", "实缴金额", "入库日期"]]
    rows.append([GOOD_CODE, "2024-01", "123457", "2469.14", "2024-01-10"])
    read = read_file(io.BytesIO(xlsx_bytes(rows)), "levy")
    assert [(x.row, x.amount_fen) for x in read.lines] == [(2, 246914)]


def test_a_file_without_a_heading_row_is_refused() -> None:
    with pytest.raises(InvalidValue) as caught:
        read_file(io.BytesIO(b"a,b\n1,2\n"), "bank")
    assert caught.value.field == "bank_file" and "交易日期" in caught.value.reason
    with pytest.raises(InvalidValue):
        read_file(io.BytesIO(b"\xff\xfe\x00garbage\x81"), "levy")
    with pytest.raises(InvalidValue) as old_excel:
        read_file(io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500), "bank")
    assert ".xlsx" in old_excel.value.reason
