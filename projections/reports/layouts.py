"""What each exported document holds, as a union files it: its sheet name, title, columns and
totals rows. The writers (documents.py) know nothing of rolls or statements; this module knows
nothing of CSV or XLSX.

Statements are built from the same answer the API gives in JSON, so a file and the JSON never
disagree: the totals rows are the answer's totals, never sums made a second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from projections.reports.documents import Column, Document

STATUS_NAMES = {
    "active": "正常",
    "retained": "保留会籍",
    "transfer_pending": "转接中",
    "left": "已离会",
}
SEX_NAMES = {"male": "男", "female": "女"}

# A masked roll gives the birth year only: the birth date is the hidden part of the masked
# identity number. Only an unmasked export (a token with the pii flag) has 出生日期.
ROLL_COLUMNS = (
    Column("organization_code", "工会组织代码", "code"),
    Column("name", "姓名"),
    Column("id_number", "身份证号", "code"),
    Column("sex", "性别", "flag", labels=SEX_NAMES),
    Column("birth_year", "出生年份", "count"),
    Column("mobile", "手机号码", "code"),
    Column("status", "会籍状态", "text", labels=STATUS_NAMES),
    Column("joined_on", "入会日期", "date"),
    Column("migrant_worker", "农民工", "flag"),
    Column("new_employment_form", "新就业形态", "flag"),
    Column("member_id", "会员编号", "id"),
)
ROLL_COLUMNS_UNMASKED = (
    *ROLL_COLUMNS[:5],
    Column("birth_date", "出生日期", "date"),
    *ROLL_COLUMNS[5:],
)
CHANGE_COLUMNS = (
    Column("organization_code", "工会组织代码", "code"),
    Column("name", "姓名"),
    Column("id_number", "身份证号", "code"),
    Column("change_code", "会籍变化类型", "count"),
    Column("change_name", "变化类型名称"),
    Column("reason_code", "变化原因", "count"),
    Column("effective_on", "生效日期", "date"),
    Column("recorded_at", "登记时间", "timestamp"),
    Column("position", "事件位置", "count"),
    Column("member_id", "会员编号", "id"),
)
JOURNAL_COLUMNS = (
    Column("effective_on", "日期", "date"),
    Column("number", "凭证字号", "code"),
    Column("voucher_id", "凭证编号", "id"),
    Column("organization_code", "工会组织代码", "code"),
    Column("account_code", "科目编码", "code"),
    Column("account_name", "科目名称"),
    Column("description", "摘要", "long"),
    Column("debit", "借方金额", "amount"),
    Column("credit", "贷方金额", "amount"),
    Column("earmarked", "专项", "flag"),
    Column("counterparty", "往来单位", "code"),
    Column("position", "事件位置", "count"),
    Column("recorded_at", "登记时间", "timestamp"),
)
BALANCE_SHEET_COLUMNS = (
    Column("kind_name", "类别"),
    Column("account_code", "科目编码", "code"),
    Column("account_name", "项目", "long"),
    Column("opening", "年初数", "amount"),
    Column("closing", "期末数", "amount"),
)
INCOME_COLUMNS = (
    Column("kind_name", "类别"),
    Column("account_code", "科目编码", "code"),
    Column("account_name", "项目", "long"),
    Column("month_earmarked", "本月数（专项）", "amount"),
    Column("month_general", "本月数（非专项）", "amount"),
    Column("month", "本月数", "amount"),
    Column("year_earmarked", "本年累计数（专项）", "amount"),
    Column("year_general", "本年累计数（非专项）", "amount"),
    Column("year", "本年累计数", "amount"),
    Column("earmarked", "所选期间（专项）", "amount"),
    Column("general", "所选期间（非专项）", "amount"),
    Column("amount", "所选期间合计", "amount"),
)
TRIAL_BALANCE_COLUMNS = (
    Column("account_code", "科目编码", "code"),
    Column("account_name", "科目名称", "long"),
    Column("opening", "期初余额", "amount"),
    Column("debit", "本期借方", "amount"),
    Column("credit", "本期贷方", "amount"),
    Column("closing", "期末余额", "amount"),
)


def flatten(chunks: Iterable[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for chunk in chunks:
        yield from chunk


def roll(header: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]], *, unmasked: bool):
    return Document(
        sheet="会员名册",
        title="工会会员名册",
        header=header,
        columns=ROLL_COLUMNS_UNMASKED if unmasked else ROLL_COLUMNS,
        rows=rows,
    )


def roll_changes(header: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]]) -> Document:
    return Document(
        sheet="会籍变化明细",
        title="会员会籍变化明细",
        header=header,
        columns=CHANGE_COLUMNS,
        rows=rows,
    )


def journal(header: Sequence[tuple[str, str]], rows: Iterable[dict[str, Any]]) -> Document:
    return Document(
        sheet="序时账", title="序时账", header=header, columns=JOURNAL_COLUMNS, rows=rows
    )


def balance_sheet(header: Sequence[tuple[str, str]], body: dict[str, Any]) -> Document:
    """工会01表: assets, then liabilities, then net assets, each section with its total, and
    the grand total of liabilities and net assets, in both columns."""
    totals = body["totals"]
    rows: list[dict[str, Any]] = []
    for kind, label, key in (
        ("asset", "资产合计", "assets"),
        ("liability", "负债合计", "liabilities"),
        ("net_assets", "净资产合计", "net_assets"),
    ):
        rows.extend(line for line in body["lines"] if line["kind"] == kind)
        rows.append({"account_name": label, **totals[key], "total": True})
    rows.append(
        {"account_name": "负债和净资产总计", **totals["liabilities_and_net_assets"], "total": True}
    )
    return _statement("工会01表 资产负债表", "资产负债表", header, BALANCE_SHEET_COLUMNS, rows)


def income_expenditure(header: Sequence[tuple[str, str]], body: dict[str, Any]) -> Document:
    """工会02表: income, then expenditure, each with its total, and 收支结余; 本月数 and
    本年累计数 in earmarked and general parts, and the selected period's figures."""
    totals = body["totals"]
    rows: list[dict[str, Any]] = []
    for line in body["lines"]:
        rows.append(
            {
                **line,
                **_parts("month", line["month"]),
                **_parts("year", line["year_to_date"]),
            }
        )
    shaped: list[dict[str, Any]] = []
    for kind, label, key in (
        ("income", "收入合计", "income"),
        ("expenditure", "支出合计", "expenditure"),
        (None, "收支结余", "surplus"),
    ):
        shaped.extend(row for row in rows if kind is not None and row["kind"] == kind)
        shaped.append(
            {
                "account_name": label,
                **_total_parts("", totals, key),
                **_total_parts("month", totals["month"], key),
                **_total_parts("year", totals["year_to_date"], key),
                "total": True,
            }
        )
    return _statement("工会02表 收入支出表", "收入支出表", header, INCOME_COLUMNS, shaped)


