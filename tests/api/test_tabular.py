"""The bounded table readers (api/tabular) on real files, one limit at a time: each refusal
names what was wrong, and a file just inside the limits reads as it should. Limits are
shrunk here so that the files stay small; tests/reliability/test_upload_bombs.py sends
full-size bombs to a real server."""

from __future__ import annotations

import codecs
import io
import struct
import zipfile
from dataclasses import replace
from typing import Any

import pytest
from openpyxl import Workbook

from api.tabular import Table, TableLimits
from api.tabular.limits import Deadline
from api.tabular.xlsx_archive import CheckedArchive
from domain.errors import ContentTooLarge, InvalidValue
from tests.api.workbooks import HEADER, NS, inline_row, sheet_xml, workbook

LIMITS = TableLimits()


def read(
    content: bytes, limits: TableLimits = LIMITS, width: int = 6
) -> tuple[list[Any] | None, list[tuple[int, list[Any]]]]:
    with Table(io.BytesIO(content), limits) as table:
        header = table.header()
        return header, list(table.rows(width)) if header is not None else []


def refusal(content: bytes, limits: TableLimits = LIMITS) -> InvalidValue:
    with pytest.raises(InvalidValue) as caught:
        read(content, limits)
    return caught.value


# CSV


def test_csv_in_utf8_with_or_without_bom_and_in_gb18030() -> None:
    text = "身份证号,姓名\r\n110105199003071234,欧阳娜娜\r\n"
    for content in (
        text.encode("utf-8"),
        codecs.BOM_UTF8 + text.encode("utf-8"),
        text.encode("gbk"),
        text.encode("gb18030"),
    ):
        header, rows = read(content, width=2)
        assert header == ["身份证号", "姓名"]
        assert rows == [(2, ["110105199003071234", "欧阳娜娜"])]


def test_csv_in_neither_encoding_is_refused() -> None:
    assert "UTF-8 or GB18030" in refusal(b"id,name\r\n\xff\xfe,x\r\n").message
    # A BOM says UTF-8: what follows is not read as GB18030 instead.
    assert "UTF-8 or GB18030" in refusal(codecs.BOM_UTF8 + "姓名".encode("gbk")).message


def test_csv_lines_end_in_cr_lf_or_cr_alone() -> None:
    for end in ("\r\n", "\n", "\r"):
        header, rows = read(end.join(["a,b", "1,2", "", "3,4", ""]).encode(), width=2)
        assert header == ["a", "b"] and rows == [(2, ["1", "2"]), (3, []), (4, ["3", "4"])]


def test_csv_record_longer_than_the_limit_is_refused_before_it_is_built() -> None:
    limits = replace(LIMITS, max_record_chars=100)
    # The line's end is part of it.
    assert read(b"a\r\n" + b"x" * 98 + b"\r\n", limits)[1] == [(2, ["x" * 98])]
    exc = refusal(b"a\r\n" + b"x" * 99 + b"\r\n", limits)
    assert isinstance(exc, ContentTooLarge)
    assert exc.message == "file: the CSV record at line 2 is longer than 100 characters, the limit"
    # A quoted record over several lines counts as one.
    exc = refusal(b'a\r\n"' + b"x\n" * 60 + b'"\r\n', limits)
    assert "the CSV record at line 2" in exc.message


def test_csv_record_with_more_fields_than_the_limit_is_refused() -> None:
    limits = replace(LIMITS, max_fields=4)
    assert read(b"a\r\n1,2,3,4\r\n", limits, width=9)[1] == [(2, ["1", "2", "3", "4"])]
    exc = refusal(b"a\r\n1,2,3,4,5\r\n", limits)
    assert isinstance(exc, ContentTooLarge) and "more than 4 fields" in exc.message


def test_cells_right_of_the_width_are_cut() -> None:
    assert read(b"a,b\r\n1,2,3,4\r\n", width=2)[1] == [(2, ["1", "2"])]


def test_every_row_counts_toward_the_row_limit_blank_ones_too() -> None:
    limits = replace(LIMITS, max_rows=3)
    assert len(read(b"a\r\n1\r\n\r\n,\r\n", limits)[1]) == 3
    exc = refusal(b"a\r\n1\r\n\r\n,\r\n\r\n", limits)
    assert "more than 3 rows after its header" in exc.message
    assert not isinstance(exc, ContentTooLarge)  # the row limit stays a 422, as it was


def test_reading_past_the_deadline_is_refused() -> None:
    past = replace(LIMITS, max_seconds=-1.0)  # over before it starts
    for content in (b"a\r\n1\r\n", xlsx([["a"], [1]])):
        exc = refusal(content, past)
        assert isinstance(exc, ContentTooLarge) and "takes more than -1 s" in exc.message


