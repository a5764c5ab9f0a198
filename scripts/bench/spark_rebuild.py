"""The Spark rebuild's events/s on 1 and 2 local cores, on the bench's own store: sealed and
exported (`ledger audit seal`, `ledger export`), then `ledger rebuild --engine spark` run as
a subprocess with --master local[1] and local[2]. The rate is the job's own: verification,
the fold and every output written, without starting Spark or the comparison with the live
read models (projections/spark/job.py JobResult)."""

from __future__ import annotations

import json
import os
from typing import Any

from scripts.bench.database import BenchStore
from scripts.bench.server import run_module

SPARK_TIMEOUT_S = 1_800
CORES = {"1core": "local[1]", "2cores": "local[2]"}


def _ledger(env: dict[str, str], *args: str) -> str:
    return run_module("scripts.cli", *args, env=env, timeout_s=SPARK_TIMEOUT_S)


def measure(store: BenchStore) -> dict[str, Any]:
    """{"spark_rebuild_events_per_s_1core": ..., "..._2cores": ...} and the runs' details."""
    env = {**os.environ, **store.environment()}
    _ledger(env, "audit", "seal")
    env["LEDGER_AUDIT_PUBLIC_KEY"] = _ledger(env, "audit", "public-key").strip().splitlines()[-1]
    export = store.workdir / "spark-export"
    _ledger(env, "export", "--out", str(export))
    figures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for label, master in CORES.items():
        out = store.workdir / f"spark-{label}"
        report_path = store.workdir / f"spark-{label}.json"
        _ledger(
            env,
            "rebuild",
            "--engine",
            "spark",
            "--export",
            str(export),
            "--out",
            str(out),
            "--master",
            master,
            "--json",
            str(report_path),
        )
        report = json.loads(report_path.read_text(encoding="utf-8"))
        figures[f"spark_rebuild_events_per_s_{label}"] = report["spark_rebuild_events_per_s"]
        details[label] = {
            "master": master,
            "events": report["events"],
            "seconds": report["seconds"],
            "equal_to_live": report["equal"],
        }
    return {**figures, "details": details}
