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
from dataclasses import dataclass
from typing import Any

from projections.compare import Comparison, compare
from projections.projector import Projector
from projections.schema import LIVE, SHADOW, TABLES, TableSet
from projections.store import Store

REBUILD_BATCH_EVENTS = 5_000


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
            "position": self.position, "events": self.events,
            "seconds": round(self.seconds, 3), "rebuild_events_per_s": round(self.events_per_s),
            "switched": self.switched, "comparison": self.comparison.as_dict(),
        }


def build(store: Store, projector: Projector, tables: TableSet, *,
          until_us: int | None = None, stop: int | None = None,
          on_batch: Callable[[int], None] | None = None) -> tuple[int, int, float]:
    """Creates `tables` afresh and applies the log to them. Returns (position, events, s)."""
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            tables.drop(store, cur)
            tables.create(store, cur)
    finally:
        conn.close()
    events = 0
    started = time.perf_counter()
    conn = store.connect()
    try:
        while True:
            with store.transaction(conn) as cur:
                progress = projector.apply_next(cur, tables, limit=REBUILD_BATCH_EVENTS,
                                                stop=stop, until_us=until_us)
            events += progress.events
            if on_batch is not None:
                on_batch(progress.position)
            if progress.done:
                break
    finally:
        conn.close()
    return progress.position, events, time.perf_counter() - started


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


def _analyze(store: Store, conn: Any) -> None:
    """Fresh statistics for the query planner on the tables just switched in."""
    if store.is_sqlite:
        conn.execute("ANALYZE")
        return
    conn.autocommit = True
    try:
        for table in TABLES:
            conn.execute(f"VACUUM (ANALYZE) {LIVE.table(table.name)}")
    finally:
        conn.autocommit = False


def rebuild(store: Store, projector: Projector, *, check_only: bool,
            on_batch: Callable[[int], None] | None = None,
            keep_live: bool = False) -> RebuildReport:
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
            _analyze(store, conn)
    finally:
        conn.close()
    return RebuildReport(final, events, seconds, comparison, switch)
