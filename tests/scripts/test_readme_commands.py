"""Every command of the README's reconciliation and imports section, run as written on a small
demo deployment with the samples made from it (scripts/demo_samples.py, as samples/ was made
from run.sh's demo). SQLite, as run.sh uses by default."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Month-end reconciliation and imports", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [c.strip() for c in block.group(1).replace("\\\n", " ").splitlines() if c.strip()]


def test_the_readme_commands_run_on_a_demo(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )

    loaded = run(str(VENV_BIN / "ledger"), "demo", "--size", "county", "--scale", "0.02")
    assert loaded.returncode == 0, loaded.stderr
    made = run(str(VENV_BIN / "python"), "-m", "scripts.demo_samples")
    assert made.returncode == 0, made.stderr
    commands = readme_commands()
    assert [c.split()[:3] for c in commands] == [
        [".venv/bin/ledger", "reconcile", "--period"],
        [".venv/bin/ledger", "import", "members"],
    ]
    reconcile = run("bash", "-c", commands[0])
    assert reconcile.returncode == 1, reconcile.stderr
    out = reconcile.stdout
    assert "books against read models: equal" in out
    levy_line = next(line for line in out.splitlines() if "拨缴经费" in line)
    assert "heading on row 2" in levy_line and ", 4 differences" in levy_line
    for kind in ("金额不符", "账簿缺少", "外部文件缺少", "无法读取的行"):
        assert f"拨缴经费（税务代收） {kind}" in out, kind
    bank_line = next(line for line in out.splitlines() if "银行存款 [" in line)
    assert "heading on row 4" in bank_line and ", 1 differences" in bank_line
    assert "window 1" in bank_line and "账户管理费" in out
    assert "bank_balance_differs" in out and "employer_without_levy" in out
    imported = run("bash", "-c", commands[1])
    assert imported.returncode == 0, imported.stderr
    assert "5 rows, 5 accepted, 0 rejected" in imported.stdout
