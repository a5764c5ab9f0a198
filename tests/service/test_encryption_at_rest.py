"""Personal data is encrypted at rest: no identity number, name or mobile in the raw store.

The scans read what an attacker with the files would read: the SQLite database and its
write-ahead log as bytes, and a pg_dump of the PostgreSQL database (whose bytea columns are
written in hex, so the hex form of each value is searched too).
"""

from __future__ import annotations

import base64
import os
import sqlite3
import stat
import subprocess
import zlib
from pathlib import Path
from urllib.parse import urlparse
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from domain.members import Member
from service.application import Ledger
from service.commands import (
    CorrectMember,
    JoinMember,
    OpenHardshipFile,
    PaySubsidy,
    RecordDues,
    RegisterModelWorker,
    StartTransfer,
)
from service.idempotency import IdempotencyKey
from storage.key_check import WrongEncryptionKey
from storage.keys import derive_key, load_or_create_key
from storage.payload_binding import PayloadCipher, is_bound
from storage.settings import Settings
from tests.conftest import Backend
from tests.service.scenario import found_tree, person

PEOPLE = [
    (person(11), "欧阳娜娜", "13912345678"),
    (person(12), "司马懿明", "15087654321"),
    (person(13), "诸葛晓燕", "18600001111"),
    (person(14), "上官婉儿", "17755556666"),
]


def needles(text: str) -> dict[str, bytes]:
    """Every form a stored value could take: UTF-8, hex of UTF-8, JSON's \\u escapes."""
    raw = text.encode("utf-8")
    forms = {"utf-8": raw, "hex": raw.hex().encode("ascii")}
    if not text.isascii():
        escaped = "".join(f"\\u{ord(ch):04x}" for ch in text).encode("ascii")
        forms["json-escape"] = escaped
        forms["json-escape-upper"] = escaped.upper().replace(b"\\U", b"\\u")
    return forms


def assert_absent(blob: bytes, where: str) -> None:
    for id_number, name, mobile in PEOPLE:
        for value in (id_number, name, mobile):
            for form, needle in needles(value).items():
                assert needle not in blob, f"{value!r} found in {where} ({form})"


def write_people(ledger: Ledger) -> list[str]:
    tree = found_tree(ledger)
    member_ids = []
    for i, (id_number, name, mobile) in enumerate(PEOPLE):
        result = ledger.execute(
            JoinMember(
                id_number=id_number,
                name=name,
                organization_code=tree.base_a,
                joined_on="2024-01-02",
                mobile=mobile,
                migrant_worker=True,
            ),
            idempotency=IdempotencyKey.parse(tree.base_a, f"join-{i}"),
        )
        member_ids.append(result.body["member_id"])
    # Corrections, transfers and payouts also carry or touch personal data.
    ledger.execute(
        CorrectMember(member_id=member_ids[0], changes={"mobile": PEOPLE[0][2]}, note="核对手机号")
    )
    ledger.execute(
        StartTransfer(
            member_id=member_ids[1],
            to_organization_code=tree.base_b,
            effective_on="2024-02-01",
            reason_code=1,
        )
    )
    ledger.execute(
        RecordDues(
            organization_code=tree.base_a,
            period="2024-01",
            amount="500.00",
            received_on="2024-01-31",
        )
    )
    # The registers hold personal data too: a hardship file and a model worker by name.
    ledger.execute(
        OpenHardshipFile(
            member_id=member_ids[2],
            category="deep",
            causes=["illness"],
            household_size=3,
            monthly_income_per_head="480.00",
            opened_on="2024-02-01",
        )
    )
    ledger.execute(
        RegisterModelWorker(
            id_number=PEOPLE[3][0],
            name=PEOPLE[3][1],
            honour="县级劳动模范",
            level="county",
            awarded_year=2023,
            organization_code=tree.base_a,
        )
    )
    ledger.execute(
        PaySubsidy(
            payer_organization_code=tree.base_a,
            recipient={"member_id": member_ids[2]},
            programme="hardship",
            amount="200.00",
            earmarked=True,
            approval_ref="帮扶-001",
            paid_on="2024-02-02",
        )
    )
    return member_ids


