"""The memory a build keeps from one batch to the next: what the rebuild's peak memory, stated
for 10^7 events, is extrapolated with.

    python -m scripts.bench.rebuild_memory   (the store of LEDGER_DATABASE_URL; prints JSON)

A build holds one batch of events at a time, so its resident memory follows what its batches
hold, and a store's log is not the same from end to end: a loaded province is its members'
joins first, then a year of business whose vouchers and dues receipts make bigger batches. A
line fitted through resident memory against position over one build mixes that step with any
memory kept from batch to batch. On a province store at scale 0.05 (1,276,731 events) the
later half of its build rose from 137 MB, where the joins end, to 185 MB, and such a line put
a build of 10^7 events at 1,125 MB.

What grows with the length of the log is what one process keeps from batch to batch. So this
builds the shadow read models twice, in one process, from the same log: the second pass reads
the same batches as the first, and its resident memory at its end, less the first pass's at
its end, is what the process kept for reading the log once more. Measured on that province
store: 150.4 MB after the first pass, 152.8 MB after the second (1.88 MB per million events).

The shadow tables are dropped at the end; the live read models are not touched.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from projections.read_models.models import ReadModels
from projections.read_models.schema import SHADOW
from projections.reconciliation.rebuild import build
from scripts.common import ledger_session, memory_mb

PASSES = 2


def measure(read_models: ReadModels) -> dict[str, Any]:
    """Two builds of the shadow set in this process: the resident memory at the end of each,
    and the difference per million events."""
    store, projector = read_models.store, read_models.projector
    passes: list[dict[str, Any]] = []
    for _ in range(PASSES):
        started = time.perf_counter()
        _, events, build_s = build(store, projector, SHADOW)
        passes.append(
            {
                "events": events,
                "build_s": round(build_s, 3),
                "seconds": round(time.perf_counter() - started, 3),
                "rss_mb_at_end": memory_mb("self", "VmRSS"),
            }
        )
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            SHADOW.drop(store, cur)
    finally:
        conn.close()
    first, last = passes[0]["rss_mb_at_end"], passes[-1]["rss_mb_at_end"]
    events = passes[0]["events"]
    retained = None
    if first is not None and last is not None and events:
        retained = round((last - first) / ((PASSES - 1) * events) * 1e6, 2)
    return {
        "passes": passes,
        "peak_rss_mb": memory_mb("self", "VmHWM"),
        # Resident memory kept per million events read again (can be below zero: pages the
        # allocator gave back).
        "retained_mb_per_million_events": retained,
    }


def main() -> None:
    with ledger_session() as ledger:
        read_models = ReadModels(ledger)
        try:
            result = measure(read_models)
        finally:
            read_models.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
