"""The projector's fast paths: its own decoding of stored events agrees with the eventsourcing
mapper on every event of a varied history, topics no read model uses are listed but not
parsed (their payloads are opened only for the union codes they name), a bulk build ends with
exactly the indexes of a normally created set, and only shadow builds relax commit settings.
Both stores."""

from __future__ import annotations

import random
import sqlite3
import time

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from projections.read_models import ledger_sums
from projections.read_models.models import ReadModels
from projections.read_models.projector import HANDLERS
from projections.read_models.schema import LIVE, SHADOW, TABLES, TableSet
from projections.reconciliation.rebuild import _finish, _shadow_transaction, build
from tests.projections.helpers import as_rows, assert_equal_to_rebuild
from tests.projections.history import HistoryWriter


@pytest.fixture
def history(ledger):
    HistoryWriter(ledger, random.Random(7)).steps(120)
    rm = ReadModels(ledger)
    yield ledger, rm
    rm.close()


def _read_all(rm):
    conn = rm.store.connect()
    try:
        with rm.store.snapshot(conn) as cur:
            return rm.projector.reader.select(cur, after=0, limit=10**9)
    finally:
        conn.close()


def test_decoding_agrees_with_the_mapper_on_every_event(history):
    ledger, rm = history
    notifications = _read_all(rm)
    everything = ledger.recorder.select_notifications(start=1, limit=10**9)
    assert [n.id for n in notifications] == [n.id for n in everything]
    decoded_topics = set()
    skipped = 0
    for n in notifications:
        read = rm.projector.reader.decode(n)
        if n.topic not in HANDLERS:
            assert read.event is None  # not parsed: no read model uses it
            skipped += 1
            continue
        stored = ledger.recorder.select_notifications(start=n.id, limit=1)[0]
        assert n.originator_version == stored.originator_version
        expected = ledger.mapper.to_domain_event(
            StoredEvent(
                originator_id=stored.originator_id,
                originator_version=stored.originator_version,
                topic=stored.topic,
                state=stored.state,
            )
        )
        event = read.event
        fields = dict(vars(expected))
        assert event.originator_id == str(fields.pop("originator_id"))
        fields.pop("originator_version")
        mine = {k: v for k, v in vars(event).items() if k != "originator_id"}
        assert mine == {k: as_rows(v) for k, v in fields.items()}
        decoded_topics.add(n.topic)
    # Not vacuous: the history holds members, vouchers and organisations.
    assert {
        "ledger:Member.Joined",
        "ledger:Voucher.Posted",
        "ledger:Organisation.Founded",
    } <= decoded_topics
    assert skipped > 0


def test_a_posting_holds_fen_as_integers(history):
    _, rm = history
    postings = [
        p
        for n in _read_all(rm)
        if n.topic == "ledger:Voucher.Posted"
        for p in rm.projector.reader.decode(n).event.postings
    ]
    assert postings and all(
        type(p.debit_fen) is int and type(p.credit_fen) is int for p in postings
    )


def _index_columns(store, tables: TableSet) -> list[tuple[str, tuple[str, ...], bool]]:
    """(table, columns, unique) of every index of a set, names aside (they carry a suffix)."""
    conn = store.connect()
    found = []
    try:
        cur = conn.cursor()
        for table in TABLES:
            name = tables.table(table.name)
            if store.is_sqlite:
                cur.execute(f"PRAGMA index_list({name})")
                for row in cur.fetchall():
                    index, unique = row[1], bool(row[2])
                    cur.execute(f"PRAGMA index_info({index})")
                    columns = tuple(r[2] for r in sorted(cur.fetchall()))
                    found.append((table.name, columns, unique))
            else:
                cur.execute(
                    "SELECT ix.indisunique, array_agg(a.attname ORDER BY k.n) "
                    "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid "
                    "CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) "
                    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                    "WHERE t.relname = %s GROUP BY ix.indexrelid, ix.indisunique",
                    (name,),
                )
                found += [(table.name, tuple(cols), unique) for unique, cols in cur.fetchall()]
        if not store.is_sqlite:
            conn.rollback()
    finally:
        conn.close()
    return sorted(found)


def test_a_bulk_build_ends_with_every_index_and_the_same_rows(history):
    _, rm = history
    rm.catch_up()
    build(rm.store, rm.projector, SHADOW)
    expected = _index_columns(rm.store, LIVE)
    assert _index_columns(rm.store, SHADOW) == expected
    # Every table has its unique key; the query indexes are there too.
    assert sum(1 for _, _, unique in expected if unique) == len(TABLES)
    assert len(expected) == len(TABLES) + sum(len(t.indexes) for t in TABLES)
    assert_equal_to_rebuild(rm)


@pytest.mark.parametrize("slow_fills", [False, True])
def test_a_duplicate_key_fails_the_build_at_the_end(history, monkeypatch, slow_fills):
    """The keys a build creates last still prove every row unique. slow_fills: the fills
    take long enough that, on PostgreSQL, the second connection meets the duplicate."""
    _, rm = history
    store = rm.store
    if slow_fills:
        fill = ledger_sums.fill

        def slow_fill(*args):
            time.sleep(1.0)
            fill(*args)

        monkeypatch.setattr(ledger_sums, "fill", slow_fill)
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            SHADOW.drop(store, cur)
            SHADOW.create(store, cur, secondary_indexes=False)
            cur.executemany(
                store.sql(
                    f"INSERT INTO {SHADOW.table('ledger_lines')} (position, line_no) VALUES (?, ?)"
                ),
                [(1, 0), (1, 0)],
            )
        # The build's own last step (on PostgreSQL, two connections taking the statements
        # from one queue: the error is the build's whichever of them meets the duplicate).
        with pytest.raises((sqlite3.IntegrityError, psycopg.errors.UniqueViolation)):
            _finish(store, conn, SHADOW)
        with store.transaction(conn) as cur:
            SHADOW.drop(store, cur)
    finally:
        conn.close()


def test_only_shadow_builds_relax_the_commit_wait(history, backend):
    _, rm = history
    store = rm.store
    if store.is_sqlite:
        pytest.skip("SQLite has no per-transaction commit settings")
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            _shadow_transaction(store, cur, LIVE)
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "on"
        with store.transaction(conn) as cur:
            _shadow_transaction(store, cur, SHADOW)
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "off"
        with store.transaction(conn) as cur:  # SET LOCAL: gone with its transaction
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "on"
    finally:
        conn.close()


def test_events_of_upcasting_classes_are_decoded_by_the_mapper_alike(history):
    """The fallback for event classes with a class_version (none yet) agrees too."""
    _, rm = history
    reader = rm.projector.reader
    notifications = [n for n in _read_all(rm) if n.topic in HANDLERS]
    fast = [vars(reader.decode(n).event) for n in notifications]
    reader._upcast = set(HANDLERS)
    try:
        assert [vars(reader.decode(n).event) for n in notifications] == fast
    finally:
        reader._upcast = set()
