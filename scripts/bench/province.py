"""The province point (`ledger bench --province-scale F`): a province deployment at a scale,
loaded through the ledger like the main one, its read models caught up, and the reads over
the root's whole subtree timed in process (the read models' own queries, no HTTP):

- statement: 工会02表 for the demo year, summed over the province;
- roll page: 100 rows of the province's roll as of the year's end, pages drawn at random;
- roll summary: the province's counts (members, retained, women, ...) as of the year's end;
- roll page under writes: the same pages while a child process writes joins and projects
  them (scripts/bench/province_writes.py), so that pages follow new versions of the read
  models as they would on a server in use. The reads above run on a still store.

Its load rate beside the main deployment's says whether a command's cost grows with the
deployment (the two should be within 20% of each other).
"""

from __future__ import annotations

import datetime
import json
import math
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from projections.read_models.models import ReadModels
from scripts.bench.server import REPO_ROOT
from scripts.bench.stats import latency_summary
from scripts.demo_data import DEMO_YEAR
from service.application import Ledger

ROLL_PAGE_ROWS = 100
# Joins a second written beside the roll pages under writes (the projection commits a batch
# every tenth of a second or so: several versions of the read models a second).
WRITES_PER_S = 20.0
WRITER_TIMEOUT_S = 120.0


def _timed(call: Callable[[int], Any], samples: int, max_s: float) -> dict[str, Any]:
    latencies_ms: list[float] = []
    deadline = time.perf_counter() + max_s
    for n in range(samples):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        call(n)
        latencies_ms.append((time.perf_counter() - started) * 1000)
    return dict(latency_summary(latencies_ms))


def _random_page(
    read_models: ReadModels, root: str, pages: int, rng: random.Random
) -> Callable[[int], Any]:
    """A page of the root's subtree roll as of the year's end, drawn at random."""
    return lambda n: read_models.roll(
        root,
        as_of=datetime.date(DEMO_YEAR, 12, 31),
        scope="subtree",
        page=rng.randint(1, pages),
        page_size=ROLL_PAGE_ROWS,
    )


def subtree_reads(
    ledger: Ledger, root: str, *, samples: int, max_s: float, seed: int = 3
) -> dict[str, Any]:
    """The province's subtree reads, each timed `samples` times (within max_s each)."""
    year_end = datetime.date(DEMO_YEAR, 12, 31)
    read_models = ReadModels(ledger)
    try:
        read_models.catch_up()
        # What the server's projection worker does once writes pause: fresh statistics (and
        # a vacuum) for the tables just written, without which the planner guesses.
        read_models.maintain()
        summary = read_models.roll_summary(root, as_of=year_end, scope="subtree")
        pages = max(1, math.ceil(summary["members"] / ROLL_PAGE_ROWS))
        rng = random.Random(seed)
        return {
            "in_process": True,
            "roll_members": summary["members"],
            "statement": _timed(
                lambda n: read_models.income_expenditure(
                    root,
                    date_from=datetime.date(DEMO_YEAR, 1, 1),
                    date_to=year_end,
                    scope="subtree",
                ),
                samples,
                max_s,
            ),
            "roll_page": _timed(_random_page(read_models, root, pages, rng), samples, max_s),
            "roll_summary": _timed(
                lambda n: read_models.roll_summary(root, as_of=year_end, scope="subtree"),
                samples,
                max_s,
            ),
        }
    finally:
        read_models.close()


def roll_page_under_writes(
    ledger: Ledger,
    root: str,
    env: dict[str, str],
    log: Path,
    *,
    samples: int,
    max_s: float,
    seed: int = 4,
) -> dict[str, Any]:
    """Roll pages of the province drawn at random, timed while the child process
    scripts.bench.province_writes writes WRITES_PER_S joins a second and projects them; with
    what it wrote. env: the store's LEDGER_* variables; log: the child's standard error."""
    year_end = datetime.date(DEMO_YEAR, 12, 31)
    with log.open("w") as errors:
        writer = subprocess.Popen(
            [sys.executable, "-m", "scripts.bench.province_writes", str(WRITES_PER_S)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    try:
        assert writer.stdout is not None
        if writer.stdout.readline().strip() != "ready":
            writer.wait(WRITER_TIMEOUT_S)
            raise RuntimeError(f"the writer exited with {writer.returncode}: see {log}")
        read_models = ReadModels(ledger)
        try:
            first = read_models.roll(root, as_of=year_end, scope="subtree", page_size=1)
            pages = max(1, math.ceil(first["total"] / ROLL_PAGE_ROWS))
            rng = random.Random(seed)
            timed = _timed(_random_page(read_models, root, pages, rng), samples, max_s)
        finally:
            read_models.close()
        writer.send_signal(signal.SIGTERM)
        out, _ = writer.communicate(timeout=WRITER_TIMEOUT_S)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    if writer.returncode != 0:
        raise RuntimeError(f"the writer exited with {writer.returncode}: see {log}")
    return {**timed, "writes_per_s": WRITES_PER_S, **json.loads(out.strip().splitlines()[-1])}
