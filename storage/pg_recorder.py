"""The PostgreSQL event recorder: eventsourcing's, with an insert that costs the writer less CPU.

eventsourcing's PostgresApplicationRecorder passes a batch of events as one array of a
composite type (`unnest(%s::stored_event_uuid[])`), which psycopg dumps in text format element
by element and field by field, escaping every state's bytes as text: about 25-30 us of the
writer's CPU per event. Here the batch goes as four arrays, one per column, each in binary
format (the ids' 16 bytes, the versions, the topics' UTF-8, the states' bytes as they are):
about 1-2 us per event on batches of tens of events or more.

The transaction is the parent's, statement for statement, without psycopg's pipeline mode:
BEGIN; `SET LOCAL lock_timeout`, `LOCK TABLE ... IN EXCLUSIVE MODE` and `NOTIFY` (the parent's
own statements, sent as one simple-protocol message); the INSERT; COMMIT. psycopg's pipeline
machinery cost more of the writer's CPU on a small batch (about 0.2 ms a transaction) than
the round trips it saves on a local server (see `insert_events`).

What stays the same: the table and its columns, the table lock (notification ids are committed
in the order they are issued), the NOTIFY, the IntegrityError on a duplicate (originator_id,
originator_version) with nothing written, and the notification ids returned in the order of
the events. With POSTGRES_ENABLE_DB_FUNCTIONS the parent's insert (its database function,
which takes the composite array) is used unchanged.

Order: the rows are selected `WITH ORDINALITY ... ORDER BY` their position in the arrays, so
the SELECT's order is the list's by definition rather than by the way a function scan happens
to work (the planner knows that scan is already in that order: no sort is added). The serial
default and RETURNING follow the rows in that order, as eventsourcing's own insert relies on
when it pairs the returned ids with its events (EventStore.put).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Connection, Cursor
from psycopg.errors import DuplicateObject
from psycopg.sql import SQL, Composable, Identifier

from storage.bulk_insert import copy_rows

__all__ = ["BinaryArrayApplicationRecorder", "LockedWrite"]

T = TypeVar("T")
# No position is this large: the bound of a selection that has none.
NO_STOP = 2**63 - 1


class BinaryArrayApplicationRecorder(PostgresApplicationRecorder):
    """Inserts a batch of events as four binary column arrays instead of one text array of
    composites, in a plain (not pipelined) transaction."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._ids_are_uuids = self.datastore.originator_id_type == "uuid"
        # The parent's lock statements and NOTIFY, in its order, as one message.
        self.insert_prelude_statement = SQL("; ").join(
            [
                *self.lock_table_statements,
                SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
            ]
        )
        self.insert_column_arrays_statement = SQL(
            "INSERT INTO {schema}.{table} AS t ("
            "originator_id, originator_version, topic, state) "
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "WITH ORDINALITY AS e(originator_id, originator_version, topic, state, n) "
            "ORDER BY e.n "
            "RETURNING notification_id"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(self.datastore.originator_id_type),
        )
        self.select_after_statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE notification_id >= %s AND notification_id <= %s "
            "ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        self._rendered: tuple[bytes, bytes] | None = None
        self._select_after_template: bytes | None = None

    def create_table(self) -> None:
        """The parent's tables, type and function, created by one process at a time.

        The parent runs `CREATE OR REPLACE FUNCTION` on every start, which rewrites the
        function's catalog row: two processes starting together on the same database (the
        HTTP processes of `ledger serve --workers 2`) could fail with PostgreSQL's "tuple
        concurrently updated" and the server would not start. Here every statement runs in
        one transaction that first takes an advisory lock, the composite type in a savepoint
        (it has no IF NOT EXISTS: an existing one raises DuplicateObject)."""
        lock = "SELECT pg_advisory_xact_lock(hashtext('event_store_schema'))"
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(lock, prepare=False)
            for statement in self.sql_create_statements:
                if "CREATE TYPE" in statement.as_string():
                    with contextlib.suppress(DuplicateObject), curs.connection.transaction():
                        curs.execute(statement, prepare=False)
            self._create_table(curs)
        self.datastore.register_type_adapters()

    def _select_after_literal(self, conn: Connection[Any], start: int, limit: int) -> bytes:
        """select_after_statement from start (no stop) with its values written in."""
        if type(start) is not int or type(limit) is not int:
            raise TypeError("a read ahead's start and limit are ints")
        if self._select_after_template is None:
            rendered = self.select_after_statement.as_bytes(conn)
            # Its placeholders become %d; any other % is kept as it is.
            self._select_after_template = rendered.replace(b"%", b"%%").replace(b"%%s", b"%d")
        return self._select_after_template % (start, NO_STOP, limit)

    def _statements(self, conn: Connection[Any]) -> tuple[bytes, bytes]:
        """Both statements as bytes, rendered once (psycopg renders a Composed on every
        execute)."""
        if self._rendered is None:
            statements: tuple[Composable, Composable] = (
                self.insert_prelude_statement,
                self.insert_column_arrays_statement,
            )
            self._rendered = (statements[0].as_bytes(conn), statements[1].as_bytes(conn))
        return self._rendered

    def column_arrays(self, stored_events: Sequence[StoredEvent]) -> tuple[list[Any], ...]:
        ids: list[Any] = [e.originator_id for e in stored_events]
        if self._ids_are_uuids and not all(type(i) is UUID for i in ids):
            # One element type per array (the composite path accepted ids as strings too).
            ids = [i if isinstance(i, UUID) else UUID(str(i)) for i in ids]
        return (
            ids,
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # The same retry as the parent's: storage/outage.py replaces it through __wrapped__.
        if self.datastore.enable_db_functions:
            parent = PostgresApplicationRecorder.insert_events.__wrapped__  # type: ignore[attr-defined]
            return parent(self, stored_events, **kwargs)
        if not stored_events:
            return None  # as the parent: nothing written, no ids
        arrays = self.column_arrays(stored_events)
        with self.datastore.get_connection() as conn:
            assert conn.autocommit
            prelude, insert = self._statements(conn)
            # Measured on a 3-event insert against a local server: this shape cost the writer
            # about 0.37 ms of CPU, the parent's pipelined one 0.56 ms (with the same arrays),
            # and also less wall time; a remote server adds two round trips' latency.
            with conn.transaction(), conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
                curs.execute(prelude, prepare=False)  # several statements: never prepared
                curs.execute(insert, arrays)
                return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def write_locked(
        self,
        lock_key: int,
        body: Callable[[LockedWrite], T],
        *,
        read_ahead: tuple[int, int] | None = None,
    ) -> T:
        """Runs body in one transaction that first takes the advisory lock lock_key (held
        until the transaction ends: the writers' turn, see service/writer_lock.py) and the
        table lock (as insert_events does). body reads through the LockedWrite it is given and
        inserts at most once, which commits; a transaction that body leaves without inserting
        (nothing to write, or an IntegrityError) is rolled back.

        read_ahead (start, limit): the notifications body will ask for first (a writer's
        catch-up on what others wrote), read in the same message as the locks, after them.

        Three round trips for a batch: the locks, NOTIFY and the catch-up read in one message,
        the INSERT, COMMIT. Taking a session lock on a connection of its own, then reading,
        inserting and unlocking on others took seven; the catch-up read as a message of its
        own took a fifth of a one-command turn's time (four round trips)."""
        if self.datastore.enable_db_functions:
            raise NotImplementedError("write_locked inserts with its own statement")
        with self.datastore.get_connection() as conn:
            assert conn.autocommit
            prelude, _ = self._statements(conn)
            message = b"BEGIN; SELECT pg_advisory_xact_lock(%d); " % lock_key + prelude
            if read_ahead is not None:
                message += b"; " + self._select_after_literal(conn, *read_ahead)
            with conn.cursor() as curs:
                write = LockedWrite(self, conn, curs)
                try:
                    # One simple-protocol message (no parameters: the key, the start and the
                    # limit are ints of ours, written in as literals).
                    curs.execute(message, prepare=False)
                    if read_ahead is not None:
                        while curs.nextset():  # the read's result is the message's last
                            pass
                        write.read_ahead = (read_ahead, write.notifications(curs.fetchall()))
                    result = body(write)
                finally:
                    if not write.committed:
                        # A broken connection cannot roll back; the server ends its transaction.
                        with contextlib.suppress(psycopg.Error):
                            conn.execute("ROLLBACK")
                return result


class LockedWrite:
    """What a write_locked body may do on its transaction: read notifications, and insert once
    (which commits)."""

    def __init__(
        self, recorder: BinaryArrayApplicationRecorder, conn: Connection[Any], curs: Cursor[Any]
    ) -> None:
        self._recorder = recorder
        self._conn = conn
        self._curs = curs
        self.committed = False
        # ((start, limit), notifications): what write_locked read ahead, given once.
        self.read_ahead: tuple[tuple[int, int], list[Notification]] | None = None

    def select_notifications(
        self, start: int, limit: int, stop: int | None = None
    ) -> list[Notification]:
        if self.read_ahead is not None:
            asked, notifications = self.read_ahead
            self.read_ahead = None
            if stop is None and asked == (start, limit):
                return notifications
        self._curs.execute(
            self._recorder.select_after_statement,
            (start, NO_STOP if stop is None else stop, limit),
            prepare=True,
        )
        return self.notifications(self._curs.fetchall())

    @staticmethod
    def notifications(rows: Sequence[Any]) -> list[Notification]:
        return [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in rows
        ]

    def insert_events(self, stored_events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """Inserts, as insert_events does (the locks are already held), and commits."""
        if self.committed:
            raise RuntimeError("a locked write inserts once")
        if not stored_events:
            return None
        _, insert = self._recorder._statements(self._conn)
        try:
            self._curs.execute(insert, self._recorder.column_arrays(stored_events))
        except psycopg.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc  # as get_connection() would translate it
        ids = self._recorder._fetch_ids_after_insert_events(self._curs, stored_events)
        self._conn.execute("COMMIT")
        self.committed = True
        return ids

    def insert_many(self, stored_events: Sequence[StoredEvent]) -> list[int]:
        """Inserts a large batch with COPY (storage/bulk_insert.py), then commits; the
        positions in the events' order."""
        if self.committed:
            raise RuntimeError("a locked write inserts once")
        if not stored_events:
            return []
        datastore = self._recorder.datastore
        ids = copy_rows(
            self._curs,
            datastore.schema,
            self._recorder.events_table_name,
            datastore.originator_id_type,
            stored_events,
        )
        self._conn.execute("COMMIT")
        self.committed = True
        return ids
