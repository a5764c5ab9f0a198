"""API tokens on both stores: expiry, revocation seen by another process, last use, and tokens
stored before tokens expired (version 1 of the minting event)."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from domain.access import DEFAULT_EXPIRY_DAYS
from domain.errors import InvalidValue, NotFound
from service.tokens import REVALIDATE_S, Tokens
from tests.conftest import Backend

START = datetime.datetime(2026, 12, 3, 9, 0, tzinfo=datetime.UTC)


class Clocks:
    """The wall clock and the elapsed-time clock of one process, moved by the test."""

    def __init__(self) -> None:
        self.wall = START
        self.elapsed_s = 1_000.0

    def now(self) -> datetime.datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.elapsed_s

    def advance(self, seconds: float) -> None:
        self.wall += datetime.timedelta(seconds=seconds)
        self.elapsed_s += seconds


def tokens_of(backend: Backend, clocks: Clocks) -> Tokens:
    """The tokens of one server process: a ledger of its own on the shared store."""
    return Tokens(backend.open(), now=clocks.now, monotonic=clocks.monotonic)


def test_a_token_expires(backend: Backend) -> None:
    clocks = Clocks()
    tokens = tokens_of(backend, clocks)
    principal, presented = tokens.mint(role="clerk", expires_in_days=2)
    assert tokens.verify(presented) == principal
    assert tokens.describe(principal.token_id)["expires_at"] == START + datetime.timedelta(days=2)
    clocks.advance(2 * 86_400 - 1)
    assert tokens.verify(presented) == principal
    assert tokens.already_verified(presented) == principal
    clocks.advance(1)
    # Expired: neither the memory of this process nor the store lets it in.
    assert tokens.already_verified(presented) is None
    assert tokens.verify(presented) is None
    # The default is a year.
    principal, presented = tokens.mint(role="auditor")
    assert tokens.describe(principal.token_id)["expires_at"] == clocks.wall + datetime.timedelta(
        days=DEFAULT_EXPIRY_DAYS
    )


@pytest.mark.parametrize("days", [0, -1, 3651, True, 1.5])
def test_expiry_is_bounded(backend: Backend, days: object) -> None:
    tokens = tokens_of(backend, Clocks())
    before = tokens.ledger.head_position()
    with pytest.raises(InvalidValue):
        tokens.mint(role="clerk", expires_in_days=days)  # type: ignore[arg-type]
    assert tokens.ledger.head_position() == before


def test_revocation_reaches_another_process(backend: Backend) -> None:
    here, there = Clocks(), Clocks()
    minting = tokens_of(backend, here)
    serving = tokens_of(backend, there)
    principal, presented = minting.mint(role="admin")
    assert serving.verify(presented) == principal
    revoked = minting.revoke(principal.token_id)
    assert revoked["already_revoked"] is False and revoked["revoked_at"] == here.wall
    # The serving process trusts what it verified for REVALIDATE_S at most, then reads again.
    there.advance(REVALIDATE_S / 2)
    assert serving.already_verified(presented) == principal
    there.advance(REVALIDATE_S / 2)
    assert serving.already_verified(presented) is None
    assert serving.verify(presented) is None
    # Revoking again records nothing.
    head = minting.ledger.head_position()
    assert minting.revoke(principal.token_id.replace("-", ""))["already_revoked"] is True
    assert minting.ledger.head_position() == head


def test_revoking_an_unknown_or_malformed_id(backend: Backend) -> None:
    tokens = tokens_of(backend, Clocks())
    before = tokens.ledger.head_position()
    with pytest.raises(NotFound):
        tokens.revoke(str(uuid.uuid4()))
    with pytest.raises(InvalidValue):
        tokens.revoke("not-a-token-id")
    assert tokens.ledger.head_position() == before


def test_listing_and_last_use(backend: Backend) -> None:
    clocks = Clocks()
    tokens = tokens_of(backend, clocks)
    clerk, presented = tokens.mint(role="clerk", pii=True)
    clocks.advance(10)
    auditor, _ = tokens.mint(role="auditor")
    listed = {t["id"]: t for t in tokens.describe_all()}
    assert set(listed) >= {clerk.token_id, auditor.token_id}
    assert listed[clerk.token_id]["last_used_at"] is None
    assert listed[clerk.token_id]["pii"] is True and listed[clerk.token_id]["role"] == "clerk"
    assert "secret_hash" not in listed[clerk.token_id]
    used_at = clocks.wall
    tokens.verify(presented)
    # Within the minute, later uses write nothing; after it, the next one does.
    clocks.advance(30)
    tokens.verify(presented)
    assert tokens.describe(clerk.token_id)["last_used_at"] == used_at
    clocks.advance(31)
    tokens.verify(presented)
    assert tokens.describe(clerk.token_id)["last_used_at"] == clocks.wall
    # Another process's older figure never moves it back.
    other = tokens_of(backend, Clocks())
    other.verify(presented)
    assert tokens.describe(clerk.token_id)["last_used_at"] == clocks.wall


# A minting event as version 1 of the code stored it (before tokens expired): its plaintext,
# before compression and encryption. secret_hash depends on the store's key: filled in below.
V1_MINTED = (
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-03T09:41:09.581602+00:00"},'
    '"originator_topic":"ledger:Token","actor":"cli:token create","role":"clerk",'
    '"organization_code":null,"pii":false,"secret_hash":"%s"}'
)
V1_MINTED_AT = datetime.datetime(2026, 12, 3, 9, 41, 9, 581602, tzinfo=datetime.UTC)


def test_a_token_minted_before_expiry_existed(backend: Backend) -> None:
    """Upcast: it expires DEFAULT_EXPIRY_DAYS after it was minted."""
    clocks = Clocks()
    tokens = tokens_of(backend, clocks)
    ledger = tokens.ledger
    token_id, secret = uuid.uuid4(), "an-old-secret"
    plaintext = (V1_MINTED % tokens._hash(secret)).encode()
    assert "expires_at" not in json.loads(plaintext) and "class_version" not in json.loads(
        plaintext
    )
    # Compressed and sealed to its row as the ledger stores every payload today.
    state = ledger.mapper._cipher().seal(
        ledger.mapper.compressor.compress(plaintext), token_id, 1, "ledger:Token.Minted"
    )
    ledger.recorder.insert_events([StoredEvent(token_id, 1, "ledger:Token.Minted", state)])
    presented = f"{token_id.hex}.{secret}"
    expires_at = V1_MINTED_AT + datetime.timedelta(days=DEFAULT_EXPIRY_DAYS)
    described = tokens.describe(str(token_id))
    assert described["expires_at"] == expires_at and described["created_at"] == V1_MINTED_AT
    assert described["role"] == "clerk" and described["revoked_at"] is None
    clocks.wall = expires_at - datetime.timedelta(seconds=1)
    assert tokens.verify(presented) is not None
    clocks.wall = expires_at
    assert tokens.verify(presented) is None
    # It can be revoked like any other.
    assert tokens.revoke(str(token_id))["already_revoked"] is False
    assert tokens_of(backend, Clocks()).describe(str(token_id))["revoked_at"] == expires_at
