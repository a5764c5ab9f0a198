"""The XLSX writer of projections/reports/documents.py, read back with openpyxl (a full load,
not read-only): every column kind, total rows in bold, text a spreadsheet would evaluate or
an XML parser would refuse, a sheet name Excel would refuse, two sheets in one workbook."""

from __future__ import annotations

import datetime
import tracemalloc
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest
from openpyxl import load_workbook

from projections.reports.documents import (
    AMOUNT_FORMAT,
    DATE_FORMAT,
    SIGNATURES,
    Column,
    Document,
    write_workbook,
    write_xlsx,
)

COLUMNS = (
    Column("name", "姓名"),
    Column("amount", "金额", "amount"),
    Column("day", "日期", "date"),
    Column("at", "登记时间", "timestamp"),
    Column("count", "人数", "count"),
    Column("flag", "专项", "flag"),
    Column("code", "科目编码", "code"),
    Column("note", "摘要", "long"),
    Column("id", "会员编号", "id"),
    Column("status", "会籍状态", labels={"active": "正常"}),
)
HEADER = [("编制单位", "甲公司工会 & <分会>"), ("截至", "2024-12-31")]
ROWS = [
    {
        "name": "王芳",
        "amount": "1234.50",
        "day": "2024-01-20",
        "at": "2024-01-20T08:00:00+00:00",
        "count": 3,
        "flag": True,
        "code": "50404",
        "note": "帮扶",
        "id": "00001215-016b-45c5-95ef-9947f8eba1bf",
        "status": "active",
    },
    {  # hostile text, a negative amount, a date object, empty cells
        "name": '=HYPERLINK("http://x","y")',
        "amount": "-12.50",
        "day": datetime.date(1999, 12, 31),
        "count": None,
        "flag": False,
        "code": "-12.50",
        "note": 'a & b < c > d "e" \x01f\x1f',
        "id": "\x01=cmd|' /C calc'!A0",
        "status": "\r=1+1",
    },
    {"name": "  小计  ", "amount": "1222.00", "count": 3, "total": True},
]
TOTALS = [{"name": "合计", "amount": "1222.00", "count": 3}]


def _document(sheet: str, rows: Iterable[dict]) -> Document:
    return Document(
        sheet=sheet,
        title="测试表",
        header=HEADER,
        columns=COLUMNS,
        rows=iter(rows),  # consumed once, as the writers do
        totals=TOTALS,
        notes=["+注：单位为元"],
        signatures=True,
    )


def test_every_kind_of_column_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "doc.xlsx"
    assert write_xlsx(_document("工会/明细:[2024]*?", ROWS), path) == len(ROWS)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    book = load_workbook(path)
    assert book.sheetnames == ["工会 明细  2024"]  # / : [ ] * ? are refused by Excel
    sheet = book.active
    assert sheet.title == "工会 明细  2024"

    assert sheet["A1"].value == "测试表"
    assert sheet["A1"].font.b and sheet["A1"].font.sz == 14
    assert [[c.value for c in row] for row in sheet.iter_rows(min_row=2, max_row=3, max_col=2)] == [
        ["编制单位", "甲公司工会 & <分会>"],
        ["截至", "2024-12-31"],
    ]
    headings = sheet[4]
    assert [c.value for c in headings] == [c.heading for c in COLUMNS]
    assert all(c.font.b for c in headings)
    assert sheet.freeze_panes == "A5"  # the title, the header block and the headings stay
    for index, column in enumerate(COLUMNS, start=1):
        letter = chr(64 + index)
        assert sheet.column_dimensions[letter].width == column.width, column.key

    plain = {c.key: sheet.cell(row=5, column=i) for i, c in enumerate(COLUMNS, start=1)}
    assert plain["name"].value == "王芳" and plain["name"].data_type == "s"
    assert plain["amount"].value == 1234.5 and plain["amount"].data_type == "n"
    assert plain["amount"].number_format == AMOUNT_FORMAT
    assert plain["day"].value == datetime.datetime(2024, 1, 20)
    assert plain["day"].is_date and plain["day"].number_format == DATE_FORMAT
    assert plain["at"].value == "2024-01-20T08:00:00+00:00"  # a timestamp stays text
    assert plain["count"].value == 3 and plain["count"].data_type == "n"
    assert plain["flag"].value == "是"
    assert plain["code"].value == "50404" and plain["code"].data_type == "s"
    assert plain["note"].value == "帮扶"
    assert plain["id"].value == "00001215-016b-45c5-95ef-9947f8eba1bf"
    assert plain["status"].value == "正常"  # shown by its label
    assert not any(cell.font.b for cell in plain.values())

    hostile = {c.key: sheet.cell(row=6, column=i) for i, c in enumerate(COLUMNS, start=1)}
    assert hostile["name"].value == "'" + ROWS[1]["name"]
    assert hostile["amount"].value == -12.5 and hostile["amount"].data_type == "n"
    assert hostile["day"].value == datetime.datetime(1999, 12, 31)
    assert hostile["at"].value is None and hostile["count"].value is None
    assert hostile["flag"].value == "否"
    assert hostile["code"].value == "-12.50"  # a plain number as text is not a formula
    assert hostile["note"].value == 'a & b < c > d "e" f'  # control characters dropped
    # The control character goes before the check for a formula's first character.
    assert hostile["id"].value == "'=cmd|' /C calc'!A0"
    assert hostile["status"].value == "'\r=1+1"  # the carriage return kept as it was
    assert all(cell.data_type != "f" for cell in hostile.values())

    total = {c.key: sheet.cell(row=7, column=i) for i, c in enumerate(COLUMNS, start=1)}
    assert total["name"].value == "  小计  "  # spaces at either end kept
    assert total["amount"].value == 1222 and total["amount"].number_format == AMOUNT_FORMAT
    assert all(total[k].font.b for k in ("name", "amount", "count"))
    totals = {c.key: sheet.cell(row=8, column=i) for i, c in enumerate(COLUMNS, start=1)}
    assert totals["name"].value == "合计" and totals["name"].font.b
    assert totals["amount"].value == 1222 and totals["amount"].font.b
    assert totals["amount"].number_format == AMOUNT_FORMAT

    assert sheet["A9"].value == "'+注：单位为元"
    assert all(c.value is None for c in sheet[10])  # a blank row before the signatures
    assert [c.value for c in sheet[11]][: len(SIGNATURES)] == list(SIGNATURES)
    assert sheet.max_row == 11


