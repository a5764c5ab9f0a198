"""Projection throughput beside the machine's raw ceilings, on SQLite and PostgreSQL.

For each store: load N events with `ledger demo --scale S` into a temporary store (or use an
existing one with --url), then, --repeat times:

  read       stream the notification rows (id, topic, state) in batches, nothing else
  decode     the same, plus decrypt + decompress + JSON of every event a read model uses
  build      a full shadow build (what `ledger rebuild` times), events/s over all events
  catch-up   live tables dropped and caught up from position 0 (the worker's path)
  write      the rows the build produced, inserted into fresh tables of the same shape with
             executemany (SQLite) or COPY (PostgreSQL) in batches, query indexes at the end:
             the ceiling of the write side, as events/s of the log they come from

Peak resident memory (ru_maxrss) is printed after each phase, and the load average before and
after: the machine is shared, so compare figures of one run, never across runs.

    .venv/bin/python scripts/bench_projections.py --scale 0.1 --repeat 3
    .venv/bin/python scripts/bench_projections.py --backend sqlite \\
        --url sqlite:////tmp/x.sqlite --key-file /tmp/key
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from projections.read_models.models import ReadModels  # noqa: E402
from projections.read_models.projector import HANDLERS  # noqa: E402
from projections.read_models.schema import LIVE, SHADOW, TABLES, TableSet  # noqa: E402
from projections.reconciliation.rebuild import REBUILD_BATCH_EVENTS, build  # noqa: E402
from scripts.bench.database import DEFAULT_ADMIN_URL, bench_store  # noqa: E402
from service.application import Ledger  # noqa: E402
from storage.settings import Settings  # noqa: E402

COPY_SET = TableSet("rm_benchcopy_")
WRITE_CHUNK_ROWS = 20_000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_demo(env: dict[str, str], scale: float) -> None:
    started = time.perf_counter()
    subprocess.run(
        [str(REPO_ROOT / ".venv/bin/ledger"), "demo", "--scale", str(scale)],
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"  loaded demo --scale {scale} in {time.perf_counter() - started:.0f}s", file=sys.stderr)


def stream_events(rm: ReadModels, decode: bool) -> int:
    """Reads (and decodes) every notification in build-sized batches; returns the count."""
    reader = rm.projector.reader
    conn = rm.store.connect()
    count = position = 0
    try:
        with rm.store.snapshot(conn) as cur:
            while True:
                rows = reader.select(cur, after=position, limit=REBUILD_BATCH_EVENTS)
                if not rows:
                    return count
                if decode:
                    for n in rows:
                        if n.topic in HANDLERS:
                            reader.decode(n)
                count += len(rows)
                position = rows[-1].id
    finally:
        conn.close()


def write_rows_like(rm: ReadModels, source: TableSet) -> int:
    """Copies every row of `source` through Python into COPY_SET, as the build writes them:
    executemany or COPY per chunk, one transaction per chunk, query indexes at the end.
    Returns the rows written; the caller times it."""
    store = rm.store
    rows_written = 0
    reader_conn, writer_conn = store.connect(), store.connect()
    try:
        with store.transaction(writer_conn) as cur:
            COPY_SET.drop(store, cur)
            COPY_SET.create(store, cur, secondary_indexes=False)
            cur.execute(f"DELETE FROM {COPY_SET.table('position')}")
        for table in TABLES:
            names = ", ".join(table.column_names)
            target = COPY_SET.table(table.name)
            if store.is_sqlite:
                src = reader_conn.cursor()
                src.execute(f"SELECT {names} FROM {source.table(table.name)}")
            else:
                src = reader_conn.cursor(name="bench_src")  # server-side: streamed
                src.execute(f"SELECT {names} FROM {source.table(table.name)}")
            while chunk := src.fetchmany(WRITE_CHUNK_ROWS):
                with store.transaction(writer_conn) as cur:
                    if store.is_sqlite:
                        marks = ", ".join("?" for _ in table.column_names)
                        cur.executemany(f"INSERT INTO {target} ({names}) VALUES ({marks})", chunk)
                    else:
                        with cur.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                            for row in chunk:
                                copy.write_row(row)
                rows_written += len(chunk)
            src.close()
            if not store.is_sqlite:
                reader_conn.rollback()
        with store.transaction(writer_conn) as cur:
            COPY_SET.create_secondary_indexes(store, cur)
        with store.transaction(writer_conn) as cur:
            COPY_SET.drop(store, cur)
    finally:
        reader_conn.close()
        writer_conn.close()
    return rows_written


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def run_store(label: str, settings: Settings, repeat: int) -> dict[str, list[float]]:
    ledger = Ledger(settings)
    rm = ReadModels(ledger)
    head = ledger.recorder.max_notification_id() or 0
    print(f"{label}: {head:,} events in the log", file=sys.stderr)
    rates: dict[str, list[float]] = {}

    def note(name: str, events: int, seconds: float, extra: str = "") -> None:
        rate = events / seconds
        rates.setdefault(name, []).append(rate)
        print(
            f"  {name:9} {rate:>10,.0f} events/s  ({events:,} in {seconds:.2f}s; "
            f"peak rss {rss_mb():.0f} MB){extra}",
            file=sys.stderr,
        )

    try:
        for _ in range(repeat):
            count, s = timed(lambda: stream_events(rm, decode=False))
            note("read", count, s)
            count, s = timed(lambda: stream_events(rm, decode=True))
            note("decode", count, s)
            (_, events, s), _ = timed(lambda: build(rm.store, rm.projector, SHADOW))
            note("build", events, s)
            rows, s = timed(lambda: write_rows_like(rm, SHADOW))
            note("write", events, s, f" [{rows:,} rows, {rows / s:,.0f} rows/s]")
            conn = rm.store.connect()
            try:
                with rm.store.transaction(conn) as cur:
                    SHADOW.drop(rm.store, cur)
                    LIVE.drop(rm.store, cur)
                    LIVE.create(rm.store, cur)
            finally:
                conn.close()
            position, s = timed(rm.catch_up)
            note("catch-up", position, s)
    finally:
        rm.close()
        ledger.close()
    return rates


def summarise(label: str, rates: dict[str, list[float]]) -> None:
    print(f"\n{label}: events/s, min / median / max of {len(rates['build'])} runs")
    for name, values in rates.items():
        print(
            f"  {name:9} {min(values):>10,.0f} {statistics.median(values):>10,.0f} "
            f"{max(values):>10,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--scale", type=float, default=0.1, help="`ledger demo --scale`: 0.1 is about 31,000 events"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="use this existing store instead of loading one")
    parser.add_argument("--key-file", type=Path, help="the existing store's key file")
    parser.add_argument(
        "--admin-url",
        default=DEFAULT_ADMIN_URL,
        help="PostgreSQL server for the temporary database",
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    results = []
    if args.url:
        key_file = args.key_file or Path("var/ledger.key")
        settings = Settings(
            database_url=args.url, key_file=key_file, audit_key_file=key_file.with_name("audit.key")
        )
        results.append((args.url, run_store(args.url, settings, args.repeat)))
    else:
        backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
        for backend in backends:
            with (
                tempfile.TemporaryDirectory() as tmp,
                bench_store(backend, args.admin_url, Path(tmp)) as store,
            ):
                load_demo(store.environment(), args.scale)
                results.append((backend, run_store(backend, store.settings, args.repeat)))
    for label, rates in results:
        summarise(label, rates)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
