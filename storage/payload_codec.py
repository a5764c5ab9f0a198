"""Stored event payloads decoded to plain dicts, without building domain events: the one
decoding path of everything that reads the log in bulk (the read models' projector, the audit
walks and export, a Spark job over exported rows).

A stored payload is AES-GCM bound to its row (storage/payload_binding.py), then either plain
JSON or zlib-compressed JSON (storage/transcodings.py `decompress_payload`), the JSON written by
eventsourcing's JSONTranscoder: an object of the event's attributes, values of registered types
tagged as {"_type_": name, "_data_": data}. Here it is parsed with orjson (in about half the
time of the standard library's decoder with an object hook; with the tagged values decoded,
0.8 of that decoder's time and 0.55 of eventsourcing's transcoder's: docs/benchmarks.md) and
the tagged values are then decoded, innermost first, by the same registered transcodings:
the dict equals the attributes of the mapper's domain event (`Mapper.to_domain_event`) but
for the envelope (originator id and version, which the caller has from the row), with old
event versions upcast the same way. Two deliberate differences, both chosen by the caller:

- postings_as_rows (the projector's choice): a Posting as a PostingRow, its amounts as integer
  fen, instead of a Posting of Money objects;
- typed=False (`decode`): the JSON document as stored, tagged values left tagged and no upcast.

Use it as

    decoder = PayloadDecoder.for_master_key(master_key)   # or for_key(the event key)
    fields = decoder.decode(stream_id, version, topic, state)

or `decode_payload(event_key, stream_id, version, topic, state)` for a single row. A payload
that does not open for its row raises PayloadBindingError; a tag no transcoding knows,
TranscodingNotRegisteredError (as the mapper would).
"""

from __future__ import annotations

import datetime
import weakref
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from eventsourcing.utils import resolve_topic

from storage.keys import derive_key
from storage.payload_binding import BoundMapper, PayloadCipher
from storage.transcodings import (
    DateAsISO,
    MoneyAsFen,
    PostingAsList,
    decompress_payload,
)

_TAG = b'"_type_"'
# The purpose the mapper's key is derived for from the master key (service/application.py).
EVENT_KEY_PURPOSE = "event-cipher"
_FLAT_TRANSCODINGS = (UUIDAsHex, DecimalAsStr, DatetimeAsISO, DateAsISO, MoneyAsFen, PostingAsList)


class PostingRow(NamedTuple):
    """A posting as readers need it: amounts as integer fen, no Money objects."""

    organization_code: str
    account_code: str
    debit_fen: int
    credit_fen: int
    earmarked: bool
    counterparty: str | None


def ledger_transcodings() -> dict[str, Transcoding]:
    """The transcodings the ledger registers (service/application.py): eventsourcing's
    defaults and storage/transcodings.py's, by name."""
    found: dict[str, Transcoding] = {}
    for t in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO(), MoneyAsFen()):
        found[t.name] = t
    found[PostingAsList.name] = PostingAsList()
    return found


@cache
def _upcasts(topic: str) -> tuple[int, Any] | None:
    """(class version, event class) for a topic whose class upcasts old versions, else None."""
    cls = resolve_topic(topic)
    version = getattr(cls, "class_version", 1)
    return (version, cls) if version != 1 else None


