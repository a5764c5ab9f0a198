"""The rebuild's fast paths give exactly what the plain ones give: chunks read ahead on another
connection are the ones the build's own transaction would read (and a short one is read
again), and the read-model HMACs are the digests hmac.digest gives. Both stores."""

from __future__ import annotations

import gc
import hmac
import itertools
import random

import pytest

from projections.read_models import event_reader, projector
from projections.read_models.models import ReadModels
from projections.reconciliation import rebuild
from storage.keys import derive_key
from storage.pii_cipher import NONCE_BYTES, PiiCipher
from tests.projections.helpers import assert_equal_to_rebuild
from tests.projections.history import HistoryWriter


@pytest.fixture
def history(ledger):
    writer = HistoryWriter(ledger, random.Random(11)).steps(80)
    rm = ReadModels(ledger)
    yield ledger, rm, writer
    rm.close()


def _count_read_ahead(monkeypatch) -> list[bool]:
    """Records, per chunk a build or catch-up takes, whether it came read ahead by the thread."""
    taken: list[bool] = []
    original = event_reader._ReadAhead.take

    def counting(self, after, limit, stop):
        items = original(self, after, limit, stop)
        taken.append(items is not None)
        return items

    monkeypatch.setattr(event_reader._ReadAhead, "take", counting)
    return taken


def test_a_build_reading_ahead_in_small_chunks_equals_catch_up(history, monkeypatch):
    ledger, rm, _ = history
    taken = _count_read_ahead(monkeypatch)
    monkeypatch.setattr(rebuild, "REBUILD_BATCH_EVENTS", 7)
    assert_equal_to_rebuild(rm)
    if rm.store.is_sqlite:
        assert taken == []  # SQLite builds do not read ahead (slower there)
        return
    # Not vacuous: most chunks came from the thread; the last (short) one did not.
    assert sum(taken) >= ledger.head_position() // 7 - 1
    assert taken[-1] is False


def test_a_short_chunk_read_ahead_is_read_again_in_the_transaction(history):
    ledger, rm, writer = history
    store, reader = rm.store, rm.projector.reader
    head = ledger.head_position()
    limit = head + 1000
    conn = store.connect()
    try:
        with reader.reading_ahead(after=0, limit=limit):
            reader._ahead._pending[1].result()  # the thread has read the log as it is now
            writer.steps(10)
            assert ledger.head_position() > head
            with store.transaction(conn) as cur:
                chunk = reader.read_chunk(cur, after=0, limit=limit)
        assert chunk.items[-1][0].id == ledger.head_position()
        # A full chunk read ahead is the one the transaction reads itself.
        with reader.reading_ahead(after=3, limit=5):
            with store.transaction(conn) as cur:
                ahead = reader.read_chunk(cur, after=3, limit=5)
                assert reader._ahead._pending is not None  # the next one is under way
        with store.transaction(conn) as cur:
            plain = reader.read_chunk(cur, after=3, limit=5)
        assert [r.notification for r in ahead.items] == [r.notification for r in plain.items]
        assert [r.event and vars(r.event) for r in ahead.items] == [
            r.event and vars(r.event) for r in plain.items
        ]
        assert [set(r.codes) for r in ahead.items] == [set(r.codes) for r in plain.items]
    finally:
        conn.close()


def _burn_positions(ledger, store, count: int) -> None:
    """Positions taken and never used, as by writes rolled back: a gap in the log (PostgreSQL;
    SQLite's rowids have none to make)."""
    recorder = ledger.recorder
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            cur.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'notification_id')) "
                "FROM generate_series(1, %s)",
                (table, count),
            )
    finally:
        conn.close()


