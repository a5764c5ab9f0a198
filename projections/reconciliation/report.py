"""The month-end reconciliation report as a workbook: a summary sheet, then one sheet per
reconciliation (rebuilt against live, levies against the tax bureau, bank) line by line."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook

from projections.reconciliation.reconcile import Section
from projections.reports.exports import add_sheet

OUTCOME_NAMES = {
    "matched": "一致",
    "missing_in_ledger": "账簿缺少",
    "missing_in_file": "外部文件缺少",
    "mismatched": "金额不符",
}
SUMMARY_COLUMNS = [
    ("check", "核对项目"),
    ("matched", "一致"),
    ("missing_in_ledger", "账簿缺少"),
    ("missing_in_file", "外部文件缺少"),
    ("mismatched", "金额不符"),
    ("result", "结论"),
]
LEVY_COLUMNS = [
    ("outcome", "结果"),
    ("employer_code", "缴费单位统一社会信用代码"),
    ("period", "所属期"),
    ("ledger_amount", "账簿金额"),
    ("file_amount", "税务金额"),
    ("difference", "差额"),
]
BANK_COLUMNS = [
    ("outcome", "结果"),
    ("ledger_date", "记账日期"),
    ("voucher_id", "凭证号"),
    ("description", "摘要"),
    ("ledger_amount", "账簿金额"),
    ("bank_line", "对账单行"),
    ("bank_date", "银行日期"),
    ("bank_amount", "银行金额"),
    ("reference", "银行摘要"),
    ("difference", "差额"),
]
REBUILD_COLUMNS = [
    ("table", "数据表"),
    ("key", "主键"),
    ("live", "现行数据"),
    ("rebuilt", "重建数据"),
]
REBUILD_TABLE_COLUMNS = [
    ("table", "数据表"),
    ("rows_live", "现行行数"),
    ("rows_rebuilt", "重建行数"),
    ("differing_rows", "不一致行数"),
    ("checksum_live", "现行校验和"),
    ("checksum_rebuilt", "重建校验和"),
]


def _rows(section: Section) -> list[dict[str, Any]]:
    rows = []
    for outcome in ("mismatched", "missing_in_ledger", "missing_in_file", "matched"):
        for row in getattr(section, outcome):
            rows.append({"outcome": OUTCOME_NAMES[outcome], **row})
    return rows


def summary_rows(
    period: str, rebuild: dict[str, Any] | None, sections: list[tuple[str, Section]]
) -> list[dict[str, Any]]:
    rows = []
    if rebuild is not None:
        comparison = rebuild["comparison"]
        rows.append(
            {
                "check": "读模型重建核对",
                "matched": None,
                "mismatched": comparison["differing_rows"],
                "result": "一致" if comparison["equal"] else "不一致",
            }
        )
    for _, section in sections:
        rows.append(
            {
                "check": section.name,
                **section.counts(),
                "result": "一致" if section.clean else "不一致",
            }
        )
    return rows


def workbook_bytes(
    period: str, rebuild: dict[str, Any] | None, sections: list[tuple[str, Section]]
) -> bytes:
    workbook = Workbook()
    add_sheet(
        workbook,
        "汇总",
        f"{period} 月末对账报告",
        SUMMARY_COLUMNS,
        summary_rows(period, rebuild, sections),
        first=True,
    )
    if rebuild is not None:
        comparison = rebuild["comparison"]
        add_sheet(
            workbook,
            "重建核对",
            "读模型重建与现行数据核对",
            REBUILD_TABLE_COLUMNS,
            comparison["tables"],
            subtitle=f"事件位置 {rebuild['position']}，重建 {rebuild['events']} 个事件",
        )
        diffs = [
            {
                "table": d["table"],
                "key": str(d["key"]),
                "live": str(d["live"]),
                "rebuilt": str(d["rebuilt"]),
            }
            for d in comparison["differences"]
        ]
        add_sheet(workbook, "重建差异", "不一致的行", REBUILD_COLUMNS, diffs)
    for kind, section in sections:
        columns = LEVY_COLUMNS if kind == "levy" else BANK_COLUMNS
        add_sheet(
            workbook, section.name[:31], f"{period} {section.name}核对", columns, _rows(section)
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
