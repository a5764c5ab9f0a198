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


class FastZlibCompressor(ZlibCompressor):
    """zlib at level 1: event payloads are a few hundred bytes of JSON, where level 1 keeps
    nearly all of the default level's saving at a fraction of its time. The stream format is
    the same, so payloads written at any level read back alike."""

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, 1)


def register_transcodings(transcoder: JSONTranscoder) -> None:
    for transcoding in (DateAsISO(), MoneyAsFen(), PostingAsList()):
        transcoder.register(transcoding)
