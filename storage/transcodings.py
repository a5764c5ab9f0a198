"""How values the events carry are written in their JSON payloads (registered transcodings),
and how payloads are compressed. Dates as ISO text, Money as integer fen, a Posting as a compact
list: no float ever reaches an event."""

from __future__ import annotations

import datetime
import zlib
from typing import Any

import orjson
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Transcoding

from domain.money import Money
from domain.vouchers import Posting


class DateAsISO(Transcoding):
    type = datetime.date
    name = "date"

    def encode(self, obj: datetime.date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> datetime.date:
        return datetime.date.fromisoformat(data)


class MoneyAsFen(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> int:
        return obj.fen

    def decode(self, data: int) -> Money:
        return Money(data)


class PostingAsList(Transcoding):
    """A compact positional form: vouchers carry many postings."""

    type = Posting
    name = "posting"

    def encode(self, obj: Posting) -> list[Any]:
        return [
            obj.organization_code,
            obj.account_code,
            obj.debit.fen,
            obj.credit.fen,
            obj.earmarked,
            obj.counterparty,
        ]

    def decode(self, data: list[Any]) -> Posting:
        org, account, debit_fen, credit_fen, earmarked, counterparty = data
        return Posting(org, account, Money(debit_fen), Money(credit_fen), earmarked, counterparty)


# Payloads shorter than this are stored plain (still encrypted). zlib level 1 saves 17% of a
# payload under 192 bytes of JSON, 26-27% of the commonest events (member joins, admissions,
# foundings) and 40-65% of vouchers and snapshots, but costs about 11 µs on the writer's one
# core even for a few hundred bytes (the deflate state's set-up, whatever the window).
# Measured with `python -m scripts.bench.payload_codec --store` (docs/benchmarks.md): on a
# county demo store's events, as written over HTTP (an actor "token:<id>" of 42 characters),
# joins are 390-450 bytes. From 512, 1% of events are compressed (1.3 µs an event, against
# 12.5 from 384, where two thirds are), and the store keeps 0.85 of the JSON (0.69 from 384).
# The threshold was 384 while it was measured on the demo loader's short actor, which kept
# joins below it.
COMPRESS_FROM_BYTES = 512

# How a reader tells the two apart without a marker byte of its own: the transcoder writes a
# payload as a JSON object, so plain text starts with "{" (0x7B); a zlib stream starts with
# its CMF byte, whose low four bits are 8 (deflate), so never 0x7B (in practice 0x78).
_PLAIN_JSON_START = 0x7B


def decompress_payload(data: bytes) -> bytes:
    """A payload's JSON text, whether it was stored plain or zlib-compressed (rows written
    before the threshold, at any zlib level, are all compressed: they read back alike)."""
    if data and data[0] == _PLAIN_JSON_START:
        return data
    return zlib.decompress(data)


class FastZlibCompressor(ZlibCompressor):
    """zlib at level 1 for payloads of COMPRESS_FROM_BYTES or more, the rest left plain.
    Level 1 keeps nearly all of the default level's saving on a few hundred bytes of JSON at a
    fraction of its time; the stream format is the same at every level."""

    def compress(self, data: bytes) -> bytes:
        if len(data) < COMPRESS_FROM_BYTES and data[:1] == b"{":
            return data
        return zlib.compress(data, 1)

    def decompress(self, data: bytes) -> bytes:
        return decompress_payload(data)


class _NotPlain(Exception):
    """A value the fast encoder leaves to the standard library's (see LedgerTranscoder)."""


# The scalars orjson writes byte for byte as the standard library's json does (a float's
# text, for one, may differ): the transcoder's and the request fingerprint's fast paths.
PLAIN_SCALARS = frozenset((str, int, bool, type(None)))


class LedgerTranscoder(JSONTranscoder):
    """eventsourcing's JSONTranscoder, writing the same bytes in about half the time.

    The event is first turned into plain JSON values: each value of a registered type becomes
    the transcoder's {"_type_": name, "_data_": data}; then orjson writes it. For plain
    strings, integers, booleans, None, dicts with string keys, lists and tuples, orjson's
    compact output is byte for byte the standard library's with the transcoder's settings
    (separators "," and ":", ensure_ascii off): tests/service/test_transcoder.py shows it for
    generated events. Anything else (a float, whose text the two libraries may write
    differently; a subclass of a plain type; a key that is not a string; an unregistered type;
    an integer beyond 64 bits) sends the whole event down the standard library's path, which
    writes it as before or raises as before. Decoding is the base class's, unchanged.
    """

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._plain(obj))
        except (_NotPlain, orjson.JSONEncodeError):
            return super().encode(obj)

    def _plain(self, o: Any) -> Any:
        kind = type(o)
        if kind in PLAIN_SCALARS:
            return o
        scalars = PLAIN_SCALARS
        if kind is dict:
            out = {}
            for key, value in o.items():
                if type(key) is not str:
                    raise _NotPlain
                # Plain values inline: most of an event's values are, and a call costs more.
                out[key] = value if type(value) in scalars else self._plain(value)
            return out
        if kind is list or kind is tuple:
            return [v if type(v) in scalars else self._plain(v) for v in o]
        transcoding = self.types.get(kind)
        if transcoding is None:
            raise _NotPlain
        if type(transcoding) is _WRITTEN_BY_ORJSON.get(kind) and (
            kind is datetime.date or o.tzinfo is None or o.tzinfo is datetime.UTC
        ):
            # orjson writes a date, and a datetime naive or in UTC, as isoformat() does, in a
            # fraction of the time (every event's timestamp is one): left to it.
            return {"_type_": transcoding.name, "_data_": o}
        return {"_type_": transcoding.name, "_data_": self._plain(transcoding.encode(o))}


# The transcodings whose text is isoformat(), for the types orjson writes as isoformat() does.
_WRITTEN_BY_ORJSON: dict[type, type] = {
    datetime.date: DateAsISO,
    datetime.datetime: DatetimeAsISO,
}


def register_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (DateAsISO(), MoneyAsFen(), PostingAsList()):
        transcoder.register(transcoding)
