"""Where the events live: settings turned into an eventsourcing environment, keys, transcodings."""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.money import Money
from domain.vouchers import Posting
from service.settings import Settings

KEY_BYTES = 32
# Key files and SQLite databases are their owner's alone (keys, and personal data at rest).
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700
# While PostgreSQL is unreachable a request must hear 503 within a few seconds, not hang:
# a call waits at most this long for a pooled connection (see service/outage.py).
DATABASE_WAIT_S = 2


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
        raise ValueError(f"the encryption key ({source}) must be {KEY_BYTES} bytes, "
                         "base64-encoded")
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
        self._key = key

    def for_id_number(self, id_number: str) -> UUID:
        digest = hmac.new(self._key, id_number.encode("ascii"), hashlib.sha256).digest()
        return UUID(bytes=digest[:16], version=4)


def prepare_sqlite_file(path: str) -> None:
    """Creates the SQLite database file 0600 (in a 0700 directory when it makes one) before
    anything opens it: sqlite3 would create it world-readable under a common umask. SQLite
    gives its -wal and -shm files the database file's mode."""
    if path == ":memory:" or path.startswith("file:") or "mode=memory" in path:
        return
    make_private_directory(Path(path).absolute().parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    except FileExistsError:
        pass  # an existing database keeps its mode


def describe_store(settings: Settings) -> str:
    """The store for messages: the SQLite file's absolute path, or the URL without password."""
    url = urlparse(settings.database_url)
    if url.scheme == "sqlite":
        path = url.path[1:] if url.path.startswith("/") else url.path
        if url.netloc:
            path = url.netloc + "/" + path
        return str(Path(path).absolute()) if path and path != ":memory:" else ":memory:"
    if url.password is not None:
        return url._replace(netloc=url.netloc.replace(f":{url.password}@", ":***@", 1)).geturl()
    return settings.database_url


def eventsourcing_env(settings: Settings) -> dict[str, str]:
    """The environment the eventsourcing Application reads its infrastructure from. No cipher:
    the ledger's mapper encrypts payloads itself, bound to their rows
    (service/payload_binding.py)."""
    env = {
        "COMPRESSOR_TOPIC": "service.storage:FastZlibCompressor",
        "CREATE_TABLE": "y",
        # Recently used aggregates stay in memory; each get() fetches only newer events.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    url = urlparse(settings.database_url)
    if url.scheme == "sqlite":
        path = url.path[1:] if url.path.startswith("/") else url.path
        if url.netloc:
            path = url.netloc + "/" + path
        if path:
            prepare_sqlite_file(path)
        env.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path or ":memory:",
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        )
    elif url.scheme in ("postgresql", "postgres"):
        env.update(
            {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                # Events inserted as binary column arrays, not a text array of composites
                # (service/pg_recorder.py): the same rows, ids and locks for less CPU.
                "APPLICATION_RECORDER_TOPIC": "service.pg_recorder:BinaryArrayApplicationRecorder",
                "POSTGRES_DBNAME": url.path.lstrip("/"),
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
                # How long a request waits for a pooled connection: while the database is
                # down this bounds the wait before the client hears 503 (see service/outage.py).
                "POSTGRES_CONNECT_TIMEOUT": str(DATABASE_WAIT_S),
                "POSTGRES_LOCK_TIMEOUT": "5",
            }
        )
    else:
        raise ValueError(
            f"LEDGER_DATABASE_URL must start with sqlite:/// or postgresql://, not {url.scheme!r}"
        )
    return env
