"""A reconciliation run as people read it: the same rows as text (the command line), CSV and
a workbook (a summary sheet and one sheet of every line, matched or not). Exports are whole."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from domain.reconciliation import DIFFERENCE_NAMES, RULE_NAMES
from projections.reports.documents import Column, Document, csv_chunks, write_workbook

FILE_NAMES = {"levy": "拨缴经费（税务代收）", "bank": "银行存款"}
STATUS_NAMES = {"open": "未签核", "signed_off": "已签核"}
LINE_COLUMNS = (
    Column("file", "核对项目"),
    Column("outcome", "结果"),
    Column("row", "文件行号", "count"),
    Column("reason", "说明", "long"),
    Column("voucher_id", "凭证", "id"),
    Column("ledger_date", "账簿日期", "date"),
    Column("ledger_amount", "账簿金额", "amount"),
    Column("ledger_text", "账簿摘要/缴费单位", "long"),
    Column("file_date", "文件日期", "date"),
    Column("file_amount", "文件金额", "amount"),
    Column("file_text", "文件摘要/缴费单位", "long"),
)
SUMMARY_COLUMNS = (
    Column("check", "核对项目"),
    Column("rows_read", "读取行数", "count"),
    Column("rows_matched", "匹配行数", "count"),
    Column("by_reference", "按凭证/代码", "count"),
    Column("by_date_and_amount", "按日期和金额", "count"),
    Column("by_window", "按日期窗口", "count"),
    Column("differences", "差异数", "count"),
    Column("result", "结论"),
)


def _side_text(side: dict[str, Any], *, raw: bool = False) -> str:
    if raw:  # a row that could not be read: its cells as they were
        return " | ".join(str(v) for k, v in side.items() if k != "row" and v)
    if "employer_code" in side:
        return f"{side['employer_code']} {side.get('period') or ''}".strip()
    return side.get("description") or side.get("summary") or ""


def _line(kind: str, outcome: str, item: dict[str, Any]) -> dict[str, Any]:
    ours, theirs = item.get("ledger") or {}, item.get("file") or {}
    return {
        "file": FILE_NAMES.get(kind, kind),
        "outcome": outcome,
        "row": item.get("row"),
        "reason": item.get("reason", ""),
        "voucher_id": ours.get("voucher_id"),
        "ledger_date": ours.get("date") or ours.get("received_on"),
        "ledger_amount": ours.get("amount"),
        "ledger_text": _side_text(ours) if ours else "",
        "file_date": theirs.get("date") or theirs.get("paid_on"),
        "file_amount": theirs.get("amount"),
        "file_text": _side_text(theirs, raw=item.get("kind") == "bad_row") if theirs else "",
    }


def line_rows(
    run: dict[str, Any], *, matches: bool = True, monitors: bool = True
) -> list[dict[str, Any]]:
    """Every difference of the run (the books check's too), the monitors, then every match."""
    rows = [
        {
            "file": "账簿与读模型" if "account_code" in d else "读模型重建核对",
            "outcome": "不一致",
            "reason": (
                f"科目 {d['account_code']}: 账簿 {d['books']}, 读模型 {d['read_models']}"
                if "account_code" in d
                else f"{d['table']} {d['key']}"
            ),
        }
        for d in run["comparison"].get("differences", [])
    ]
    for section in run["files"]:
        rows += [
            _line(section["kind"], DIFFERENCE_NAMES[d["kind"]], d) for d in section["differences"]
        ]
    rows += [
        {"file": "监测", "outcome": m["kind"], "reason": m["message"]}
        for m in (run.get("monitors", []) if monitors else [])
    ]
    if matches:
        for section in run["files"]:
            rows += [
                _line(section["kind"], f"一致（{RULE_NAMES[m['rule']]}）", m)
                for m in section["matches"]
            ]
    return rows


def summary_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    comparison = run["comparison"]
    rows = [
        {
            "check": "账簿与读模型" if comparison["method"] == "books" else "读模型重建核对",
            "differences": comparison["differing_rows"],
            "result": "一致" if comparison["equal"] else "不一致",
        }
    ]
    for section in run["files"]:
        rows.append(
            {
                "check": FILE_NAMES.get(section["kind"], section["kind"]),
                "rows_read": section["rows_read"],
                "rows_matched": section["rows_matched"],
                "by_reference": section["matched_by"]["reference"],
                "by_date_and_amount": section["matched_by"]["date_and_amount"],
                "by_window": section["matched_by"]["window"],
                "differences": section["differences_count"],
                "result": "一致" if not section["differences_count"] else "不一致",
            }
        )
    return rows


def subtitle(run: dict[str, Any]) -> str:
    text = (
        f"{run['organization_code']} {run['period']} 对账 {run['run_id']}，"
        f"日期窗口 {run['window_days']} 天，{STATUS_NAMES.get(run['status'], run['status'])}"
    )
    if run.get("signed_off_by"):
        text += f"（{run['signed_off_by']} {run['signed_off_at']}）"
    return text


def _header(run: dict[str, Any]) -> list[tuple[str, str]]:
    header = [
        ("工会组织", run["organization_code"]),
        ("期间", run["period"]),
        ("对账编号", run["run_id"]),
        ("日期窗口", f"{run['window_days']} 天"),
        ("状态", STATUS_NAMES.get(run["status"], run["status"])),
    ]
    if run.get("signed_off_by"):
        header.append(("签核", f"{run['signed_off_by']} {run['signed_off_at']}"))
    return header


def documents(run: dict[str, Any]) -> list[Document]:
    """The run as filed: a summary sheet, then every line, matched or not."""
    title = f"{run['period']} 月末对账报告"
    return [
        Document("汇总", title, _header(run), SUMMARY_COLUMNS, summary_rows(run)),
        Document("明细", title, _header(run), LINE_COLUMNS, line_rows(run)),
    ]


def workbook_bytes(run: dict[str, Any]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ledger-report-") as tmp:
        path = Path(tmp) / "report.xlsx"
        write_workbook(documents(run), path)
        return path.read_bytes()


def csv_bytes(run: dict[str, Any]) -> bytes:
    """Every line of the run (the workbook's 明细 sheet)."""
    return b"".join(csv_chunks(documents(run)[1]))


def text_report(run: dict[str, Any], limit: int | None = None) -> tuple[list[str], int]:
    """The run as lines of text: the summary, then every difference (or the first `limit`).
    Returns the lines and how many differences were left out."""
    out = [subtitle(run)]
    comparison = run["comparison"]
    what = (
        "books against read models" if comparison["method"] == "books" else "rebuilt against live"
    )
    out.append(
        f"  {what}: {'equal' if comparison['equal'] else 'DIFFERENT'}"
        f" ({comparison['differing_rows']} differing, position {comparison['position']})"
    )
    for section in run["files"]:
        by = section["matched_by"]
        out.append(
            f"  {FILE_NAMES.get(section['kind'])} [{section['file_name']}]: "
            f"{section['rows_read']} rows read (heading on row {section['heading_row']}), "
            f"{section['rows_matched']} matched (reference {by['reference']}, "
            f"date and amount {by['date_and_amount']}, window {by['window']}), "
            f"{section['differences_count']} differences"
            + (
                f", {section['rows_outside_period']} rows outside the period"
                if section["rows_outside_period"]
                else ""
            )
        )
        if section["kind"] == "bank":
            out.append(
                f"    closing 余额: file {section.get('closing_balance_file')}, "
                f"ledger {section.get('closing_balance_ledger')}"
            )
    monitors = run.get("monitors", [])
    if monitors:
        kinds: dict[str, int] = {}
        for monitor in monitors:
            kinds[monitor["kind"]] = kinds.get(monitor["kind"], 0) + 1
        out.append("  monitors: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
        for monitor in monitors if limit is None else monitors[:limit]:
            out.append(f"    ! {monitor['message']}")
        if limit is not None and len(monitors) > limit:
            out.append(f"    ... and {len(monitors) - limit} more monitor alerts in the report")
    rows = line_rows(run, matches=False, monitors=False)
    shown = rows if limit is None else rows[:limit]
    for row in shown:
        where = f"row {row['row']}" if row.get("row") else "ledger"
        parts = [f"{row['file']} {row['outcome']} ({where})"]
        if row.get("reason"):
            parts.append(row["reason"])
        if row.get("voucher_id") or row.get("ledger_amount"):
            parts.append(
                f"ledger: {row.get('voucher_id') or ''} {row.get('ledger_date') or ''} "
                f"{row.get('ledger_amount') or ''} {row.get('ledger_text') or ''}".strip()
            )
        if row.get("file_amount") or row.get("file_text"):
            parts.append(
                f"file: {row.get('file_date') or ''} {row.get('file_amount') or ''} "
                f"{row.get('file_text') or ''}".strip()
            )
        out.append("  - " + "; ".join(parts))
    return out, len(rows) - len(shown)
