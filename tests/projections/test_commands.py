"""`ledger rebuild [--check]` and `ledger reconcile` as an operator runs them (subprocesses
on the real store), with the shipped sample files. Both stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook

from projections.read_models.models import ReadModels
from service.commands import RecordExpense, RecordLevy
from service.reconciliations import list_runs
from tests.api.test_reconciliation_run import _month as run_month
from tests.api.test_reconciliation_run import gbk_bank_csv, levy_xlsx
from tests.service.scenario import found_tree

ROOT = Path(__file__).resolve().parents[2]
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


def test_reconcile_prints_the_first_differences_and_writes_the_whole_report(backend, tmp_path):
    ledger = backend.open()
    tree, levy_a = run_month(ledger)
    levy, bank = tmp_path / "levy.xlsx", tmp_path / "bank.csv"
    levy.write_bytes(levy_xlsx(tree))
    bank.write_bytes(gbk_bank_csv(levy_a))
    args = ["reconcile", "--period", "2024-01", "--organization", tree.county]
    args += ["--levy-file", str(levy), "--bank-file", str(bank)]
    result = _run(backend, tmp_path, *args, "--limit", "2")
    assert result.returncode == 1, result.stderr
    assert "5 differences" in result.stderr.splitlines()[-1]
    assert "books against read models: equal" in result.stdout
    assert "matched (reference 1, date and amount 1, window 1)" in result.stdout
    listed = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert len(listed) == 2 and "row 4" in listed[0]
    tail = next(line for line in result.stdout.splitlines() if "more differences" in line)
    assert "3 more differences" in tail
    written = tmp_path / tail.rsplit(" in ", 1)[1]
    rows = list(load_workbook(written)["明细"].iter_rows(values_only=True))
    assert sum(1 for r in rows if r[1] == "无法读取的行") == 2
    assert sum(1 for r in rows if str(r[1]).startswith("一致")) == 4
    everything = _run(backend, tmp_path, *args, "--out", str(tmp_path / "r.csv"))
    assert everything.stdout.count("\n  - ") == 5
    assert (tmp_path / "r.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    # The default checks the union's books, no rebuild; --full-rebuild says how long first.
    assert "rebuilding" not in result.stderr
    full = _run(backend, tmp_path, *args, "--full-rebuild")
    assert full.returncode == 1
    assert "rebuilding every read model from" in full.stderr and " s\n" in full.stderr
    assert "rebuilt against live: equal" in full.stdout
    # Each run was stored, as POST /v1/reconciliations stores one.
    runs, total = list_runs(ledger, tree.county, "2024-01")
    assert total == 3 and {r["differences"] for r in runs} == {5}
    assert all(r["status"] == "open" for r in runs)


def test_reconcile_refuses_a_file_without_a_heading_row(backend, tmp_path):
    backend.open()
    bad = tmp_path / "levy.csv"
    bad.write_text("a,b,c\n91440106000000005A,2024-01,12.34\n", encoding="utf-8")
    result = _run(backend, tmp_path, "reconcile", "--period", "2024-01", "--levy-file", str(bad))
    assert result.returncode == 1
    assert "no heading row" in result.stderr.strip().splitlines()[-1]
