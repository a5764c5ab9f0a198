"""Where the ledger does not use eventsourcing's own way: each override against the library's
way, on the same input, in one run.

    python -m scripts.bench.overrides [--backend sqlite|postgres|both] [--rounds 20]

Every figure compares two arms measured in the same process, interleaved round by round (the
machine is shared: compare figures of one run, not across runs). "cpu" is this process's CPU
time (what the writer thread or the projector spends), "wall" includes the database's work.
Each figure is the median over the rounds. docs/architecture.md quotes the figures of one run
under "Where we do not use eventsourcing's own way".
"""

from __future__ import annotations

import argparse
import copy
import datetime
import itertools
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventsourcing.application import Application, ProcessingEvent, project_aggregate
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresTrackingRecorder
from eventsourcing.projection import ApplicationSubscription, Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder

from domain.access import MINTED_TOPIC
from domain.base import LedgerAggregate
from domain.identity import CreditCode, IdNumber
from domain.members import Member
from domain.organizations import Admissions, Organization
from projections.audit.trail import open_audit_store
from projections.read_models.event_reader import EventReader
from projections.read_models.event_reader import Notification as ReaderNotification
from projections.read_models.models import ReadModels
from projections.read_models.projector import HANDLERS
from projections.read_models.schema import TABLES_BY_NAME
from scripts.bench.database import DEFAULT_ADMIN_URL, bench_store
from scripts.synthetic import employer_code, id_number, union_code
from service.application import Ledger
from service.repository import replay
from storage.database import Store
from storage.pg_recorder import BinaryArrayApplicationRecorder

REGION = "110105"
JOINED_ON = datetime.date(2024, 2, 1)
FOUNDED_ON = datetime.date(2024, 1, 2)
_serials = itertools.count(1)

Timing = dict[str, float]


# --- in-memory aggregates, as a roster import makes them ----------------------------------------


def new_tree() -> tuple[Organization, Organization]:
    """A county union and a base union under it, founded in memory (unsaved)."""
    root = Organization.found(
        code=CreditCode.parse(union_code(REGION, next(_serials), base=False)),
        name="测试总工会",
        level="county",
        parent=None,
        region_code=REGION,
        founded_on=FOUNDED_ON,
        employer_code=None,
        employee_count=None,
    )
    serial = next(_serials)
    base = Organization.found(
        code=CreditCode.parse(union_code(REGION, serial, base=True)),
        name="测试基层工会",
        level="base",
        parent=root,
        region_code=REGION,
        founded_on=FOUNDED_ON,
        employer_code=CreditCode.parse(employer_code(REGION, serial)),
        employee_count=100_000,
    )
    return root, base


def join_members(base: Organization, n: int, *, one_event: bool = True) -> list[Member]:
    """n members joining base in memory: one MembersAdmitted event for all (a roster import),
    or one MemberAdmitted each."""
    admissions = Admissions(base) if one_event else None
    members = []
    for _ in range(n):
        serial = next(_serials)
        birth = datetime.date(1970, 1, 1) + datetime.timedelta(days=serial % 9000)
        members.append(
            Member.join(
                member_id=uuid.uuid4(),
                id_number=IdNumber.parse(id_number(REGION, birth, serial)),
                name="欧阳娜娜",
                mobile="13812345678",
                migrant_worker=False,
                new_employment_form=True,
                organization=base,
                joined_on=JOINED_ON,
                admissions=admissions,
            )
        )
    if admissions is not None:
        admissions.record()
    return members


# --- timing --------------------------------------------------------------------------------------


