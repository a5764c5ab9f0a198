"""Reading the notification log for the projector, fast and inside the projector's transaction.

The eventsourcing mapper turns each stored event into a full domain event object: a UUID for
the originator, a new AES-GCM object per decryption, Money and Posting value objects. The read
models need none of that, so this reader decodes the stored state itself with the mapper's own
key, compressor and transcodings (one AESGCM object for all events), and gives handlers a
plain attribute bag. Events of topics no read model uses are listed (their position still
advances) but their state is neither fetched nor decoded.

The rows are read through the projector's own cursor, so the events a batch applies are
read in the same transaction that writes their rows and advances the position.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, NamedTuple
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import DatetimeAsISO, StoredEvent
from eventsourcing.utils import resolve_topic

from projections.store import Store
from service.storage import DateAsISO, PostingAsList

_NONCE_BYTES = 12
_TAG_BYTES = 16


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
    state: bytes | None  # None: a topic the read models do not use


def _hyphenated(originator_id: str) -> str:
    """The canonical text of a UUID (what str(UUID) gives), without building a UUID."""
    if len(originator_id) == 32:
        h = originator_id.lower()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if len(originator_id) == 36 and originator_id.islower():
        return originator_id  # PostgreSQL's uuid as text: already canonical
    return str(UUID(originator_id))


class Chunk(NamedTuple):
    """Notifications after position `after`, each with its decoded event (None: a topic no
    read model uses), in log order."""

    after: int
    items: list[tuple[Notification, DecodedEvent | None]]


class EventReader:
    def __init__(self, ledger: Any, store: Store, topics: Collection[str]) -> None:
        self.store = store
        self.topics = tuple(sorted(topics))
        mapper = ledger.mapper
        self._mapper = mapper
        recorder = ledger.recorder
        cipher = mapper.cipher
        # The fast paths only for the cipher and compressor they reproduce exactly; any other
        # configuration goes through the mapper's own objects.
        self._aead = AESGCM(cipher.key) if type(cipher) is AESCipher else None
        self._cipher = cipher
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
        self._upcast = {t for t in self.topics
                        if getattr(resolve_topic(t), "class_version", 1) != 1}
        self._ahead: _ReadAhead | None = None
        if store.is_sqlite:
            marks = ", ".join("?" for _ in self.topics)
            self._sql = (f"SELECT rowid, topic, originator_id, CASE WHEN topic IN ({marks}) "
                         f"THEN state END FROM {recorder.events_table_name} "
                         "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?")
        else:
            schema = recorder.datastore.schema
            self._sql = (f'SELECT notification_id, topic, originator_id::text, CASE WHEN '
                         f'topic = ANY(%s) THEN state END FROM "{schema}".'
                         f'"{recorder.events_table_name}" WHERE notification_id > %s AND '
                         "notification_id <= %s ORDER BY notification_id LIMIT %s")

    def select(self, cur: Any, *, after: int, limit: int,
               stop: int | None = None) -> list[Notification]:
        """Up to `limit` notifications after position `after` (and at most `stop`)."""
        stop = 2**62 if stop is None else stop
        if self.store.is_sqlite:
            cur.execute(self._sql, (*self.topics, after, stop, limit))
        else:
            cur.execute(self._sql, (list(self.topics), after, stop, limit), prepare=True)
        return [Notification(*row) for row in cur.fetchall()]

    def read_chunk(self, cur: Any, *, after: int, limit: int,
                   stop: int | None = None) -> Chunk:
        """select() and decode() together: the unit the projector applies."""
        if self._ahead is not None:
            items = self._ahead.take(after, limit, stop)
            if items is not None:
                return Chunk(after, items)
        decode = self.decode
        return Chunk(after, [(n, None if n.state is None else decode(n))
                             for n in self.select(cur, after=after, limit=limit, stop=stop)])

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

    def decode(self, n: Notification) -> DecodedEvent:
        if n.topic in self._upcast:
            return self._by_mapper(n)
        state = n.state
        if self._aead is not None:
            state = bytes(state)
            # eventsourcing's layout: nonce, tag, ciphertext; AESGCM wants the tag last.
            state = self._aead.decrypt(
                state[:_NONCE_BYTES],
                state[_NONCE_BYTES + _TAG_BYTES:] + state[_NONCE_BYTES:_NONCE_BYTES + _TAG_BYTES],
                None,
            )
        else:
            state = self._cipher.decrypt(bytes(state))
        state = zlib.decompress(state) if self._zlib else self._compressor.decompress(state)
        fields = self._decoder.decode(state.decode("utf-8"))
        event = object.__new__(DecodedEvent)
        fields["originator_id"] = _hyphenated(n.originator_id)
        event.__dict__ = fields
        return event

    def _by_mapper(self, n: Notification) -> DecodedEvent:
        domain_event = self._mapper.to_domain_event(StoredEvent(
            originator_id=UUID(n.originator_id), originator_version=0, topic=n.topic,
            state=bytes(n.state)))
        event = object.__new__(DecodedEvent)
        fields = dict(vars(domain_event))
        del fields["originator_version"]  # not known here, and no handler uses it
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
        self._pending: tuple[int, Future[list[tuple[Notification, DecodedEvent | None]]]] | None \
            = None

    def start(self, after: int) -> None:
        self._pending = (after, self._executor.submit(self._read, after))

    def _read(self, after: int) -> list[tuple[Notification, DecodedEvent | None]]:
        store = self.reader.store
        if self._conn is None:
            self._conn = store.connect()
        with store.snapshot(self._conn) as cur:
            rows = self.reader.select(cur, after=after, limit=self.limit, stop=self.stop)
        decode = self.reader.decode
        return [(n, None if n.state is None else decode(n)) for n in rows]

    def take(self, after: int, limit: int,
             stop: int | None) -> list[tuple[Notification, DecodedEvent | None]] | None:
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
        self.start(items[-1][0].id)
        return items

    def close(self) -> None:
        self._pending = None
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._conn is not None:
            self._conn.close()


def _posting_row(p: Any) -> PostingRow:
    return PostingRow(p.organization_code, p.account_code, p.debit.fen, p.credit.fen,
                      p.earmarked, p.counterparty)
