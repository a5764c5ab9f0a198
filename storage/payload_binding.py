"""Event payloads bound to their row: AES-GCM with the row's identity as associated data.

eventsourcing's AESCipher encrypts a payload with no associated data, so a ciphertext opens in
any row: someone with write access to the database could swap two stored payloads (a dues
receipt's and a subsidy's) and each would read back, attributed to the other stream. Here every
payload written is authenticated together with its stream id, version and topic: a payload moved
to another row, or a row whose stream, version or topic was edited, fails to open with
PayloadBindingError (and so does a payload altered in place).

Layouts of the stored bytes:

    bound (written since 2026-12):  B1 01 | nonce (12) | ciphertext | tag (16)
        associated data = B1 01 | stream id (16 bytes) | version (i64 BE) | topic (UTF-8)
    legacy (eventsourcing's):       nonce (12) | tag (16) | ciphertext, no associated data

Rows written before binding stay readable as they are (stored events are never rewritten).
A legacy nonce is random and begins with the marker one time in 65,536; such a payload fails
the bound reading and is then opened as legacy, so the marker needs no escape. A legacy
payload is not bound: what it says was authenticated, but not where it sits. The audit chain
and its seals (projections/audit/trail.py) cover every row either way.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic

import domain.aggregates  # noqa: F401  (registers every stored topic for decoding)
from storage.random_bytes import random_bytes

BOUND_MARKER = b"\xb1\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
_BOUND_HEADER = len(BOUND_MARKER) + NONCE_BYTES
_MIN_BOUND = _BOUND_HEADER + TAG_BYTES
_MIN_LEGACY = NONCE_BYTES + TAG_BYTES


class PayloadBindingError(MapperDeserialisationError):
    """A stored payload does not open for the row it is in: moved there from another row,
    altered, or its row's stream, version or topic edited (or a store written with another
    key, which opening the store refuses first: storage/key_check.py)."""

    def __init__(self, stream_id: Any, version: int, topic: str) -> None:
        super().__init__(
            f"the stored payload of stream {stream_id} version {version} ({topic}) does not "
            "belong to this row: it was moved from another row or altered (载荷与记录不符)"
        )
        self.stream_id = stream_id
        self.version = version
        self.topic = topic


def stream_bytes(originator_id: UUID | str) -> bytes:
    """The stream id as 16 bytes: a UUID, or its text as SQLite (hex) or PostgreSQL prints it."""
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    text = originator_id.replace("-", "")
    if len(text) == 32:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return originator_id.encode("utf-8")  # not a UUID: bound by its text all the same


def associated_data(originator_id: UUID | str, version: int, topic: str) -> bytes:
    # Stream id and version have fixed widths and the topic comes last: unambiguous.
    return (
        BOUND_MARKER
        + stream_bytes(originator_id)
        + version.to_bytes(8, "big", signed=True)
        + topic.encode("utf-8")
    )


class PayloadCipher:
    """Seals and opens payloads with one AES-GCM key (one AESGCM object for every call)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, originator_id: UUID | str, version: int, topic: str) -> bytes:
        nonce = random_bytes(NONCE_BYTES)
        aad = associated_data(originator_id, version, topic)
        return BOUND_MARKER + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, state: bytes, originator_id: UUID | str, version: int, topic: str) -> bytes:
        """The plaintext, or PayloadBindingError. Bound payloads are checked against the row;
        legacy payloads (no marker) open without associated data."""
        if state[:2] == BOUND_MARKER and len(state) >= _MIN_BOUND:
            try:
                return self._aead.decrypt(
                    state[2:_BOUND_HEADER],
                    state[_BOUND_HEADER:],
                    associated_data(originator_id, version, topic),
                )
            except InvalidTag:
                pass  # maybe a legacy payload whose random nonce begins like the marker
        if len(state) >= _MIN_LEGACY:
            try:
                # eventsourcing's layout puts the tag before the ciphertext; AESGCM wants it last.
                return self._aead.decrypt(
                    state[:NONCE_BYTES], state[_MIN_LEGACY:] + state[NONCE_BYTES:_MIN_LEGACY], None
                )
            except InvalidTag:
                pass
        raise PayloadBindingError(originator_id, version, topic)


def is_bound(state: bytes) -> bool:
    """Whether a payload carries the binding marker (a legacy one does by chance 1 in 65,536)."""
    return bytes(state[:2]) == BOUND_MARKER


class BoundMapper(Mapper):
    """eventsourcing's Mapper (JSON, then zlib), with the encryption done here, bound to the row.

    Constructed without a cipher; the ledger gives it the key once it has checked the key
    against the store (service/application.py): until then it neither writes nor reads."""

    payloads: PayloadCipher | None = None

    def use_key(self, key: bytes) -> None:
        self.payloads = PayloadCipher(key)

    def _cipher(self) -> PayloadCipher:
        if self.payloads is None:
            raise RuntimeError("the event cipher has no key yet")
        return self.payloads

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        # Mapper.to_stored_event's steps (eventsourcing 9.5), with the payload sealed before
        # the one StoredEvent is made: calling it made a second, a frozen dataclass, about 1
        # of the 12 us a roster row's Joined event took to map (a roster import maps one per
        # member, ingest one per event). test_payload_binding.py holds the two to the same
        # payloads, so a library upgrade that changes its steps fails there.
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        payload = self.transcoder.encode(state)
        if self.compressor:
            payload = self.compressor.compress(payload)
        if self.cipher:  # none here (the payload cipher below is the ledger's), as the base
            payload = self.cipher.encrypt(payload)
        topic = get_topic(type(domain_event))
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=self._cipher().seal(payload, originator_id, originator_version, topic),
        )

    def open_state(self, stored_event: StoredEvent) -> bytes:
        """The compressed plaintext of a stored event's payload (PayloadBindingError if it does
        not open for its row)."""
        return self._cipher().open(
            bytes(stored_event.state),
            stored_event.originator_id,
            stored_event.originator_version,
            stored_event.topic,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        opened = self.open_state(stored_event)
        return self.from_opened(stored_event, opened)

    def from_opened(self, stored_event: StoredEvent, opened: bytes) -> DomainEventProtocol[Any]:
        """The domain event from a payload already opened: decompressed, decoded, upcast."""
        return super().to_domain_event(replace(stored_event, state=opened))
