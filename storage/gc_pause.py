"""Long runs of batches (a build, a long catch-up, a roster import) without Python's automatic
cyclic garbage collection, collecting the young generations between batches instead.

A batch allocates hundreds of thousands of container objects (decoded events, row dicts and
tuples), nearly all freed by reference counting when the batch is written. The automatic
collector, triggered every few hundred allocations, keeps traversing them, and every so often
traverses every object the process holds: measured on a county store's 250,000-event build on
PostgreSQL, a quarter to a third of the projector's CPU time. Between batches almost nothing
of a batch is still alive, so collecting the young generations every few batches is cheap,
and still frees any reference cycle a batch made: memory stays bounded by a few batches.

A roster import is the same shape (service/imports.py: each transaction's planned rows, events
and stored events, freed once it is written): measured by `python -m
scripts.bench.roster_import`, automatic collection took a fifth to a quarter of the import's
rate (docs/benchmarks.md).

A server's HTTP process is the other shape (for_serving below): many small requests, whose
objects reference counting frees, beside caches of aggregates and tokens that live long. There
automatic collection stays on, but the objects alive once the application is built leave the
collector's traversals for good (gc.freeze), and the young generation is collected after
10,000 allocations instead of 700. Measured with `ledger serve --workers 2` under 64 ingest
clients (docs/benchmarks.md): each full collection traversed 160,000-320,000 objects for 50-130
ms and freed at most one, every three seconds or so in each process; a pause that falls in a
writer's turn holds the writer lock, and so the other process, for as long.

The switch is process-wide; it is restored when the last run that turned it off ends (and left
alone if something else had turned it off before). Runs may overlap or nest: two imports in two
threads, or an import inside the request that reads its file and answers it. In an HTTP
process, other requests served meanwhile run without it too: for the length of one import, and
the young generations are still collected.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# gc.collect(YOUNG): generations 0 and 1, i.e. what was allocated since the last such call
# and is still alive (the next chunk read ahead, the caches' new entries), never the whole heap.
YOUNG = 1
# Batches between two such collections. Batches make no reference cycles today (measured: a
# collection after each batch of a county build found nothing unreachable), so this is a
# safety net, and each collection still traverses the chunk read ahead (a twentieth of the
# build's CPU when run after every batch).
COLLECT_EVERY = 10
# An HTTP process's thresholds (Python's defaults: 700, 10, 10). A young collection after
# 10,000 allocations, not 700: a request's short-lived objects are freed by reference counting
# long before, and full collections (after 10 x 10 young ones, when enough objects reached the
# oldest generation) come a fourteenth as often.
SERVING_THRESHOLDS = (10_000, 10, 10)


class _YoungCollector:
    def __init__(self) -> None:
        self.batches = 0

    def __call__(self) -> None:
        self.batches += 1
        if self.batches % COLLECT_EVERY == 0:
            gc.collect(YOUNG)


def _nothing() -> None:
    pass


_lock = threading.Lock()
_runs = 0  # runs under way that turned automatic collection off, or joined one that did


@contextmanager
def paused(active: bool = True) -> Iterator[Callable[[], None]]:
    """While this lasts, automatic collection is off; call the function it yields between
    batches. active False: changes nothing (short catch-ups, which allocate little)."""
    global _runs
    if not active:
        yield _nothing
        return
    with _lock:
        if _runs == 0 and not gc.isenabled():
            ours = False  # turned off by something else: left to it
        else:
            ours = True
            _runs += 1
            gc.disable()
    if not ours:
        yield _nothing
        return
    try:
        yield _YoungCollector()
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                gc.enable()


def for_serving() -> None:
    """In a server's HTTP process, once the application is built and before it serves: what
    is alive now (modules, routes, models, settings) is never garbage, and leaves the
    collector's traversals (gc.freeze); the young generation is collected less often. Cycles
    made later are collected as before."""
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
