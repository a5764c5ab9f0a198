"""storage/pg_recorder.py: the binary column-array insert writes what eventsourcing's composite
insert writes, in the same order, under the same lock, atomically; and the service finds it."""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from service.writer_lock import AdvisoryLock, FileLock, writer_lock
from storage.outage import bound_retries
from storage.pg_recorder import BinaryArrayApplicationRecorder
from tests.conftest import Backend, _pg_base, create_pg_database, drop_pg_database

TOPICS = ("ledger:Member.Joined", "ledger:Organisation.MembersAdmitted", "主题:事件")


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    name = create_pg_database()
    try:
        yield name
    finally:
        drop_pg_database(name)


def datastore(dbname: str, **kwargs: Any) -> PostgresDatastore:
    url = psycopg.conninfo.conninfo_to_dict(f"{_pg_base()}/{dbname}")
    return PostgresDatastore(
        dbname,
        url.get("host", "127.0.0.1"),
        url.get("port", 5432),
        url.get("user", "postgres"),
        url.get("password", ""),
        lock_timeout=kwargs.pop("lock_timeout", 5),
        **kwargs,
    )


@pytest.fixture
def recorders(
    pg_database: str,
) -> Iterator[tuple[PostgresApplicationRecorder, BinaryArrayApplicationRecorder]]:
    """eventsourcing's recorder and ours, on two fresh tables of one database."""
    store = datastore(pg_database)
    suffix = uuid.uuid4().hex[:8]
    old = PostgresApplicationRecorder(store, events_table_name=f"old_{suffix}")
    new = BinaryArrayApplicationRecorder(store, events_table_name=f"new_{suffix}")
    old.create_table()
    new.create_table()
    try:
        yield old, new
    finally:
        store.close()


