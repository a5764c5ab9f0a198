"""The store remembers its key: a wrong or new key is refused, and no key file is ever made
beside a store that holds events. Both stores; the refusals write nothing."""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from projections.audit.trail import AuditTrail
from projections.read_models.models import ReadModels
from service.application import Ledger
from service.commands import JoinMember
from storage.key_check import CHECK_TABLE, KeyFileRefused, WrongEncryptionKey, check_value
from storage.keys import create_key_file
from storage.settings import Settings
from tests.conftest import Backend
from tests.service.scenario import found_tree, person

LEDGER = Path(sys.executable).with_name("ledger")


def snapshot_of(backend: Backend) -> tuple[int, list[tuple]]:
    """(event count, key check rows), read without the application."""
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as conn:
            count = conn.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]
            rows = conn.execute(f"SELECT name, value FROM {CHECK_TABLE}").fetchall()
    else:
        with psycopg.connect(backend.url) as conn:
            count = conn.execute("SELECT COUNT(*) FROM ledger_events").fetchone()[0]
            rows = conn.execute(f"SELECT name, value FROM {CHECK_TABLE}").fetchall()
    return count, sorted(tuple(r) for r in rows)


def another_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_a_different_key_is_refused_naming_its_source_and_the_store(
    backend: Backend, ledger: Ledger
):
    found_tree(ledger)
    before = snapshot_of(backend)
    assert before[1] == [
        ("master-key", check_value(base64.b64decode(backend.settings.encryption_key)))
    ]
    wrong = backend.settings.model_copy(update={"encryption_key": another_key()})
    with pytest.raises(WrongEncryptionKey) as refused:
        Ledger(wrong)
    message = str(refused.value)
    assert "LEDGER_ENCRYPTION_KEY" in message
    store = str(backend.sqlite_path) if backend.kind == "sqlite" else backend.pg_database
    assert store in message
    assert snapshot_of(backend) == before  # nothing written
    # A key file holding another key is named by its path.
    key_file = backend.tmp_path / "other.key"
    create_key_file(key_file, 32)
    with pytest.raises(WrongEncryptionKey, match=str(key_file)):
        Ledger(backend.settings.model_copy(update={"encryption_key": None, "key_file": key_file}))
    assert snapshot_of(backend) == before


def test_no_key_file_is_created_beside_a_store_that_holds_events(
    backend: Backend, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    found_tree(ledger)
    before = snapshot_of(backend)
    elsewhere = tmp_path / "another-directory"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # `ledger ...` run from the wrong directory
    relative = backend.settings.model_copy(
        update={"encryption_key": None, "key_file": Path("var/ledger.key")}
    )
    with pytest.raises(KeyFileRefused) as refused:
        Ledger(relative)
    assert str(elsewhere / "var" / "ledger.key") in str(refused.value)
    assert list(elsewhere.iterdir()) == []  # no key file, not even its directory
    assert snapshot_of(backend) == before


def test_the_check_is_written_with_the_first_event_and_binds_the_store(backend: Backend):
    first = backend.open()
    assert snapshot_of(backend) == (0, [])  # opening alone claims nothing
    found_tree(first)
    count, rows = snapshot_of(backend)
    assert count > 0 and len(rows) == 1
    # An empty store claimed by one key refuses another even before any event is stored.
    (backend.tmp_path / "second").mkdir()
    other = Backend(backend.kind, backend.tmp_path / "second")
    try:
        claimant = other.open()
        claimant.claim_store()
        with pytest.raises(WrongEncryptionKey):
            Ledger(other.settings.model_copy(update={"encryption_key": another_key()}))
    finally:
        other.close()


def test_a_store_from_before_key_checks_is_checked_by_its_events(backend: Backend, ledger: Ledger):
    tree = found_tree(ledger)
    ledger.execute(
        JoinMember(
            id_number=person(1), name="张三", organization_code=tree.base_a, joined_on="2024-01-02"
        )
    )
    raw_delete_check(backend)  # as a store written before key checks existed
    with pytest.raises(WrongEncryptionKey):
        Ledger(backend.settings.model_copy(update={"encryption_key": another_key()}))
    assert snapshot_of(backend)[1] == []  # the wrong key wrote no check either
    reopened = backend.open()  # the right key opens its events: the check is written now
    assert snapshot_of(backend)[1] == [("master-key", reopened._key_check_value)]


def raw_delete_check(backend: Backend) -> None:
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as conn:
            conn.execute(f"DELETE FROM {CHECK_TABLE}")
    else:
        with psycopg.connect(backend.url) as conn:
            conn.execute(f"DELETE FROM {CHECK_TABLE}")


def test_files_are_private_and_the_key_is_written_durably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'var' / 'ledger.sqlite'}",
        encryption_key=None,
        key_file=tmp_path / "var" / "ledger.key",
        audit_key_file=tmp_path / "var" / "audit.key",
    )
    var = tmp_path / "var"
    old_umask = os.umask(0o022)  # a common umask must not widen the modes
    try:
        ledger = Ledger(settings)
        read_models = ReadModels(ledger)
        try:
            found_tree(ledger)
            read_models.catch_up()
            AuditTrail(ledger).seal()
            names = {p.name for p in var.iterdir()}
            assert names >= {"ledger.key", "ledger.sqlite", "ledger.sqlite-wal"}, names
            for path in var.iterdir():  # the key, the database, its -wal and -shm, the lock
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        finally:
            read_models.close()
            ledger.close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    # The key file's contents and its directory entry were both flushed to disk.
    assert len(synced) >= 2


def test_the_command_line_refuses_to_run_from_another_directory(
    backend: Backend, ledger: Ledger, tmp_path: Path
):
    found_tree(ledger)
    before = snapshot_of(backend)
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATABASE_URL"] = backend.url  # the store, but not the deployment's key file
    result = subprocess.run(
        [str(LEDGER), "token", "create", "--role", "admin"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ledger: error: no key file at ")
    assert "refusing to create a new key" in lines[0]
    assert list(elsewhere.iterdir()) == []
    assert snapshot_of(backend) == before