@contextmanager
def timed(into: dict[str, list[float]], arm: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.setdefault(f"{arm}.wall", []).append(time.perf_counter() - wall)
    into.setdefault(f"{arm}.cpu", []).append(time.process_time() - cpu)


def medians(samples: dict[str, list[float]], scale: float = 1e6, per: int = 1) -> Timing:
    """Medians in microseconds (scale), divided by per."""
    return {k: round(statistics.median(v) * scale / per, 1) for k, v in samples.items()}


def gain(ours: float, library: float) -> str:
    """How much less ours takes than the library's way, as a percentage of the library's."""
    return f"{(library - ours) / library * 100:.0f}% less" if library else "n/a"


# --- the benchmarks ------------------------------------------------------------------------------


def bench_save(ledger: Ledger, rounds: int, members: int) -> dict[str, Any]:
    """Ledger.save against Application.save (Ledger.save is Application.save and the due
    snapshots, none here: the two should be alike), and, for the group-commit writer,
    save_prepared (events mapped before the writer lock) against mapping them inside it as
    Application.save does: what the writer holds the lock for."""
    samples: dict[str, list[float]] = {}
    arms = ["ours", "library", "prepared"]
    for r in range(rounds):
        for arm in arms[r % 3 :] + arms[: r % 3]:
            root, base = new_tree()
            objs = [*join_members(base, members), root, base]
            if arm == "ours":
                with timed(samples, "save.ours"):
                    ledger.save(*objs)
            elif arm == "library":
                with timed(samples, "save.library"):
                    Application.save(ledger, *objs)
            else:
                with timed(samples, "prepared.map_before_lock"):
                    processing_event: ProcessingEvent = ProcessingEvent()
                    for obj in objs:
                        processing_event.events.extend(obj.collect_events())
                        processing_event.aggregates[obj.id] = obj
                    stored = [ledger.mapper.to_stored_event(e) for e in processing_event.events]
                with timed(samples, "prepared.under_lock"):
                    ledger.save_prepared(processing_event, stored)
    return {"aggregates_per_save": members + 2, "events_per_save": members + 4} | medians(samples)


def bench_snapshots(ledger: Ledger, rounds: int, interval: int) -> dict[str, Any]:
    """A snapshot of a union at its interval: taken from the aggregate in memory
    (take_due_snapshots) against eventsourcing's take_snapshot (snapshotting_intervals), which
    reads the union back from the store at that version."""
    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        for arm in ("ours", "library") if r % 2 == 0 else ("library", "ours"):
            root, base = new_tree()
            members = join_members(base, interval - 1, one_event=False)  # and its founding
            ledger.save(root)
            recordings = Application.save(ledger, *members, base)  # no snapshot yet
            assert base.version == interval
            if arm == "ours":
                with timed(samples, "snapshot.ours"):
                    ledger.take_due_snapshots([base], recordings)
                    ledger.wait_for_snapshots()  # its insert too, as the library's
            else:
                with timed(samples, "snapshot.library"):
                    ledger.take_snapshot(
                        base.id, version=interval, projector_func=project_aggregate
                    )
    return {"union_events": interval} | medians(samples)


def bench_replay(ledger: Ledger, rounds: int, union_events: int) -> dict[str, Any]:
    """replay() against project_aggregate(): the projector alone over decoded events, and a
    whole read from the store (one member; a union of union_events events, no snapshot)."""
    root, base = new_tree()
    members = join_members(base, union_events - 1, one_event=False)
    ledger.save(root)
    Application.save(ledger, *members, base)
    union_events_decoded = list(ledger.events.get(base.id))
    member_id = members[0].id
    reconstruct = ledger.repository._reconstruct_aggregate
    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        pairs = [("ours", replay), ("library", project_aggregate)]
        for arm, projector in pairs if r % 2 == 0 else pairs[::-1]:
            with timed(samples, f"projector_per_event.{arm}"):
                for _ in range(10):
                    projector(None, union_events_decoded)
            with timed(samples, f"read_union.{arm}"):
                reconstruct(base.id, None, projector)
            with timed(samples, f"read_member.{arm}"):
                for _ in range(100):
                    reconstruct(member_id, None, projector)
    out: dict[str, Any] = {"union_events": union_events}
    for key, values in samples.items():
        per = 10 * union_events if key.startswith("projector") else 100 if "member" in key else 1
        out[key] = round(statistics.median(values) * 1e6 / per, 2)
    return out


def bench_deepcopy(rounds: int, members: int, pending: int) -> dict[str, Any]:
    """LedgerAggregate.__deepcopy__ against copy.deepcopy's generic machinery, on a busy union
    (members on its roll, pending events of a batch) and on one member."""
    _, base = new_tree()
    for _ in range(members // 1000):
        join_members(base, 1000)
    base.collect_events()
    join_members(base, pending, one_event=False)  # a batch's pending admissions
    member = join_members(base, 1)[0]
    ours = LedgerAggregate.__deepcopy__
    samples: dict[str, list[float]] = {}
    try:
        for r in range(rounds):
            for arm in ("ours", "library") if r % 2 == 0 else ("library", "ours"):
                if arm == "ours":
                    LedgerAggregate.__deepcopy__ = ours  # type: ignore[method-assign]
                elif "__deepcopy__" in vars(LedgerAggregate):
                    del LedgerAggregate.__deepcopy__
                with timed(samples, f"union.{arm}"):
                    clone = copy.deepcopy(base)
                assert clone.__dict__ == base.__dict__
                with timed(samples, f"member.{arm}"):
                    for _ in range(100):
                        copy.deepcopy(member)
    finally:
        LedgerAggregate.__deepcopy__ = ours  # type: ignore[method-assign]
    out: dict[str, Any] = {"union_members": members, "union_pending_events": pending}
    for key, values in samples.items():
        out[key] = round(statistics.median(values) * 1e6 / (100 if "member" in key else 1), 1)
    return out


def bench_decode(ledger: Ledger, store: Store, rounds: int) -> dict[str, Any]:
    """The projector's decoder (event_reader.py) against the mapper's to_domain_event with the
    same attribute bag made of its result, per event, over the events of topics a read model
    uses. The reader also finds the union codes each payload names, which the mapper's way
    does not even do."""
    reader = EventReader(ledger, store, HANDLERS)
    notifications = [
        n
        for n in ledger.recorder.select_notifications(start=1, limit=100_000)
        if n.topic in HANDLERS
    ]
    ours_rows = [
        ReaderNotification(n.id, n.topic, n.originator_id.hex, n.originator_version, n.state)
        for n in notifications
    ]
    to_domain = ledger.mapper.to_domain_event

    def by_mapper() -> None:
        for n in notifications:
            event = to_domain(n)
            fields = dict(vars(event))
            fields["originator_id"] = str(event.originator_id)
            if "postings" in fields:
                fields["postings"] = [
                    (p.organization_code, p.account_code, p.debit.fen, p.credit.fen)
                    for p in fields["postings"]
                ]

    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        for arm in ("ours", "library") if r % 2 == 0 else ("library", "ours"):
            with timed(samples, arm):
                if arm == "ours":
                    for row in ours_rows:
                        reader.decode(row)
                else:
                    by_mapper()
    return {"events": len(notifications)} | medians(samples, per=len(notifications))


def bench_pg_insert(ledger: Ledger, rounds: int) -> dict[str, Any]:
    """BinaryArrayApplicationRecorder.insert_events against PostgresApplicationRecorder's, on
    two fresh tables of the same database, 1,000 events and 3 events an insert."""
    datastore = ledger.recorder.datastore
    suffix = uuid.uuid4().hex[:8]
    library = PostgresApplicationRecorder(datastore, events_table_name=f"bench_lib_{suffix}")
    ours = BinaryArrayApplicationRecorder(datastore, events_table_name=f"bench_ours_{suffix}")
    library.create_table()
    ours.create_table()
    states = [n.state for n in ledger.recorder.select_notifications(start=1, limit=2_000)]
    topics = [n.topic for n in ledger.recorder.select_notifications(start=1, limit=2_000)]

    def batch(n: int) -> list[StoredEvent]:
        return [
            StoredEvent(uuid.uuid4(), 1, topics[i % len(topics)], states[i % len(states)])
            for i in range(n)
        ]

    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        pairs = [("ours", ours), ("library", library)]
        for arm, recorder in pairs if r % 2 == 0 else pairs[::-1]:
            for size in (1_000, 3):
                events = batch(size)
                with timed(samples, f"insert_{size}.{arm}"):
                    recorder.insert_events(events)
    with datastore.get_connection() as conn:
        for table in (library.events_table_name, ours.events_table_name):
            conn.execute(f"DROP TABLE {table}")  # type: ignore[arg-type]
    return medians(samples)


def bench_raw_sql(ledger: Ledger, rounds: int) -> dict[str, Any]:
    """The ledger's queries on the events table against the nearest eventsourcing calls:
    stored_ids (which of 1,000 ids exist) against one select_events each; notifications_at
    (100 scattered positions) against one select_notifications each; a query of our own for
    one topic against select_notifications(topics=...), which Tokens.describe_all uses (the
    same scan); the audit store's read of the whole log against select_notifications a page at
    a time."""
    recorder = ledger.recorder
    head = ledger.head_position()
    stored = {n.originator_id for n in recorder.select_notifications(start=1, limit=5_000)}
    ids = set(random.sample(sorted(stored), 500)) | {uuid.uuid4() for _ in range(500)}
    positions = sorted(random.sample(range(1, head + 1), 100))
    audit_store = open_audit_store(ledger)
    audit_store.ensure_tables()

    def library_stored_ids() -> set[uuid.UUID]:
        return {i for i in ids if recorder.select_events(i, limit=1)}

    def library_at() -> list[Any]:
        return [recorder.select_notifications(start=p, limit=1)[0] for p in positions]

    def ours_scan() -> list[Any]:
        return ledger._select("SELECT originator_id FROM {table} WHERE topic = {p}", [MINTED_TOPIC])

    def library_scan() -> list[Any]:
        return recorder.select_notifications(start=None, limit=10**9, topics=[MINTED_TOPIC])

    def ours_log() -> int:
        with audit_store.snapshot() as snapshot:
            return sum(1 for _ in snapshot.rows)

    def library_log() -> int:
        count, start = 0, 1
        while page := recorder.select_notifications(start=start, limit=10_000):
            count += len(page)
            start = page[-1].id + 1
        return count

    assert ledger.stored_ids(ids) == library_stored_ids()
    assert ledger.notifications_at(positions) == library_at()
    assert ours_log() == library_log() == head
    arms: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        "stored_ids_1000": (lambda: ledger.stored_ids(ids), library_stored_ids),
        "notifications_at_100": (lambda: ledger.notifications_at(positions), library_at),
        "topic_scan": (ours_scan, library_scan),
        "read_log": (ours_log, library_log),
    }
    samples: dict[str, list[float]] = {}
    for r in range(rounds):
        for name, (ours, library) in arms.items():
            pairs = [("ours", ours), ("library", library)]
            for arm, run in pairs if r % 2 == 0 else pairs[::-1]:
                with timed(samples, f"{name}.{arm}"):
                    run()
    out: dict[str, Any] = {"events": head} | medians(samples)
    for arm in ("ours", "library"):
        out[f"read_log.{arm}.rows_per_s"] = round(head / (out[f"read_log.{arm}.wall"] / 1e6))
    return out


# --- the projector -------------------------------------------------------------------------------


class JoinedRows:
    """A minimal read model on eventsourcing.projection's terms: one row per member joined,
    written with its tracking record in one transaction per event, as the library's
    projection examples do."""

    table = "bench_members"

    def create(self) -> None:
        self.execute_ddl(
            f"CREATE TABLE IF NOT EXISTS {self.table} (member_id TEXT PRIMARY KEY, "
            "organization_code TEXT NOT NULL, joined_on TEXT NOT NULL)"
        )

    def execute_ddl(self, sql: str) -> None:
        with self.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql)

    def insert_member(self, row: tuple[str, str, str], tracking: Tracking) -> None:
        marker = "?" if isinstance(self, SQLiteTrackingRecorder) else "%s"
        sql = f"INSERT INTO {self.table} VALUES ({marker}, {marker}, {marker})"
        with self.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql, row)
            self._insert_tracking(cursor, tracking)  # type: ignore[attr-defined]


