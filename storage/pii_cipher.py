"""Personal data in read models (names, identity numbers, mobile numbers): encrypted, never
stored in plaintext, and found by a keyed hash.

The nonce of each ciphertext is derived from where the value comes from (member, event
position, field) rather than drawn at random. An event's content never changes, so one nonce
only ever encrypts one plaintext (AES-GCM's requirement), and a rebuild from the same events
writes byte-identical rows: live and rebuilt tables can then be compared by content.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as keyed_hash
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storage.keys import derive_key, load_or_create_key
from storage.settings import Settings

NONCE_BYTES = 12


class PiiCipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(derive_key(key, "read-model/encryption"))
        # HMAC-SHA256 states keyed once and copied per value: the same digests as
        # hmac.digest(key, value, "sha256"), without setting the key up on every call (about
        # a fifth of the cost; a rebuild makes four of these per member).
        self._nonce_mac = keyed_hash.HMAC(derive_key(key, "read-model/nonce"), hashes.SHA256())
        self._hash_mac = keyed_hash.HMAC(derive_key(key, "read-model/lookup"), hashes.SHA256())

    @classmethod
    def from_settings(cls, settings: Settings) -> PiiCipher:
        return cls(derive_key(load_or_create_key(settings), "read-model"))

    def encrypt(self, plaintext: str | None, *, field: str, origin: str) -> bytes | None:
        """origin names the value's source uniquely ("member-id|position"); the field is
        authenticated too, so that a ciphertext cannot be moved to another column."""
        if plaintext is None:
            return None
        nonce = _mac(self._nonce_mac, f"{origin}|{field}".encode())[:NONCE_BYTES]
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), field.encode())

    def decrypt(self, blob: bytes | None, *, field: str) -> str | None:
        if blob is None:
            return None
        blob = bytes(blob)
        nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        return self._aead.decrypt(nonce, body, field.encode()).decode("utf-8")

    def lookup_hash(self, value: str) -> str:
        """A keyed hash for equality lookups (an identity number is easy to guess unkeyed)."""
        return _mac(self._hash_mac, value.encode("utf-8")).hex()


def _mac(keyed: keyed_hash.HMAC, message: bytes) -> bytes:
    state = keyed.copy()  # the keyed state itself is never finalised: safe to share
    state.update(message)
    return state.finalize()
