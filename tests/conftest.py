"""Shared fixtures: a fresh ledger on each backend (SQLite file, PostgreSQL database)."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import psycopg
import pytest

from projections.audit.seals import load_signing_key, public_key_text
from service.application import Ledger
from storage.settings import Settings

# How long an example takes is no part of what a property here checks. On a loaded machine
# one example may overrun hypothesis's default deadline (200 ms), or drawing them may trip
# its too_slow health check: either fails a run by chance. Loaded before the test modules,
# so their own settings(...) inherit it.
hypothesis.settings.register_profile(
    "ledger", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("ledger")

PG_ADMIN_URL = os.environ.get(
    "LEDGER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgres")


def _pg_base() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0]


def create_pg_database() -> str:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Backend:
    """One fresh store: settings for it, and a way to open (and reopen) the ledger on it."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.pg_database: str | None = None
        key = base64.b64encode(os.urandom(32)).decode()
        if kind == "sqlite":
            self.sqlite_path = tmp_path / "ledger.sqlite"
            url = f"sqlite:///{self.sqlite_path}"
        else:
            self.pg_database = create_pg_database()
            url = f"{_pg_base()}/{self.pg_database}"
        settings = Settings(
            database_url=url,
            encryption_key=key,
            key_file=tmp_path / "unused.key",
            audit_key_file=tmp_path / "audit.key",
        )
        # The audit signing key, and its public key configured as a deployment configures it:
        # outside the database (seals are verified against it).
        signing_key = load_signing_key(settings, create=True)
        assert signing_key is not None
        self.settings = settings.model_copy(
            update={"audit_public_key": public_key_text(signing_key)}
        )
        self._apps: list[Ledger] = []

    @property
    def url(self) -> str:
        return self.settings.database_url

    def open(self) -> Ledger:
        app = Ledger(self.settings)
        self._apps.append(app)
        return app

    def close(self) -> None:
        for app in self._apps:
            app.close()
        if self.pg_database:
            drop_pg_database(self.pg_database)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def ledger(backend: Backend) -> Ledger:
    return backend.open()