class PostgresJoinedRows(JoinedRows, PostgresTrackingRecorder):
    pass


class SQLiteJoinedRows(JoinedRows, SQLiteTrackingRecorder):
    pass


class JoinedProjection(Projection[Any]):
    name = "bench_joined"
    topics = ("ledger:Member.Joined",)

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if isinstance(domain_event, Member.Joined):
            row = (
                str(domain_event.originator_id),
                domain_event.organization_code,
                domain_event.joined_on.isoformat(),
            )
            self.view.insert_member(row, tracking)
        else:
            self.view.insert_tracking(tracking)


def subscribe(ledger: Ledger, backend: str) -> Iterator[tuple[Any, Tracking]]:
    """eventsourcing's ApplicationSubscription; on SQLite, which has none (its recorder's
    subscribe() raises NotImplementedError), the same pairs read a page at a time."""
    topics = JoinedProjection.topics
    if backend == "postgres":
        with ApplicationSubscription(ledger, gt=0, topics=topics) as subscription:
            yield from subscription
        return
    start = 1
    while page := ledger.recorder.select_notifications(start=start, limit=1_000, topics=topics):
        for n in page:
            yield ledger.mapper.to_domain_event(n), Tracking(ledger.name, n.id)
        start = page[-1].id + 1


def bench_projector(ledger: Ledger, backend: str) -> dict[str, Any]:
    """The project's batch projector (every read model, from the first event) against a minimal
    projection on eventsourcing.projection (ApplicationSubscription, a Projection, a tracking
    recorder: what ProjectionRunner runs in its thread) that writes one row per member joined."""
    head = ledger.head_position()
    joined = [
        n.id
        for n in ledger.recorder.select_notifications(
            start=1, limit=10**9, topics=JoinedProjection.topics
        )
    ]
    read_models = ReadModels(ledger)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        assert read_models.catch_up() == head
        ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu
        rows = count_rows(read_models)
    finally:
        read_models.close()
    if backend == "postgres":
        view: JoinedRows = PostgresJoinedRows(
            ledger.recorder.datastore, tracking_table_name="bench_tracking"
        )
    else:
        view = SQLiteJoinedRows(ledger.recorder.datastore)
    view.create_table()  # type: ignore[attr-defined]
    view.create()
    projection = JoinedProjection(view=view)
    wall, cpu = time.perf_counter(), time.process_time()
    for domain_event, tracking in subscribe(ledger, backend):
        projection.process_event(domain_event, tracking)
        if tracking.notification_id == joined[-1]:
            break
    lib_wall, lib_cpu = time.perf_counter() - wall, time.process_time() - cpu
    out: dict[str, Any] = {
        "events": head,
        "member_joined_events": len(joined),
        "ours.wall_s": round(ours_wall, 2),
        "ours.cpu_s": round(ours_cpu, 2),
        "ours.events_per_s": round(head / ours_wall),
        "ours.member_joined_per_s_upper_bound": round(len(joined) / ours_wall),
        "library.wall_s": round(lib_wall, 2),
        "library.cpu_s": round(lib_cpu, 2),
        "library.member_joined_rows_per_s": round(len(joined) / lib_wall),
    }
    out["ours.rows"] = rows
    out["ours.rows_per_s"] = round(rows / ours_wall)
    return out