# XLSX


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_declared_dimension_is_ignored_and_rows_are_cut_to_the_width() -> None:
    rows = (
        inline_row(1, HEADER[:2])
        + inline_row(2, ["1", "x"])
        + '<row r="3"><c r="XFD3" t="inlineStr"><is><t>far</t></is></c></row>'
    )
    header, read_rows = read(workbook(sheet_xml(rows, "A1:XFD1048576")), width=2)
    assert header == ["id_number", "name"]  # not padded to 16,384 cells
    assert read_rows == [(2, ["1", "x"]), (3, [None, None])]


def test_rows_missing_from_a_sheet_count_toward_the_row_limit() -> None:
    rows = inline_row(1, ["a"]) + '<row r="5"><c r="A5"><v>1</v></c></row>'
    limits = replace(LIMITS, max_rows=4)
    assert read(workbook(sheet_xml(rows)), limits, width=1)[1] == [
        (2, [None]),
        (3, [None]),
        (4, [None]),
        (5, [1]),
    ]
    assert (
        "more than 3 rows"
        in refusal(workbook(sheet_xml(rows)), replace(LIMITS, max_rows=3)).message
    )


def members(content: bytes) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(io.BytesIO(content)).infolist()


def test_the_archive_directory_is_checked_before_it_is_read() -> None:
    content = xlsx([["a"], [1]])
    count = len(members(content))
    assert read(content, replace(LIMITS, max_members=count))[0] == ["a"]
    exc = refusal(content, replace(LIMITS, max_members=count - 1))
    assert isinstance(exc, ContentTooLarge)
    assert exc.message == (f"file: the workbook has {count:,} parts; the limit is {count - 1}")


def test_a_directory_larger_than_its_members_need_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("x" * 5000, b"")
    exc = refusal(out.getvalue(), replace(LIMITS, max_members=4))
    assert "the workbook's directory has 5,046 bytes; the limit is 4,096" in exc.message


def test_each_member_is_checked_for_its_size_its_ratio_and_the_total() -> None:
    content = xlsx([["a"], [1]])
    largest = max(members(content), key=lambda m: m.file_size)
    assert read(content, replace(LIMITS, max_member_bytes=largest.file_size))[0] == ["a"]
    exc = refusal(content, replace(LIMITS, max_member_bytes=largest.file_size - 1))
    assert isinstance(exc, ContentTooLarge)
    assert exc.message == (
        f"file: the workbook's {largest.filename} expands to "
        f"{largest.file_size:,} bytes; the limit is "
        f"{largest.file_size - 1:,} bytes"
    )
    exc = refusal(content, replace(LIMITS, ratio_floor_bytes=0, max_ratio=1))
    assert isinstance(exc, ContentTooLarge) and "the limit is 1 times" in exc.message
    total = sum(m.file_size for m in members(content))
    assert read(content, replace(LIMITS, max_total_bytes=total))[0] == ["a"]
    exc = refusal(content, replace(LIMITS, max_total_bytes=total - 1))
    assert isinstance(exc, ContentTooLarge) and "the workbook expands to more than" in exc.message


def test_encrypted_members_and_other_compressions_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("[Content_Types].xml", b"<Types/>")
    assert "compressed with method 12" in refusal(out.getvalue()).message
    content = bytearray(xlsx([["a"]]))
    directory = content.index(b"PK\x01\x02")
    content[directory + 8] |= 0x1  # the first member's "encrypted" flag
    assert "is encrypted" in refusal(bytes(content)).message


def lying_about_size(content: bytes, name: str, declared: int) -> bytes:
    """The archive with name's expanded size given as declared, in both of its headers."""
    data = bytearray(content)
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = 0
        while (at := data.find(signature, at)) >= 0:
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + len(name)] == name.encode():
                data[at + size_at : at + size_at + 4] = struct.pack("<I", declared)
            at += 4
    return bytes(data)


def test_a_member_that_expands_past_its_declared_size_is_refused() -> None:
    rows = inline_row(1, ["a"]) + "".join(inline_row(n, [str(n)]) for n in range(2, 2000))
    content = workbook(sheet_xml(rows))
    exc = refusal(lying_about_size(content, "xl/worksheets/sheet1.xml", 1000))
    assert exc.message.startswith("file: the workbook's xl/worksheets/sheet1.xml is damaged")


def sheet_with(body: str, dimension: str = "A1:A1") -> bytes:
    return workbook(sheet_xml(inline_row(1, ["a"]) + body, dimension))


