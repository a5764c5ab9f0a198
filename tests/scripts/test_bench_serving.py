"""`python -m scripts.bench.serving`, end to end and short: both ways of running two HTTP
processes start on a real store, take the ingest client's requests and store them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_both_designs_serve_the_ingest_load() -> None:
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
    assert sorted((r["design"], r["clients"]) for r in rows) == [
        ("ledger serve --workers 2", 16),
        ("ledger serve --workers 2", 64),
        ("uvicorn --workers 2", 16),
        ("uvicorn --workers 2", 64),
    ]
    for row in rows:
        assert row["requests_ok"] > 0 and row["requests_failed"] == 0, row
    assert "| uvicorn --workers 2 | 64 |" in completed.stdout