def count_rows(read_models: ReadModels) -> int:
    store = read_models.store
    conn = store.connect()
    try:
        with store.snapshot(conn) as cur:
            total = 0
            for name in TABLES_BY_NAME:
                cur.execute(f"SELECT COUNT(*) FROM {read_models.tables.table(name)}")
                total += int(cur.fetchone()[0])
            return total
    finally:
        conn.close()


def load_for_reads(ledger: Ledger, members: int, batch: int) -> None:
    """A union's roster import: members joined batch by batch (one MembersAdmitted each)."""
    root, base = new_tree()
    ledger.save(root, base)
    for _ in range(members // batch):
        ledger.save(*join_members(base, batch), base)


# --- the run -------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with bench_store(backend, args.admin_url, workdir) as store:
        settings = store.settings.model_copy(update={"projection_thread": False})
        ledger = Ledger(settings)
        read_store = Store(settings)
        try:
            results["save"] = bench_save(ledger, args.rounds, 100)
            results["snapshot"] = bench_snapshots(ledger, args.rounds, 200)
            results["replay"] = bench_replay(ledger, args.rounds, 200)
            load_for_reads(ledger, args.members, 500)
            results["decode"] = bench_decode(ledger, read_store, max(3, args.rounds // 4))
            results["raw_sql"] = bench_raw_sql(ledger, max(3, args.rounds // 4))
            if backend == "postgres":
                results["pg_insert"] = bench_pg_insert(ledger, args.rounds)
            results["projector"] = bench_projector(ledger, backend)
        finally:
            read_store.close()
            ledger.close()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--members", type=int, default=20_000, help="members for the reads")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args(argv)
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results: dict[str, Any] = {"deepcopy": bench_deepcopy(args.rounds, 5_000, 100)}
    with tempfile.TemporaryDirectory(prefix="ledger-overrides-") as tmp:
        for backend in backends:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            results[backend] = run_backend(backend, args, workdir)
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
