"""The master key and the keys derived from it (HKDF, one per purpose), the key file, and
member ids (a keyed hash of the identity number)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.settings import Settings

KEY_BYTES = 32

# Key files and SQLite databases are their owner's alone (keys, and personal data at rest).
PRIVATE_FILE_MODE = 0o600

PRIVATE_DIRECTORY_MODE = 0o700


def _fsync_directory(path: Path) -> None:
    """Makes a new directory entry durable: a crash after the file's own fsync can otherwise
    leave the directory without it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_directory(path: Path) -> None:
    """Creates a directory (and its parents) for keys and databases, the last one 0700."""
    if not path.exists():
        path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)


def create_key_file(path: Path, num_bytes: int) -> None:
    """Writes num_bytes of fresh randomness, base64-encoded, to a new file readable only by
    its owner (0600), durably (the file and its directory fsynced). The key is written to a
    temporary file first and linked into place, which fails if the name exists: two processes
    starting at once cannot both write a key, and no reader ever sees a half-written one."""
    make_private_directory(path.parent)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(os.urandom(num_bytes)) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return  # another process got there first: its key stands
        _fsync_directory(path.parent)
    finally:
        os.unlink(temporary)


@dataclass(frozen=True)
class ConfiguredKey:
    """The master key as configured: from LEDGER_ENCRYPTION_KEY or a key file (key None: the
    file does not exist yet)."""

    key: bytes | None
    source: str  # named in errors: "LEDGER_ENCRYPTION_KEY" or "the key file /abs/path"
    path: Path | None


def _decode_master_key(text: str | bytes, source: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{source} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"the encryption key ({source}) must be {KEY_BYTES} bytes, base64-encoded")
    return key


def configured_key(settings: Settings) -> ConfiguredKey:
    """The master key from settings, else from the key file; never creates one (the ledger
    does, after checking the store: service/application.py)."""
    if settings.encryption_key:
        source = "LEDGER_ENCRYPTION_KEY"
        return ConfiguredKey(_decode_master_key(settings.encryption_key, source), source, None)
    path = Path(settings.key_file).absolute()
    source = f"the key file {path}"
    try:
        text = path.read_bytes().strip()
    except FileNotFoundError:
        return ConfiguredKey(None, source, path)
    return ConfiguredKey(_decode_master_key(text, source), source, path)


def load_or_create_key(settings: Settings) -> bytes:
    """The master key of a store the ledger has opened (service/application.py creates the key
    file when that is allowed). It no longer creates one: a key file made here could sit
    beside a store written under another key."""
    configured = configured_key(settings)
    if configured.key is None:
        raise ValueError(f"no encryption key: {configured.source} does not exist")
    return configured.key


def derive_key(master: bytes, purpose: str) -> bytes:
    """Separate keys per purpose from the one master key, so no key does two jobs."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode()
    ).derive(master)


class MemberIds:
    """Member ids from identity numbers by a keyed hash: stable, unique, and not reversible
    without the key (an unkeyed hash of an identity number is easy to brute-force)."""

    def __init__(self, key: bytes) -> None:
        # Keyed once and copied per number: the same digest as hmac.new(key, number) at half
        # the cost (a roster import derives one per row).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def for_id_number(self, id_number: str) -> UUID:
        mac = self._keyed.copy()
        mac.update(id_number.encode("ascii"))
        return UUID(bytes=mac.digest()[:16], version=4)
