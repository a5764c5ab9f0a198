"""The rebuild's machine floor: the processor time of the work every build of these read
models must do, spread perfectly over the machine's cores.

Measured on a store whose live read models are built (the bench runs it after its rebuild),
with the PostgreSQL server on this machine (its backend's processor time is read from /proc):

- read and decode: every stored event the build reads (the projector's own query, which does
  not fetch the payloads of topics no read model uses), each payload opened (AES-GCM bound to
  its row, zlib where compressed) and parsed with the readers' codec; this process's
  processor time and its backend's;
- write: every row of the built read models copied, as binary COPY data already made, into
  a fresh set of the same tables with their unique keys, then their query indexes created,
  as a build does: the server's processor time (and this process's, small: it sends bytes);
- personal data: each distinct encrypted value in the read models (a member's name, identity
  number, mobile; a register's) sealed, and each distinct lookup hash computed, at the rate
  this process seals and hashes sample values.

No design of this project can skip any of these: the events must be read and opened, the
rows written and indexed, the personal data encrypted. What it leaves out (applying events
to rows in Python, the sums a build fills, the build's own queries) is what a design chooses.
So a rebuild can run no faster than events / (processor seconds / cores), and the bench
reports its rate against that floor.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from projections.read_models.models import ReadModels
from projections.read_models.schema import LIVE, TABLES, TableSet
from scripts.bench.stats import per_s
from service.application import Ledger
from storage.payload_codec import PayloadDecoder
from storage.pii_cipher import PiiCipher
from storage.settings import Settings

FLOOR = TableSet("rm_floor_")
READ_CHUNK_EVENTS = 10_000
PII_SAMPLES = 2_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
UNAVAILABLE = "the PostgreSQL server's processor time is read from /proc: it must run here"
SQLITE_UNAVAILABLE = "measured on PostgreSQL (SQLite's writes run in the building process)"


def _backend_cpu_s(pid: int) -> float:
    """A server process's user and system time so far (/proc/PID/stat fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _is_local_backend(conn: Any) -> bool:
    """Whether the connection's server runs on this machine, its backend visible in /proc."""
    host = conn.info.host
    if not (host.startswith("/") or host in ("127.0.0.1", "::1", "localhost")):
        return False
    try:
        comm = Path(f"/proc/{conn.info.backend_pid}/comm").read_text()
    except OSError:
        return False
    return comm.strip().startswith("postgres")


class _Meter:
    """Processor seconds of this process and of one connection's server backend."""

    def __init__(self, backend_pid: int) -> None:
        self.backend_pid = backend_pid
        self.client_s = 0.0
        self.server_s = 0.0
        self.wall_s = 0.0

    @contextmanager
    def measuring(self) -> Iterator[None]:
        client, server = time.process_time(), _backend_cpu_s(self.backend_pid)
        wall = time.perf_counter()
        yield
        self.wall_s += time.perf_counter() - wall
        self.client_s += time.process_time() - client
        self.server_s += _backend_cpu_s(self.backend_pid) - server

    def as_dict(self, events: int) -> dict[str, Any]:
        return {
            "client_s": round(self.client_s, 3),
            "server_s": round(self.server_s, 3),
            "wall_s": round(self.wall_s, 3),
            "us_per_event": round((self.client_s + self.server_s) * 1e6 / events, 2),
        }


def _read_and_decode(read_models: ReadModels, conn: Any) -> tuple[int, _Meter]:
    """Every event the build reads, opened and parsed: returns (events, its meter)."""
    reader = read_models.projector.reader
    decoder = PayloadDecoder.for_mapper(read_models.ledger.mapper, postings_as_rows=True)
    open_, parse = decoder.open, decoder.parse
    meter = _Meter(conn.info.backend_pid)
    events, after = 0, 0
    with meter.measuring():
        while True:
            with read_models.store.snapshot(conn) as cur:
                rows = reader.select(cur, after=after, limit=READ_CHUNK_EVENTS)
            if not rows:
                break
            for n in rows:
                if n.state is not None:
                    parse(open_(n.originator_id, n.originator_version, n.topic, n.state), n.topic)
            events += len(rows)
            after = rows[-1].id
    return events, meter


