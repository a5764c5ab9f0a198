"""One writer at a time across processes: the lock a batch holds from its first read to its
commit.

Several server processes (`ledger serve --workers N`) each have a group-commit writer. If two
decided batches on the same aggregates at once, the later write would fail on the store's
(id, version) constraint and its commands would be decided again one by one. Holding this lock
from the batch's first read to its commit means each batch reads what every earlier batch
committed, so batches of different processes never conflict; the processes still parse,
validate and answer requests in parallel.

PostgreSQL: a session advisory lock on a connection of its own (the batch's write goes through
the pool on another connection; the lock is only a mutex between writers). SQLite: an
exclusive flock on a file beside the database. An in-memory SQLite database has one process,
and needs no lock.
"""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path
from typing import Any, Protocol

import psycopg
from eventsourcing.persistence import OperationalError
from eventsourcing.postgres import PostgresRecorder
from eventsourcing.sqlite import SQLiteRecorder

CONNECT_TIMEOUT_S = 2


class WriterLock(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def close(self) -> None: ...


class NoLock:
    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


class FileLock:
    """flock on `<database>.writer-lock`: released by the kernel if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self) -> None:
        if self._file is None:
            self._file = self.path.open("a+b")
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class AdvisoryLock:
    """pg_advisory_lock on a dedicated connection: released by the server if the process
    dies or the connection drops. Reconnects on the next acquire after a failure."""

    def __init__(self, connect_kwargs: dict[str, Any], name: str) -> None:
        self._connect_kwargs = connect_kwargs
        digest = hashlib.sha256(f"ledger-writer:{name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)
        self._conn: psycopg.Connection | None = None

    def acquire(self) -> None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(**self._connect_kwargs, autocommit=True,
                                             connect_timeout=CONNECT_TIMEOUT_S)
            self._conn.execute("SELECT pg_advisory_lock(%s)", (self._key,))
        except psycopg.Error as exc:
            self._drop()
            raise OperationalError(f"the database is unreachable: {exc}") from exc

    def release(self) -> None:
        try:
            if self._conn is not None:
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        except psycopg.Error:
            self._drop()  # the server released the lock with the session

    def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        self._conn = None


def writer_lock(recorder: Any) -> WriterLock:
    """The lock for the store under this recorder: by its class, not its module's name (the
    PostgreSQL recorder is a subclass in service/pg_recorder.py)."""
    if isinstance(recorder, PostgresRecorder):
        kwargs = recorder.datastore.pool.kwargs
        connect = {k: kwargs[k] for k in ("dbname", "host", "port", "user", "password")
                   if kwargs.get(k)}
        return AdvisoryLock(connect, f"{connect.get('dbname')}.{recorder.events_table_name}")
    if isinstance(recorder, SQLiteRecorder):
        pool = recorder.datastore.pool
        if pool.is_sqlite_memory_mode:
            return NoLock()
        path = pool.db_name
        return FileLock(Path(f"{path}.writer-lock"))
    return NoLock()
