"""`ledger rebuild --engine spark` and `ledger rollup` refuse what they cannot run in one line,
before starting Spark (the runs themselves: tests/projections/test_spark_job.py)."""

from __future__ import annotations

from pathlib import Path

from tests.scripts.test_cli import assert_one_line_failure, ledger_env, run_ledger


def test_a_spark_rebuild_needs_an_out_directory(tmp_path: Path) -> None:
    env = ledger_env(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "k")
    result = run_ledger(["rebuild", "--engine", "spark", "--export", "x"], env, tmp_path)
    assert_one_line_failure(result, "--out")


def test_a_rollup_needs_a_run(tmp_path: Path) -> None:
    env = ledger_env(f"sqlite:///{tmp_path / 'ledger.sqlite'}", tmp_path / "k")
    result = run_ledger(["rollup", str(tmp_path), "--as-of", "2025-09-30"], env, tmp_path)
    assert_one_line_failure(result, "no run of the Spark rebuild")