def trial_balance(header: Sequence[tuple[str, str]], body: dict[str, Any]) -> Document:
    totals = body["totals"]
    rows = [*body["lines"]]
    rows.append(
        {
            "account_name": "合计",
            "debit": totals["debit"],
            "credit": totals["credit"],
            "total": True,
        }
    )
    return _statement("科目余额表", "科目余额表", header, TRIAL_BALANCE_COLUMNS, rows)


def _parts(prefix: str, figures: dict[str, str]) -> dict[str, str]:
    return {
        f"{prefix}_earmarked": figures["earmarked"],
        f"{prefix}_general": figures["general"],
        prefix: figures["amount"],
    }


def _total_parts(prefix: str, totals: dict[str, Any], key: str) -> dict[str, Any]:
    """A totals row's three figures for one column group (prefix "" is the selected period,
    whose columns are plain `earmarked`, `general`, `amount`)."""
    names = (
        ("earmarked", "general", "amount")
        if not prefix
        else (
            f"{prefix}_earmarked",
            f"{prefix}_general",
            prefix,
        )
    )
    return dict(
        zip(names, (totals[f"{key}_earmarked"], totals[f"{key}_general"], totals[key]), strict=True)
    )


def _statement(
    sheet: str,
    title: str,
    header: Sequence[tuple[str, str]],
    columns: Sequence[Column],
    rows: list[dict[str, Any]],
) -> Document:
    # Totals rows stay in their place in the layout (after their section), marked `total`:
    # the workbook writes them bold.
    return Document(
        sheet=sheet, title=title, header=header, columns=columns, rows=rows, signatures=True
    )
