"""Documents a union files or an auditor keeps: statements, rolls, journals and reports as
CSV and XLSX, whole and streamed.

A Document is a header block (what it is of: the union, the date or period, as known when,
over which scope, the last event it counts, the seal that covers it, when it was made), Chinese
column headings, the rows, totals rows and, for statements, the signature line. Its rows are an
iterator that the writers consume once, as they write: an export of a million members holds a
bounded number of rows in memory (the reader's chunk, the writer's buffer).

- CSV: UTF-8 with a byte-order mark (Excel opens Chinese text correctly), the same rows and
  columns as the workbook, yielded as bytes in chunks.
- XLSX: openpyxl's write-only mode, which streams rows to a temporary file: a sheet named after
  the document, the header block, a frozen heading row, amounts as numbers formatted
  `#,##0.00`, dates as dates, bold totals, column widths set by what each column holds.

A text cell that a spreadsheet would evaluate (`=`, `+`, `-`, `@` …) is written as inert text.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

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
BOLD = Font(bold=True)


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


def write_xlsx(document: Document, path: Path) -> int:
    """Writes the workbook to path (streamed: openpyxl's write-only mode); returns the number
    of data rows written."""
    return write_workbook([document], path)


def write_workbook(documents: Sequence[Document], path: Path) -> int:
    """A workbook of one sheet per document (a report's summary and its lines, say)."""
    workbook = Workbook(write_only=True)
    written = sum(_write_sheet(workbook, document) for document in documents)
    workbook.save(path)
    return written


def _write_sheet(workbook: Any, document: Document) -> int:
    sheet = workbook.create_sheet(_sheet_name(document.sheet))
    for index, column in enumerate(document.columns, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    heading_row = len(document.header) + 2
    # The rows below the headings scroll; the title, the header block and the headings stay.
    # (Set before the first row: a write-only sheet writes its view first.)
    sheet.freeze_panes = f"A{heading_row + 1}"
    bold = Font(bold=True)
    title = WriteOnlyCell(sheet, value=neutralise(document.title))
    title.font = Font(bold=True, size=14)
    sheet.append([title])
    for label, value in document.header:
        sheet.append([neutralise(label), neutralise(value)])
    headings = []
    for column in document.columns:
        cell = WriteOnlyCell(sheet, value=column.heading)
        cell.font = bold
        headings.append(cell)
    sheet.append(headings)
    written = 0
    for row in document.rows:
        sheet.append(_cells(sheet, document.columns, row, bold=bool(row.get("total"))))
        written += 1
    for row in document.totals:
        sheet.append(_cells(sheet, document.columns, row, bold=True))
    for note in document.notes:
        sheet.append([neutralise(note)])
    if document.signatures:
        sheet.append([])
        sheet.append(list(SIGNATURES))
    return written


def _sheet_name(name: str) -> str:
    # Excel refuses these characters in a sheet's name.
    clean = re.sub(r"[\[\]:*?/\\]", " ", name).strip() or "Sheet"
    return clean[:MAX_SHEET_NAME]


def _cells(sheet: Any, columns: Sequence[Column], row: dict[str, Any], *, bold: bool) -> list[Any]:
    """A row's cells: amounts and dates as styled cells (numbers and dates to Excel), the rest
    as plain values (a cell object each costs more than the value)."""
    cells: list[Any] = []
    for column in columns:
        value = row.get(column.key)
        styled = None
        if column.kind == "amount" and (amount := _amount(value)) is not None:
            styled = WriteOnlyCell(sheet, value=amount)
            styled.number_format = AMOUNT_FORMAT
        elif column.kind == "date" and (day := _date(value)) is not None:
            styled = WriteOnlyCell(sheet, value=day)
            styled.number_format = DATE_FORMAT
        elif bold:
            styled = WriteOnlyCell(
                sheet, value=cell_text(column, value) if value is not None else None
            )
        if styled is None:
            if column.kind == "count" and isinstance(value, int):
                cells.append(value)
            else:
                cells.append(cell_text(column, value) if value is not None else None)
            continue
        if bold:
            styled.font = BOLD
        cells.append(styled)
    return cells
