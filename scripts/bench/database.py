"""The benchmark's own store: a PostgreSQL database created for one run and dropped afterwards,
or a SQLite file in the run's temporary directory."""

from __future__ import annotations

import base64
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

from scripts.bench import baseline
from storage.settings import Settings

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME_PREFIX = "ledger_bench_"
# The highest the setting allows: lookups at full speed for the whole sample (see _settings).
SEARCHES_PER_MINUTE = 1_000_000


@dataclass(frozen=True)
class BenchStore:
    """Where the run's data lives, and the settings every process of the run shares."""

    backend: str  # postgres or sqlite
    database: str  # the PostgreSQL database's name, or the SQLite file's path
    settings: Settings
    workdir: Path

    @property
    def url(self) -> str:
        return self.settings.database_url

    def dialect(self) -> baseline.Dialect:
        if self.backend == "sqlite":
            return baseline.sqlite(self.database)
        return baseline.postgres(self.url)

    def environment(self) -> dict[str, str]:
        """LEDGER_* variables that make a `ledger` subprocess open this very store."""
        s = self.settings
        return {
            "LEDGER_DATABASE_URL": s.database_url,
            "LEDGER_ENCRYPTION_KEY": s.encryption_key or "",
            "LEDGER_KEY_FILE": str(s.key_file),
            "LEDGER_AUDIT_KEY_FILE": str(s.audit_key_file),
            "LEDGER_POSTGRES_POOL_SIZE": str(s.postgres_pool_size),
            "LEDGER_SEARCHES_PER_MINUTE": str(s.searches_per_minute),
        }


def _with_database(admin_url: str, database: str) -> str:
    return urlunparse(urlparse(admin_url)._replace(path=f"/{database}"))


def _settings(url: str, workdir: Path) -> Settings:
    return Settings(
        database_url=url,
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
        key_file=workdir / "ledger.key",
        audit_key_file=workdir / "audit.key",
        # 64 concurrent clients: enough connections that readers never wait for the pool.
        postgres_pool_size=16,
        # Lookups are timed back to back with one token: as many a minute as the server
        # answers, each still counted and recorded as every search is.
        searches_per_minute=SEARCHES_PER_MINUTE,
    )


@contextmanager
def bench_store(backend: str, admin_url: str, workdir: Path) -> Iterator[BenchStore]:
    """A fresh store, removed when the run ends (even on error). PostgreSQL: a new database on
    the server of admin_url; SQLite: a new file under workdir."""
    if backend == "sqlite":
        path = workdir / "ledger.sqlite"
        try:
            yield BenchStore("sqlite", str(path), _settings(f"sqlite:///{path}", workdir), workdir)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if backend != "postgres":
        raise ValueError("the backend is postgres or sqlite")
    with scratch_database(admin_url) as (database, url):
        yield BenchStore("postgres", database, _settings(url, workdir), workdir)


@contextmanager
def scratch_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A new, empty PostgreSQL database on the server of admin_url (its name and URL),
    dropped when the block ends, even on error."""
    if urlparse(admin_url).scheme not in ("postgresql", "postgres"):
        raise ValueError("the benchmark needs a postgresql:// URL")
    database = f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        yield database, _with_database(admin_url, database)
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def durability(store: BenchStore) -> dict[str, str]:
    """The durability settings the figures were taken under (fsync, synchronous_commit)."""
    if store.backend == "sqlite":
        conn = store.dialect().connect()
        try:
            synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            conn.close()
        levels = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return {
            "sqlite_version": sqlite3.sqlite_version,
            "journal_mode": journal,
            "synchronous": levels.get(synchronous, str(synchronous)),
        }
    return postgres_durability(store.url)


def postgres_durability(url: str) -> dict[str, str]:
    """fsync, synchronous_commit and the rest, as the PostgreSQL server of url has them."""
    names = ("fsync", "synchronous_commit", "wal_level", "shared_buffers", "server_version")
    with psycopg.connect(url, connect_timeout=5) as conn:
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}
