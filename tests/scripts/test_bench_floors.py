"""`python -m scripts.bench.floors --quick`, end to end: a real uvicorn serving the floor's
endpoints to the ingest client, and eventsourcing creating and mapping real Member events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_floors_report_numbers() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "scripts.bench.floors", "--quick"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    http, aggregate = report["http"], report["aggregate"]
    assert http["requests_ok"] == 300 and http["requests_failed"] == 0, http
    assert http["events_per_s"] > 0 and http["ms_p99"] >= http["ms_p50"] > 0
    assert aggregate["members"] == 300
    for key in (
        "create_us_per_member",
        "create_and_map_us_per_member",
        "create_members_per_s",
        "create_and_map_members_per_s",
    ):
        assert aggregate[key] > 0, (key, aggregate)
