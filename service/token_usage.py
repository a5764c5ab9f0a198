"""When each token was last used: one row per token in a small table beside the events.

"Last used" is operational, not history: an event per request would put every request of every
client into the event log (and the audit chain) for a figure nobody audits. So it is a plain
row, written by each server process at most once a minute per token (service/tokens.py), and
read by `ledger token list`. It is accurate to about a minute, which is what an operator asks of
it (is this token still in use?).
"""

from __future__ import annotations

import datetime
from typing import Any

import psycopg
from eventsourcing.sqlite import SQLiteRecorder

TABLE = "token_last_used"
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, UTC: text order is time order


class TokenUsage:
    """The token_last_used table, in the event store's own database."""

    def __init__(self, recorder: Any) -> None:
        self._recorder = recorder
        self._sqlite = isinstance(recorder, SQLiteRecorder)  # by class: see storage/pg_recorder.py
        self._marker = "?" if self._sqlite else "%s"

    def _execute(self, sql: str, params: tuple[Any, ...] = (), *, fetch: bool = False) -> list[Any]:
        with self._recorder.datastore.transaction(commit=not fetch) as cursor:
            cursor.execute(sql.format(p=self._marker), params)
            return list(cursor.fetchall()) if fetch else []

    def ensure_table(self) -> None:
        try:
            self._execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} "
                "(token_id TEXT PRIMARY KEY, last_used_at TEXT NOT NULL)"
            )
        except psycopg.errors.UniqueViolation:
            pass  # another process created it at the same moment (PostgreSQL's catalogue race)

    def record(self, token_id: str, at: datetime.datetime) -> None:
        """Moves the token's last use forward to `at` (never back: processes race)."""
        stamp = at.astimezone(datetime.UTC).strftime(_STAMP)
        self._execute(
            f"INSERT INTO {TABLE} (token_id, last_used_at) VALUES ({{p}}, {{p}}) "
            f"ON CONFLICT (token_id) DO UPDATE SET last_used_at = excluded.last_used_at "
            f"WHERE excluded.last_used_at > {TABLE}.last_used_at",
            (token_id, stamp),
        )

    def all(self) -> dict[str, datetime.datetime]:
        # Rows are sqlite3.Row or psycopg dict rows: both are read by column name.
        rows = self._execute(f"SELECT token_id, last_used_at FROM {TABLE}", fetch=True)
        return {
            str(row["token_id"]): datetime.datetime.strptime(row["last_used_at"], _STAMP).replace(
                tzinfo=datetime.UTC
            )
            for row in rows
        }
