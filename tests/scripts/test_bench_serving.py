"""`python -m scripts.bench.serving`, end to end and short: every design (ledger serve,
uvicorn, granian, two HTTP processes each) starts on a real store, takes the ingest client's
requests and stores them, and answers the trivial endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_design_serves_the_ingest_load() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.bench.serving",
            "--backend",
            "sqlite",
            "--seconds",
            "1",
            "--rounds",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    commits = [r for r in rows if r["load"] == "commit"]
    rows = [r for r in rows if r["load"] != "commit"]
    assert len(commits) == 1 and commits[0]["per_s"] > 0, commits
    assert sorted((r["design"], r["load"], r["clients"]) for r in rows) == [
        (f"{server} --workers 2", load, clients)
        for server in ("granian", "ledger serve", "uvicorn")
        for load, clients in (("ingest", 16), ("ingest", 64), ("trivial", 64))
    ]
    for row in rows:
        assert row["requests_ok"] > 0 and row["requests_failed"] == 0, row
    assert "| uvicorn --workers 2 | ingest | 64 |" in completed.stdout
    assert "| granian --workers 2 | trivial | 64 |" in completed.stdout
