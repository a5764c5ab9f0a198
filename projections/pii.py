"""Personal data in read models (names, identity numbers, mobile numbers): encrypted, never
stored in plaintext, and found by a keyed hash.

The nonce of each ciphertext is derived from where the value comes from (member, event
position, field) rather than drawn at random. An event's content never changes, so one nonce
only ever encrypts one plaintext (AES-GCM's requirement), and a rebuild from the same events
writes byte-identical rows: live and rebuilt tables can then be compared by content.
"""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.settings import Settings
from service.storage import derive_key, load_or_create_key

NONCE_BYTES = 12


class PiiCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(derive_key(key, "read-model/encryption"))
        self._nonce_key = derive_key(key, "read-model/nonce")
        self._hash_key = derive_key(key, "read-model/lookup")

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiCipher:
        return cls(derive_key(load_or_create_key(settings), "read-model"))

    def encrypt(self, plaintext: str | None, *, field: str, origin: str) -> bytes | None:
        """origin names the value's source uniquely ("member-id|position"); the field is
        authenticated too, so that a ciphertext cannot be moved to another column."""
        if plaintext is None:
            return None
        nonce = hmac.digest(self._nonce_key, f"{origin}|{field}".encode(), "sha256")[:NONCE_BYTES]
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), field.encode())

    def decrypt(self, blob: bytes | None, *, field: str) -> str | None:
        if blob is None:
            return None
        blob = bytes(blob)
        nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, field.encode()).decode("utf-8")

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for equality lookups (an identity number is easy to guess unkeyed)."""
        return hmac.digest(self._hash_key, value.encode("utf-8"), "sha256").hex()
