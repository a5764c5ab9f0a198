"""Reading the notification log for the projector, fast and inside the projector's transaction.

The eventsourcing mapper turns each stored event into a full domain event object: a UUID for
the originator, Money and Posting value objects. The read models need none of that, so this
reader decodes the stored state with storage/payload_codec.py (the mapper's own payload cipher,
bound to the row, and transcodings; orjson for the JSON; postings as PostingRow) and gives
handlers a plain attribute bag. Payloads are opened for the union codes they name (found in
the JSON text without parsing it: the audit index needs them), except those of `unread`
topics, whose data names no union (their index entries come from their stream); only events
of topics a read model uses are parsed into attribute bags.

The rows are read through the projector's own cursor, so the events a batch applies are
read in the same transaction that writes their rows and advances the position.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple
from uuid import UUID

from storage.database import Store
from storage.event_store import EventLog
from storage.payload_binding import PayloadBindingError
from storage.payload_codec import PayloadDecoder, PostingRow

__all__ = ["DecodedEvent", "EventDecoder", "EventReader", "Notification", "PostingRow", "ReadEvent"]

# A union's credit code as a whole JSON string (a value or a key): 18 characters, the first
# 8 (registration authority: trade unions). Exactly the strings that can equal a union code,
# so the audit index lists an event under every union its data names, as a scan comparing
# every string would (projections/audit/events.py `mentions`).
UNION_CODE_IN_JSON = re.compile(rb'"(8[0-9A-Z]{17})"')


class DecodedEvent:
    """An event's attributes (as the domain event has them) and its originator id as text."""

    originator_id: str


class Notification(NamedTuple):
    id: int
    topic: str
    originator_id: str
    originator_version: int
    state: bytes | None  # None: an unread topic (not fetched)


class UnreadableEvent(RuntimeError):
    """An event whose payload does not open for its row: the read models stop before it."""

    def __init__(self, n: Notification, reason: Exception) -> None:
        super().__init__(
            f"the event at position {n.id} cannot be read ({type(reason).__name__}: {reason}); "
            "the read models stop before it. Run `ledger audit verify` to locate tampering"
        )
        self.position = n.id


class ReadEvent(NamedTuple):
    """A notification, its decoded event (None: a topic no read model uses) and the union codes
    its data names."""

    notification: Notification
    event: DecodedEvent | None
    codes: tuple[str, ...]


def _hyphenated(originator_id: str) -> str:
    """The canonical text of a UUID (what str(UUID) gives), without building a UUID."""
    if len(originator_id) == 32:
        h = originator_id.lower()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if len(originator_id) == 36 and originator_id.islower():
        return originator_id  # PostgreSQL's uuid as text: already canonical
    return str(UUID(originator_id))


class Chunk(NamedTuple):
    """The events after position `after`, read and decoded, in log order."""

    after: int
    items: list[ReadEvent]


class EventDecoder:
    """Opens a notification's payload (bound to its row), finds the union codes it names, and
    decodes it into an attribute bag if its topic is one of `topics`. Needs the mapper alone:
    the projector's reader and the Spark fold (over an export, no database) share it."""

    def __init__(self, mapper: Any, topics: Collection[str]) -> None:
        self.topics = frozenset(topics)
        # TypeError unless a keyed BoundMapper: payloads open bound to their row.
        self._payloads = PayloadDecoder.for_mapper(mapper, postings_as_rows=True)

    def decode(self, n: Notification) -> ReadEvent:
        if n.state is None:  # an unread topic
            return ReadEvent(n, None, ())
        try:
            plain = self._payloads.open(n.originator_id, n.originator_version, n.topic, n.state)
        except PayloadBindingError as exc:
            raise UnreadableEvent(n, exc) from exc
        codes = tuple({c.decode("ascii") for c in UNION_CODE_IN_JSON.findall(plain)})
        if n.topic not in self.topics:
            return ReadEvent(n, None, codes)
        fields = self._payloads.parse(plain, n.topic)
        event = object.__new__(DecodedEvent)
        fields["originator_id"] = _hyphenated(n.originator_id)
        event.__dict__ = fields
        return ReadEvent(n, event, codes)


