"""Documents a union files or an auditor keeps: statements, rolls, journals and reports as
CSV and XLSX, whole and streamed.

A Document is a header block (what it is of: the union, the date or period, as known when,
over which scope, the last event it counts, the seal that covers it, when it was made), Chinese
column headings, the rows, totals rows and, for statements, the signature line. Its rows are an
iterator that the writers consume once, as they write: an export of a million members holds a
bounded number of rows in memory (the reader's chunk, the writer's buffer).

- CSV: UTF-8 with a byte-order mark (Excel opens Chinese text correctly), the same rows and
  columns as the workbook, yielded as bytes in chunks.
- XLSX: a zip of SpreadsheetML parts written here, the sheet's XML streamed row by row into
  its zip entry (every text inline, so no shared-string table is held): a sheet named after
  the document, the header block, a frozen heading row, amounts as numbers formatted
  `#,##0.00`, dates as dates, bold totals, column widths set by what each column holds.
  openpyxl's write-only mode took six times as long for the same rows (see the XLSX section
  below for the figures).

A text cell that a spreadsheet would evaluate (`=`, `+`, `-`, `@` …) is written as inert text.
"""

from __future__ import annotations

import csv
import datetime
import io
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

BOM = "\ufeff"
AMOUNT_FORMAT = "#,##0.00"
DATE_FORMAT = "yyyy-mm-dd"
MAX_SHEET_NAME = 31  # Excel's limit
CSV_CHUNK_ROWS = 500
SIGNATURES = ("单位负责人：", "财务负责人：", "复核：", "制表：")
# Widths (in characters) by what a column holds: wide enough for the longest usual value.
WIDTHS = {
    "text": 14,
    "amount": 16,
    "date": 12,
    "timestamp": 26,
    "count": 10,
    "flag": 8,
    "code": 20,
    "long": 44,
    "id": 38,
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
FLAGS = {True: "是", False: "否"}


@dataclass(frozen=True)
class Column:
    """One column: the row's key, the Chinese heading, and what it holds (text, amount, date,
    timestamp, count, flag, code, long text or id): how it is written and how wide it is."""

    key: str
    heading: str
    kind: str = "text"
    labels: dict[Any, str] | None = None  # values shown by name (会籍状态: active → 正常)

    @property
    def width(self) -> int:
        return max(WIDTHS[self.kind], 2 * len(self.heading) + 2)


@dataclass
class Document:
    sheet: str  # the sheet's name, after the document: "工会01表 资产负债表"
    title: str
    header: Sequence[tuple[str, str]]  # (label, value): 编制单位, 截至, 范围, 事件位置 …
    columns: Sequence[Column]
    rows: Iterable[dict[str, Any]]
    totals: Sequence[dict[str, Any]] = field(default_factory=tuple)
    signatures: bool = False
    notes: Sequence[str] = field(default_factory=tuple)  # lines after the table


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would evaluate becomes inert text; numbers stay numbers."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def _amount(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _date(value: Any) -> datetime.date | None:
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def cell_text(column: Column, value: Any) -> str:
    """A value as the CSV shows it (and the XLSX for text columns)."""
    if value is None:
        return ""
    if column.labels is not None and value in column.labels:
        return column.labels[value]
    if isinstance(value, bool):
        return FLAGS[value]
    return str(neutralise(value)) if isinstance(value, str) else str(value)


# --- CSV ---------------------------------------------------------------------------------------


def csv_chunks(document: Document) -> Iterator[bytes]:
    """The document as UTF-8 CSV with a byte-order mark, in chunks of CSV_CHUNK_ROWS rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    buffer.write(BOM)
    writer.writerow([neutralise(document.title)])
    for label, value in document.header:
        writer.writerow([neutralise(label), neutralise(value)])
    writer.writerow([column.heading for column in document.columns])
    yield flush()
    pending = 0
    for row in document.rows:
        writer.writerow([cell_text(c, row.get(c.key)) for c in document.columns])
        pending += 1
        if pending >= CSV_CHUNK_ROWS:
            yield flush()
            pending = 0
    for row in document.totals:
        writer.writerow([cell_text(c, row.get(c.key)) for c in document.columns])
    for note in document.notes:
        writer.writerow([neutralise(note)])
    if document.signatures:
        writer.writerow(list(SIGNATURES))
    yield flush()


# --- XLSX --------------------------------------------------------------------------------------
#
# A workbook is a zip of XML parts. The parts that describe it (content types, relationships,
# the workbook's sheet list, the styles) are a few hundred bytes each; a sheet's XML is written
# row by row into its zip entry as the rows come, every text inline (`t="inlineStr"`), so what
# is held is one buffer of XLSX_FLUSH_ROWS rows, whatever the number of rows.
#
# Why not openpyxl or XlsxWriter: openpyxl's write-only mode built a cell object per value and
# took 0.5 ms a row of 11 cells (a roll of 100,000 members in 60 s on a loaded machine);
# XlsxWriter's constant_memory mode was about twice as fast. These parts are what they wrote,
# minus what no reader needs (a theme, document properties), written from strings.

XLSX_FLUSH_ROWS = 1000
# zlib's fastest level: a third less time than its default (6) for a file a sixth larger.
XLSX_COMPRESSION = 1
EXCEL_EPOCH = datetime.date(1899, 12, 30).toordinal()  # day 0 of Excel's 1900 date system
# Styles: positions in styles.xml's cellXfs (see _STYLES).
PLAIN, AMOUNT, DATE, BOLD, BOLD_AMOUNT, BOLD_DATE, TITLE = range(7)
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Characters XML 1.0 does not allow (controls other than tab, newline and carriage return;
# lone surrogates; U+FFFE and U+FFFF), and those written as references.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPED = re.compile('[&<>"\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')

_STYLES = (
    XML_DECLARATION + f'<styleSheet xmlns="{MAIN_NS}">'
    f'<numFmts count="1"><numFmt numFmtId="164" formatCode="{DATE_FORMAT}"/></numFmts>'
    '<fonts count="3">'
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>'
    "</fonts>"
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="7">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    # numFmtId 4 is Excel's built-in "#,##0.00" (AMOUNT_FORMAT)
    '<xf numFmtId="4" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="4" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1"/>'
    '<xf numFmtId="164" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"'
    ' applyFont="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def write_xlsx(document: Document, path: Path) -> int:
    """Writes the workbook to path (the sheet streamed into the zip as its rows come); returns
    the number of data rows written."""
    return write_workbook([document], path)


def write_workbook(documents: Sequence[Document], path: Path) -> int:
    """A workbook of one sheet per document (a report's summary and its lines, say); returns
    the number of data rows written, over all sheets."""
    if not documents:
        raise ValueError("a workbook needs at least one sheet")
    names = _sheet_names([document.sheet for document in documents])
    written = 0
    with zipfile.ZipFile(
        path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=XLSX_COMPRESSION
    ) as archive:
        archive.writestr("[Content_Types].xml", _content_types(len(documents)))
        archive.writestr(
            "_rels/.rels",
            XML_DECLARATION + f'<Relationships xmlns="{PKG_REL_NS}">'
            f'<Relationship Id="rId1" Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr("xl/workbook.xml", _workbook(names))
        archive.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(documents)))
        archive.writestr("xl/styles.xml", _STYLES)
        for number, document in enumerate(documents, start=1):
            with archive.open(f"xl/worksheets/sheet{number}.xml", "w") as entry:
                written += _write_sheet(entry, document, selected=number == 1)
    return written


def _content_types(sheets: int) -> str:
    kind = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return (
        XML_DECLARATION
        + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{kind}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{kind}.styles+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{kind}.worksheet+xml"/>'
            for n in range(1, sheets + 1)
        )
        + "</Types>"
    )


def _workbook(names: Sequence[str]) -> str:
    sheets = "".join(
        f'<sheet name="{_escape(name)}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(names, start=1)
    )
    return (
        XML_DECLARATION + f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f"<sheets>{sheets}</sheets></workbook>"
    )


def _workbook_rels(sheets: int) -> str:
    links = "".join(
        f'<Relationship Id="rId{n}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheets + 1)
    )
    return (
        XML_DECLARATION + f'<Relationships xmlns="{PKG_REL_NS}">{links}'
        f'<Relationship Id="rId{sheets + 1}" Type="{REL_NS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    )


def _sheet_names(names: Sequence[str]) -> list[str]:
    """Names Excel accepts, each once (Excel compares them ignoring case)."""
    taken: set[str] = set()
    chosen = []
    for name in names:
        clean = _sheet_name(name)
        candidate, n = clean, 1
        while candidate.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            candidate = clean[: MAX_SHEET_NAME - len(suffix)] + suffix
        taken.add(candidate.casefold())
        chosen.append(candidate)
    return chosen


def _sheet_name(name: str) -> str:
    # Excel refuses these characters in a sheet's name, and an apostrophe at either end.
    clean = re.sub(r"[\[\]:*?/\\]", " ", _FORBIDDEN.sub("", name)).strip().strip("'").strip()
    return clean[:MAX_SHEET_NAME].rstrip().rstrip("'") or "Sheet"


def _escape(text: str) -> str:
    """Text as XML character data: what XML forbids dropped, markup characters escaped, a
    carriage return kept as a reference (a parser turns a literal one into a newline)."""
    if _ESCAPED.search(text) is None:
        return text
    return (
        _FORBIDDEN.sub("", text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    )


def _inline(ref: str, text: str, style: int) -> str:
    """A text cell, or nothing for empty text."""
    if not text:
        return ""
    s = f' s="{style}"' if style else ""
    space = ' xml:space="preserve"' if text.strip() != text else ""
    return f'<c r="{ref}"{s} t="inlineStr"><is><t{space}>{_escape(text)}</t></is></c>'


def _number(ref: str, number: str, style: int) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}"{s}><v>{number}</v></c>'


def _clean(value: Any) -> Any:
    """A text value with what XML forbids dropped, before it is neutralised: dropping a
    control character afterwards could uncover a formula's first character."""
    if isinstance(value, str) and _FORBIDDEN.search(value) is not None:
        return _FORBIDDEN.sub("", value)
    return value


def _value_cell(ref: str, value: Any, bold: bool = False) -> str:
    """A cell of the title, header block or notes: numbers as numbers, dates as dates, the
    rest as inert text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        s = f' s="{BOLD}"' if bold else ""
        return f'<c r="{ref}"{s} t="b"><v>{int(value)}</v></c>'
    if (
        isinstance(value, int)
        or (isinstance(value, float) and math.isfinite(value))
        or (isinstance(value, Decimal) and value.is_finite())
    ):
        return _number(ref, str(value), BOLD if bold else PLAIN)
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return _number(ref, str(value.toordinal() - EXCEL_EPOCH), BOLD_DATE if bold else DATE)
    return _inline(ref, str(neutralise(_clean(value))), BOLD if bold else PLAIN)


def _column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


_CellWriter = Any  # (ref, value, bold) -> XML of the cell ("" for none)
TEXT_MODE, AMOUNT_MODE, DATE_MODE, COUNT_MODE = range(4)
# Text written as it is: no markup character, nothing XML forbids or a reader would change
# (a tab, newline or carriage return, spaces at either end), no formula's first character.
_PLAIN = re.compile(r'(?![=+\-@\s])[^&<>"\x00-\x1f\ud800-\udfff\ufffe\uffff]*(?<!\s)')
_TEXT = '" t="inlineStr"><is><t>'
_BOLD_TEXT = f'" s="{BOLD}" t="inlineStr"><is><t>'
_COUNT = '"><v>'
_BOLD_COUNT = f'" s="{BOLD}"><v>'
_DATE = f'" s="{DATE}"><v>'
_BOLD_DATE = f'" s="{BOLD_DATE}"><v>'
_PLAIN_STYLES = (_TEXT, _COUNT, _DATE)


def _mode(column: Column) -> int:
    if column.kind == "amount":
        return AMOUNT_MODE
    if column.kind == "date":
        return DATE_MODE
    if column.kind == "count" and column.labels is None:
        return COUNT_MODE
    return TEXT_MODE


def _cell_writer(column: Column) -> _CellWriter:
    """How a column's values are written: one function per column, chosen once per sheet."""

    def text(ref: str, value: Any, bold: bool) -> str:
        return _inline(ref, cell_text(column, _clean(value)), BOLD if bold else PLAIN)

    if column.kind == "amount":

        def amount(ref: str, value: Any, bold: bool) -> str:
            number = _amount(value)
            if number is None or not number.is_finite():
                return text(ref, value, bold)
            return _number(ref, str(number), BOLD_AMOUNT if bold else AMOUNT)

        return amount
    if column.kind == "date":

        def date(ref: str, value: Any, bold: bool) -> str:
            day = _date(value)
            if day is None:
                return text(ref, value, bold)
            return _number(ref, str(day.toordinal() - EXCEL_EPOCH), BOLD_DATE if bold else DATE)

        return date
    if column.kind == "count" and column.labels is None:

        def count(ref: str, value: Any, bold: bool) -> str:
            if isinstance(value, int) and not isinstance(value, bool):
                return _number(ref, str(value), BOLD if bold else PLAIN)
            return text(ref, value, bold)

        return count
    return text


def _write_sheet(entry: Any, document: Document, *, selected: bool) -> int:
    columns = document.columns
    heading_row = len(document.header) + 2
    # The rows below the headings scroll; the title, the header block and the headings stay.
    first = f"A{heading_row + 1}"
    widths = "".join(
        f'<col min="{n}" max="{n}" width="{column.width}" customWidth="1"/>'
        for n, column in enumerate(columns, start=1)
    )
    parts = [
        XML_DECLARATION
        + f'<worksheet xmlns="{MAIN_NS}"><sheetViews><sheetView'
        + (' tabSelected="1"' if selected else "")
        + ' workbookViewId="0">'
        f'<pane ySplit="{heading_row}" topLeftCell="{first}" activePane="bottomLeft"'
        ' state="frozen"/>'
        f'<selection pane="bottomLeft" activeCell="{first}" sqref="{first}"/>'
        "</sheetView></sheetViews>"
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{widths}</cols>" if widths else "")
        + "<sheetData>"
    ]
    number = 0

    def line(cells: Iterable[Any], bold: bool = False, style: int | None = None) -> None:
        nonlocal number
        number += 1
        r = str(number)
        written = "".join(
            _value_cell(_column_letter(n) + r, value, bold)
            if style is None
            else _inline(_column_letter(n) + r, str(neutralise(_clean(value))), style)
            for n, value in enumerate(cells, start=1)
        )
        parts.append(f'<row r="{r}">{written}</row>')

    line([document.title], style=TITLE)
    for label, shown in document.header:
        line([label, shown])
    line([column.heading for column in columns], style=BOLD)
    plan = [
        (_column_letter(n), column.key, _mode(column), column.labels, _cell_writer(column))
        for n, column in enumerate(columns, start=1)
    ]
    value: Any
    dates: dict[str, str] = {}  # the serial numbers of dates seen (a roll's dates repeat)
    written = 0
    for row in document.rows:
        number += 1
        r = str(number)
        bold = bool(row.get("total"))
        text, count, date = (_BOLD_TEXT, _BOLD_COUNT, _BOLD_DATE) if bold else _PLAIN_STYLES
        cells = ['<row r="', r, '">']
        # The usual values are written here, the rest (and anything unusual) by the column's
        # writer: a function call a cell is most of the time a row takes.
        for letter, key, mode, labels, write in plan:
            value = row.get(key)
            if value is None:
                continue
            if mode == TEXT_MODE:
                if labels is not None:
                    value = labels.get(value, value)
                if value.__class__ is bool:
                    value = FLAGS[value]
                if value.__class__ is str and value and _PLAIN.fullmatch(value):
                    cells += ('<c r="', letter, r, text, value, "</t></is></c>")
                    continue
            elif mode == COUNT_MODE:
                if value.__class__ is int:
                    cells += ('<c r="', letter, r, count, str(value), "</v></c>")
                    continue
            elif mode == DATE_MODE and value.__class__ is str:
                serial = dates.get(value)
                if serial is None and (day := _date(value)) is not None:
                    if len(dates) > 10_000:
                        dates.clear()
                    serial = dates[value] = str(day.toordinal() - EXCEL_EPOCH)
                if serial is not None:
                    cells += ('<c r="', letter, r, date, serial, "</v></c>")
                    continue
            cells.append(write(letter + r, value, bold))
        cells.append("</row>")
        parts.append("".join(cells))
        written += 1
        if written % XLSX_FLUSH_ROWS == 0:
            entry.write("".join(parts).encode("utf-8"))
            parts.clear()
    for row in document.totals:
        number += 1
        r = str(number)
        cells = [f'<row r="{r}">']
        for letter, key, _, _, write in plan:
            if (total := row.get(key)) is not None:
                cells.append(write(letter + r, total, True))
        cells.append("</row>")
        parts.append("".join(cells))
    for note in document.notes:
        line([note])
    if document.signatures:
        number += 1  # a blank row between the table and the signatures
        line(SIGNATURES)
    parts.append("</sheetData></worksheet>")
    entry.write("".join(parts).encode("utf-8"))
    return written
