"""The key check (密钥校验): a store remembers which master key it belongs to.

Without it, a process started with another key (a key file created afresh because it was run
from another directory, a mistyped LEDGER_ENCRYPTION_KEY) would open an existing store and
write events under its own key: events nobody else can read, mixed into the log.

The check value is an HMAC-SHA256 of a fixed label under a key derived from the master key: it
says nothing about the key, and only the same key gives the same value. It lives in the small
table `ledger_key_check` of the events' database, written before the first event is stored
(Ledger.claim_store). On opening a store:

- a stored value that differs from this key's: refused (WrongEncryptionKey), nothing written;
- no stored value but events (a store from before key checks): the key must open the first and
  the last event, and the value is then written; otherwise refused the same way;
- no key file while the store already holds events or a value: refused (KeyFileRefused), and no
  key file is created (service/application.py).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from eventsourcing.sqlite import SQLiteRecorder

from storage.keys import derive_key

CHECK_LABEL = b"union-ledger key check v1"
CHECK_TABLE = "ledger_key_check"
CHECK_NAME = "master-key"


class StoreKeyError(ValueError):
    """The configured key cannot be used with this store (a configuration error)."""


class WrongEncryptionKey(StoreKeyError):
    def __init__(self, source: str, store: str) -> None:
        super().__init__(
            f"the encryption key from {source} is not the key of the store {store}: refusing "
            "to open it (nothing was read or written). Use the deployment's key: "
            "LEDGER_ENCRYPTION_KEY, or LEDGER_KEY_FILE naming its key file"
        )


class KeyFileRefused(StoreKeyError):
    def __init__(self, path: str, store: str) -> None:
        super().__init__(
            f"no key file at {path}, and the store {store} already holds events written "
            "under a key: refusing to create a new key beside it. Run from the deployment's "
            "directory, or set LEDGER_KEY_FILE (or LEDGER_ENCRYPTION_KEY) to its key"
        )


def check_value(master_key: bytes) -> str:
    return hmac.new(derive_key(master_key, "key-check"), CHECK_LABEL, hashlib.sha256).hexdigest()


class KeyCheckTable:
    """The check value in the events' database, through the event recorder's own datastore."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.sqlite = isinstance(recorder, SQLiteRecorder)  # by class: see storage/pg_recorder.py
        self.marker = "?" if self.sqlite else "%s"

    def _execute(self, sql: str, params: tuple = (), *, commit: bool, fetch: bool = False) -> Any:
        with self.recorder.datastore.transaction(commit=commit) as cursor:
            cursor.execute(sql.replace("?", self.marker), params)
            return cursor.fetchone() if fetch else None

    def ensure(self) -> None:
        try:
            self._execute(
                f"CREATE TABLE IF NOT EXISTS {CHECK_TABLE} (name TEXT PRIMARY KEY, "
                "value TEXT NOT NULL)",
                commit=True,
            )
        except Exception as exc:  # two first starts at once on PostgreSQL: the other made it
            if "already exists" not in str(exc) and "duplicate key" not in str(exc):
                raise

    def stored(self) -> str | None:
        row = self._execute(
            f"SELECT value FROM {CHECK_TABLE} WHERE name = ?",
            (CHECK_NAME,),
            commit=False,
            fetch=True,
        )
        return None if row is None else str(row["value"])  # sqlite3.Row or psycopg's dict row

    def claim(self, value: str) -> str:
        """Writes the value unless one is there; returns the value that is there now."""
        self._execute(
            f"INSERT INTO {CHECK_TABLE} (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
            (CHECK_NAME, value),
            commit=True,
        )
        stored = self.stored()
        assert stored is not None
        return stored
