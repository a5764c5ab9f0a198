"""The read models' own connections to the events' database (SQLite file or PostgreSQL).

Read models live beside the events so that a batch of rows and the projection's position
commit in one transaction. SQL is written once with `?` (positional) or `:name` (named)
markers and translated for psycopg here.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from storage.event_store import DATABASE_WAIT_S, eventsourcing_env
from storage.settings import Settings

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
SQLITE_BUSY_TIMEOUT_S = 30


def _to_psycopg(sql: str) -> str:
    return _NAMED.sub(r"%(\1)s", sql.replace("?", "%s"))


def pg_array(values: Sequence[Any], kind: str, marker: str = "?") -> tuple[str, Any]:
    """A PostgreSQL array parameter as (SQL with one parameter marker, its value): the values
    joined into one comma-separated string split by the server, since psycopg adapts a list
    element by element in Python, which cost more than the queries it serves (member
    prefetch, the ledger_sums upsert, stored_ids). Values holding a comma go as a list
    instead. `marker` is the caller's parameter marker (`?` here, `{p}` in Ledger._select)."""
    joined = ",".join(map(str, values))
    if joined.count(",") == len(values) - 1:
        return f"string_to_array({marker}, ',')::{kind}[]", joined
    return f"{marker}::{kind}[]", list(values)


def one_of(
    column: str, values: Sequence[Any], kind: str, *, sqlite: bool, marker: str = "?"
) -> tuple[str, list[Any]]:
    """A condition that `column` is one of `values`, and its parameters: on SQLite an `IN` with
    a marker a value; on PostgreSQL `= ANY` of one array parameter (pg_array, `kind` its
    element type), so the statement's text is the same however many values it names and is
    parsed once, not once a count."""
    if sqlite:
        return f"{column} IN ({', '.join([marker] * len(values))})", list(values)
    array, value = pg_array(values, kind, marker)
    return f"{column} = ANY({array})", [value]


class Store:
    """Connections of one kind: `sqlite` or `postgres`. Writers get their own connection;
    readers share a per-thread SQLite connection or a small PostgreSQL pool."""

    def __init__(self, settings: Settings) -> None:
        # The same URL parsing as the event store's, so both always name the same database.
        env = eventsourcing_env(settings)
        if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
            self.kind = "sqlite"
            self.sqlite_path = env["SQLITE_DBNAME"]
            if self.sqlite_path == ":memory:" or "mode=memory" in self.sqlite_path:
                raise ValueError("read models need an SQLite file, not an in-memory database")
            self.conninfo = ""
        else:
            self.kind = "postgres"
            self.conninfo = psycopg.conninfo.make_conninfo(
                dbname=env["POSTGRES_DBNAME"],
                host=env["POSTGRES_HOST"],
                port=env["POSTGRES_PORT"],
                user=env["POSTGRES_USER"],
                password=env["POSTGRES_PASSWORD"] or None,
                connect_timeout=5,
            )
        self._pool_size = max(2, settings.postgres_pool_size)
        self._local = threading.local()
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    def sql(self, text: str) -> str:
        return text if self.is_sqlite else _to_psycopg(text)

    def connect(self) -> Any:
        """A new connection for writing (the caller closes it)."""
        if self.is_sqlite:
            conn = sqlite3.connect(
                self.sqlite_path,
                timeout=SQLITE_BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        return psycopg.connect(self.conninfo, autocommit=False)

    @contextmanager
    def transaction(self, conn: Any) -> Iterator[Any]:
        """One write transaction; on SQLite BEGIN IMMEDIATE takes the write lock up front."""
        if self.is_sqlite:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        else:
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    @contextmanager
    def snapshot(self, conn: Any) -> Iterator[Any]:
        """A read-only transaction that sees one moment of the database throughout."""
        if self.is_sqlite:
            conn.execute("BEGIN")
            try:
                cur = conn.cursor()
                yield cur
            finally:
                conn.rollback()
        else:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute("SET TRANSACTION READ ONLY")
                    yield cur
            finally:
                conn.isolation_level = None

    @contextmanager
    def writer(self) -> Iterator[Any]:
        """A reusable connection for catch-up transactions: a per-thread SQLite connection,
        or one from the PostgreSQL pool (opening a connection per request costs too much)."""
        if self.is_sqlite:
            conn = getattr(self._local, "writer", None)
            if conn is None:
                conn = self._local.writer = self.connect()
                with self._lock:
                    self._readers.append(conn)
            yield conn
        else:
            with self._read_pool().connection() as conn:
                yield conn

    @contextmanager
    def reader(self) -> Iterator[Any]:
        """A cursor for queries (one consistent snapshot on PostgreSQL)."""
        if self.is_sqlite:
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = sqlite3.connect(
                    self.sqlite_path,
                    timeout=SQLITE_BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._local.conn = conn
                with self._lock:
                    self._readers.append(conn)
            cur = conn.cursor()
            cur.execute("BEGIN")  # one snapshot for the whole query
            try:
                yield cur
            finally:
                conn.rollback()
        else:
            with self._read_pool().connection() as conn, conn.cursor() as cur:
                yield cur

    def one_snapshot(self, cur: Any) -> None:
        """Makes a reader's transaction one snapshot for all its queries: PostgreSQL reads in
        READ COMMITTED otherwise (a snapshot per statement); SQLite's reader already is one.
        Call it first in the transaction."""
        if not self.is_sqlite:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _read_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.conninfo,
                    min_size=1,
                    max_size=self._pool_size,
                    open=True,
                    kwargs={"autocommit": False},
                    # While the database is down a read answers 503 within seconds.
                    timeout=DATABASE_WAIT_S,
                )
            return self._pool

    def chunks(
        self, cur: Any, sql: str, params: dict[str, Any], size: int = 2_000
    ) -> Iterator[list[Any]]:
        """The rows of a query in lists of at most `size`, read as they are asked for, in the
        reader's snapshot: a whole export holds one chunk in memory, not the result. A
        psycopg cursor fetches the whole result at once, so PostgreSQL reads through a
        server-side (named) cursor; sqlite3 cursors step through the result by themselves."""
        if self.is_sqlite:
            # A cursor of its own: the caller's cursor stays free for queries between chunks.
            own = cur.connection.cursor()
            try:
                own.execute(self.sql(sql), params)
                while rows := own.fetchmany(size):
                    yield rows
            finally:
                own.close()
            return
        with cur.connection.cursor(name=f"chunks_{threading.get_ident()}") as named:
            named.itersize = size
            named.execute(self.sql(sql), params)
            while rows := named.fetchmany(size):
                yield rows

    def executemany(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            cur.executemany(self.sql(sql), rows)

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
