"""The reconciliation report's workbook: one sheet per table, a title, Chinese headers, amounts
as numbers. (Rolls, journals and statements are filed documents: documents.py and layouts.py.)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from projections.reports.documents import AMOUNT_FORMAT, neutralise
from projections.reports.layouts import SEX_NAMES, STATUS_NAMES

Column = tuple[str, str]  # (key in the row dict, Chinese header)

AMOUNT_KEYS = frozenset(
    {
        "amount",
        "debit",
        "credit",
        "opening",
        "closing",
        "earmarked",
        "general",
        "ledger_amount",
        "bank_amount",
        "file_amount",
        "difference",
    }
)


def _cell(key: str, value: Any) -> Any:
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return ""
    if key == "status":
        return STATUS_NAMES.get(value, value)
    if key == "sex":
        return SEX_NAMES.get(value, value)
    return value


def add_sheet(
    workbook: Workbook,
    sheet: str,
    title: str | None,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    subtitle: str | None = None,
    first: bool = False,
) -> None:
    ws = workbook.active if first else workbook.create_sheet()
    ws.title = sheet[:31]
    width = max(1, len(columns))
    for text, bold in ((title, True), (subtitle, False)):
        if text:
            ws.append([neutralise(text)])
            ws.merge_cells(
                start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=width
            )
            ws.cell(ws.max_row, 1).font = Font(bold=bold, size=14 if bold else 11)
            ws.cell(ws.max_row, 1).alignment = Alignment(horizontal="center")
    ws.append([header for _, header in columns])
    header_row = ws.max_row
    for cell in ws[header_row]:
        cell.font = Font(bold=True)
    for row in rows:
        values = []
        for key, _ in columns:
            value = _cell(key, row.get(key))
            if key in AMOUNT_KEYS and isinstance(value, str) and _is_amount(value):
                value = Decimal(value)
            values.append(neutralise(value))
        ws.append(values)
        for i, value in enumerate(values, start=1):
            if isinstance(value, Decimal):
                ws.cell(ws.max_row, i).number_format = AMOUNT_FORMAT
    for i, (_, header) in enumerate(columns, start=1):
        ws.column_dimensions[ws.cell(header_row, i).column_letter].width = max(
            10, len(header) * 2 + 4
        )


def _is_amount(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True