def test_a_selection_ends_at_its_stop_across_gaps_in_the_positions(history):
    ledger, rm, writer = history
    store, reader = rm.store, rm.projector.reader
    for _ in range(3):
        if not store.is_sqlite:
            _burn_positions(ledger, store, 4)
        writer.steps(5)
    conn = store.connect()
    try:
        with store.transaction(conn) as cur:
            positions = [n.id for n in reader.select(cur, after=0, limit=10**6)]
            head = positions[-1]
            cases = [(0, None, 7), (0, head, 10**6), (10, 11, 3), (10, 10, 3), (head, None, 100)]
            gaps = [p for p, q in itertools.pairwise(positions) if q > p + 1]
            if not store.is_sqlite:
                assert len(gaps) == 3  # not vacuous
            for p in gaps:  # a stop just past a gap, with limits short of it and beyond it
                cases += [(p - 3, p + 6, 2), (p - 3, p + 6, 100), (p - 1, p + 2, 100)]
            for after, stop, limit in cases:
                got = [n.id for n in reader.select(cur, after=after, limit=limit, stop=stop)]
                want = [p for p in positions if p > after and (stop is None or p <= stop)]
                assert got == want[:limit], (after, stop, limit)
    finally:
        conn.close()


def test_a_checked_rebuild_finds_equal_tables(history):
    _, rm, _ = history
    rm.catch_up()
    report = rebuild.rebuild(rm.store, rm.projector, check_only=True)
    assert report.comparison.equal and report.events > 0 and not report.switched


def test_read_model_hmacs_are_the_standard_ones():
    key = bytes(range(32))
    cipher = PiiCipher(key)
    nonce_key = derive_key(key, "read-model/nonce")
    hash_key = derive_key(key, "read-model/lookup")
    for value in ("110101199003074514", "张三", "", "x" * 500):
        assert cipher.lookup_hash(value) == hmac.digest(hash_key, value.encode(), "sha256").hex()
        blob = cipher.encrypt(value, field="name", origin="m|7")
        nonce = hmac.digest(nonce_key, b"m|7|name", "sha256")[:NONCE_BYTES]
        assert blob[:NONCE_BYTES] == nonce
        assert cipher.decrypt(blob, field="name") == value
    # The keyed states are reused, never consumed: the same input gives the same output.
    assert cipher.lookup_hash("a") == cipher.lookup_hash("a")


def test_a_long_catch_up_reading_ahead_in_small_chunks_equals_a_rebuild(history, monkeypatch):
    """A catch-up of at least LONG_CATCH_UP_EVENTS reads ahead (PostgreSQL) with automatic
    garbage collection paused; the live tables it leaves equal a rebuild's."""
    ledger, rm, _ = history
    taken = _count_read_ahead(monkeypatch)
    monkeypatch.setattr(projector, "LONG_CATCH_UP_EVENTS", 14)
    assert rm.position() == 0 and ledger.head_position() > 14
    assert rm.catch_up(batch_events=7) == ledger.head_position()
    assert gc.isenabled()  # restored after the run
    assert_equal_to_rebuild(rm)
    if rm.store.is_sqlite:
        assert taken == []  # SQLite catch-ups do not read ahead (slower there)
        return
    # Not vacuous: most chunks came from the thread; the last (short) one did not.
    assert sum(taken) >= ledger.head_position() // 7 - 1
    assert taken[-1] is False


def test_members_who_join_in_a_batch_are_not_read_back(history, monkeypatch):
    """A batch reads back the stored rows of the members its events touch, but not of those
    who join in it (nothing of theirs is stored yet, and the batch holds what their later
    events need): one batch of the whole history reads no member back, and builds what a
    catch-up of one event at a time builds."""
    ledger, rm, _ = history
    asked: list[set[str]] = []
    original = projector.Batch.prefetch_members

    def recording(self, member_ids):
        asked.append(set(member_ids))
        return original(self, member_ids)

    monkeypatch.setattr(projector.Batch, "prefetch_members", recording)
    assert rm.catch_up(batch_events=1) == ledger.head_position()
    # Not vacuous: a member's later events, each in a batch of its own, read the member back.
    assert set().union(*asked)
    asked.clear()
    monkeypatch.setattr(rebuild, "REBUILD_BATCH_EVENTS", ledger.head_position())
    assert_equal_to_rebuild(rm)
    assert asked and set().union(*asked) == set()
