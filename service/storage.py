"""Where the events live: settings turned into an eventsourcing environment, keys, transcodings."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import zlib
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


def create_key_file(path: Path, num_bytes: int) -> None:
    """Writes num_bytes of fresh randomness, base64-encoded, to a new file readable only by
    its owner (0600). O_EXCL: two processes starting at once cannot both write a key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(os.urandom(num_bytes)) + b"\n")


def load_or_create_key(settings: Settings) -> bytes:
    """The encryption key: from settings, else from the key file, created 0600 on first run."""
    if settings.encryption_key:
        key = base64.b64decode(settings.encryption_key, validate=True)
    else:
        path = Path(settings.key_file)
        if not path.exists():
            create_key_file(path, KEY_BYTES)
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    if len(key) != KEY_BYTES:
        raise ValueError(f"the encryption key must be {KEY_BYTES} bytes (base64-encoded)")
    return key


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


def eventsourcing_env(settings: Settings, cipher_key: bytes) -> dict[str, str]:
    """The environment the eventsourcing Application reads its infrastructure from."""
    env = {
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": base64.b64encode(cipher_key).decode("ascii"),
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
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
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