def _write(store: Any, conn: Any) -> tuple[int, _Meter]:
    """Every live row copied into a fresh set (keys first, query indexes after): returns
    (rows, its meter). The COPY data is read out of the live tables before each table's
    measurement starts."""
    meter = _Meter(conn.info.backend_pid)
    rows = 0
    try:
        with store.transaction(conn) as cur:
            FLOOR.drop(store, cur)
            FLOOR.create(store, cur, secondary_indexes=False)
            cur.execute(f"DELETE FROM {FLOOR.table('position')}")  # copied like every row
        for table in TABLES:
            data = _copy_out(conn, LIVE.table(table.name))
            with meter.measuring(), store.transaction(conn) as cur:
                cur.execute("SET LOCAL synchronous_commit = off")
                cur.execute("SET LOCAL max_parallel_maintenance_workers = 0")
                with cur.copy(f"COPY {FLOOR.table(table.name)} FROM STDIN (FORMAT BINARY)") as copy:
                    for block in data:
                        copy.write(block)
                for statement in FLOOR.secondary_index_statements(table):
                    cur.execute(statement)
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM {FLOOR.table(table.name)}")
                rows += int(cur.fetchone()[0])
            conn.commit()
    finally:
        with store.transaction(conn) as cur:
            FLOOR.drop(store, cur)
    return rows, meter


def _copy_out(conn: Any, table: str) -> list[bytes]:
    with conn.cursor() as cur, cur.copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as copy:
        blocks = [bytes(block) for block in copy]
    conn.commit()
    return blocks


def _personal_data(read_models: ReadModels, conn: Any) -> dict[str, Any]:
    """The distinct encrypted values and lookup hashes in the live read models, and what
    sealing and hashing them costs at this process's measured rate."""
    seals = hashes = 0
    with conn.cursor() as cur:
        for table in TABLES:
            for column in table.column_names:
                if column.endswith(("_enc", "_hash")):
                    cur.execute(f"SELECT count(DISTINCT {column}) FROM {LIVE.table(table.name)}")
                    found = int(cur.fetchone()[0])
                    if column.endswith("_enc"):
                        seals += found
                    else:
                        hashes += found
    conn.commit()
    cipher: PiiCipher = read_models.cipher
    values = [f"会员{n:06d}" for n in range(PII_SAMPLES)]
    seal_s = _per_call(lambda v, n: cipher.encrypt(v, field="name", origin=f"{n:032x}|{n}"), values)
    hash_s = _per_call(lambda v, n: cipher.lookup_hash(v), values)
    client_s = seals * seal_s + hashes * hash_s
    return {
        "seals": seals,
        "hashes": hashes,
        "seal_us": round(seal_s * 1e6, 3),
        "hash_us": round(hash_s * 1e6, 3),
        "client_s": round(client_s, 3),
    }


def _per_call(fn: Callable[[str, int], object], values: list[str]) -> float:
    """Processor seconds a call, the best of three passes over the values."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for n, value in enumerate(values):
            fn(value, n)
        best = min(best, (time.process_time() - started) / len(values))
    return best


def measure(ledger: Ledger) -> dict[str, Any]:
    """The floor over the store's whole log; its live read models must be built and current.
    rebuild_floor_events_per_s is None (with the reason) on SQLite or a server elsewhere."""
    read_models = ReadModels(ledger)
    try:
        return _measure(ledger, read_models)
    finally:
        read_models.close()


def _measure(ledger: Ledger, read_models: ReadModels) -> dict[str, Any]:
    store = read_models.store
    if store.is_sqlite:
        return {"rebuild_floor_events_per_s": None, "unavailable": SQLITE_UNAVAILABLE}
    position, head = read_models.position(), ledger.head_position()
    if position != head:
        raise ValueError(
            f"the live read models are at position {position} and the log at {head}: "
            "the floor is measured over read models built from the whole log"
        )
    conn = store.connect()
    try:
        if not _is_local_backend(conn):
            return {"rebuild_floor_events_per_s": None, "unavailable": UNAVAILABLE}
        events, decode = _read_and_decode(read_models, conn)
        rows, write = _write(store, conn)
        personal = _personal_data(read_models, conn)
    finally:
        conn.close()
    cores = os.cpu_count() or 1
    cpu_s = decode.client_s + decode.server_s + write.client_s + write.server_s
    cpu_s += personal["client_s"]
    return {
        "rebuild_floor_events_per_s": per_s(events, cpu_s / cores),
        "events": events,
        "rows": rows,
        "cores": cores,
        "cpu_s": round(cpu_s, 3),
        "read_and_decode": decode.as_dict(events),
        "write": {**write.as_dict(events), "rows_per_event": round(rows / events, 2)},
        "personal_data": personal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The rebuild's machine floor on the store of LEDGER_DATABASE_URL, whose "
        "live read models must be built (`ledger rebuild` or `ledger project --once`)."
    )
    parser.parse_args()
    ledger = Ledger(Settings())
    try:
        print(json.dumps(measure(ledger), indent=2))
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
