"""A month-end run through the shared code (api/reconciliations.py) on each store, with files
made the way banks and tax bureaus make them: GBK CSV with title lines and 借/贷 columns, an
XLSX levy file with Chinese headings, a malformed row among good ones."""

from __future__ import annotations

import io

from openpyxl import Workbook

from api.reconciliation_files import read_file
from api.reconciliations import run_reconciliation
from domain.reconciliation_runs import ReconciliationRun
from projections.read_models.models import ReadModels
from service.commands import RecordExpense, RecordLevy
from service.reconciliations import list_runs
from tests.service.scenario import found_tree


def _month(ledger):
    tree = found_tree(ledger)
    levy_a = ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=tree.base_a,
            employer_code=tree.employer_a,
            period="2024-01",
            payroll_total="123457.00",
            amount="2469.14",
            channel="tax",
            received_on="2024-01-10",
        )
    ).body["voucher_id"]
    ledger.execute(
        RecordLevy(
            receiving_organization_code=tree.county,
            base_organization_code=tree.base_c,
            employer_code=tree.employer_c,
            period="2024-01",
            payroll_total="25000.00",
            amount="500.00",
            channel="tax",
            received_on="2024-01-13",
        )
    )
    ledger.execute(
        RecordExpense(
            organization_code=tree.county,
            account_code="501",
            amount="200.00",
            earmarked=False,
            description="职工活动",
            paid_on="2024-01-20",
        )
    )
    return tree, levy_a


def gbk_bank_csv(levy_voucher: str) -> bytes:
    lines = [
        "中国工商银行 账户交易明细",
        "账号：3602000109000012345,户名：天河区总工会",
        "起止日期：2024-01-01 至 2024-01-31",
        "交易日期,摘要,借方发生额,贷方发生额,余额,对方户名,对方账号",
        f'2024-01-10,税务代收 {levy_voucher[:8]},,"2,469.14",,国家金库,1001',
        "2024-01-13,税务代收,,500.00,,国家金库,1001",
        "2024-01-22,职工活动,200.00,,,某旅行社,6222",
        "2024-01-31,手续费,15.00,,,,",
        "2024-01-3x,坏行,1.00,,,,",
        "合计,,215.00,2969.14,,,",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def levy_xlsx(tree) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in [
        ["国家税务总局 工会经费代收明细"],
        ["统一社会信用代码", "缴费人名称", "所属期", "计费依据", "实缴金额", "入库日期"],
        [tree.employer_a, "甲", "2024-01", 123457, 2469.14, "2024-01-10"],
        [tree.employer_b, "乙", "2024-01", 40000, 800, "2024-01-11"],
        [tree.employer_c, "丙", "202401", 27500, 550, "2024-01-13"],
        ["91440106000000005B", "丁", "2024-01", 1000, 20, "2024-01-12"],
        [tree.employer_a, "甲", "2023-12", 123457, 2469.14, "2023-12-10"],
    ]:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_a_run_matches_by_each_rule_and_names_every_difference(backend):
    ledger = backend.open()
    tree, levy_a = _month(ledger)
    read_models = ReadModels(ledger)
    try:
        files = [
            read_file(io.BytesIO(levy_xlsx(tree)), "levy", "levy.xlsx"),
            read_file(io.BytesIO(gbk_bank_csv(levy_a)), "bank", "bank.csv"),
        ]
        run, position = run_reconciliation(
            ledger,
            read_models,
            organization=tree.county,
            period="2024-01",
            files=files,
            window_days=5,
            actor="test",
        )
    finally:
        read_models.close()
    assert position is not None and run["status"] == "open"
    assert run["comparison"]["method"] == "books" and run["comparison"]["equal"]
    levy, bank = run["files"]
    assert (levy["rows_read"], levy["rows_outside_period"], levy["rows_matched"]) == (5, 1, 1)
    assert levy["matched_by"] == {"reference": 1, "date_and_amount": 0, "window": 0}
    assert [(d["row"], d["kind"]) for d in levy["differences"]] == [
        (4, "missing_in_ledger"),
        (5, "amount_differs"),
        (6, "bad_row"),
    ]
    differs = levy["differences"][1]
    assert differs["ledger"]["amount"] == "500.00" and differs["file"]["amount"] == "550.00"
    assert bank["heading_row"] == 4 and bank["rows_read"] == 5
    assert bank["matched_by"] == {"reference": 1, "date_and_amount": 1, "window": 1}
    assert [(d["row"], d["kind"]) for d in bank["differences"]] == [
        (8, "missing_in_ledger"),
        (9, "bad_row"),
    ]
    assert bank["matches"][0]["ledger"]["voucher_id"] == levy_a
    assert run["differences_total"] == 5
    # Stored as events: listed, and signed off once only.
    listed, total = list_runs(ledger, tree.county, "2024-01")
    assert [r["run_id"] for r in listed] == [run["run_id"]] and total == 1
    assert list_runs(ledger, tree.county, "2024-02") == ([], 0)
    stored = ledger.repository.get(__import__("uuid").UUID(run["run_id"]))
    assert isinstance(stored, ReconciliationRun) and stored.report["files"][1]["rows_read"] == 5
