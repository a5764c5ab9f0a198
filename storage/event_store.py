"""Where the events live: the settings turned into the eventsourcing environment (SQLite or
PostgreSQL), and the store named for messages."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from eventsourcing.persistence import Notification

from storage.keys import PRIVATE_FILE_MODE, make_private_directory
from storage.settings import Settings

# While PostgreSQL is unreachable a request must hear 503 within a few seconds, not hang:
# a call waits at most this long for a pooled connection (see storage/outage.py).
DATABASE_WAIT_S = 2


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
    (storage/payload_binding.py)."""
    env = {
        "COMPRESSOR_TOPIC": "storage.transcodings:FastZlibCompressor",
        "CREATE_TABLE": "y",
        # Recently used aggregates stay in memory; each get() fetches only newer events.
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
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
                # (storage/pg_recorder.py): the same rows, ids and locks for less CPU.
                "APPLICATION_RECORDER_TOPIC": "storage.pg_recorder:BinaryArrayApplicationRecorder",
                "POSTGRES_DBNAME": url.path.lstrip("/"),
                "POSTGRES_HOST": url.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": unquote(url.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(url.password or ""),
                "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
                # How long a request waits for a pooled connection: while the database is
                # down this bounds the wait before the client hears 503 (see storage/outage.py).
                "POSTGRES_CONNECT_TIMEOUT": str(DATABASE_WAIT_S),
                "POSTGRES_LOCK_TIMEOUT": "5",
            }
        )
    else:
        raise ValueError(
            f"LEDGER_DATABASE_URL must start with sqlite:/// or postgresql://, not {url.scheme!r}"
        )
    return env


class EventLog(Protocol):
    """The stored events as the read side reads them (projections, audit, rebuilds): the
    write side's application (service/application.py, Ledger) is one. Declared here, below
    both sides, so that the read side depends on the storage layer and not on the write side."""

    settings: Settings
    env: Any
    recorder: Any  # eventsourcing's ApplicationRecorder for the store
    mapper: Any  # storage/payload_binding.py's BoundMapper

    def head_position(self) -> int:
        """The position of the newest stored event (0 for none)."""
        ...

    def notifications_at(self, positions: Sequence[int]) -> list[Notification]:
        """The stored events at these positions (one query), in position order."""
        ...
