"""Seals (审计封印): the chain head signed with the deployment's Ed25519 key.

A seal is a small JSON object that an auditor can keep outside the system:

    {"format": "union-ledger-audit-seal/1", "position": 1234, "event_count": 1230,
     "chain_hash": "<hex>", "sealed_at": "2026-11-21T20:00:00+00:00",
     "algorithm": "Ed25519", "public_key": "<base64>", "signature": "<base64>"}

The signature covers the canonical JSON (sorted keys, no spaces, UTF-8) of format, position,
event_count, chain_hash and sealed_at, so any tool can check it with the published public key.
Without the private key nobody can make a seal that verifies, or move one to another position.

Which public key a seal must verify with is configured outside the database
(LEDGER_AUDIT_PUBLIC_KEY, or LEDGER_AUDIT_PUBLIC_KEY_FILE): a seal carries its own public key,
and someone who can write the database could otherwise sign seals with a key of their own and
store them. `ledger audit public-key` prints the signing key's public key for that setting.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from storage.keys import create_key_file
from storage.settings import Settings

SEAL_FORMAT = "union-ledger-audit-seal/1"
ALGORITHM = "Ed25519"
PRIVATE_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNED_FIELDS = ("format", "position", "event_count", "chain_hash", "sealed_at")
MAX_SEAL_FILE_BYTES = 64 * 1024 * 1024  # a million seals; more is not a seal file


class SealFileError(ValueError):
    """The seal file cannot be read as seals."""


class AuditKeyError(ValueError):
    """The configured signing key (setting or key file) is not a usable Ed25519 key."""


def _decode_key(text: str | bytes, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"{where} is not base64") from None
    if len(raw) != PRIVATE_KEY_BYTES:
        raise AuditKeyError(f"{where} must hold {PRIVATE_KEY_BYTES} bytes, not {len(raw)}")
    return raw


def load_signing_key(settings: Settings, *, create: bool) -> Ed25519PrivateKey | None:
    """The signing key from settings, else from the key file (created 0600 when asked)."""
    if settings.audit_signing_key:
        raw = _decode_key(settings.audit_signing_key, "LEDGER_AUDIT_SIGNING_KEY")
    else:
        path = Path(settings.audit_key_file)
        if not path.exists():
            if not create:
                return None
            create_key_file(path, PRIVATE_KEY_BYTES)
        try:
            text = path.read_bytes().strip()
        except OSError as exc:
            raise AuditKeyError(f"cannot read the audit key file {path}: {exc}") from None
        raw = _decode_key(text, f"the audit key file {path}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def _public_key(text: str, where: str) -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"{where}: {text[:60]!r} is not base64") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise AuditKeyError(f"{where}: a public key holds {PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
    Ed25519PublicKey.from_public_bytes(raw)
    return base64.b64encode(raw).decode("ascii")


def trusted_public_keys(settings: Settings) -> set[str]:
    """The public keys configured outside the database (setting, else file); empty if none.
    AuditKeyError if one is malformed or the file cannot be read."""
    if settings.audit_public_key:
        text, where = settings.audit_public_key, "LEDGER_AUDIT_PUBLIC_KEY"
    elif settings.audit_public_key_file is not None:
        path = Path(settings.audit_public_key_file)
        where = f"the audit public key file {path}"
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditKeyError(f"cannot read {where}: {exc}") from None
    else:
        return set()
    return {_public_key(part, where) for part in text.replace(",", " ").split()}


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def signed_message(seal: dict[str, Any]) -> bytes:
    body = {name: seal[name] for name in SIGNED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_seal(
    key: Ed25519PrivateKey, *, position: int, event_count: int, chain_hash: bytes, sealed_at: str
) -> dict[str, Any]:
    seal: dict[str, Any] = {
        "format": SEAL_FORMAT,
        "position": position,
        "event_count": event_count,
        "chain_hash": chain_hash.hex(),
        "sealed_at": sealed_at,
    }
    seal["algorithm"] = ALGORITHM
    seal["public_key"] = public_key_text(key)
    seal["signature"] = base64.b64encode(key.sign(signed_message(seal))).decode("ascii")
    return seal


def seal_fault(seal: dict[str, Any], trusted_public_keys: set[str]) -> str | None:
    """Why this seal proves nothing, or None when its signature is good and its key trusted."""
    try:
        if seal.get("format") != SEAL_FORMAT or seal.get("algorithm", ALGORITHM) != ALGORITHM:
            return f"not a {SEAL_FORMAT} seal"
        if not isinstance(seal["position"], int) or not isinstance(seal["event_count"], int):
            return "position and event_count must be integers"
        if len(bytes.fromhex(seal["chain_hash"])) != 32:
            return "chain_hash must be 32 bytes in hex"
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(seal["public_key"], validate=True)
        )
        public.verify(base64.b64decode(seal["signature"], validate=True), signed_message(seal))
    except InvalidSignature:
        return "the signature does not match the sealed fields (封印签名无效)"
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        return f"malformed seal ({type(exc).__name__}: {exc})"
    if seal["public_key"] not in trusted_public_keys:
        return (
            f"signed by key {seal['public_key']}, which is not this deployment's audit key "
            "as configured (LEDGER_AUDIT_PUBLIC_KEY) (签名密钥不符)"
        )
    return None


def read_seal_file(path: Path) -> list[dict[str, Any]]:
    """Seals kept by an auditor: a JSON array, {"seals": [...]}, one seal, or JSON Lines."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SEAL_FILE_BYTES:
            raise SealFileError(f"{path} is larger than {MAX_SEAL_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SealFileError(f"cannot read seal file {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        try:
            document = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise SealFileError(f"{path} is neither JSON nor JSON Lines: {exc}") from None
    if isinstance(document, dict):
        document = document.get("seals", [document])
    if not isinstance(document, list) or not all(isinstance(s, dict) for s in document):
        raise SealFileError(f"{path} does not hold seal objects")
    return document
