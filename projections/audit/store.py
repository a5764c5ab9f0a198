"""Where the audit trail reads events and keeps its own two tables, on SQLite or PostgreSQL.

- `audit_chain(position, ordinal, link)`: the recorded link of every chained event. It only
  locates damage; it proves nothing by itself (anyone with write access could recompute it).
- `audit_seals`: signed chain heads. These are the proof, and copies kept outside the system
  make a rewritten seals table detectable too.

Both live in the ledger's own database. Each store opens its own connection per operation, so
that a long verification never holds one of the ledger's pooled connections.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql as pgsql

from domain.errors import RuleViolation
from projections.audit.chain import GENESIS, next_link

CHAIN_CHUNK_ROWS = 10_000  # rows chained per write transaction: keeps writers' waits short
READ_BATCH_ROWS = 10_000
SEAL_COLUMNS = (
    "seal_id",
    "format",
    "position",
    "event_count",
    "chain_hash",
    "sealed_at",
    "algorithm",
    "public_key",
    "signature",
)


class ChainContradictsSeal(RuleViolation):
    """Extending the chain met a stored seal that the rows no longer match (HTTP 409)."""

    def __init__(self, position: int) -> None:
        super().__init__(
            f"the events through position {position} no longer match the seal there; "
            "refusing to seal over them (run `ledger audit verify`)"
        )
        self.position = position


@dataclass(frozen=True, slots=True)
class ChainTip:
    position: int
    ordinal: int
    link: bytes


GENESIS_TIP = ChainTip(0, 0, GENESIS)


@dataclass(frozen=True, slots=True)
class LastSeal:
    position: int
    sealed_at: str


@dataclass(frozen=True, slots=True)
class StoreState:
    """What a verification's answer depends on, read cheaply: the head of the log and the
    seals (a new event or a seal added or removed changes it)."""

    head_position: int
    seal_count: int
    last_seal_id: int


MakeSeal = Callable[[ChainTip, LastSeal | None], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class TracedRow:
    """One stored event of a stream with its recorded chain link and the link before it
    (None where the chain has not reached it yet; GENESIS before the first event)."""

    position: int
    row: tuple[int, Any, int, Any, Any]
    link: bytes | None
    previous: bytes | None


@dataclass(slots=True)
class Snapshot:
    """One consistent read of everything verification needs."""

    rows: Iterator[tuple[int, Any, int, Any, Any]]
    links: Iterator[tuple[int, bytes]]
    seals: list[dict[str, Any]]
    head_position: int


def _link_rows(
    tip: ChainTip, rows: list[tuple[int, Any, int, Any, Any]], seal_hashes: dict[int, set[str]]
) -> tuple[list[tuple[int, int, bytes]], ChainTip]:
    """Links for rows after tip, refusing to pass a stored seal they contradict."""
    pending_seals = sorted(p for p in seal_hashes if p > tip.position)
    previous, ordinal = tip.link, tip.ordinal
    last_position = tip.position
    links: list[tuple[int, int, bytes]] = []

    def check_seals_before(position: int) -> None:
        while pending_seals and pending_seals[0] < position:
            if previous.hex() not in seal_hashes[pending_seals[0]]:
                raise ChainContradictsSeal(pending_seals[0])
            pending_seals.pop(0)

    for position, stream_id, version, topic, state in rows:
        check_seals_before(position)
        previous = next_link(previous, position, stream_id, version, topic, state)
        ordinal += 1
        links.append((position, ordinal, previous))
        last_position = position
    check_seals_before(last_position + 1)
    return links, ChainTip(last_position, ordinal, previous)


class AuditStore:
    """What the audit trail needs from a database; one subclass per backend."""

    events_table: str
    _marker: str  # the driver's parameter placeholder

    def ensure_tables(self) -> None:
        raise NotImplementedError

    def extend_chain(self) -> ChainTip:
        raise NotImplementedError

    def insert_seal(self, make: MakeSeal) -> dict[str, Any] | None:
        """Under the chain lock: make(tip, the latest seal) gives the seal to store, or None
        to store nothing (a seal that is not due)."""
        raise NotImplementedError

    def state(self) -> StoreState:
        raise NotImplementedError

    def seals_missing(self) -> int:
        """How many seal rows were issued (their ids taken) but are no longer in audit_seals: a
        tripwire for seals deleted by hand. Not proof: whoever can delete rows can reset the
        counter too; the proof against that is a copy of the seals kept outside."""
        raise NotImplementedError

    @staticmethod
    def _last_seal(conn: Any) -> LastSeal | None:
        row = conn.execute(
            "SELECT position, sealed_at FROM audit_seals ORDER BY seal_id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else LastSeal(int(row[0]), str(row[1]))

    @staticmethod
    def _seal_state(conn: Any) -> tuple[int, int]:
        count, last = conn.execute("SELECT COUNT(*), MAX(seal_id) FROM audit_seals").fetchone()
        return int(count), int(last or 0)

    def last_seal(self) -> LastSeal | None:
        with self._connect() as conn:  # type: ignore[attr-defined]
            return self._last_seal(conn)

    def seals(self) -> list[dict[str, Any]]:
        with self._connect() as conn:  # type: ignore[attr-defined]
            return self._read_seals(conn)

    def latest_seal(self) -> dict[str, Any] | None:
        with self._connect() as conn:  # type: ignore[attr-defined]
            columns = ", ".join(SEAL_COLUMNS)
            row = conn.execute(
                f"SELECT {columns} FROM audit_seals ORDER BY seal_id DESC LIMIT 1"
            ).fetchone()
            return None if row is None else _seal_from_row(row)

    @staticmethod
    def _read_seals(conn: Any) -> list[dict[str, Any]]:
        # Same SQL on both backends: sqlite3 and psycopg connections both have execute().
        columns = ", ".join(SEAL_COLUMNS)
        rows = conn.execute(f"SELECT {columns} FROM audit_seals ORDER BY position, seal_id")
        return [_seal_from_row(row) for row in rows]

    def snapshot(self) -> Any:
        raise NotImplementedError

    def trace_stream(self, stream_id: UUID, limit: int = 100) -> list[TracedRow]:
        """The first `limit` events of one stream, as stored, with their chain links."""
        raise NotImplementedError

    def chained_rows(
        self, after: int, through: int
    ) -> AbstractContextManager[Iterator[tuple[int, str, int, str, bytes, Any]]]:
        """(position, stream id as 32 hex, version, topic, state, recorded link) of every
        event after `after` and through `through`, in position order, as stored (the link
        None for a row the chain never reached: one inserted below the chain's head)."""
        raise NotImplementedError

    def link_at(self, position: int) -> ChainTip | None:
        """The recorded chain link at a position (GENESIS_TIP at 0), None if not chained."""
        if position == 0:
            return GENESIS_TIP
        with self._connect() as conn:  # type: ignore[attr-defined]
            row = conn.execute(
                f"SELECT position, ordinal, link FROM audit_chain WHERE position = {self._marker}",
                (position,),
            ).fetchone()
        return None if row is None else ChainTip(int(row[0]), int(row[1]), bytes(row[2]))

    @staticmethod
    def _links_of(conn: Any, positions: list[int], marker: str) -> dict[int, tuple[Any, Any]]:
        """position -> (its link or None, the link before it or None), one query each."""
        found: dict[int, tuple[Any, Any]] = {}
        for position in positions:
            rows = conn.execute(
                f"SELECT position, link FROM audit_chain WHERE position <= {marker} "
                "ORDER BY position DESC LIMIT 2",
                (position,),
            ).fetchall()
            link = bytes(rows[0][1]) if rows and rows[0][0] == position else None
            before = rows[1:] if link is not None else rows[:1]
            if link is None:
                previous = None
            elif before:
                previous = bytes(before[0][1])
            else:
                previous = GENESIS
            found[position] = (link, previous)
        return found


def _seal_from_row(row: Any) -> dict[str, Any]:
    return dict(zip(SEAL_COLUMNS, row, strict=True))


class SQLiteAuditStore(AuditStore):
    _marker = "?"

    def __init__(self, path: str, events_table: str, lock_timeout_s: float = 10.0) -> None:
        self.path = path
        self.events_table = events_table
        self.lock_timeout_s = lock_timeout_s

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.lock_timeout_s)
        try:
            yield conn
        finally:
            conn.close()

    def ensure_tables(self) -> None:
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS audit_chain (position INTEGER PRIMARY KEY, "
                "ordinal INTEGER NOT NULL, link BLOB NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS audit_seals (seal_id INTEGER PRIMARY KEY "
                "AUTOINCREMENT, format TEXT NOT NULL, position INTEGER NOT NULL, "
                "event_count INTEGER NOT NULL, chain_hash TEXT NOT NULL, sealed_at TEXT NOT NULL, "
                "algorithm TEXT NOT NULL, public_key TEXT NOT NULL, signature TEXT NOT NULL)"
            )

    @staticmethod
    def _tip(conn: sqlite3.Connection) -> ChainTip:
        row = conn.execute(
            "SELECT position, ordinal, link FROM audit_chain ORDER BY position DESC LIMIT 1"
        ).fetchone()
        return GENESIS_TIP if row is None else ChainTip(row[0], row[1], bytes(row[2]))

    @staticmethod
    def _seal_hashes(conn: sqlite3.Connection, after: int) -> dict[int, set[str]]:
        hashes: dict[int, set[str]] = {}
        for position, chain_hash in conn.execute(
            "SELECT position, chain_hash FROM audit_seals WHERE position > ?", (after,)
        ):
            hashes.setdefault(position, set()).add(chain_hash)
        return hashes

    def extend_chain(self) -> ChainTip:
        with self._connect() as conn:
            while True:
                # IMMEDIATE: the write lock first, so two sealers cannot chain the same rows.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    tip = self._tip(conn)
                    rows = conn.execute(
                        f"SELECT rowid, originator_id, originator_version, topic, state "
                        f"FROM {self.events_table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                        (tip.position, CHAIN_CHUNK_ROWS),
                    ).fetchall()
                    if not rows:
                        conn.execute("COMMIT")
                        return tip
                    links, tip = _link_rows(tip, rows, self._seal_hashes(conn, tip.position))
                    conn.executemany(
                        "INSERT INTO audit_chain (position, ordinal, link) VALUES (?, ?, ?)", links
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

    def insert_seal(self, make: MakeSeal) -> dict[str, Any] | None:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                seal = make(self._tip(conn), self._last_seal(conn))
                if seal is None:
                    conn.execute("ROLLBACK")
                    return None
                cursor = conn.execute(
                    "INSERT INTO audit_seals (format, position, event_count, chain_hash, "
                    "sealed_at, algorithm, public_key, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [seal[c] for c in SEAL_COLUMNS[1:]],
                )
                seal = {"seal_id": cursor.lastrowid, **seal}
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return seal

    def state(self) -> StoreState:
        with self._connect() as conn:
            conn.execute("BEGIN")
            try:
                head = conn.execute(f"SELECT MAX(rowid) FROM {self.events_table}").fetchone()[0]
                return StoreState(head or 0, *self._seal_state(conn))
            finally:
                conn.execute("ROLLBACK")

    def seals_missing(self) -> int:
        with self._connect() as conn:
            conn.execute("BEGIN")
            try:
                # AUTOINCREMENT keeps the largest id ever issued, transactionally.
                row = conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'audit_seals'"
                ).fetchone()
                present = conn.execute("SELECT COUNT(*) FROM audit_seals").fetchone()[0]
            finally:
                conn.execute("ROLLBACK")
        return max(0, (int(row[0]) if row else 0) - int(present))

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        with self._connect() as conn:
            # One read transaction: in WAL mode it sees one snapshot and blocks no writer.
            conn.execute("BEGIN")
            rows = links = None
            try:
                seals = self._read_seals(conn)
                head = conn.execute(f"SELECT MAX(rowid) FROM {self.events_table}").fetchone()[0]
                rows = conn.execute(
                    f"SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM {self.events_table} ORDER BY rowid"
                )
                links = conn.execute("SELECT position, link FROM audit_chain ORDER BY position")
                yield Snapshot(rows, links, seals, head or 0)
            finally:
                # Unfinished statements would make the rollback fail and hide the real error.
                for cursor in (rows, links):
                    if cursor is not None:
                        cursor.close()
                conn.execute("ROLLBACK")

    @contextmanager
    def chained_rows(
        self, after: int, through: int
    ) -> Iterator[Iterator[tuple[int, str, int, str, bytes, Any]]]:
        with self._connect() as conn:
            conn.execute("BEGIN")
            cursor = None
            try:
                cursor = conn.execute(
                    f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "
                    f"c.link FROM {self.events_table} e LEFT JOIN audit_chain c "
                    "ON c.position = e.rowid "
                    "WHERE e.rowid > ? AND e.rowid <= ? ORDER BY e.rowid",
                    (after, through),
                )
                yield cursor
            finally:
                if cursor is not None:
                    cursor.close()
                conn.execute("ROLLBACK")

    def trace_stream(self, stream_id: UUID, limit: int = 100) -> list[TracedRow]:
        with self._connect() as conn:
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    f"SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM {self.events_table} WHERE originator_id = ? "
                    "ORDER BY originator_version LIMIT ?",
                    (stream_id.hex, limit),
                ).fetchall()
                links = self._links_of(conn, [row[0] for row in rows], "?")
            finally:
                conn.execute("ROLLBACK")
        return [TracedRow(row[0], tuple(row), *links[row[0]]) for row in rows]  # type: ignore[arg-type]