def stored_rows(backend: Backend, ledger: Ledger) -> list[StoredEvent]:
    """Every stored event as the database holds it, read without the application."""
    table = ledger.recorder.events_table_name  # type: ignore[attr-defined]
    # The library's own table name.
    sql = f"SELECT originator_id, originator_version, topic, state FROM {table}"
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.sqlite_path) as conn:
            return [StoredEvent(UUID(i), v, t, bytes(s)) for i, v, t, s in conn.execute(sql)]
    with psycopg.connect(backend.url) as conn:
        return [StoredEvent(i, v, t, bytes(s)) for i, v, t, s in conn.execute(sql)]


def test_no_personal_data_in_the_raw_store(backend: Backend, ledger: Ledger) -> None:
    write_people(ledger)
    if backend.kind == "sqlite":
        files = [
            p
            for p in backend.sqlite_path.parent.iterdir()
            if p.name.startswith(backend.sqlite_path.name)
        ]
        assert backend.sqlite_path in files
        assert any(p.name.endswith("-wal") for p in files), "expected a write-ahead log"
        for path in files:  # the database and, while open, its -wal and -shm files
            assert_absent(path.read_bytes(), path.name)
        ledger.close()  # a checkpoint moves the log into the database file
        closed = backend.sqlite_path.read_bytes()
        assert b"ledger:Member.Joined" in closed  # the scan sees the stored rows
        for path in backend.sqlite_path.parent.iterdir():
            if path.name.startswith(backend.sqlite_path.name):
                assert_absent(path.read_bytes(), path.name)
    else:
        url = urlparse(backend.url)
        dump = subprocess.run(
            [
                "pg_dump",
                "-h",
                url.hostname or "127.0.0.1",
                "-p",
                str(url.port or 5432),
                "-U",
                url.username or "postgres",
                "--no-password",
                backend.pg_database,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout
        assert b"CREATE TABLE" in dump and b"ledger:Member.Joined" in dump  # the scan sees data
        assert_absent(dump, "pg_dump")


def test_stored_state_is_ciphertext_that_the_key_opens(backend: Backend, ledger: Ledger) -> None:
    """The scan above is meaningful only if the data is there: decrypt it with the app's key."""
    write_people(ledger)
    rows = stored_rows(backend, ledger)
    joined = [row for row in rows if row.topic == Member.Joined.TOPIC]
    assert len(joined) == len(PEOPLE)
    plaintexts = []
    for row in rows:
        with pytest.raises(zlib.error):
            zlib.decompress(row.state)  # neither plain JSON nor merely compressed
        assert is_bound(row.state)  # every new payload is bound to its row
        plaintexts.append(ledger.mapper.compressor.decompress(ledger.mapper.open_state(row)))
    opened = b"\n".join(plaintexts)
    for id_number, _name, mobile in PEOPLE:
        assert id_number.encode() in opened and mobile.encode() in opened


def test_another_key_cannot_open_the_store(backend: Backend, ledger: Ledger) -> None:
    write_people(ledger)
    wrong = backend.settings.model_copy(
        update={"encryption_key": base64.b64encode(os.urandom(32)).decode()}
    )
    with pytest.raises(WrongEncryptionKey) as caught:
        Ledger(wrong)
    assert PEOPLE[0][0] not in str(caught.value)
    # Were the check bypassed, the payloads would not open either (they are the key's alone).
    row = stored_rows(backend, ledger)[0]
    with pytest.raises(MapperDeserialisationError):
        PayloadCipher(derive_key(base64.b64decode(wrong.encryption_key), "event-cipher")).open(
            row.state, row.originator_id, row.originator_version, row.topic
        )


def test_key_file_is_created_private_when_no_key_is_configured(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "ledger.key"
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        encryption_key=None,
        key_file=key_file,
    )
    old_umask = os.umask(0o022)  # a common umask must not widen the file's mode
    try:
        # The application opened without a configured key creates the file, uses and keeps it.
        app = Ledger(settings)
    finally:
        os.umask(old_umask)
    key = load_or_create_key(settings)
    assert len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    try:
        tree = found_tree(app)
        app.execute(
            JoinMember(
                id_number=PEOPLE[0][0],
                name=PEOPLE[0][1],
                organization_code=tree.base_a,
                joined_on="2024-01-02",
            )
        )
    finally:
        app.close()
    assert load_or_create_key(settings) == key, "the key changed"
    reopened = Ledger(settings)
    try:
        assert reopened.find_member(PEOPLE[0][0])["name"] == PEOPLE[0][1]
    finally:
        reopened.close()
