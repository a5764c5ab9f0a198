"""The read side: catching up with a loaded store, and a full rebuild (重建) in a subprocess.

Catch-up runs in this process through ReadModels.catch_up(), as the server and `ledger project`
do. The rebuild is the operator's own command, `ledger rebuild --json F`, run as a child
process, which reports its own peak resident memory (VmHWM of its /proc status at the end):
the kernel's ru_maxrss of the child would also count this process's pages, which the child
holds between fork and exec (measured: a child of a 500 MB parent reports 513 MB).

While it runs, the child's resident memory is sampled from /proc beside the position its build
has committed (read from the shadow set's position row): how memory moves as the build reads
more of the log is then measured in the run itself, not guessed from two store sizes whose
other differences (the tree, a union of 100,000 members) move memory too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from typing import Any

import psycopg

from projections.read_models.models import ReadModels
from projections.read_models.schema import SHADOW
from scripts.bench.database import BenchStore
from scripts.bench.server import REPO_ROOT, run_module
from scripts.bench.stats import per_s
from scripts.common import memory_mb
from service.application import Ledger

REBUILD_TIMEOUT_S = 4 * 3600.0
RSS_SAMPLE_EVERY_S = 0.1
# The growth of memory with the log is fitted over the later part of the build only: the first
# batches fill caches (the SQLite page cache, interned strings, the allocator's arenas).
GROWTH_FIT_FROM = 0.5


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
    return {
        "events": events,
        "head": head,
        "seconds": round(seconds, 3),
        "events_per_s": per_s(events, seconds),
    }


def rebuild(store: BenchStore) -> dict[str, Any]:
    out = store.workdir / f"rebuild-{time.monotonic_ns()}.json"
    env = {**os.environ, **store.environment()}
    log = store.workdir / "rebuild.log"
    started = time.perf_counter()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli", "rebuild", "--json", str(out)],
            cwd=REPO_ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
        )
    deadline = time.monotonic() + REBUILD_TIMEOUT_S
    samples: list[tuple[float, int | None, float]] = []
    next_sample = 0.0
    with _ShadowPosition(store) as shadow:
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.waitpid(proc.pid, 0)
                raise RuntimeError(f"ledger rebuild did not finish within {REBUILD_TIMEOUT_S:.0f}s")
            now = time.perf_counter()
            if now >= next_sample:
                rss_mb = memory_mb(proc.pid, "VmRSS")
                if rss_mb is not None:
                    samples.append((round(now - started, 2), shadow.read(), rss_mb))
                next_sample = now + RSS_SAMPLE_EVERY_S
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
        "peak_rss_mb": report.get("peak_rss_mb"),
        "differing_rows": comparison.get("differing_rows"),
        "switched": report.get("switched"),
        **memory_profile(samples, int(report["position"])),
    }


def retained_memory(store: BenchStore) -> dict[str, Any]:
    """The memory a build keeps from batch to batch (scripts/bench/rebuild_memory.py: two
    builds of the shadow set in one child process), for extrapolating peak memory to 10^7
    events."""
    env = {**os.environ, **store.environment()}
    measured = json.loads(
        run_module("scripts.bench.rebuild_memory", env=env, timeout_s=REBUILD_TIMEOUT_S)
    )
    return {
        "retained_mb_per_million_events": measured["retained_mb_per_million_events"],
        "two_pass_build": measured,
    }


def memory_profile(
    samples: list[tuple[float, int | None, float]], final_position: int
) -> dict[str, Any]:
    """From (seconds, build position or None, resident MB) samples: the peak while building
    and after it (index creation, comparison, switch), and the growth of resident memory per
    million events over the later part of the build (least squares; None when too few
    samples fall there, as in small stores). Positions are notification ids; the build ends
    when its position first reaches final_position."""
    end = next((t for t, p, _ in samples if p is not None and p >= final_position), None)
    building = [(p, mb) for t, p, mb in samples if p is not None and (end is None or t < end)]
    after = [mb for t, _, mb in samples if end is not None and t >= end]
    late = [(p, mb) for p, mb in building if p >= GROWTH_FIT_FROM * final_position]
    slope = None
    if len({p for p, _ in late}) >= 3:
        mean_p = sum(p for p, _ in late) / len(late)
        mean_mb = sum(mb for _, mb in late) / len(late)
        spread = sum((p - mean_p) ** 2 for p, _ in late)
        slope = sum((p - mean_p) * (mb - mean_mb) for p, mb in late) / spread
    return {
        "rss_samples": len(samples),
        "sampled_rss_mb_max": max((mb for _, _, mb in samples), default=None),
        "build_rss_mb_max": max((mb for _, mb in building), default=None),
        "after_build_rss_mb_max": max(after, default=None),
        "build_rss_mb_per_million_events": None if slope is None else round(slope * 1e6, 2),
        # Every tenth sample, enough to draw the curve: [seconds, position, MB].
        "rss_curve": [list(sample) for sample in samples[::10]],
    }


class _ShadowPosition:
    """Reads the position a build has committed, on a connection of its own that never holds
    a lock for longer than one statement (the build drops, creates and renames tables)."""

    def __init__(self, store: BenchStore) -> None:
        self.store = store
        self.conn: Any = None

    def __enter__(self) -> _ShadowPosition:
        if self.store.backend == "sqlite":
            self.conn = sqlite3.connect(
                f"file:{self.store.database}?mode=ro", uri=True, timeout=0.1, isolation_level=None
            )
        else:
            self.conn = psycopg.connect(
                self.store.url, autocommit=True, options="-c lock_timeout=100"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def read(self) -> int | None:
        """The shadow set's position, or None while it does not exist (before the build, and
        after the switch has renamed it live)."""
        sql = f"SELECT position FROM {SHADOW.table('position')} WHERE name = 'position'"
        try:
            row = self.conn.execute(sql).fetchone()
        except (sqlite3.Error, psycopg.Error):
            return None
        return None if row is None else int(row[0])
