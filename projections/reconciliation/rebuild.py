"""Rebuild (重建): every read model built afresh from the first event into shadow tables,
compared with the live ones by content, and switched over atomically.

The comparison is made with the live position row locked, after bringing both sets to the
same position, so that "live" and "rebuilt" describe exactly the same events. The switch
(drop live, rename shadow) happens in that same transaction: readers see either the old set
or the new one, never a mixture.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from projections.read_models import ledger_sums, subtree_sums
from projections.read_models.projector import Projector
from projections.read_models.schema import LIVE, SHADOW, TABLES, TableSet
from projections.reconciliation.compare import Comparison, compare
from storage import gc_pause
from storage.database import Store

# Events per transaction of a build: bigger batches mean fewer round trips and commits; the
# rows of one batch are held in memory (tens of MB at this size).
REBUILD_BATCH_EVENTS = 10_000
BUILD_CACHE_KIB = 65_536


@dataclass
class RebuildReport:
    position: int
    events: int
    seconds: float
    comparison: Comparison
    switched: bool

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "rebuild_events_per_s": round(self.events_per_s),
            "switched": self.switched,
            "comparison": self.comparison.as_dict(),
        }


def build(
    store: Store,
    projector: Projector,
    tables: TableSet,
    *,
    until_us: int | None = None,
    stop: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[int, int, float]:
    """Creates `tables` afresh and applies the log to them. Returns (position, events, s).

    The log is streamed batch by batch (memory is bounded by the batch, never the log), and
    the query indexes are created once at the end instead of being maintained row by row."""
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            tables.drop(store, cur)
            tables.create(store, cur, secondary_indexes=False)
            start = projector.read_position(cur, tables, lock=False)[0]
    finally:
        conn.close()
    events = 0
    started = time.perf_counter()
    conn = store.connect()
    try:
        if store.is_sqlite:
            # A bigger page cache for this connection only: the key indexes the build looks
            # rows up in are touched at random (member ids are random).
            conn.execute(f"PRAGMA cache_size = -{BUILD_CACHE_KIB}")
        # PostgreSQL: the next batch's events are read and decoded in a thread while this one
        # is written (the thread runs while psycopg waits on the server). Not on SQLite, whose
        # writes run in this process: there the thread only took the GIL from the writer
        # (measured slower).
        ahead = (
            nullcontext()
            if store.is_sqlite
            else projector.reader.reading_ahead(after=start, limit=REBUILD_BATCH_EVENTS, stop=stop)
        )
        with ahead, gc_pause.paused() as between_batches:
            while True:
                with store.transaction(conn) as cur:
                    _shadow_transaction(store, cur, tables)
                    progress = projector.apply_next(
                        cur,
                        tables,
                        limit=REBUILD_BATCH_EVENTS,
                        stop=stop,
                        until_us=until_us,
                        keep_sums=False,
                    )
                events += progress.events
                between_batches()
                if on_batch is not None:
                    on_batch(progress.position)
                if progress.done:
                    break
        _finish(store, conn, tables)
    finally:
        conn.close()
    return progress.position, events, time.perf_counter() - started


# The tables the fills at the end of a build write: their indexes come after the fills, in
# the fills' transaction.
FILLED_TABLES = (*ledger_sums.FILLS, *subtree_sums.FILLS)


def _finish(store: Store, conn: Any, tables: TableSet) -> None:
    """The sums filled from the built rows, then every table's query indexes and unique keys.

    PostgreSQL runs each statement on one core, and these took about a quarter of a county
    build (some 0.8 s of fills and 2.3 s of index builds, 216,154 events), with the building
    process idle. So on PostgreSQL the other tables' indexes are created meanwhile on a
    second connection, the two connections taking the statements from one queue: two cores
    instead of one (SQLite has one writer: its build's connection takes them all). Each
    connection commits its own; a build that stops between them is started over from its
    first event anyway (build drops the set first)."""
    queue: SimpleQueue[str] = SimpleQueue()
    for table in TABLES:
        if table.name not in FILLED_TABLES:
            for statement in tables.secondary_index_statements(table):
                queue.put(statement)

    def drain(cur: Any) -> None:
        if not store.is_sqlite:
            cur.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_CACHE_KIB}kB'")
        while True:
            try:
                statement = queue.get_nowait()
            except Empty:
                return
            cur.execute(statement)

    def aside() -> None:
        other = store.connect()
        try:
            with store.transaction(other) as cur:
                drain(cur)
        finally:
            other.close()

    with ThreadPoolExecutor(1, thread_name_prefix="build-indexes") as pool:
        indexing = None if store.is_sqlite else pool.submit(aside)
        with store.transaction(conn) as cur:
            ledger_sums.fill(store, cur, tables)
            subtree_sums.fill(store, cur, tables)
            for table in TABLES:
                if table.name in FILLED_TABLES:
                    for statement in tables.secondary_index_statements(table):
                        cur.execute(statement)
            drain(cur)
        if indexing is not None:
            indexing.result()  # its error, if any, is the build's


def _shadow_transaction(store: Store, cur: Any, tables: TableSet) -> None:
    """Settings for a transaction that writes only tables being built afresh. On PostgreSQL
    its commit need not wait for the WAL flush: a crash can lose only the last few batches of
    a build that then starts over from the first event anyway (build always drops the set
    first). The WAL itself is still written, so nothing is ever corrupted, and transactions
    that touch live tables (catch-up, align, the switch) keep the full guarantee."""
    if not store.is_sqlite and tables.prefix != LIVE.prefix:
        cur.execute("SET LOCAL synchronous_commit = off")


MAX_COMPARE_ATTEMPTS = 5


def _align(projector: Projector, cur: Any) -> int:
    """Brings live and shadow to the same position (the live row is locked by the caller)."""
    live = projector.read_position(cur, LIVE, lock=True)[0]
    shadow = projector.read_position(cur, SHADOW, lock=False)[0]
    behind, target = (SHADOW, live) if shadow < live else (LIVE, shadow)
    while not projector.apply_next(cur, behind, limit=REBUILD_BATCH_EVENTS, stop=target).done:
        pass
    return target


def _compare_at_one_position(store: Store, projector: Projector, conn: Any) -> Comparison:
    """Aligns both sets under the lock, then compares them in a read snapshot, so that
    neither the event writers (SQLite) nor the live projection (PostgreSQL) wait for the
    comparison. If live moved on in between, aligns again."""
    for _ in range(MAX_COMPARE_ATTEMPTS):
        with store.transaction(conn) as cur:
            _align(projector, cur)
        with store.snapshot(conn) as cur:
            live = projector.read_position(cur, LIVE, lock=False)[0]
            shadow = projector.read_position(cur, SHADOW, lock=False)[0]
            if live == shadow:
                return compare(store, conn, LIVE, SHADOW)
    # Writes are arriving faster than a comparison takes: compare under the lock instead.
    with store.transaction(conn) as cur:
        _align(projector, cur)
        return compare(store, conn, LIVE, SHADOW)


def rebuild(
    store: Store,
    projector: Projector,
    *,
    check_only: bool,
    on_batch: Callable[[int], None] | None = None,
    keep_live: bool = False,
) -> RebuildReport:
    """Builds the shadow set, compares it with live, and (unless check_only or keep_live)
    switches it in. keep_live: compare only, as month-end reconciliation does."""
    _, events, seconds = build(store, projector, SHADOW, on_batch=on_batch)
    projector.catch_up(LIVE)
    conn = store.connect()
    try:
        comparison = _compare_at_one_position(store, projector, conn)
        switch = not (check_only or keep_live)
        with store.transaction(conn) as cur:
            if switch:
                # Events recorded since the comparison reach both sets alike first.
                _align(projector, cur)
                LIVE.drop(store, cur)
                SHADOW.rename_to(store, cur, LIVE)
            else:
                SHADOW.drop(store, cur)
            final = projector.read_position(cur, LIVE, lock=False)[0]
        if switch:
            LIVE.refresh_statistics(store, conn)
    finally:
        conn.close()
    return RebuildReport(final, events, seconds, comparison, switch)