def test_a_workbook_of_two_sheets(tmp_path: Path) -> None:
    path = tmp_path / "two.xlsx"
    many = [{"name": f"会员{n}", "amount": f"{n}.05", "day": "2024-02-29"} for n in range(2500)]
    written = write_workbook([_document("汇总", ROWS), _document("明细", many)], path)
    assert written == len(ROWS) + len(many)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    book = load_workbook(path)
    assert book.sheetnames == ["汇总", "明细"]
    lines = book["明细"]
    assert lines.freeze_panes == "A5"
    body = list(lines.iter_rows(min_row=5, max_row=4 + len(many), max_col=3, values_only=True))
    assert body[0] == ("会员0", 0.05, datetime.datetime(2024, 2, 29))
    assert body[-1] == ("会员2499", 2499.05, datetime.datetime(2024, 2, 29))
    assert book["汇总"]["A5"].value == "王芳"


def test_sheet_names_are_made_distinct(tmp_path: Path) -> None:
    path = tmp_path / "same.xlsx"
    write_workbook([_document("明细", []), _document("明细", []), _document("", [])], path)
    assert load_workbook(path).sheetnames == ["明细", "明细 (2)", "Sheet"]


def _peak_and_xml(path: Path, count: int) -> tuple[int, int]:
    rows = ({**ROWS[0], "count": n} for n in range(count))
    tracemalloc.start()
    try:
        write_xlsx(_document("大", rows), path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with zipfile.ZipFile(path) as archive:
        return peak, archive.getinfo("xl/worksheets/sheet1.xml").file_size


def test_rows_are_streamed_not_held(tmp_path: Path) -> None:
    """The sheet's XML goes into the zip as it is made: ten times the rows make ten times the
    XML, and the memory the writer holds (a buffer of XLSX_FLUSH_ROWS rows) stays the same."""
    small_peak, small_xml = _peak_and_xml(tmp_path / "small.xlsx", 2_000)
    peak, xml = _peak_and_xml(tmp_path / "big.xlsx", 20_000)
    assert xml > 9 * small_xml and xml > 8_000_000
    assert peak < small_peak + 1_000_000 and peak < xml / 2, (small_peak, peak, xml)
    sheet = load_workbook(tmp_path / "big.xlsx", read_only=True).active
    assert sum(1 for _ in sheet.iter_rows(min_row=5, values_only=True)) == 20_000 + 4


def test_a_workbook_needs_a_sheet(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one sheet"):
        write_workbook([], tmp_path / "none.xlsx")
