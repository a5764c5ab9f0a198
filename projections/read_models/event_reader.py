"""Reading the notification log for the projector, fast and inside the projector's transaction.

The eventsourcing mapper turns each stored event into a full domain event object: a UUID for
the originator, Money and Posting value objects. The read models need none of that, so this
reader opens the stored state itself with the mapper's own payload cipher (bound to the row:
storage/payload_binding.py), compressor and transcodings, and gives handlers a plain attribute
bag. Payloads are opened for the union codes they name (found in the JSON text without parsing
it: the audit index needs them), except those of `unread` topics, whose data names no union
(their index entries come from their stream); only events of topics a read model uses are
parsed into attribute bags.

The rows are read through the projector's own cursor, so the events a batch applies are
read in the same transaction that writes their rows and advances the position.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import DatetimeAsISO, StoredEvent
from eventsourcing.utils import resolve_topic

from storage.database import Store
from storage.event_store import EventLog
from storage.payload_binding import BoundMapper, PayloadBindingError
from storage.transcodings import DateAsISO, PostingAsList

# A union's credit code as a whole JSON string (a value or a key): 18 characters, the first
# 8 (registration authority: trade unions). Exactly the strings that can equal a union code,
# so the audit index lists an event under every union its data names, as a scan comparing
# every string would (projections/audit/events.py `mentions`).
UNION_CODE_IN_JSON = re.compile(rb'"(8[0-9A-Z]{17})"')


class PostingRow(NamedTuple):
    """A posting as the projector needs it: amounts as integer fen, no Money objects."""

    organization_code: str
    account_code: str
    debit_fen: int
    credit_fen: int
    earmarked: bool
    counterparty: str | None


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


class EventReader:
    """topics: those decoded into attribute bags; unread: those whose payloads are not even
    fetched (a topic whose data names no union)."""

    def __init__(
        self, ledger: EventLog, store: Store, topics: Collection[str], unread: Collection[str] = ()
    ) -> None:
        self.store = store
        self.topics = frozenset(topics)
        self.unread = tuple(sorted(unread))
        mapper = ledger.mapper
        if not isinstance(mapper, BoundMapper) or mapper.payloads is None:
            raise TypeError("the event reader needs the ledger's keyed BoundMapper")
        self._mapper = mapper
        self._payloads = mapper.payloads
        recorder = ledger.recorder
        compressor = mapper.compressor
        self._zlib = isinstance(compressor, ZlibCompressor)  # any level: decompression is alike
        self._compressor = compressor
        names = dict(mapper.transcoder.names)
        self._transcodings = names
        # Inline decoding only where the registered transcodings are the ones it reproduces.
        self._plain_date = type(names.get("date")) is DateAsISO
        self._plain_datetime = type(names.get("datetime_iso")) is DatetimeAsISO
        self._plain_posting = type(names.get("posting")) is PostingAsList
        self._decoder = json.JSONDecoder(object_hook=self._object_hook)
        # Events whose classes upcast old versions are decoded by the mapper itself.
        self._upcast = {
            t for t in self.topics if getattr(resolve_topic(t), "class_version", 1) != 1
        }
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
            schema = recorder.datastore.schema
            self._sql = (
                f"SELECT notification_id, topic, originator_id::text, "
                f"originator_version, CASE WHEN topic = ANY(%s) THEN NULL ELSE state "
                f'END FROM "{schema}".'
                f'"{recorder.events_table_name}" WHERE notification_id > %s AND '
                "notification_id <= %s ORDER BY notification_id LIMIT %s"
            )

    def select(
        self, cur: Any, *, after: int, limit: int, stop: int | None = None
    ) -> list[Notification]:
        """Up to `limit` notifications after position `after` (and at most `stop`)."""
        stop = 2**62 if stop is None else stop
        if self.store.is_sqlite:
            cur.execute(self._sql, (*self.unread, after, stop, limit))
        else:
            cur.execute(self._sql, (list(self.unread), after, stop, limit), prepare=True)
        return [Notification(*row) for row in cur.fetchall()]

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

    def decode(self, n: Notification) -> ReadEvent:
        """Opens the payload (bound to its row), finds the union codes it names, and decodes
        it into an attribute bag if a read model uses its topic."""
        if n.state is None:  # an unread topic
            return ReadEvent(n, None, ())
        try:
            opened = self._payloads.open(
                bytes(n.state), n.originator_id, n.originator_version, n.topic
            )
        except PayloadBindingError as exc:
            raise UnreadableEvent(n, exc) from exc
        plain = zlib.decompress(opened) if self._zlib else self._compressor.decompress(opened)
        codes = tuple({c.decode("ascii") for c in UNION_CODE_IN_JSON.findall(plain)})
        if n.topic not in self.topics:
            return ReadEvent(n, None, codes)
        if n.topic in self._upcast:
            return ReadEvent(n, self._by_mapper(n, opened), codes)
        fields = self._decoder.decode(plain.decode("utf-8"))
        event = object.__new__(DecodedEvent)
        fields["originator_id"] = _hyphenated(n.originator_id)
        event.__dict__ = fields
        return ReadEvent(n, event, codes)

    def _by_mapper(self, n: Notification, opened: bytes) -> DecodedEvent:
        domain_event = self._mapper.from_opened(
            StoredEvent(
                originator_id=UUID(n.originator_id),
                originator_version=n.originator_version,
                topic=n.topic,
                state=bytes(n.state),
            ),
            opened,
        )
        event = object.__new__(DecodedEvent)
        fields = dict(vars(domain_event))
        del fields["originator_version"]  # no handler uses it
        fields["originator_id"] = _hyphenated(n.originator_id.replace("-", ""))
        if "postings" in fields:
            fields["postings"] = [_posting_row(p) for p in fields["postings"]]
        event.__dict__ = fields
        return event

    def _object_hook(self, d: dict[str, Any]) -> Any:
        # The transcoder's encoding of a custom type: exactly {"_type_": ..., "_data_": ...}.
        # The commonest types are decoded inline, exactly as their transcodings would.
        if len(d) != 2 or "_type_" not in d or "_data_" not in d:
            return d
        name, data = d["_type_"], d["_data_"]
        if name == "date" and self._plain_date:
            return date.fromisoformat(data)
        if name == "datetime_iso" and self._plain_datetime:
            return datetime.fromisoformat(data)
        if name == "posting":
            if self._plain_posting:
                return PostingRow(*data)
            return _posting_row(self._transcodings[name].decode(data))
        return self._transcodings[name].decode(data)


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


def _posting_row(p: Any) -> PostingRow:
    return PostingRow(
        p.organization_code, p.account_code, p.debit.fen, p.credit.fen, p.earmarked, p.counterparty
    )