class PayloadDecoder:
    """Opens, decompresses and parses stored payloads with one key and one set of
    transcodings. Thread-safe (it keeps no state between calls)."""

    def __init__(
        self,
        cipher: PayloadCipher,
        transcodings: Mapping[str, Transcoding],
        *,
        postings_as_rows: bool = False,
    ) -> None:
        self.cipher = cipher
        decoders: dict[str, Callable[[Any], Any]] = {
            name: t.decode for name, t in transcodings.items()
        }
        # The commonest tags decoded by the functions their transcodings call, one call less.
        if type(transcodings.get("date")) is DateAsISO:
            decoders["date"] = datetime.date.fromisoformat
        if type(transcodings.get("datetime_iso")) is DatetimeAsISO:
            decoders["datetime_iso"] = datetime.datetime.fromisoformat
        posting = transcodings.get("posting")
        if postings_as_rows and posting is not None:
            if type(posting) is PostingAsList:
                decoders["posting"] = lambda data: PostingRow(*data)
            else:
                decoders["posting"] = lambda data: posting_row(posting.decode(data))
        self._decoders = decoders
        # Tags whose data is never more than a list of plain values (these transcodings encode
        # no other registered type): decoded without looking inside their data first.
        self._flat = frozenset(
            name
            for name, t in transcodings.items()
            if type(t) in _FLAT_TRANSCODINGS and t.name == name
        )
        self._flat_decoders = {name: decoders[name] for name in self._flat}

    @classmethod
    def for_key(cls, event_key: bytes, *, postings_as_rows: bool = False) -> PayloadDecoder:
        """With the ledger's transcodings and its event key (derive_key(master, "event-cipher"),
        storage/keys.py)."""
        return cls(
            PayloadCipher(event_key), ledger_transcodings(), postings_as_rows=postings_as_rows
        )

    @classmethod
    def for_master_key(cls, master_key: bytes, *, postings_as_rows: bool = False) -> PayloadDecoder:
        """With the ledger's transcodings and the event key derived from its master key (the
        32 bytes of LEDGER_ENCRYPTION_KEY or the key file, base64-decoded)."""
        event_key = derive_key(master_key, EVENT_KEY_PURPOSE)
        return cls.for_key(event_key, postings_as_rows=postings_as_rows)

    @classmethod
    def for_mapper(cls, mapper: Any, *, postings_as_rows: bool = False) -> PayloadDecoder:
        """With a keyed BoundMapper's own cipher and transcodings."""
        if not isinstance(mapper, BoundMapper) or mapper.payloads is None:
            raise TypeError("payloads decode with the ledger's keyed BoundMapper")
        names = dict(mapper.transcoder.names)  # type: ignore[attr-defined]
        return cls(mapper.payloads, names, postings_as_rows=postings_as_rows)

    # --- the stages, for callers that need the JSON text itself -------------------------------

    def open(self, stream_id: UUID | str, version: int, topic: str, state: bytes) -> bytes:
        """The payload's JSON text (PayloadBindingError if it does not open for its row)."""
        return decompress_payload(self.cipher.open(bytes(state), stream_id, version, topic))

    def parse(self, text: bytes, topic: str) -> dict[str, Any]:
        """The attributes in a payload's JSON text, tagged values decoded, old versions
        upcast."""
        fields: dict[str, Any] = orjson.loads(text)
        if _TAG in text:
            self._decode_values(fields)
        upcast = _upcasts(topic)
        if upcast is not None:
            class_version, cls = upcast
            from_version = fields.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(fields)
                from_version += 1
        return fields

    # --- whole rows ---------------------------------------------------------------------------

    def decode(
        self, stream_id: UUID | str, version: int, topic: str, state: bytes, *, typed: bool = True
    ) -> dict[str, Any]:
        """One stored row's payload as a dict (see the module's docstring for typed)."""
        text = self.open(stream_id, version, topic, state)
        if not typed:
            document: dict[str, Any] = orjson.loads(text)
            return document
        return self.parse(text, topic)

    def decode_many(
        self, rows: Iterable[tuple[UUID | str, int, str, bytes]]
    ) -> list[dict[str, Any]]:
        """(stream id, version, topic, state) rows, in order, to their payloads' dicts."""
        open_, parse = self.open, self.parse
        return [parse(open_(s, v, t, state), t) for s, v, t, state in rows]

    # --- tagged values ------------------------------------------------------------------------

    def _decode_values(self, container: dict[str, Any] | list[Any]) -> None:
        """Decodes, in place and innermost first, every tagged value below a dict or list
        (as the transcoder's object hook does while it parses). The commonest case, a tag of
        flat data (a date, a timestamp, money, a posting), is decoded inline: this loop is
        most of the codec's own time."""
        flat = self._flat_decoders
        items = container.items() if type(container) is dict else enumerate(container)
        for key, value in items:
            kind = type(value)
            if kind is dict:
                if len(value) == 2 and "_data_" in value:
                    name = value.get("_type_")
                    decode = flat.get(name) if type(name) is str else None
                    if decode is not None:
                        container[key] = decode(value["_data_"])  # type: ignore[index]
                        continue
                container[key] = self._decoded(value)  # type: ignore[index]
            elif kind is list:
                self._decode_values(value)

    def _decoded(self, d: dict[str, Any]) -> Any:
        if len(d) == 2 and "_type_" in d and "_data_" in d:
            name = d["_type_"]
            if name not in self._flat:  # its data may hold tagged values: decode those first
                self._decode_values(d)
            try:
                decoder = self._decoders[name]
            except KeyError:
                raise TranscodingNotRegisteredError(
                    f"Data serialized with name '{name}' is not deserializable"
                ) from None
            return decoder(d["_data_"])
        self._decode_values(d)
        return d


_BY_MAPPER: weakref.WeakKeyDictionary[Any, dict[bool, PayloadDecoder]] = weakref.WeakKeyDictionary()


def decoder_for(mapper: Any, *, postings_as_rows: bool = False) -> PayloadDecoder:
    """The decoder of a keyed BoundMapper, made once per mapper (and again if its key changes):
    for callers that decode an event at a time (the audit walks)."""
    made = _BY_MAPPER.setdefault(mapper, {})
    decoder = made.get(postings_as_rows)
    if decoder is None or decoder.cipher is not mapper.payloads:
        decoder = made[postings_as_rows] = PayloadDecoder.for_mapper(
            mapper, postings_as_rows=postings_as_rows
        )
    return decoder


def posting_row(p: Any) -> PostingRow:
    """A domain Posting as a PostingRow."""
    return PostingRow(
        p.organization_code, p.account_code, p.debit.fen, p.credit.fen, p.earmarked, p.counterparty
    )


def decode_payload(
    event_key: bytes, stream_id: UUID | str, version: int, topic: str, state: bytes
) -> dict[str, Any]:
    """One stored row's payload as the mapper's domain event would hold it (envelope aside).
    For many rows, make one PayloadDecoder.for_key and call its decode."""
    return _decoder_for(event_key).decode(stream_id, version, topic, state)


@lru_cache(maxsize=4)
def _decoder_for(event_key: bytes) -> PayloadDecoder:
    return PayloadDecoder.for_key(event_key)