class EventReader:
    """topics: those decoded into attribute bags; unread: those whose payloads are not even
    fetched (a topic whose data names no union)."""

    def __init__(
        self, ledger: EventLog, store: Store, topics: Collection[str], unread: Collection[str] = ()
    ) -> None:
        self.store = store
        self.unread = tuple(sorted(unread))
        recorder = ledger.recorder
        # The decoder's bound method itself: one call less per event on the projector's path.
        self.decode = EventDecoder(ledger.mapper, topics).decode
        self._ahead: _ReadAhead | None = None
        if store.is_sqlite:
            marks = ", ".join("?" for _ in self.unread)
            self._sql = (
                f"SELECT rowid, topic, originator_id, originator_version, CASE WHEN "
                f"topic IN ({marks}) THEN NULL ELSE state END "
                f"FROM {recorder.events_table_name} "
                "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?"
            )
        else:
            # One-sided: with no statistics on the table (autovacuum off, or a store just
            # loaded) PostgreSQL guessed a two-sided range at a few thousand rows and planned a
            # bitmap scan of every later event and a sort on disk, for every batch (180 ms a
            # batch of 10,000 on a county store, against 5 ms through the index in order, and
            # growing with the log). A stop is kept by the limit instead (select()).
            schema = recorder.datastore.schema
            self._sql = (
                f"SELECT notification_id, topic, originator_id::text, "
                f"originator_version, CASE WHEN topic = ANY(%s) THEN NULL ELSE state "
                f'END FROM "{schema}".'
                f'"{recorder.events_table_name}" WHERE notification_id > %s '
                "ORDER BY notification_id LIMIT %s"
            )

    def select(
        self, cur: Any, *, after: int, limit: int, stop: int | None = None
    ) -> list[Notification]:
        """Up to `limit` notifications after position `after` (and at most `stop`)."""
        if self.store.is_sqlite:
            cur.execute(self._sql, (*self.unread, after, 2**62 if stop is None else stop, limit))
            return [Notification(*row) for row in cur.fetchall()]
        if stop is not None:
            # Positions are unique and increasing: at most stop - after of them are in
            # (after, stop], and they come first; later ones (past a gap) are dropped below.
            limit = min(limit, stop - after)
            if limit <= 0:
                return []
        # Binary: the payloads come as their bytes, not as hex text (half the read's time).
        cur.execute(self._sql, (list(self.unread), after, limit), prepare=True, binary=True)
        rows = [Notification(*row) for row in cur.fetchall()]
        if stop is not None and rows and rows[-1].id > stop:
            rows = [n for n in rows if n.id <= stop]
        return rows

    def read_chunk(self, cur: Any, *, after: int, limit: int, stop: int | None = None) -> Chunk:
        """select() and decode() together: the unit the projector applies."""
        if self._ahead is not None:
            items = self._ahead.take(after, limit, stop)
            if items is not None:
                return Chunk(after, items)
        decode = self.decode
        return Chunk(
            after, [decode(n) for n in self.select(cur, after=after, limit=limit, stop=stop)]
        )

    @contextmanager
    def reading_ahead(self, *, after: int, limit: int, stop: int | None = None) -> Iterator[None]:
        """While this lasts, the chunk after the one just taken is read and decoded in a
        background thread on a connection of its own, while the projector applies (and
        PostgreSQL or SQLite writes) the current one: the thread runs whenever the projector
        waits on the database. For a build from the first event: memory holds one chunk
        more. See _ReadAhead.take for why such a chunk equals the one read in the caller's
        transaction."""
        ahead = _ReadAhead(self, limit=limit, stop=stop)
        self._ahead = ahead
        try:
            ahead.start(after)
            yield
        finally:
            self._ahead = None
            ahead.close()


class _ReadAhead:
    """One chunk read ahead of the projector, on its own connection and thread."""

    def __init__(self, reader: EventReader, *, limit: int, stop: int | None) -> None:
        self.reader = reader
        self.limit = limit
        self.stop = stop
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="read-ahead")
        self._conn: Any = None
        self._pending: tuple[int, Future[list[ReadEvent]]] | None = None

    def start(self, after: int) -> None:
        self._pending = (after, self._executor.submit(self._read, after))

    def _read(self, after: int) -> list[ReadEvent]:
        store = self.reader.store
        if self._conn is None:
            self._conn = store.connect()
        with store.snapshot(self._conn) as cur:
            rows = self.reader.select(cur, after=after, limit=self.limit, stop=self.stop)
        decode = self.reader.decode
        return [decode(n) for n in rows]

    def take(self, after: int, limit: int, stop: int | None) -> list[ReadEvent] | None:
        """The chunk read ahead if it is the one asked for and full, else None (the caller
        reads it in its own transaction). A full chunk is the same in any transaction that
        sees its last event: the log only grows at its end (eventsourcing's recorders commit
        notification ids in order: a table lock on PostgreSQL, one writer on SQLite), and an
        event never changes. A short chunk is at the end of the log as this thread saw it,
        and the caller's transaction may see more, so it is read again there."""
        pending, self._pending = self._pending, None
        if pending is None or pending[0] != after or limit != self.limit or stop != self.stop:
            return None
        items = pending[1].result()
        if len(items) < limit:
            return None
        self.start(items[-1].notification.id)
        return items

    def close(self) -> None:
        self._pending = None
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._conn is not None:
            self._conn.close()
