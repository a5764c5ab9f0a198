"""IdempotencyKey.parse: 1-128 visible ASCII characters, nothing else; the request fingerprint
kept with a key: keyed, and records stored with the old plain SHA-256 still honoured."""

from __future__ import annotations

import enum
import json
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import IdempotencyKeyReused, InvalidValue
from domain.idempotency import IdempotencyRecord
from service.application import Ledger
from service.commands import JoinMember
from service.idempotency import (
    KEYED_PREFIX,
    MAX_KEY_LENGTH,
    Fingerprint,
    IdempotencyKey,
    _canonical,
    plain_fingerprint,
)
from tests.service.scenario import found_tree, person


def _valid(key: str) -> bool:
    return 1 <= len(key) <= MAX_KEY_LENGTH and all(0x21 <= ord(c) <= 0x7E for c in key)


@given(
    st.text(max_size=MAX_KEY_LENGTH + 2)
    | st.text(st.characters(min_codepoint=0x1F, max_codepoint=0x80), max_size=130)
)
def test_parse_accepts_exactly_visible_ascii_keys(key: str) -> None:
    if _valid(key):
        assert IdempotencyKey.parse("*", key).key == key
    else:
        with pytest.raises(InvalidValue):
            IdempotencyKey.parse("*", key)


@pytest.mark.parametrize("key", ["", " ", "a b", "a\tb", "键", "x" * 129, "a\n"])
def test_parse_refuses(key: str) -> None:
    with pytest.raises(InvalidValue):
        IdempotencyKey.parse("*", key)


# --- the request fingerprint -----------------------------------------------------------------


def _join_request(tree, mobile: str = "13812345678") -> dict:
    return dict(
        id_number=person(41),
        name="欧阳娜娜",
        organization_code=tree.base_a,
        joined_on="2024-01-02",
        mobile=mobile,
        migrant_worker=False,
        new_employment_form=False,
    )


def _stored_record(ledger: Ledger, key: IdempotencyKey) -> IdempotencyRecord:
    record = ledger.repository.get(key.record_id)
    assert isinstance(record, IdempotencyRecord)
    return record


def test_the_stored_fingerprint_is_keyed_not_a_plain_hash_of_the_request(ledger: Ledger):
    tree = found_tree(ledger)
    key = IdempotencyKey.parse(tree.base_a, "join-keyed")
    request = _join_request(tree)
    ledger.execute(JoinMember(**request), idempotency=key)
    stored = _stored_record(ledger, key).fingerprint
    # A plain SHA-256 of the request is what a brute force over mobile numbers recomputes.
    assert stored != plain_fingerprint("join_member", request)
    assert stored.startswith(KEYED_PREFIX)
    assert stored == ledger.fingerprint("join_member", request).keyed
    # Another master key, another fingerprint: without the key nothing can be recomputed.
    other = Fingerprint(b"\x01" * 32, "join_member", request).keyed
    assert other != stored and other.startswith(KEYED_PREFIX)


def test_a_record_stored_with_a_plain_fingerprint_still_replays_and_still_refuses(ledger: Ledger):
    """Records written before fingerprints were keyed hold a plain SHA-256 of the request."""
    tree = found_tree(ledger)
    key = IdempotencyKey.parse(tree.base_a, "join-old")
    request = _join_request(tree)
    first = ledger.execute(
        JoinMember(**request)
    )  # the command's own events, as an old one left them
    member_id = UUID(first.body["member_id"])
    ledger.save(
        IdempotencyRecord(
            id=key.record_id,
            command="join_member",
            fingerprint=plain_fingerprint("join_member", request),
            result=first.body,
            event_keys=[f"{member_id.hex}:1"],
        )
    )
    assert not _stored_record(ledger, key).fingerprint.startswith(KEYED_PREFIX)
    head = ledger.head_position()

    again = ledger.execute(JoinMember(**request), idempotency=key)
    assert again.replayed and again.body == first.body
    assert again.position == ledger.position_of(key.record_id)
    assert ledger.head_position() == head

    with pytest.raises(IdempotencyKeyReused):
        ledger.execute(JoinMember(**_join_request(tree, mobile="13912345678")), idempotency=key)
    assert ledger.head_position() == head


def test_a_keyed_record_refuses_another_request_and_ignores_a_forged_plain_match(ledger: Ledger):
    tree = found_tree(ledger)
    key = IdempotencyKey.parse(tree.base_a, "join-new")
    request = _join_request(tree)
    ledger.execute(JoinMember(**request), idempotency=key)
    head = ledger.head_position()
    with pytest.raises(IdempotencyKeyReused):
        ledger.execute(JoinMember(**_join_request(tree, mobile="13912345678")), idempotency=key)
    assert ledger.head_position() == head
    fingerprint = ledger.fingerprint("join_member", request)
    assert fingerprint.matches(fingerprint.keyed)
    assert fingerprint.matches(plain_fingerprint("join_member", request))
    # A keyed record is compared as keyed only: a plain digest dressed as one is no match.
    assert not fingerprint.matches(KEYED_PREFIX + plain_fingerprint("join_member", request))
    assert not fingerprint.matches(plain_fingerprint("join_member", {"other": 1}))


class _Colour(enum.Enum):
    RED = "red"


class _Flag(enum.StrEnum):
    ON = "on"


# Requests of plain JSON values (the fast writer's), and the same with one value of another
# type somewhere in them (written through str(), or refused, by the standard library): a
# date, an amount, an id, an enum, a float, an integer past 64 bits, a key that is no string.
_plain_values = st.recursive(
    st.text() | st.integers(-(2**63), 2**64 - 1) | st.booleans() | st.none(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)
_odd_values = st.recursive(
    st.floats(allow_nan=True)
    | st.integers(min_value=2**64)
    | st.integers(max_value=-(2**63) - 1)
    | st.dates()
    | st.datetimes()
    | st.decimals(allow_nan=False, places=2)
    | st.uuids()
    | st.sampled_from([_Colour.RED, _Flag.ON])
    | st.dictionaries(st.integers(0, 20), _plain_values, min_size=1, max_size=3),
    lambda inner: (
        st.lists(inner, min_size=1, max_size=2)
        | st.dictionaries(st.text(max_size=6), inner, min_size=1, max_size=1)
    ),
    max_leaves=3,
)
_plain_requests = st.dictionaries(st.text(max_size=8), _plain_values, max_size=6)
_requests = _plain_requests | st.builds(
    lambda request, key, odd: {**request, key: odd},
    _plain_requests,
    st.text(max_size=8),
    _odd_values,
)


@settings(max_examples=500)
@given(_requests)
def test_the_canonical_text_is_the_standard_librarys_for_any_request(request_: dict) -> None:
    """Fingerprints stored by any version must match a retry's: the fast writer of plain
    requests and the standard library's writer of the rest give the bytes the standard
    library always gave."""
    try:
        want = json.dumps(
            {"command": "c", "request": request_},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).encode("utf-8")
    except (TypeError, UnicodeEncodeError) as exc:  # keys of mixed types; a lone surrogate
        with pytest.raises(type(exc)):
            _canonical("c", request_)
        return
    assert _canonical("c", request_) == want