def test_a_dtd_is_refused() -> None:
    doctype = b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY e "eeeeeeeeee">]>'
    content = workbook(doctype + sheet_xml(inline_row(1, ["&e;"])).split(b"?>", 1)[1])
    exc = refusal(content)
    assert isinstance(exc, ContentTooLarge) and "sheet1.xml declares a DTD" in exc.message


def test_xml_nesting_tokens_and_texts_are_bounded() -> None:
    deep = "<x>" * 70 + "</x>" * 70
    assert "nests deeper than 64" in refusal(sheet_with(f"</sheetData>{deep}<sheetData>")).message
    # expat is fed 64 KiB at a time: what it holds of a token is checked between two feeds.
    tag = f'<row r="2"><c r="A2" t="inlineStr" z="{"z" * 200_000}"/></row>'
    exc = refusal(sheet_with(tag), replace(LIMITS, max_token_bytes=30_000))
    assert "has a tag or comment longer than 30000 bytes" in exc.message
    comment = "<!--" + "c" * 200_000 + "-->"
    exc = refusal(sheet_with(comment), replace(LIMITS, max_token_bytes=30_000))
    assert "has a tag or comment longer than 30000 bytes" in exc.message
    text = inline_row(2, ["t" * 32_768])
    assert "has a text longer than 32767 characters" in refusal(sheet_with(text)).message
    assert read(sheet_with(inline_row(2, ["t" * 32_767])), width=1)[1] == [(2, ["t" * 32_767])]


def test_a_row_larger_than_the_limit_is_refused() -> None:
    def row(cells: int) -> str:  # 2 units a cell: <c> and <v>
        return '<row r="2">' + "".join(f"<c><v>{n}</v></c>" for n in range(cells)) + "</row>"

    limits = replace(LIMITS, max_row_cost=1_000)
    assert read(sheet_with(row(400)), limits, width=1)[1] == [(2, [0])]
    exc = refusal(sheet_with(row(600)), limits)
    assert "sheet1.xml has a row larger than 1,000 units" in exc.message


def test_rows_openpyxl_would_skip_count_toward_the_row_limit() -> None:
    # openpyxl skips a row numbered below the last (it yields nothing for it) but keeps it.
    again = '<row r="1"><c r="A1"><v>1</v></c></row>' * 5
    exc = refusal(sheet_with(again), replace(LIMITS, max_rows=4))
    assert "sheet1.xml has more than 4 rows after the header" in exc.message


def test_what_openpyxl_keeps_is_bounded() -> None:
    limits = replace(LIMITS, max_kept_cost=10_000)
    loose = "<x/>" * 2_000  # 4 units each, kept to the end of the read
    assert read(sheet_with(f"</sheetData>{loose}<sheetData>"), limits)[0] == ["a"]
    exc = refusal(sheet_with(f"</sheetData>{loose * 2}<sheetData>"), limits)
    assert isinstance(exc, ContentTooLarge)
    assert "sheet1.xml holds more than openpyxl may keep in memory: over 10,000" in exc.message

    def strings(count: int) -> list[bytes]:  # 2 units each
        items = "".join(f"<si><t>{n}</t></si>" for n in range(count))
        return [f'<sst xmlns="{NS}spreadsheetml/2006/main">{items}</sst>'.encode()]

    assert read(workbook(sheet_xml(inline_row(1, ["a"])), strings(4_000)), limits)[0] == ["a"]
    exc = refusal(workbook(sheet_xml(inline_row(1, ["a"])), strings(6_000)), limits)
    assert "sharedStrings.xml holds more than openpyxl may keep" in exc.message


def test_the_attributes_openpyxl_keeps_of_a_row_count() -> None:
    # r and spans (Excel writes them on every row) are not kept; a height is.
    def rows(extra: str) -> str:
        return "".join(
            f'<row r="{n}" spans="1:1"{extra}><c><v>{n}</v></c></row>' for n in range(2, 3_002)
        )

    limits = replace(LIMITS, max_kept_cost=5_000)
    assert len(read(sheet_with(rows("")), limits, width=1)[1]) == 3_000
    exc = refusal(sheet_with(rows(' ht="20" customHeight="1"')), limits)
    assert "sheet1.xml holds more than openpyxl may keep" in exc.message


def test_a_member_refused_once_is_refused_at_every_open() -> None:
    # Were openpyxl to swallow the refusal and open the part again, it would not get it.
    deep = "<x>" * 70 + "</x>" * 70
    archive = CheckedArchive(
        io.BytesIO(sheet_with(f"</sheetData>{deep}<sheetData>")), LIMITS, Deadline(60)
    )
    for _ in range(2):
        with pytest.raises(ContentTooLarge):
            archive.open("xl/worksheets/sheet1.xml")
