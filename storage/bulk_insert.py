"""Many stored events inserted in one statement stream: COPY on PostgreSQL, executemany on
SQLite (a roster import's members, service/bulk_join.py).

The rows are the recorder's own (the same table, columns and unique (stream, version) key, so a
duplicate still fails the whole insert with IntegrityError and writes nothing); only the way
they travel differs. Neither COPY nor executemany returns the new positions: both are read back
in the same transaction (PostgreSQL: the rows after the head it began with; SQLite: the last
rowid, less the rows). That is exact because the insert holds the writer's table lock
(PostgreSQL: LOCK TABLE ... EXCLUSIVE, taken by the prelude of
BinaryArrayApplicationRecorder.write_locked; SQLite: the transaction's write lock), so no other
insert takes a position between them, and positions follow the rows' order (a serial default,
or SQLite's max(rowid) + 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, StoredEvent
from psycopg import Cursor
from psycopg.sql import SQL, Identifier


def copy_rows(
    curs: Cursor[Any], schema: str, table: str, id_type: str, stored_events: Sequence[StoredEvent]
) -> list[int]:
    """COPY the events into the table inside the cursor's transaction (the table lock held);
    their positions, in the events' order."""
    head_sql = SQL("SELECT COALESCE(MAX(notification_id), 0) AS head FROM {s}.{t}").format(
        s=Identifier(schema), t=Identifier(table)
    )
    copy_sql = SQL(
        "COPY {s}.{t} (originator_id, originator_version, topic, state) FROM STDIN (FORMAT BINARY)"
    ).format(s=Identifier(schema), t=Identifier(table))
    # One array rather than a row per position: a transaction's thousands of rows read back
    # in a quarter of the time.
    ids_sql = SQL(
        "SELECT COALESCE(array_agg(notification_id ORDER BY notification_id), '{{}}') AS ids"
        " FROM {s}.{t} WHERE notification_id > %s"
    ).format(s=Identifier(schema), t=Identifier(table))
    try:
        curs.execute(head_sql)
        row = curs.fetchone()
        head = int(row["head"] if isinstance(row, dict) else row[0])  # type: ignore[index]
        with curs.copy(copy_sql) as copy:
            copy.set_types([id_type, "int8", "text", "bytea"])
            for e in stored_events:
                oid = e.originator_id
                if id_type == "uuid" and type(oid) is not UUID:
                    oid = UUID(str(oid))
                copy.write_row((oid, e.originator_version, e.topic, e.state))
        curs.execute(ids_sql, (head,), binary=True)
        row = curs.fetchone()
    except psycopg.IntegrityError as exc:
        raise IntegrityError(str(exc)) from exc  # as the recorder's insert would translate it
    ids = list(row["ids"] if isinstance(row, dict) else row[0])  # type: ignore[index]
    if len(ids) != len(stored_events):
        raise RuntimeError(f"{len(ids)} positions read back for {len(stored_events)} rows")
    return ids


def sqlite_insert_many(recorder: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
    """executemany in one transaction of the SQLite recorder; the new rowids, in order."""
    if not stored_events:
        return []
    table = recorder.events_table_name
    params = [
        (
            e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
            e.originator_version,
            e.topic,
            e.state,
        )
        for e in stored_events
    ]
    with recorder.datastore.transaction(commit=True) as c:
        # The insert first: a transaction that read before it writes cannot wait for the
        # write lock (WAL: SQLITE_BUSY at once if another connection wrote since its read).
        c.executemany(recorder.insert_events_statement, params)
        c.execute(f"SELECT MAX(rowid) FROM {table}")
        last = int(c.fetchone()[0])
    # Holding the write lock, the rows took max(rowid) + 1 in turn: consecutive, ours.
    return list(range(last - len(params) + 1, last + 1))
