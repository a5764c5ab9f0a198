"""The registers' exports: hardship files, model workers and the assistance report, with
Chinese headings, as filed documents (projections/reports/documents.py writes them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.registers import CATEGORIES, CAUSES, LEVELS
from projections.reports.documents import Column, Document

PROGRAMME_NAMES = {
    "hardship": "困难职工帮扶",
    "school": "金秋助学",
    "model_worker": "劳模补助",
    "childcare": "托育补助",
    "condolence": "慰问",
    "general": "一般补助",
}

HARDSHIP_FILE_COLUMNS = (
    Column("organization_code", "工会组织代码", "code"),
    Column("name", "姓名"),
    Column("category", "困难类别"),
    Column("causes", "致困原因"),
    Column("household_size", "家庭人口", "count"),
    Column("monthly_income_per_head", "月人均收入", "amount"),
    Column("opened_on", "建档日期", "date"),
    Column("last_reviewed_on", "最近复核", "date"),
    Column("review_due", "复核到期", "date"),
    Column("overdue", "逾期未复核"),
    Column("status", "状态"),
    Column("closed_on", "脱困日期", "date"),
    Column("reason", "脱困原因", "long"),
    Column("opened_by", "建档工会", "code"),
    Column("file_id", "档案编号", "id"),
    Column("member_id", "会员编号", "id"),
)
MODEL_WORKER_COLUMNS = (
    Column("organization_code", "工会组织代码", "code"),
    Column("name", "姓名"),
    Column("id_number", "身份证号", "code"),
    Column("level", "最高级别"),
    Column("honours", "荣誉称号", "long"),
    Column("status", "状态"),
    Column("revoked_on", "撤销日期", "date"),
    Column("reason", "撤销原因", "long"),
    Column("model_worker_id", "劳模编号", "id"),
    Column("member_id", "会员编号", "id"),
)
ASSISTANCE_COLUMNS = (
    Column("section", "项目"),
    Column("item", "分类"),
    Column("count", "户数/人数", "count"),
    Column("amount", "金额", "amount"),
    Column("ledger_amount", "账面金额", "amount"),
)


def file_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **f,
            "category": CATEGORIES.get(f["category"], f["category"]),
            "causes": "、".join(CAUSES.get(c, c) for c in f["causes"]),
            "overdue": "是" if f.get("overdue") else "",
        }
        for f in items
    ]


def model_worker_rows(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **w,
            "level": LEVELS.get(w["level"], w["level"]),
            "honours": "；".join(f"{h['honour']}（{h['awarded_year']}）" for h in w["honours"]),
        }
        for w in items
    ]


def assistance_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The report as one table: a section per block, a row per line."""
    h, m = report["hardship"], report["model_workers"]
    rows: list[dict[str, Any]] = [
        {"section": "在档困难职工", "item": "合计", "count": h["households_on_file"]},
        *(
            {"section": "按困难类别", "item": c["category_name"], "count": c["households"]}
            for c in h["by_category"]
        ),
        *(
            {"section": "按致困原因", "item": c["cause_name"], "count": c["households"]}
            for c in h["by_cause"]
        ),
        {"section": "本期建档", "item": "新建档", "count": h["opened"]},
        {"section": "本期建档", "item": "年度复核", "count": h["reviewed"]},
        {"section": "本期建档", "item": "脱困销档", "count": h["closed"]},
        {
            "section": "困难帮扶资金",
            "item": "合计",
            "count": h["households_paid"],
            "amount": h["paid"],
        },
        {"section": "困难帮扶资金", "item": "户均", "amount": h["paid_per_household"]},
        *(
            {
                "section": "按户发放",
                "item": f"{x['name'] or ''} {x['file_id']}",
                "amount": x["amount"],
            }
            for x in h["households"]
        ),
        {
            "section": "劳模",
            "item": "在册合计",
            "count": m["on_register"],
            "amount": m["allowances"],
        },
        *(
            {
                "section": "劳模按级别",
                "item": lv["level_name"],
                "count": lv["model_workers"],
                "amount": lv["allowances"],
            }
            for lv in m["by_level"]
        ),
        {"section": "劳模", "item": "本期撤销", "count": m["revoked"]},
        *(
            {
                "section": "按项目发放",
                "item": PROGRAMME_NAMES.get(p["programme"], p["programme"]),
                "count": p["people"],
                "amount": p["amount"],
            }
            for p in report["programmes"]
        ),
        *(
            {
                "section": "与账簿核对",
                "item": c["account_code"],
                "amount": c["paid_to_persons"],
                "ledger_amount": c["ledger"],
            }
            for c in report["ledger_check"]
        ),
        *(
            {
                "section": "逾期未复核",
                "item": f"{o['name'] or ''} {o['file_id']} 应于{o['review_due']}前复核",
            }
            for o in h["overdue_reviews"]
        ),
    ]
    return rows


def hardship_files_document(header: Sequence[tuple[str, str]], body: dict[str, Any]) -> Document:
    return Document(
        sheet="困难职工档案",
        title="困难职工档案",
        header=header,
        columns=HARDSHIP_FILE_COLUMNS,
        rows=file_rows(body["items"]),
    )


def model_workers_document(header: Sequence[tuple[str, str]], body: dict[str, Any]) -> Document:
    return Document(
        sheet="劳模名册",
        title="劳模名册",
        header=header,
        columns=MODEL_WORKER_COLUMNS,
        rows=model_worker_rows(body["items"]),
    )


def assistance_document(header: Sequence[tuple[str, str]], body: dict[str, Any]) -> Document:
    return Document(
        sheet="困难职工帮扶和劳模工作统计",
        title="困难职工帮扶和劳模工作统计",
        header=header,
        columns=ASSISTANCE_COLUMNS,
        rows=assistance_rows(body),
        signatures=True,
    )
