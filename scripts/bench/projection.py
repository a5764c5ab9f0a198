"""The read side: catching up with a loaded store, and a full rebuild (重建) in a subprocess.

Catch-up runs in this process through ReadModels.catch_up(), as the server and `ledger project`
do. The rebuild is the operator's own command, `ledger rebuild --json F`, run as a child
process: its peak resident memory comes from the kernel's accounting of that one child
(os.wait4), so the server or anything else this run started cannot inflate it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from projections.read_models import ReadModels
from scripts.bench.database import BenchStore
from scripts.bench.server import REPO_ROOT
from scripts.bench.stats import per_s
from service.application import Ledger

REBUILD_TIMEOUT_S = 4 * 3600.0


def catch_up(ledger: Ledger) -> dict[str, Any]:
    read_models = ReadModels(ledger)
    try:
        start = read_models.position()
        head = ledger.head_position()
        started = time.perf_counter()
        reached = read_models.catch_up()
        seconds = time.perf_counter() - started
    finally:
        read_models.close()
    events = reached - start
    return {"events": events, "head": head, "seconds": round(seconds, 3),
            "events_per_s": per_s(events, seconds)}


def rebuild(store: BenchStore) -> dict[str, Any]:
    out = store.workdir / f"rebuild-{time.monotonic_ns()}.json"
    env = {**os.environ, **store.environment()}
    log = store.workdir / "rebuild.log"
    started = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "scripts.cli", "rebuild", "--json",
                                 str(out)], cwd=REPO_ROOT, env=env, stdout=sink, stderr=sink)
    deadline = time.monotonic() + REBUILD_TIMEOUT_S
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            raise RuntimeError(f"ledger rebuild did not finish within {REBUILD_TIMEOUT_S:.0f}s")
        time.sleep(0.05)
    wall_s = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:]
        raise RuntimeError(f"ledger rebuild exited with {proc.returncode}: {tail}")
    report = json.loads(out.read_text(encoding="utf-8"))
    events = int(report["events"])
    comparison = report.get("comparison", {})
    return {
        "events": events,
        # The rebuild proper (every read model from the first event) ...
        "build_s": report["seconds"],
        "build_events_per_s": per_s(events, float(report["seconds"])),
        # ... and the whole command as an operator waits for it: start-up, comparison, switch.
        "command_s": round(wall_s, 3),
        "command_events_per_s": per_s(events, wall_s),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports kilobytes
        "differing_rows": comparison.get("differing_rows"),
        "switched": report.get("switched"),
    }
