"""How fast the audit chain is verified, beside how fast the same table can merely be read.

    .venv/bin/python -m scripts.bench_audit [--events 1000000] [--backend sqlite|postgres]
                                            [--out result.json] [--keep]

Builds a fresh store (a temporary SQLite file, or a new PostgreSQL database that is dropped
afterwards), writes a few thousand real events through the ledger (unions, members, dues, all
encrypted by the event cipher), then copies those rows under fresh stream ids until the table
holds N events: verification never decrypts, so copied ciphertexts are as good as new ones and
the payload sizes stay those of real events. Then, in the same run:

1. the raw read rate: every row of the events table in position order, through the very cursor
   verification uses, doing nothing with it (the physical baseline);
2. the first seal, which chains all N events into audit_chain;
3. the verification: the full chain recomputed and compared with links and seals.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from projections.audit.seals import load_signing_key, public_key_text
from projections.audit.trail import AuditTrail
from scripts import synthetic
from service.application import Ledger
from service.commands import FoundOrganization, JoinMember, RecordDues
from storage.settings import Settings

DEFAULT_EVENTS = 1_000_000
SEED_BASE_UNIONS = 20
SEED_MEMBERS_PER_UNION = 20
SEED_MONTHS = 12
COPY_BATCH_ROWS = 50_000
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def seed(ledger: Ledger) -> None:
    """Real events of every common kind, written through the application."""
    root = synthetic.union_code("110000", 1, base=False)
    ledger.execute(
        FoundOrganization(
            code=root,
            name="北京市总工会",
            level="province",
            parent_code=None,
            region_code="110000",
            founded_on="1950-05-01",
        )
    )
    person = 0
    for serial in range(SEED_BASE_UNIONS):
        code = synthetic.union_code("110105", 100 + serial, base=True)
        ledger.execute(
            FoundOrganization(
                code=code,
                name=f"第{serial}基层工会",
                level="base",
                parent_code=root,
                region_code="110105",
                founded_on="2001-01-01",
                employer_code=synthetic.employer_code("110105", 100 + serial),
                employee_count=40,
            )
        )
        for _ in range(SEED_MEMBERS_PER_UNION):
            person += 1
            birth = datetime.date(1960, 1, 1) + datetime.timedelta(days=13 * person)
            ledger.execute(
                JoinMember(
                    id_number=synthetic.id_number("110105", birth, person),
                    name="测试会员",
                    organization_code=code,
                    joined_on="2020-01-01",
                    mobile=f"138{person:08d}",
                )
            )
        for month in range(1, SEED_MONTHS + 1):
            ledger.execute(
                RecordDues(
                    organization_code=code,
                    period=f"2024-{month:02d}",
                    amount="100.00",
                    received_on=f"2024-{month:02d}-15",
                )
            )


def _copies(template: list[tuple[str, bytes]], count: int, *, hex_ids: bool) -> Iterator[tuple]:
    for i in range(count):
        topic, state = template[i % len(template)]
        stream = uuid.uuid4()
        yield (stream.hex if hex_ids else stream, 1, topic, state)


def fill(ledger: Ledger, settings: Settings, target: int) -> int:
    """Copies the seeded rows under fresh stream ids until the table holds `target` rows."""
    head = ledger.head_position()
    missing = target - head
    if missing <= 0:
        return head
    if settings.database_url.startswith("sqlite"):
        conn = sqlite3.connect(ledger.env.get("SQLITE_DBNAME"), isolation_level=None)
        selected = conn.execute("SELECT topic, state FROM stored_events")
        template = [(t, bytes(s)) for t, s in selected]
        rows = _copies(template, missing, hex_ids=True)
        while batch := [r for _, r in zip(range(COPY_BATCH_ROWS), rows, strict=False)]:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO stored_events (originator_id, originator_version, "
                "topic, state) VALUES (?, ?, ?, ?)",
                batch,
            )
            conn.execute("COMMIT")
        conn.close()
    else:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            template = [
                (t, bytes(s)) for t, s in conn.execute("SELECT topic, state FROM ledger_events")
            ]
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY ledger_events (originator_id, originator_version, topic, state)"
                    " FROM STDIN"
                ) as copy,
            ):
                for row in _copies(template, missing, hex_ids=False):
                    copy.write_row(row)
            conn.execute("ANALYZE ledger_events")
    return ledger.head_position()


@contextmanager
def fresh_store(backend: str, admin_url: str, keep: bool) -> Iterator[Settings]:
    directory = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    key = base64.b64encode(os.urandom(32)).decode()
    database = None
    if backend == "sqlite":
        url = f"sqlite:///{directory / 'ledger.sqlite'}"
    else:
        database = f"bench_audit_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        url = f"{admin_url.rsplit('/', 1)[0]}/{database}"
    try:
        settings = Settings(
            database_url=url,
            encryption_key=key,
            key_file=directory / "ledger.key",
            audit_key_file=directory / "audit.key",
        )
        # Seals verify only against a public key configured outside the database.
        signing_key = load_signing_key(settings, create=True)
        assert signing_key is not None
        yield settings.model_copy(update={"audit_public_key": public_key_text(signing_key)})
    finally:
        if keep:
            print(f"kept: {url} (keys in {directory})")
        else:
            if database:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            shutil.rmtree(directory, ignore_errors=True)


def raw_read(trail: AuditTrail) -> tuple[int, float]:
    """Every row through the verification's own cursor, touching nothing: the floor."""
    started = time.perf_counter()
    rows = 0
    with trail.store.snapshot() as snapshot:
        for _ in snapshot.rows:
            rows += 1
    return rows, time.perf_counter() - started


def run(events: int, backend: str, admin_url: str, keep: bool) -> dict[str, Any]:
    with fresh_store(backend, admin_url, keep) as settings:
        ledger = Ledger(settings)
        try:
            started = time.perf_counter()
            seed(ledger)
            seeded = ledger.head_position()
            total = fill(ledger, settings, events)
            built_s = time.perf_counter() - started
            trail = AuditTrail(ledger)
            raw_read(trail)  # warms the cache, so that both timed passes start alike
            read_rows, read_s = raw_read(trail)
            started = time.perf_counter()
            seal = trail.seal()
            seal_s = time.perf_counter() - started
            started = time.perf_counter()
            report = trail.verify()
            verify_s = time.perf_counter() - started
        finally:
            ledger.close()
    if not report["ok"] or report["events_checked"] != total or seal["event_count"] != total:
        raise SystemExit(f"bench store did not verify: {report['reason']}")
    return {
        "backend": backend,
        "events": total,
        "seeded_real_events": seeded,
        "build_s": round(built_s, 1),
        "raw_read_s": round(read_s, 2),
        "raw_read_events_per_s": round(read_rows / read_s),
        "first_seal_s": round(seal_s, 2),
        "first_seal_events_per_s": round(total / seal_s),
        "verify_s": round(verify_s, 2),
        "verify_events_per_s": round(total / verify_s),
        "verify_vs_raw_read": round(read_s / verify_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-admin-url", default=os.environ.get("LEDGER_TEST_PG_ADMIN", DEFAULT_PG_ADMIN_URL)
    )
    parser.add_argument("--out", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = parser.parse_args()
    result = run(args.events, args.backend, args.pg_admin_url, args.keep)
    for name, value in result.items():
        print(
            f"{name:28} {value:>14,}"
            if isinstance(value, int | float)
            else f"{name:28} {value:>14}"
        )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
