"""CSV (UTF-8 with a BOM, so that Excel reads Chinese text) and XLSX exports of rolls,
journals and statements, with Chinese headers and account names, laid out as filed:
a title line, a line naming the union and the date, then the table.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

Column = tuple[str, str]  # (key in the row dict, Chinese header)

BOM = "\ufeff"
AMOUNT_FORMAT = "#,##0.00"

# A masked roll gives the birth year only: the birth date is the hidden part of the masked
# identity number. Only an unmasked export (a token with the pii flag) has 出生日期.
ROLL_COLUMNS: list[Column] = [
    ("organization_code", "工会组织代码"),
    ("name", "姓名"),
    ("id_number", "身份证号"),
    ("sex", "性别"),
    ("birth_year", "出生年份"),
    ("mobile", "手机号码"),
    ("status", "会籍状态"),
    ("joined_on", "入会日期"),
    ("migrant_worker", "农民工"),
    ("new_employment_form", "新就业形态"),
    ("member_id", "会员编号"),
]
ROLL_COLUMNS_UNMASKED: list[Column] = [
    *ROLL_COLUMNS[:5],
    ("birth_date", "出生日期"),
    *ROLL_COLUMNS[5:],
]
CHANGE_COLUMNS: list[Column] = [
    ("organization_code", "工会组织代码"),
    ("name", "姓名"),
    ("id_number", "身份证号"),
    ("change_code", "会籍变化类型"),
    ("change_name", "变化类型名称"),
    ("reason_code", "变化原因"),
    ("effective_on", "生效日期"),
    ("recorded_at", "登记时间"),
    ("position", "事件序号"),
    ("member_id", "会员编号"),
]
JOURNAL_COLUMNS: list[Column] = [
    ("effective_on", "日期"),
    ("number", "凭证号"),
    ("voucher_id", "凭证ID"),
    ("organization_code", "工会组织代码"),
    ("account_code", "科目编码"),
    ("account_name", "科目名称"),
    ("description", "摘要"),
    ("debit", "借方金额"),
    ("credit", "贷方金额"),
    ("earmarked", "专项"),
    ("counterparty", "往来单位"),
    ("position", "事件序号"),
    ("recorded_at", "登记时间"),
]
BALANCE_SHEET_COLUMNS: list[Column] = [
    ("kind_name", "类别"),
    ("account_code", "科目编码"),
    ("account_name", "项目"),
    ("amount", "期末数"),
]
INCOME_COLUMNS: list[Column] = [
    ("kind_name", "类别"),
    ("account_code", "科目编码"),
    ("account_name", "项目"),
    ("earmarked", "专项"),
    ("general", "非专项"),
    ("amount", "合计"),
]
TRIAL_BALANCE_COLUMNS: list[Column] = [
    ("account_code", "科目编码"),
    ("account_name", "科目名称"),
    ("opening", "期初余额"),
    ("debit", "本期借方"),
    ("credit", "本期贷方"),
    ("closing", "期末余额"),
]
STATUS_NAMES = {
    "active": "正常",
    "retained": "保留会籍",
    "transfer_pending": "转接中",
    "left": "已离会",
}
SEX_NAMES = {"male": "男", "female": "女"}
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


# A text cell that starts with one of these is read by spreadsheets as a formula (CSV/DDE
# injection): such cells are written with a leading apostrophe, which Excel shows as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would evaluate becomes inert text; numbers stay numbers (a
    negative amount "-12.50" is a number to Excel, not a formula)."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


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


def to_csv(
    title: str | None,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    subtitle: str | None = None,
) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if title:
        writer.writerow([neutralise(title)])
    if subtitle:
        writer.writerow([neutralise(subtitle)])
    writer.writerow([header for _, header in columns])
    for row in rows:
        writer.writerow([neutralise(_cell(key, row.get(key))) for key, _ in columns])
    return (BOM + buffer.getvalue()).encode("utf-8")


def to_xlsx(
    title: str | None,
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    subtitle: str | None = None,
    sheet: str = "Sheet1",
) -> bytes:
    workbook = Workbook()
    add_sheet(workbook, sheet, title, columns, rows, subtitle=subtitle, first=True)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


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


# --- statements as filed -----------------------------------------------------------------


def _subtitle(body: dict[str, Any], name: str | None) -> str:
    union = f"编制单位：{name or body.get('organization_code', '')}"
    scope = "（含下级汇总）" if body.get("scope") == "subtree" else ""
    if "as_of" in body:
        when = f"{body['as_of']}"
    else:
        when = f"{body.get('from', '')} 至 {body.get('to', '')}"
    return f"{union}{scope}    {when}    单位：元"


def balance_sheet_table(body: dict[str, Any], name: str | None = None):
    """工会01表 资产负债表: lines by section with subtotals, as filed."""
    totals = body["totals"]
    rows: list[dict[str, Any]] = []
    for kind, label, total_key in (
        ("asset", "资产合计", "assets"),
        ("liability", "负债合计", "liabilities"),
        ("net_assets", "净资产合计", "net_assets"),
    ):
        rows.extend(line for line in body["lines"] if line["kind"] == kind)
        rows.append({"account_name": label, "amount": totals[total_key]})
    rows.append({"account_name": "本期收支结余", "amount": totals["surplus"]})
    rows.append(
        {"account_name": "负债和净资产总计", "amount": totals["liabilities_and_net_assets"]}
    )
    return "工会01表 资产负债表", BALANCE_SHEET_COLUMNS, rows, _subtitle(body, name)


def income_expenditure_table(body: dict[str, Any], name: str | None = None):
    """工会02表 收入支出表: income and expenditure with earmarked and general columns."""
    t = body["totals"]
    rows: list[dict[str, Any]] = []
    for kind, label, key in (
        ("income", "收入合计", "income"),
        ("expenditure", "支出合计", "expenditure"),
    ):
        rows.extend(line for line in body["lines"] if line["kind"] == kind)
        rows.append(
            {
                "account_name": label,
                "earmarked": t[f"{key}_earmarked"],
                "general": t[f"{key}_general"],
                "amount": t[key],
            }
        )
    rows.append(
        {
            "account_name": "收支结余",
            "earmarked": t["surplus_earmarked"],
            "general": t["surplus_general"],
            "amount": t["surplus"],
        }
    )
    return "工会02表 收入支出表", INCOME_COLUMNS, rows, _subtitle(body, name)


def trial_balance_table(body: dict[str, Any], name: str | None = None):
    rows = list(body["lines"])
    rows.append(
        {
            "account_name": "合计",
            "debit": body["totals"]["debit"],
            "credit": body["totals"]["credit"],
        }
    )
    return "科目余额表", TRIAL_BALANCE_COLUMNS, rows, _subtitle(body, name)


def journal_table(items: list[dict[str, Any]], *, code: str, date_from: str, date_to: str):
    subtitle = f"编制单位：{code}    {date_from} 至 {date_to}    单位：元"
    return "序时账", JOURNAL_COLUMNS, items, subtitle


def roll_columns(*, unmasked: bool) -> list[Column]:
    return ROLL_COLUMNS_UNMASKED if unmasked else ROLL_COLUMNS


def roll_table(items: list[dict[str, Any]], *, code: str, as_of: str, unmasked: bool = False):
    return ("会员名册", roll_columns(unmasked=unmasked), items, f"工会组织：{code}    截至 {as_of}")


def changes_table(items: list[dict[str, Any]], *, code: str, date_from: str, date_to: str):
    return (
        "会员会籍变化情况",
        CHANGE_COLUMNS,
        items,
        f"工会组织：{code}    {date_from} 至 {date_to}",
    )
