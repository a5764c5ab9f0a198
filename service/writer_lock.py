"""One writer at a time across processes: the lock a batch holds from its first read to its
commit.

Several server processes (`ledger serve --workers N`) each have a group-commit writer. If two
decided batches on the same aggregates at once, the later write would fail on the store's
(id, version) constraint and its commands would be decided again one by one. Holding this lock
from the batch's first read to its commit means each batch reads what every earlier batch
committed, so batches of different processes never conflict; the processes still parse,
validate and answer requests in parallel.

PostgreSQL: a transaction advisory lock, taken first in the transaction that then reads what
others wrote and inserts the batch, and released by its commit (one connection, three round
trips: the locks with that read, the insert, the commit). SQLite: an exclusive flock on a
file beside the database, around a read and an insert of their own. An in-memory SQLite
database has one process, and needs no lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresRecorder
from eventsourcing.sqlite import SQLiteRecorder

from storage.bulk_insert import sqlite_insert_many
from storage.pg_recorder import BinaryArrayApplicationRecorder

T = TypeVar("T")


class Turn(Protocol):
    """What a writer may do in its turn: read the notifications others wrote, insert once."""

    def select_notifications(
        self, start: int, limit: int, stop: int | None = None
    ) -> Sequence[Notification]: ...
    def insert_events(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None: ...
    def insert_many(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Inserts a large batch (COPY, executemany: storage/bulk_insert.py) instead of
        insert_events; the positions in the events' order."""


class WriterLock(Protocol):
    def write(self, body: Callable[[Turn], T], *, read_ahead: tuple[int, int] | None = None) -> T:
        """Runs body in the writer's turn: no other writer reads-to-write or inserts meanwhile.
        read_ahead (start, limit): the notifications body will select first, which a lock may
        read along with taking itself (PostgreSQL: one round trip less); the others ignore
        it."""

    def close(self) -> None: ...


class _Unlocked:
    """A turn outside any transaction of its own: the recorder's reads and insert."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder

    # Looked up on each call, not bound once: the recorder's methods may be replaced on the
    # instance after the lock is made (storage/outage.py).
    def select_notifications(
        self, start: int, limit: int, stop: int | None = None
    ) -> Sequence[Notification]:
        return self._recorder.select_notifications(start=start, limit=limit, stop=stop)

    def insert_events(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        return self._recorder.insert_events(stored_events)

    def insert_many(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        if isinstance(self._recorder, SQLiteRecorder):
            return sqlite_insert_many(self._recorder, stored_events)
        return list(self._recorder.insert_events(stored_events) or [])


class NoLock:
    def __init__(self, recorder: Any) -> None:
        self._turn = _Unlocked(recorder)

    def write(self, body: Callable[[Turn], T], *, read_ahead: tuple[int, int] | None = None) -> T:
        return body(self._turn)

    def close(self) -> None:
        pass


class FileLock:
    """flock on `<database>.writer-lock`: released by the kernel if the process dies."""

    def __init__(self, path: Path, recorder: Any) -> None:
        self.path = path
        self._turn = _Unlocked(recorder)
        self._file: Any = None

    def write(self, body: Callable[[Turn], T], *, read_ahead: tuple[int, int] | None = None) -> T:
        if self._file is None:
            # 0600 like the database beside it (storage/): it holds nothing, but
            # whoever can open it can hold up every writer.
            self._file = os.fdopen(
                os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600), "a+b"
            )
        fcntl.flock(self._file.fileno(), fcntl.LOCK_EX)
        try:
            return body(self._turn)
        finally:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class AdvisoryLock:
    """pg_advisory_xact_lock, taken first in the very transaction that reads and inserts
    (BinaryArrayApplicationRecorder.write_locked): released by the server when that
    transaction commits or rolls back, or when its connection drops."""

    def __init__(self, recorder: BinaryArrayApplicationRecorder, name: str) -> None:
        self._recorder = recorder
        digest = hashlib.sha256(f"ledger-writer:{name}".encode()).digest()
        self._key = int.from_bytes(digest[:8], "big", signed=True)

    def write(self, body: Callable[[Turn], T], *, read_ahead: tuple[int, int] | None = None) -> T:
        return self._recorder.write_locked(self._key, body, read_ahead=read_ahead)

    def close(self) -> None:
        pass


def writer_lock(recorder: Any) -> WriterLock:
    """The lock for the store under this recorder: by its class, not its module's name."""
    if isinstance(recorder, BinaryArrayApplicationRecorder):
        return AdvisoryLock(
            recorder, f"{recorder.datastore.pool.kwargs.get('dbname')}.{recorder.events_table_name}"
        )
    if isinstance(recorder, PostgresRecorder):
        raise TypeError(
            "on PostgreSQL the writers take turns through "
            "storage.pg_recorder.BinaryArrayApplicationRecorder"
        )
    if isinstance(recorder, SQLiteRecorder):
        pool = recorder.datastore.pool
        if pool.is_sqlite_memory_mode:
            return NoLock(recorder)
        return FileLock(Path(f"{pool.db_name}.writer-lock"), recorder)
    return NoLock(recorder)
