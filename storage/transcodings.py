"""How values the events carry are written in their JSON payloads (registered transcodings),
and how payloads are compressed. Dates as ISO text, Money as integer fen, a Posting as a compact
list: no float ever reaches an event."""

from __future__ import annotations

import datetime
import zlib
from typing import Any

from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import JSONTranscoder, Transcoding

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


# Payloads shorter than this are stored plain (still encrypted). Measured on a county demo
# store's 32,553 payloads (`python -m scripts.bench.payload_codec --store`, docs/benchmarks.md):
# zlib level 1 saves 17% of a payload under 192 bytes of JSON, 26% from 192 to 384 (joins,
# admissions: the commonest events) and 40-65% from 384 up (vouchers, snapshots). From 384
# up, every event stores 0.68 of its JSON instead of 0.57 with everything compressed, and
# reading decompresses a quarter of the events instead of all of them.
COMPRESS_FROM_BYTES = 384

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


def register_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (DateAsISO(), MoneyAsFen(), PostingAsList()):
        transcoder.register(transcoding)
