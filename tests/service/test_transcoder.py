"""The ledger's faster JSON encoder (storage/transcodings.py LedgerTranscoder) writes exactly
the bytes eventsourcing's JSONTranscoder writes, with the ledger's transcodings, or raises what
it raises: for generated values of every kind an event may hold, and some it may not."""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.accounts import ACCOUNTS
from domain.money import Money
from domain.vouchers import Posting
from storage.transcodings import LedgerTranscoder, register_transcodings


def _registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    register_transcodings(transcoder)
    return transcoder


STANDARD = _registered(JSONTranscoder())
FAST = _registered(LedgerTranscoder())

money = st.integers(min_value=0, max_value=10**12).map(Money)
positive = st.integers(min_value=1, max_value=10**12).map(Money)
postings = st.builds(
    Posting,
    st.text(alphabet="0123456789", min_size=18, max_size=18),
    st.sampled_from(sorted(ACCOUNTS)),
    positive,
    st.just(Money(0)),
    st.booleans(),
    st.none() | st.text(max_size=20),
)
scalars = (
    st.text()  # any code point: control characters, U+2028, astral, lone surrogates
    | st.integers(min_value=-(2**70), max_value=2**70)  # beyond 64 bits: the slow path
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True, allow_infinity=True)  # never in events: the slow path
    # Naive and UTC (orjson writes them), and other offsets, to the second (the transcoding).
    | st.datetimes(timezones=st.none() | st.just(datetime.UTC))
    | st.datetimes(
        timezones=st.builds(
            datetime.timezone,
            st.timedeltas(
                min_value=-datetime.timedelta(hours=23), max_value=datetime.timedelta(hours=23)
            ),
        )
    )
    | st.dates()
    | st.uuids()
    | st.decimals(allow_nan=False, places=2)
    | money
    | postings
)
keys = st.text(max_size=12) | st.integers(max_value=9)  # an int key: the slow path
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=5)
    ),
    max_leaves=25,
)


def _outcome(transcoder: JSONTranscoder, obj: Any) -> tuple[str, Any]:
    try:
        return "bytes", transcoder.encode(obj)
    except Exception as exc:  # the same exception, whichever path raised it
        return "raised", (type(exc), str(exc))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), values, max_size=8))
def test_same_bytes_as_the_standard_encoder(event: dict[str, Any]) -> None:
    assert _outcome(FAST, event) == _outcome(STANDARD, event)


def test_the_fast_path_is_taken_for_an_events_values() -> None:
    """A join's values, as the bulk path maps them, never leave orjson's path."""
    event = {
        "timestamp": datetime.datetime.now(datetime.UTC),
        "originator_topic": "ledger:Member",
        "actor": "token:" + uuid.uuid4().hex,
        "name": "欧阳翀翊\u2028\x00",
        "flags": (True, False, None),
        "joined_on": datetime.date(2025, 3, 1),
        "postings": [Posting("9" * 18, sorted(ACCOUNTS)[0], Money(1), Money(0), False, None)],
        "amount": decimal.Decimal("1.10"),
        "member": uuid.uuid4(),
    }
    plain = FAST._plain(event)  # raises _NotPlain if it would leave the fast path
    assert FAST.encode(event) == STANDARD.encode(event)
    assert plain["member"] == {"_type_": "uuid_hex", "_data_": event["member"].hex}


def test_unregistered_types_raise_as_before() -> None:
    class Unknown:
        pass

    with pytest.raises(TranscodingNotRegisteredError):
        FAST.encode({"x": Unknown()})