class PostgresAuditStore(AuditStore):
    _marker = "%s"

    def __init__(self, url: str, events_table: str, lock_timeout_s: float = 10.0) -> None:
        self.url = url
        self.events_table = events_table
        self.lock_timeout_s = lock_timeout_s

    @contextmanager
    def _connect(self, *, autocommit: bool = True) -> Iterator[psycopg.Connection]:
        conn = psycopg.connect(self.url, autocommit=autocommit, connect_timeout=5)
        try:
            yield conn
        finally:
            conn.close()

    def ensure_tables(self) -> None:
        with self._connect() as conn:
            statements = (
                "CREATE TABLE IF NOT EXISTS audit_chain (position bigint PRIMARY KEY, "
                "ordinal bigint NOT NULL, link bytea NOT NULL)",
                "CREATE TABLE IF NOT EXISTS audit_seals (seal_id bigserial PRIMARY KEY, "
                "format text NOT NULL, position bigint NOT NULL, event_count bigint NOT NULL, "
                "chain_hash text NOT NULL, sealed_at text NOT NULL, algorithm text NOT NULL, "
                "public_key text NOT NULL, signature text NOT NULL)",
            )
            for statement in statements:
                try:
                    conn.execute(statement)
                except psycopg.errors.UniqueViolation:
                    pass  # another process created it at the same moment

    def _lock_chain(self, conn: psycopg.Connection) -> None:
        # EXCLUSIVE blocks other sealers (writers of audit_chain) but no reader.
        conn.execute(
            pgsql.SQL("SET LOCAL lock_timeout = {}").format(
                pgsql.Literal(f"{int(self.lock_timeout_s * 1000)}ms")
            )
        )
        conn.execute("LOCK TABLE audit_chain IN EXCLUSIVE MODE")

    @staticmethod
    def _tip(conn: psycopg.Connection) -> ChainTip:
        row = conn.execute(
            "SELECT position, ordinal, link FROM audit_chain ORDER BY position DESC LIMIT 1"
        ).fetchone()
        return GENESIS_TIP if row is None else ChainTip(row[0], row[1], bytes(row[2]))

    def _select_rows(self, conn: psycopg.Connection) -> pgsql.Composed:
        # The stream id as hex text, made by the server: building a Python UUID per row would
        # cost more than hashing the row. The hex equals UUID.hex, so the chain is unchanged.
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_name = %s "
            "AND column_name = 'originator_id'",
            (self.events_table,),
        ).fetchone()
        stream = (
            pgsql.SQL("encode(uuid_send(originator_id), 'hex')")
            if kind is not None and kind[0] == "uuid"
            else pgsql.SQL("originator_id")
        )
        return pgsql.SQL(
            "SELECT notification_id, {}, originator_version, topic, state FROM {} "
        ).format(stream, pgsql.Identifier(self.events_table))

    def extend_chain(self) -> ChainTip:
        with self._connect() as conn:
            while True:
                with conn.transaction():
                    self._lock_chain(conn)
                    tip = self._tip(conn)
                    with conn.cursor(binary=True) as cursor:
                        cursor.execute(
                            self._select_rows(conn)
                            + pgsql.SQL(
                                "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
                            ),
                            (tip.position, CHAIN_CHUNK_ROWS),
                        )
                        rows = cursor.fetchall()
                    if not rows:
                        return tip
                    hashes: dict[int, set[str]] = {}
                    for position, chain_hash in conn.execute(
                        "SELECT position, chain_hash FROM audit_seals WHERE position > %s",
                        (tip.position,),
                    ):
                        hashes.setdefault(position, set()).add(chain_hash)
                    links, tip = _link_rows(tip, rows, hashes)
                    with (
                        conn.cursor() as cursor,
                        cursor.copy(
                            "COPY audit_chain (position, ordinal, link) FROM STDIN"
                        ) as copy,
                    ):
                        for link in links:
                            copy.write_row(link)

    def insert_seal(self, make: MakeSeal) -> dict[str, Any] | None:
        with self._connect() as conn, conn.transaction():
            self._lock_chain(conn)
            seal = make(self._tip(conn), self._last_seal(conn))
            if seal is None:
                return None
            row = conn.execute(
                "INSERT INTO audit_seals (format, position, event_count, chain_hash, sealed_at, "
                "algorithm, public_key, signature) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "RETURNING seal_id",
                [seal[c] for c in SEAL_COLUMNS[1:]],
            ).fetchone()
            return {"seal_id": row[0], **seal}

    def seals_missing(self) -> int:
        with self._connect() as conn, conn.transaction():
            # A sequence is not transactional: wait for any sealer in progress (it holds
            # audit_chain EXCLUSIVE until its seal is committed), then read both at once.
            conn.execute(
                pgsql.SQL("SET LOCAL lock_timeout = {}").format(
                    pgsql.Literal(f"{int(self.lock_timeout_s * 1000)}ms")
                )
            )
            conn.execute("LOCK TABLE audit_chain IN SHARE MODE")
            sequence = conn.execute(
                "SELECT pg_get_serial_sequence('audit_seals', 'seal_id')"
            ).fetchone()[0]
            issued = 0
            if sequence is not None:
                last, called = conn.execute(
                    pgsql.SQL("SELECT last_value, is_called FROM {}").format(pgsql.SQL(sequence))
                ).fetchone()
                issued = int(last) if called else 0
            present = conn.execute("SELECT COUNT(*) FROM audit_seals").fetchone()[0]
        return max(0, issued - int(present))

    def state(self) -> StoreState:
        with self._connect(autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            try:
                head = conn.execute(
                    pgsql.SQL("SELECT MAX(notification_id) FROM {}").format(
                        pgsql.Identifier(self.events_table)
                    )
                ).fetchone()[0]
                return StoreState(head or 0, *self._seal_state(conn))
            finally:
                conn.rollback()

    def trace_stream(self, stream_id: UUID, limit: int = 100) -> list[TracedRow]:
        with self._connect(autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                select = self._select_rows(conn)
                with conn.cursor(binary=True) as cursor:
                    cursor.execute(
                        select
                        + pgsql.SQL(
                            "WHERE originator_id = %s ORDER BY originator_version LIMIT %s"
                        ),
                        (stream_id, limit),
                    )
                    rows = cursor.fetchall()
                links = self._links_of(conn, [row[0] for row in rows], "%s")
            finally:
                conn.rollback()
        return [TracedRow(row[0], tuple(row), *links[row[0]]) for row in rows]  # type: ignore[arg-type]

    @contextmanager
    def chained_rows(
        self, after: int, through: int
    ) -> Iterator[Iterator[tuple[int, str, int, str, bytes, Any]]]:
        with self._connect(autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                select = self._select_rows(conn)
                rows = conn.cursor(name="export_rows", binary=True)
                rows.itersize = READ_BATCH_ROWS
                rows.execute(
                    pgsql.SQL(
                        "SELECT e.*, c.link FROM ({}) e LEFT JOIN audit_chain c "
                        "ON c.position = e.notification_id WHERE e.notification_id > %s "
                        "AND e.notification_id <= %s ORDER BY e.notification_id"
                    ).format(select),
                    (after, through),
                )
                yield ((p, s, v, t, bytes(x), link) for p, s, v, t, x, link in rows)
            finally:
                conn.rollback()

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        with self._connect(autocommit=False) as conn:
            # REPEATABLE READ: rows, links and seals all from one moment, however long it takes.
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            try:
                seals = self._read_seals(conn)
                head = conn.execute(
                    pgsql.SQL("SELECT MAX(notification_id) FROM {}").format(
                        pgsql.Identifier(self.events_table)
                    )
                ).fetchone()[0]
                rows = conn.cursor(name="audit_rows", binary=True)
                rows.itersize = READ_BATCH_ROWS
                rows.execute(self._select_rows(conn) + pgsql.SQL("ORDER BY notification_id"))
                links = conn.cursor(name="audit_links", binary=True)
                links.itersize = READ_BATCH_ROWS
                links.execute("SELECT position, link FROM audit_chain ORDER BY position")
                yield Snapshot(iter(rows), iter(links), seals, head or 0)
            finally:
                conn.rollback()
