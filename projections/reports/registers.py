"""The registers' exports: hardship files, model workers and the assistance report, with
Chinese headings, as rows for CSV and XLSX (projections/reports/exports.py lays them out)."""

from __future__ import annotations

from typing import Any

from domain.registers import CATEGORIES, CAUSES, LEVELS
from projections.reports.exports import Column

PROGRAMME_NAMES = {
    "hardship": "困难职工帮扶",
    "school": "金秋助学",
    "model_worker": "劳模补助",
    "childcare": "托育补助",
    "condolence": "慰问",
    "general": "一般补助",
}

HARDSHIP_FILE_COLUMNS: list[Column] = [
    ("organization_code", "工会组织代码"),
    ("name", "姓名"),
    ("category", "困难类别"),
    ("causes", "致困原因"),
    ("household_size", "家庭人口"),
    ("monthly_income_per_head", "月人均收入"),
    ("opened_on", "建档日期"),
    ("last_reviewed_on", "最近复核"),
    ("review_due", "复核到期"),
    ("overdue", "逾期未复核"),
    ("status", "状态"),
    ("closed_on", "脱困日期"),
    ("reason", "脱困原因"),
    ("opened_by", "建档工会"),
    ("file_id", "档案编号"),
    ("member_id", "会员编号"),
]
MODEL_WORKER_COLUMNS: list[Column] = [
    ("organization_code", "工会组织代码"),
    ("name", "姓名"),
    ("id_number", "身份证号"),
    ("level", "最高级别"),
    ("honours", "荣誉称号"),
    ("status", "状态"),
    ("revoked_on", "撤销日期"),
    ("reason", "撤销原因"),
    ("model_worker_id", "劳模编号"),
    ("member_id", "会员编号"),
]
ASSISTANCE_COLUMNS: list[Column] = [
    ("section", "项目"),
    ("item", "分类"),
    ("count", "户数/人数"),
    ("amount", "金额"),
    ("ledger_amount", "账面金额"),
]


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
