"""`ledger rebuild [--check]` and `ledger reconcile` as an operator runs them (subprocesses
on the real store), with the shipped sample files. Both stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from openpyxl import load_workbook

from projections.read_models.models import ReadModels
from service.commands import RecordExpense, RecordLevy
from tests.service.scenario import found_tree

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
LEDGER = Path(sys.executable).parent / "ledger"


def _run(backend, tmp_path, *args):
    env = {
        **os.environ,
        "LEDGER_DATABASE_URL": backend.url,
        "LEDGER_ENCRYPTION_KEY": backend.settings.encryption_key,
        "LEDGER_KEY_FILE": str(tmp_path / "unused.key"),
        "LEDGER_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
    }
    return subprocess.run(
        [str(LEDGER), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def _sample_month(ledger):
    """January 2024 as the sample files describe it, with deliberate differences."""
    tree = found_tree(ledger)
    ledger.execute(
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
    )
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
    return tree


def test_rebuild_check_finds_a_tampered_row_and_rebuild_repairs_it(backend, tmp_path):
    ledger = backend.open()
    _sample_month(ledger)
    rm = ReadModels(ledger)
    rm.catch_up()
    ok = _run(backend, tmp_path, "rebuild", "--check")
    assert ok.returncode == 0, ok.stderr
    assert "0 differing rows" in ok.stdout and "events/s" in ok.stdout

    conn = rm.store.connect()
    with rm.store.transaction(conn) as cur:
        cur.execute(
            "UPDATE rm_ledger_lines SET credit_fen = credit_fen + 1 WHERE account_code = '402'"
        )
        cur.execute("DELETE FROM rm_roll_changes")
    conn.close()
    bad = _run(backend, tmp_path, "rebuild", "--check", "--json", str(tmp_path / "c.json"))
    assert bad.returncode == 1
    last_line = bad.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ledger: error:") and "differ" in last_line
    assert "ledger_lines" in bad.stderr
    assert '"differing_rows": 2' in (tmp_path / "c.json").read_text()
    # The command's own peak memory, for the benchmark (a Python process: tens of MB).
    assert json.loads((tmp_path / "c.json").read_text())["peak_rss_mb"] > 20

    fixed = _run(backend, tmp_path, "rebuild")
    assert fixed.returncode == 0, fixed.stderr
    assert "switched over; 2 rows had differed" in fixed.stdout
    assert _run(backend, tmp_path, "rebuild", "--check").returncode == 0
    rm.close()


def test_reconcile_with_the_sample_files(backend, tmp_path):
    ledger = backend.open()
    tree = _sample_month(ledger)
    out = tmp_path / "report.xlsx"
    result = _run(
        backend,
        tmp_path,
        "reconcile",
        "--period",
        "2024-01",
        "--levy-file",
        str(SAMPLES / "levy-2024-01.csv"),
        "--bank-file",
        str(SAMPLES / "bank-2024-01.csv"),
        "--organization",
        tree.county,
        "--out",
        str(out),
    )
    assert result.returncode == 1, result.stderr
    assert "differences found in" in result.stderr.splitlines()[-1]
    workbook = load_workbook(out)
    assert workbook.sheetnames[:3] == ["汇总", "重建核对", "重建差异"]
    levy = [r for r in workbook["拨缴经费（税务代收）"].iter_rows(values_only=True)][2:]
    outcomes = {(r[0], r[1]) for r in levy}
    assert outcomes == {
        ("一致", tree.employer_a),
        ("账簿缺少", tree.employer_b),
        ("金额不符", tree.employer_c),
    }
    bank = [r for r in workbook["银行存款"].iter_rows(values_only=True)][2:]
    by_outcome = sorted((r[0], Decimal(str(r[4] if r[4] is not None else r[7]))) for r in bank)
    assert by_outcome == [
        ("一致", Decimal("500")),
        ("一致", Decimal("2469.14")),
        ("外部文件缺少", Decimal("-200")),
        ("账簿缺少", Decimal("-15")),
    ]
    summary = [r for r in workbook["汇总"].iter_rows(values_only=True)][2:]
    assert summary[0][0] == "读模型重建核对" and summary[0][-1] == "一致"


def test_reconcile_refuses_a_malformed_file(backend, tmp_path):
    backend.open()
    bad = tmp_path / "levy.csv"
    bad.write_text(
        "employer_credit_code,period,amount\n91440106000000005A,2024-01,12.345\n", encoding="utf-8"
    )
    result = _run(backend, tmp_path, "reconcile", "--period", "2024-01", "--levy-file", str(bad))
    assert result.returncode == 1
    assert "line 2" in result.stderr.strip().splitlines()[-1]
