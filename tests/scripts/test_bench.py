"""`ledger bench --smoke`, end to end: its own PostgreSQL database, the loader, the raw
ceilings, a real `ledger serve` subprocess driven over HTTP, and `ledger rebuild` in a child.

No timed assertions: the machine is shared. What is checked is that every figure of the
performance issue is there as a number, that the run did what its sizes say, and that it
left no database behind.
"""

from __future__ import annotations

import json
import numbers
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from scripts.bench import floors, rebuild_floor
from scripts.bench.baseline import COPY_UNAVAILABLE
from scripts.bench.config import SMOKE
from scripts.bench.harness import BASELINE_KEYS, FLOOR_KEYS, HEADLINE_KEYS, SERVING_KEYS
from tests.conftest import BACKENDS, PG_ADMIN_URL
from tests.scripts.test_cli import ledger_env

# The smoke run starts `ledger serve` and then uvicorn and granian in turn (the serving keys):
# 91 s here at load average 10, more when other jobs load the machine further.
TIMEOUT_S = 300
# The province point of the PostgreSQL run: 638 organisations (the counties and the levels
# above them are there at any scale) and 4,933 people.
PROVINCE_SCALE = 0.0005


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@pytest.mark.parametrize("backend", BACKENDS)
def test_smoke_run_reports_every_figure(tmp_path: Path, backend: str) -> None:
    out, table = tmp_path / "bench.json", tmp_path / "bench.md"
    env = ledger_env("sqlite:///unused.sqlite", tmp_path / "unused.key")
    # One of the two runs is profiled too (--profile), so that both kinds are exercised; the
    # other also loads, reads and rebuilds a (tiny) province point.
    profiles = tmp_path / "profiles"
    profiled = backend == "sqlite"
    province_scale = None if profiled else PROVINCE_SCALE
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.cli",
            "bench",
            "--smoke",
            "--backend",
            backend,
            "--out",
            str(out),
            "--markdown",
            str(table),
            "--database-url",
            PG_ADMIN_URL,
            *(["--profile", str(profiles)] if profiled else []),
            *(["--province-scale", str(province_scale)] if province_scale else []),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["profiled"] is profiled
    if profiled:
        _check_profiles(result["details"]["profiles"], profiles)
    else:
        assert "profiles" not in result["details"]

    assert result["backend"] == backend
    # SQLite has no COPY, and the durable POST floor is PostgreSQL's: those two ceilings are
    # null, with their reasons; nothing else is missing.
    no_copy = backend == "sqlite"
    postgres_only = {"copy_rows_per_s", "durable_post_per_s", "rebuild_floor_events_per_s"}
    assert result["unavailable"] == (
        {
            "baseline.copy_rows_per_s": COPY_UNAVAILABLE,
            "baseline.durable_post_per_s": floors.DURABLE_UNAVAILABLE,
            "baseline.rebuild_floor_events_per_s": rebuild_floor.SQLITE_UNAVAILABLE,
        }
        if no_copy
        else {}
    ), result["unavailable"]
    for key in HEADLINE_KEYS:
        assert _is_number(result[key]), (key, result[key])
    for key in BASELINE_KEYS + FLOOR_KEYS:
        if no_copy and key in postgres_only:
            assert result["baseline"][key] is None
            continue
        assert _is_number(result["baseline"][key]), (key, result["baseline"][key])
    for key, entry in result["baseline"]["ratios"].items():
        if no_copy and entry["ceiling"] in postgres_only:
            assert entry["ratio"] is None, (key, entry)  # no ceiling to divide by
            continue
        assert _is_number(entry["ratio"]), (key, entry)
    # The same application under uvicorn and under granian, side by side.
    assert set(result["serving"]) == set(SERVING_KEYS)
    for key in SERVING_KEYS:
        assert _is_number(result["serving"][key]), (key, result["serving"])
    assert set(result["ingest_by_clients"]) == {str(c) for c in SMOKE.ingest_clients}
    for clients, run in result["ingest_by_clients"].items():
        assert run["requests_failed"] == 0, (clients, run["statuses"])
        assert run["requests_ok"] > 0
        for key in ("events_per_s", "ms_p50", "ms_p99", "stored_events_per_s"):
            assert _is_number(run[key]), (clients, key, run[key])

    details, sizes = result["details"], result["sizes"]
    # The warm-up before the measured ingest, kept apart: every request of it answered.
    warm = details["ingest_warm_up"]
    assert warm["requests_ok"] == warm["requests"] > 0, warm["statuses"]
    assert warm["clients"] == max(SMOKE.ingest_clients)
    assert sizes["deployment"]["members"] > 0 and sizes["deployment"]["events"] > 0
    assert details["load"]["county"]["rejected"] == {}
    # The whole roster was taken, and the roll paged through is that union's.
    assert details["import"]["rows_accepted"] == SMOKE.import_rows
    assert details["roll_page"]["roll_members"] == SMOKE.import_rows
    assert details["lookup"]["failures"] == {}
    assert details["statement"]["failures"] == {}
    # The rebuild read every stored event and agreed with the live read models.
    rebuild = details["rebuild"]["county (after HTTP writes)"]
    assert rebuild["events"] >= sizes["deployment"]["events"]
    assert rebuild["differing_rows"] == 0
    assert details["rebuild"]["county (as loaded)"]["differing_rows"] == 0
    if province_scale is not None:
        # The province point: loaded, read over its whole subtree, and rebuilt, with the
        # rebuild agreeing with the live read models.
        point = result["province"]
        assert point["scale"] == province_scale and point["events"] > 0
        for key in (
            "statement_ms_p99",
            "roll_page_ms_p99",
            "roll_summary_ms_p99",
            "roll_page_under_writes_ms_p99",
        ):
            assert _is_number(point[key]), (key, point)
        assert details["province_point"]["roll_page_under_writes"]["joins"] >= 1
        assert details["rebuild"]["province"]["differing_rows"] == 0
        assert point["rebuild_events"] >= point["events"]
        assert _is_number(point["rebuild_events_per_s"]) and _is_number(point["rebuild_rss_mb"])
        # ... and built twice more in one process: what a build keeps from batch to batch.
        assert _is_number(point["rebuild_retained_mb_per_million_events"]), point
    # A smoke-sized store is far too small to extrapolate from: no estimate, and why.
    province = result["sizes"]["province"]
    assert province["extrapolated"] is True
    assert province["rebuild_rss_mb"] is None and province["rebuild_s"] is None
    assert "too small" in province["reason"]
    assert result["targets"].keys() >= {"ingest_events_per_s", "lookup_ms_p99"}
    assert "| roster import (members/s) |" in table.read_text(encoding="utf-8")

    if backend == "sqlite":
        assert not Path(details["database"]).exists()
        return
    with psycopg.connect(PG_ADMIN_URL) as conn:
        left = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (details["database"],)
        ).fetchone()
    assert left is None, f"the benchmark left its database {details['database']} behind"


def _check_profiles(summaries: dict, directory: Path) -> None:
    """Every measurement was sampled; the server's HTTP processes and the bench's own show
    up by role, with their busiest functions; each summary's samples are on disk."""
    assert {
        "catch-up",
        "roster import over HTTP",
        "lookup latency",
        "rebuild (ledger rebuild subprocess)",
    } <= summaries.keys(), summaries.keys()
    assert {f"ingest over HTTP, {c} clients" for c in SMOKE.ingest_clients} <= summaries.keys()
    samples_by_role: dict[str, int] = {}
    for label, summary in summaries.items():
        assert "unavailable" not in summary, (label, summary)
        if summary["file"] is not None:  # None: shorter than one sample
            assert Path(summary["file"]).parent == directory
            assert Path(summary["file"]).exists()
        for process in summary["processes"]:
            samples_by_role[process["role"]] = (
                samples_by_role.get(process["role"], 0) + process["samples"]
            )
            assert process["top"] and 0 < process["top"][0][1] <= 100, process
    assert samples_by_role.get("http", 0) > 0, samples_by_role
    assert samples_by_role.get("bench", 0) > 0, samples_by_role
    assert (directory / "roster-import-over-http-summary.txt").exists()