def events(n: int, versions: int = 1) -> list[StoredEvent]:
    """n events over n // versions aggregates, interleaved, states of 300-600 random bytes
    (every byte value, including 0, quotes and backslashes)."""
    ids = [uuid.uuid4() for _ in range(max(1, n // versions))]
    out = []
    for i in range(n):
        out.append(
            StoredEvent(
                ids[i % len(ids)],
                i // len(ids) + 1,
                TOPICS[i % len(TOPICS)],
                os.urandom(random.randint(300, 600)),
            )
        )
    return out


def rows(recorder: PostgresApplicationRecorder) -> list[tuple[Any, ...]]:
    return _rows_of(recorder.select_notifications(None, 1_000_000))


def _rows_of(notifications: Any) -> list[tuple[Any, ...]]:
    return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


@pytest.mark.parametrize("n", [1, 3, 30, 2_500])
def test_writes_what_the_composite_insert_writes_in_order(recorders: Any, n: int) -> None:
    old, new = recorders
    batch = events(n, versions=3)
    old_ids = old.insert_events(batch)
    new_ids = new.insert_events(batch)
    assert new_ids == old_ids == list(range(1, n + 1))  # the list's order
    assert all(type(i) is int for i in new_ids)
    assert rows(new) == rows(old)
    assert [r[1:] for r in rows(new)] == [
        (e.originator_id, e.originator_version, e.topic, e.state) for e in batch
    ]
    some = batch[0].originator_id
    assert new.select_events(some) == old.select_events(some)
    # A second batch continues the sequence, in its own order.
    more = events(5)
    assert new.insert_events(more) == list(range(n + 1, n + 6))


def test_a_duplicate_version_fails_the_whole_batch(recorders: Any) -> None:
    _, new = recorders
    first = events(3)
    new.insert_events(first)
    fresh = events(4)
    for clash in ([*fresh, first[1]], [fresh[0], fresh[0]]):  # against the store; in the batch
        with pytest.raises(IntegrityError):
            new.insert_events(clash)
        assert new.max_notification_id() == 3
        assert all(new.select_events(e.originator_id) == [] for e in fresh)
    ids = new.insert_events(fresh)  # after a gap: the failed inserts used sequence values
    assert ids == list(range(ids[0], ids[0] + 4)) and ids[0] > 3
    assert [n.originator_id for n in new.select_notifications(None, 10)] == [
        e.originator_id for e in first + fresh
    ]


def test_an_empty_insert_writes_nothing(recorders: Any) -> None:
    _, new = recorders
    assert new.insert_events([]) is None
    assert new.max_notification_id() is None


def test_ids_given_as_strings_are_stored_as_uuids(recorders: Any) -> None:
    _, new = recorders
    batch = events(2)
    as_text = [
        StoredEvent(str(e.originator_id), e.originator_version, e.topic, e.state) for e in batch
    ]
    assert new.insert_events([batch[0], as_text[1]]) == [1, 2]
    assert [r[1] for r in rows(new)] == [e.originator_id for e in batch]


def test_insert_takes_the_table_lock_and_notifies(pg_database: str) -> None:
    store = datastore(pg_database, lock_timeout=1)
    recorder = BinaryArrayApplicationRecorder(store, events_table_name=f"l_{uuid.uuid4().hex[:8]}")
    recorder.create_table()
    insert_once = type(recorder).insert_events.__wrapped__  # without the retries
    conninfo = f"{_pg_base()}/{pg_database}"
    try:
        with psycopg.connect(conninfo, autocommit=True) as listener:
            listener.execute(f"LISTEN {recorder.channel_name}")
            assert insert_once(recorder, events(2)) == [1, 2]
            assert [n.channel for n in listener.notifies(timeout=60, stop_after=1)] == [
                recorder.channel_name
            ]
        # ROW SHARE conflicts with the EXCLUSIVE table lock, not with a plain INSERT's.
        with psycopg.connect(conninfo) as blocker:
            blocker.execute(f"LOCK TABLE {recorder.events_table_name} IN ROW SHARE MODE")
            with pytest.raises(OperationalError, match="lock timeout"):
                insert_once(recorder, events(1))
            blocker.rollback()
        assert recorder.max_notification_id() == 2
    finally:
        store.close()


class _Counting:
    """A cursor that notes the queries executed through it."""

    def __init__(self, cursor: Any, executed: list[Any]) -> None:
        self._cursor, self._executed = cursor, executed

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._executed.append(query)
        return self._cursor.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def test_a_locked_write_reads_ahead_in_the_message_that_takes_its_locks(recorders: Any) -> None:
    """The catch-up read a turn asks for first comes with its locks, in their message: the
    same notifications a query would give (states byte for byte), and no query of its own.
    Asked for anything else, the turn queries as before."""
    _, new = recorders
    earlier = events(5, versions=2)
    new.insert_events(earlier)
    expected = rows(new)
    executed: list[Any] = []

    def body(write: Any) -> tuple[list[Any], list[Any], list[Any]]:
        write._curs = _Counting(write._curs, executed)
        ahead = write.select_notifications(3, 1_000)  # what was read ahead: no query
        assert executed == []
        again = write.select_notifications(3, 1_000)  # given once: now a query
        narrower = write.select_notifications(2, 2, stop=3)
        assert len(executed) == 2
        ids = write.insert_events(events(1))
        assert ids == [6] and write.committed
        return ahead, again, narrower

    as_rows = _rows_of
    ahead, again, narrower = new.write_locked(7, body, read_ahead=(3, 1_000))
    assert as_rows(ahead) == as_rows(again) == expected[2:]
    assert as_rows(narrower) == expected[1:3]
    assert new.max_notification_id() == 6

    # A read ahead that the body does not take is dropped; an empty one is empty.
    def other(write: Any) -> list[Any]:
        return write.select_notifications(1, 2)

    assert as_rows(new.write_locked(7, other, read_ahead=(4, 10))) == as_rows(
        new.select_notifications(1, 2)
    )
    assert new.write_locked(7, lambda w: w.select_notifications(7, 10), read_ahead=(7, 10)) == []
    with pytest.raises(TypeError):
        new.write_locked(7, other, read_ahead=("4; DROP TABLE x", 10))
    assert new.max_notification_id() == 6


def test_db_functions_and_text_ids_take_the_parents_paths(pg_database: str) -> None:
    for kwargs in ({"enable_db_functions": True}, {"originator_id_type": "text"}):
        store = datastore(pg_database, **kwargs)
        table = f"f_{uuid.uuid4().hex[:8]}"
        try:
            recorder = BinaryArrayApplicationRecorder(store, events_table_name=table)
            recorder.create_table()
            batch = events(4, versions=2)
            assert recorder.insert_events(batch) == [1, 2, 3, 4]
            assert [(str(r[1]), r[2], r[3], r[4]) for r in rows(recorder)] == [
                (str(e.originator_id), e.originator_version, e.topic, e.state) for e in batch
            ]
            with pytest.raises(IntegrityError):
                recorder.insert_events([*events(1), batch[0]])
            assert recorder.max_notification_id() == 4
        finally:
            store.close()


def test_the_service_uses_it_with_its_lock_and_bounded_retries(backend: Backend) -> None:
    ledger = backend.open()
    recorder = ledger.recorder
    lock = writer_lock(recorder)
    try:
        if backend.kind == "postgres":
            assert type(recorder) is BinaryArrayApplicationRecorder
            assert isinstance(lock, AdvisoryLock)
            # bound_retries (run by Ledger) put gated single attempts on the instance.
            assert "insert_events" in vars(recorder)
            assert "insert_events" in vars(ledger.snapshots.recorder)  # type: ignore[union-attr]
        else:
            assert not isinstance(recorder, BinaryArrayApplicationRecorder)
            assert isinstance(lock, FileLock)
            bound_retries(recorder)
            assert "insert_events" not in vars(recorder)
    finally:
        lock.close()


@pytest.mark.parametrize("fresh", [True, False])
def test_processes_starting_together_create_the_tables_without_failing(fresh: bool) -> None:
    """Every start runs `CREATE OR REPLACE FUNCTION` (and, on a fresh database, creates the
    table and the composite type): eight recorders doing it at the same moment, five rounds,
    all succeed and leave one table, type and function. Without the advisory lock this fails
    with "tuple concurrently updated" within a round or two."""
    name = create_pg_database()
    stores = [datastore(name) for _ in range(8)]

    def recorder(store: PostgresDatastore) -> BinaryArrayApplicationRecorder:
        return BinaryArrayApplicationRecorder(store, events_table_name="ledger_events")

    def start(store: PostgresDatastore, gate: threading.Barrier) -> None:
        made = recorder(store)
        gate.wait()
        made.create_table()

    try:
        if not fresh:
            recorder(stores[0]).create_table()
        for _ in range(5):
            gate = threading.Barrier(len(stores))
            with ThreadPoolExecutor(len(stores)) as pool:
                for done in [pool.submit(start, s, gate) for s in stores]:
                    done.result()  # raises what a start raised
        with psycopg.connect(f"{_pg_base()}/{name}") as conn:
            found = conn.execute(
                "SELECT (SELECT count(*) FROM pg_tables WHERE tablename = 'ledger_events'),"
                " (SELECT count(*) FROM pg_type WHERE typname = 'stored_event_uuid'),"
                " (SELECT count(*) FROM pg_proc WHERE proname = 'es_insert_events_uuid')"
            ).fetchone()
        assert found == (1, 1, 1)
    finally:
        for store in stores:
            store.close()
        drop_pg_database(name)
