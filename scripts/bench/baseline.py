"""The ceilings: what the raw database driver does with event-sized rows, in the same run.

Each figure of the ledger is compared with the one of these that bounds it: a durable commit per
row (what a write costs without batching), batched inserts and COPY (what group commit and bulk
loads can approach), and three sequential reads of the event table in position order: the rows
alone (raw_read: what the driver fetches, nothing decoded), every payload decrypted,
decompressed and parsed with the readers' own codec (decode: storage/payload_codec.py, the
ceiling of catch-up and rebuild, which do this and more), and every stored event built into a
domain event by the application's mapper (read: what eventsourcing's object building costs).
The scratch table of the writes mirrors the event store's (same columns, key and position
order) and its payloads are real stored events, so that row sizes and index costs are the same;
the reads read the event store itself.

PostgreSQL is driven by psycopg; SQLite by the sqlite3 module in WAL mode as the event store
opens it. SQLite has no COPY: that ceiling is PostgreSQL's only.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent

from service.application import Ledger
from storage.payload_codec import PayloadDecoder

TABLE = "bench_baseline_events"
EXECUTEMANY_BATCH_ROWS = 500  # service/group_commit.py MAX_BATCH_COMMANDS
COPY_BATCH_ROWS = 10_000
READ_FETCH_ROWS = 2_000
SAMPLE_PAYLOADS = 1_000
COPY_UNAVAILABLE = "SQLite has no COPY; the bulk-load ceiling is PostgreSQL's only"


@dataclass(frozen=True)
class Dialect:
    """What differs between the two drivers for these few statements."""

    name: str
    connect: Callable[[], Any]
    marker: str
    create: tuple[str, ...]
    position: str  # the column that orders the event store
    stream_id: Callable[[uuid.UUID], Any]

    def read_cursor(self, conn: Any) -> Any:
        if self.name == "postgres":
            cur = conn.cursor(name="bench_read")  # server-side: rows stream, memory stays flat
            cur.itersize = READ_FETCH_ROWS
            return cur
        return conn.cursor()


def postgres(url: str) -> Dialect:
    return Dialect(
        name="postgres",
        connect=lambda: psycopg.connect(url),
        marker="%s",
        create=(
            f"CREATE TABLE {TABLE} (originator_id uuid NOT NULL, originator_version bigint"
            " NOT NULL, topic text, state bytea, notification_id bigserial,"
            " PRIMARY KEY (originator_id, originator_version))",
            f"CREATE UNIQUE INDEX {TABLE}_position ON {TABLE} (notification_id)",
        ),
        position="notification_id",
        stream_id=lambda u: u,
    )


def sqlite(path: str) -> Dialect:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    return Dialect(
        name="sqlite",
        connect=connect,
        marker="?",
        create=(
            f"CREATE TABLE {TABLE} (originator_id TEXT, originator_version INTEGER,"
            " topic TEXT, state BLOB, PRIMARY KEY (originator_id, originator_version))",
        ),
        position="rowid",
        stream_id=lambda u: u.hex,
    )


def _payloads(conn: Any, dialect: Dialect, table: str) -> list[tuple[str, bytes]]:
    rows = conn.execute(
        f"SELECT topic, state FROM {table} ORDER BY {dialect.position} DESC LIMIT {SAMPLE_PAYLOADS}"
    ).fetchall()
    if not rows:
        raise RuntimeError("the event store is empty: load the deployment before the baseline")
    return [(topic, bytes(state)) for topic, state in rows]


def _rows(
    dialect: Dialect, payloads: list[tuple[str, bytes]], count: int
) -> Iterator[tuple[Any, ...]]:
    for i in range(count):
        topic, state = payloads[i % len(payloads)]
        yield (dialect.stream_id(uuid.uuid4()), 1, topic, state)


def _insert_sql(dialect: Dialect) -> str:
    m = dialect.marker
    return (
        f"INSERT INTO {TABLE} (originator_id, originator_version, topic, state)"
        f" VALUES ({m}, {m}, {m}, {m})"
    )


def _result(rows: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "rows": rows,
        **extra,
        "seconds": round(seconds, 3),
        "per_s": round(rows / seconds, 1) if seconds > 0 else None,
    }


def commit_per_s(
    conn: Any, dialect: Dialect, payloads: list[tuple[str, bytes]], *, rows: int, max_s: float
) -> dict[str, Any]:
    """One row per durable transaction, one client."""
    sql = _insert_sql(dialect)
    done, started = 0, time.perf_counter()
    for row in _rows(dialect, payloads, rows):
        conn.execute(sql, row)
        conn.commit()
        done += 1
        if time.perf_counter() - started > max_s:
            break
    return _result(done, time.perf_counter() - started)


def executemany_rows_per_s(
    conn: Any, dialect: Dialect, payloads: list[tuple[str, bytes]], *, rows: int, max_s: float
) -> dict[str, Any]:
    sql = _insert_sql(dialect)
    done, started = 0, time.perf_counter()
    cur = conn.cursor()
    while done < rows and time.perf_counter() - started <= max_s:
        batch = list(_rows(dialect, payloads, min(EXECUTEMANY_BATCH_ROWS, rows - done)))
        cur.executemany(sql, batch)
        conn.commit()
        done += len(batch)
    cur.close()
    return _result(done, time.perf_counter() - started, batch_rows=EXECUTEMANY_BATCH_ROWS)


def copy_rows_per_s(
    conn: psycopg.Connection,
    dialect: Dialect,
    payloads: list[tuple[str, bytes]],
    *,
    rows: int,
    max_s: float,
) -> dict[str, Any]:
    done, started = 0, time.perf_counter()
    columns = "(originator_id, originator_version, topic, state)"
    with conn.cursor() as cur:
        while done < rows and time.perf_counter() - started <= max_s:
            batch = min(COPY_BATCH_ROWS, rows - done)
            with cur.copy(f"COPY {TABLE} {columns} FROM STDIN") as copy:
                for row in _rows(dialect, payloads, batch):
                    copy.write_row(row)
            conn.commit()
            done += batch
    return _result(done, time.perf_counter() - started, batch_rows=COPY_BATCH_ROWS)


def _read_rows(
    conn: Any,
    dialect: Dialect,
    table: str,
    *,
    rows: int,
    max_s: float,
    each_batch: Callable[[list[tuple[Any, ...]]], object],
) -> dict[str, Any]:
    """Every stored event in position order, READ_FETCH_ROWS at a time, each batch handed to
    each_batch; bounded in rows and seconds."""
    done, started = 0, time.perf_counter()
    cur = dialect.read_cursor(conn)
    cur.execute(
        f"SELECT originator_id, originator_version, topic, state FROM {table}"
        f" ORDER BY {dialect.position} LIMIT {int(rows)}"
    )
    while batch := cur.fetchmany(READ_FETCH_ROWS):
        each_batch(batch)
        done += len(batch)
        if time.perf_counter() - started > max_s:
            break
    cur.close()
    conn.commit()
    return _result(done, time.perf_counter() - started)


def raw_read_rows_per_s(
    conn: Any, dialect: Dialect, table: str, *, rows: int, max_s: float
) -> dict[str, Any]:
    """The rows fetched and nothing else: the driver's and the database's own cost."""
    return _read_rows(conn, dialect, table, rows=rows, max_s=max_s, each_batch=len)


def decode_rows_per_s(
    conn: Any, dialect: Dialect, ledger: Ledger, table: str, *, rows: int, max_s: float
) -> dict[str, Any]:
    """Every payload decrypted (bound to its row), decompressed and parsed to a dict with the
    readers' codec, transcodings applied, no domain event built."""
    decoder = PayloadDecoder.for_mapper(ledger.mapper, postings_as_rows=True)
    return _read_rows(conn, dialect, table, rows=rows, max_s=max_s, each_batch=decoder.decode_many)


def read_rows_per_s(
    conn: Any, dialect: Dialect, ledger: Ledger, table: str, *, rows: int, max_s: float
) -> dict[str, Any]:
    """Every stored event decrypted and decoded into a domain event by the mapper."""
    mapper = ledger.mapper

    def to_domain_events(batch: list[tuple[Any, ...]]) -> None:
        for originator_id, version, topic, state in batch:
            mapper.to_domain_event(StoredEvent(originator_id, version, topic, bytes(state)))

    return _read_rows(conn, dialect, table, rows=rows, max_s=max_s, each_batch=to_domain_events)


def measure(
    ledger: Ledger, dialect: Dialect, *, commits: int, rows: int, max_s: float
) -> dict[str, Any]:
    """The ceilings, each bounded in rows and seconds; the scratch table is dropped after."""
    table = ledger.recorder.events_table_name  # type: ignore[attr-defined]
    conn = dialect.connect()
    try:
        payloads = _payloads(conn, dialect, table)
        conn.commit()
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        for statement in dialect.create:
            conn.execute(statement)
        conn.commit()
        try:
            details: dict[str, Any] = {
                "commit": commit_per_s(conn, dialect, payloads, rows=commits, max_s=max_s),
                "executemany": executemany_rows_per_s(
                    conn, dialect, payloads, rows=rows, max_s=max_s
                ),
                "copy": (
                    copy_rows_per_s(conn, dialect, payloads, rows=rows, max_s=max_s)
                    if dialect.name == "postgres"
                    else None
                ),
                "raw_read": raw_read_rows_per_s(conn, dialect, table, rows=rows, max_s=max_s),
                "decode": decode_rows_per_s(conn, dialect, ledger, table, rows=rows, max_s=max_s),
                "read": read_rows_per_s(conn, dialect, ledger, table, rows=rows, max_s=max_s),
            }
        finally:
            conn.rollback()
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            conn.commit()
    finally:
        conn.close()
    mean_state = sum(len(s) for _, s in payloads) / len(payloads)
    return {
        "commit_per_s": details["commit"]["per_s"],
        "executemany_rows_per_s": details["executemany"]["per_s"],
        "copy_rows_per_s": details["copy"]["per_s"] if details["copy"] else None,
        "raw_read_rows_per_s": details["raw_read"]["per_s"],
        "decode_rows_per_s": details["decode"]["per_s"],
        "read_rows_per_s": details["read"]["per_s"],
        "row_state_bytes_mean": round(mean_state),
        "details": details,
    }
