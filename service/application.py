"""The ledger application: the one write API, shared by the HTTP layer and the command line.

Every write is a command object (service/commands/) given to execute() (or execute_async()):
the process's one writer (service/group_commit.py) decides it on fresh state, in a unit of work
that holds the aggregates it loads, and saves every changed aggregate in one atomic write,
together with the commands waiting beside it. A concurrent writer that changed one of them
first makes the write fail on the store's (id, version) constraint; the command is then decided
again on fresh state, a bounded number of times, and never loses an update.
"""

from __future__ import annotations

import asyncio
import datetime
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from itertools import groupby
from operator import itemgetter
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Notification,
    Recording,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteRecorder

from domain.base import acting_as
from domain.errors import (
    IdempotencyKeyReused,
    NoLevyPolicy,
    NotFound,
    TreeViolation,
    VersionConflict,
)
from domain.idempotency import IdempotencyRecord
from domain.identity import IdNumber, has_credit_code_shape, parse_region_code
from domain.members import Member
from domain.organizations import Organization
from domain.period import parse_date
from domain.policies import LevyPolicies
from domain.privacy import mask, revealed_members
from domain.vouchers import Book
from service.commands.access import record_pii_read
from service.commands.base import Command
from service.commands.funds import voucher_in
from service.group_commit import GroupCommitter, PendingCommand
from service.idempotency import Fingerprint, IdempotencyKey
from service.repository import LedgerRepository, replay
from service.results import member_view, organization_view, policy_view, voucher_view
from service.snapshot_writer import SnapshotWriter
from service.unit_of_work import MAX_TREE_DEPTH, CommandResult, RepositorySource, UnitOfWork
from storage.database import one_of
from storage.event_store import describe_store, eventsourcing_env
from storage.key_check import KeyCheckTable, KeyFileRefused, WrongEncryptionKey, check_value
from storage.keys import (
    KEY_BYTES,
    ConfiguredKey,
    MemberIds,
    configured_key,
    create_key_file,
    derive_key,
)
from storage.outage import bound_retries
from storage.payload_binding import BoundMapper, PayloadBindingError
from storage.settings import Settings
from storage.transcodings import LedgerTranscoder, register_transcodings


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    """A stored event's fields, from a row of the events table as _select returns it."""
    return {
        "originator_id": _uuid(row["originator_id"]),
        "originator_version": int(row["originator_version"]),
        "topic": row["topic"],
        "state": bytes(row["state"]),
    }


NO_SUCH_PERSON = "no member has this identity number"


class Ledger(Application):
    """工会会员与经费账簿: the write API. Every write is a command (service/commands/) given to
    execute(); the reads here are of the write side's own aggregates."""

    name = "Ledger"
    # Organisations and books grow with every member and voucher; snapshots bound replay.
    # Taken by save() below from the aggregate in memory: eventsourcing's own snapshotting
    # (snapshotting_intervals) reads the aggregate back from the store for each snapshot.
    # Every 50 events: a server's first read of a union and its book (after a start, or once
    # the tree outgrows the writer's cache) replays at most 49 events of each. At 200, a
    # freshly loaded county's unions replayed about 100 each and their books about 90, and a
    # server's first pass over them ran at 616-802 requests/s against 693-967 (p99 274-315
    # against 217-260 ms; docs/benchmarks.md). The four times as many snapshots are inserted
    # on a thread of their own (service/snapshot_writer.py), which left the steady rate as it
    # was.
    is_snapshotting_enabled = True
    snapshot_every: ClassVar[dict[type, int]] = {Organization: 50, Book: 50}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store_name = describe_store(settings)
        configured = configured_key(settings)
        super().__init__(env=eventsourcing_env(settings))
        # 503 within seconds while PostgreSQL is down (the snapshot store has its own recorder).
        for recorder in (self.recorder, self.snapshots.recorder if self.snapshots else None):
            bound_retries(recorder)
        try:
            master_key = self._open_with_key(configured)
        except BaseException:
            super().close()
            raise
        self.member_ids = MemberIds(derive_key(master_key, "member-id"))
        self._fingerprint_key = derive_key(master_key, "idempotency-fingerprint")
        # Snapshots are inserted in the background (take_due_snapshots).
        self.snapshot_writer: SnapshotWriter | None = None
        if self.snapshots is not None:
            self.snapshot_writer = SnapshotWriter(self.snapshots.recorder.insert_events)
        self.committer = GroupCommitter(self)

    def construct_mapper(self) -> BoundMapper:
        """Payloads encrypted bound to their rows (storage/payload_binding.py); the key comes
        once it has been checked against the store (_open_with_key)."""
        return BoundMapper(
            transcoder=self.construct_transcoder(),
            compressor=self.factory.compressor(),
            cipher=None,
        )

    def construct_transcoder(self) -> LedgerTranscoder:
        """eventsourcing's JSON transcoder with a faster encoder writing the same bytes
        (storage/transcodings.py)."""
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def _open_with_key(self, configured: ConfiguredKey) -> bytes:
        """The master key, checked against the store (storage/key_check.py): a key file is
        created only beside a store that holds no events, and a key that is not the store's
        is refused before anything is read or written."""
        self.key_check = KeyCheckTable(self.recorder)
        self.key_check.ensure()
        stored = self.key_check.stored()
        has_events = (self.recorder.max_notification_id() or 0) > 0
        key = configured.key
        if key is None:
            assert configured.path is not None
            if has_events or stored is not None:
                raise KeyFileRefused(str(configured.path), self.store_name)
            create_key_file(configured.path, KEY_BYTES)
            key = configured_key(self.settings).key  # ours, or a concurrent first start's
            assert key is not None
        self.mapper.use_key(derive_key(key, "event-cipher"))
        self._key_check_value = check_value(key)
        if stored is None and has_events:
            # A store written before key checks: the key must open its events.
            self._check_key_opens_events(configured.source)
            stored = self.key_check.claim(self._key_check_value)
        if stored is not None and stored != self._key_check_value:
            raise WrongEncryptionKey(configured.source, self.store_name)
        self._key_source = configured.source
        self._store_claimed = stored is not None
        return key

    def _check_key_opens_events(self, source: str) -> None:
        head = self.recorder.max_notification_id() or 0
        firsts = self.recorder.select_notifications(start=1, limit=1)
        lasts = self.recorder.select_notifications(start=head, limit=1)
        for notification in (*firsts, *lasts):
            try:
                self.mapper.to_domain_event(notification)
            except PayloadBindingError:
                raise WrongEncryptionKey(source, self.store_name) from None

    def claim_store(self) -> None:
        """Writes the key check before the first event this process stores, if the store has
        none yet; refuses if another key claimed the store first."""
        if self._store_claimed:
            return
        if self.key_check.claim(self._key_check_value) != self._key_check_value:
            raise WrongEncryptionKey(self._key_source, self.store_name)
        self._store_claimed = True

    def close(self) -> None:
        self.committer.close()
        if self.snapshot_writer is not None:
            self.snapshot_writer.close()
        super().close()

    def wait_for_snapshots(self) -> None:
        """Returns once every snapshot taken so far is in the store."""
        if self.snapshot_writer is not None:
            self.snapshot_writer.flush()

    def construct_repository(self) -> LedgerRepository:
        """eventsourcing's repository, as its own construct_repository() configures it from
        the environment (storage/), as a LedgerRepository."""
        repository = super().construct_repository()
        ledger_repository = LedgerRepository(
            event_store=repository.event_store,
            snapshot_store=repository.snapshot_store,
            fastforward=repository.fastforward,
            fastforward_skipping=repository.fastforward_skipping,
            deepcopy_from_cache=repository.deepcopy_from_cache,
        )
        ledger_repository.cache = repository.cache
        return ledger_repository

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording]:
        """Application.save, then a snapshot of each saved aggregate whose version passed a
        multiple of its type's interval (take_due_snapshots). Only a command decided again
        alone (run_alone) saves this way; the group-commit writer inserts through
        save_prepared."""
        recordings = super().save(*objs, **kwargs)
        self.take_due_snapshots(objs, recordings)
        return recordings

    def save_prepared(
        self,
        processing_event: ProcessingEvent,
        stored_events: list[StoredEvent],
        insert: Callable[[list[StoredEvent]], Sequence[int] | None] | None = None,
    ) -> list[Recording]:
        """What Application.save() does once the events are mapped to stored events (encoded,
        compressed, encrypted: the group-commit writer maps them before it takes the writer
        lock): inserts them in one transaction (insert: the writer's turn's, else the
        recorder's), then _take_snapshots() and _notify() as Application.save() would.
        Snapshots by snapshot_every are take_due_snapshots()'s."""
        events = processing_event.events
        if len(stored_events) != len(events):
            raise ValueError(f"{len(stored_events)} stored events for {len(events)} events")
        self.claim_store()
        # As EventStore.put and Application._record.
        notification_ids = (insert or self.recorder.insert_events)(stored_events)
        recordings: list[Recording] = []
        if notification_ids:
            assert len(notification_ids) == len(stored_events)
            recordings = [
                Recording(
                    d,
                    Notification(
                        originator_id=s.originator_id,
                        originator_version=s.originator_version,
                        topic=s.topic,
                        state=s.state,
                        id=n_id,
                    ),
                )
                for d, s, n_id in zip(events, stored_events, notification_ids, strict=True)
            ]
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(self, processing_event: ProcessingEvent) -> list[Recording]:
        self.claim_store()  # Application.save's path (save_prepared claims on its own)
        return super()._record(processing_event)

    def take_due_snapshots(self, objs: Any, recordings: list[Recording]) -> None:
        """Snapshots each saved aggregate whose version passed a multiple of its type's
        interval (snapshot_every), from the aggregate in memory: taken and mapped now,
        inserted by the snapshot writer (wait_for_snapshots to see them in the store)."""
        if self.snapshots is None or self.snapshot_writer is None or not recordings:
            return
        saved = Counter(r.domain_event.originator_id for r in recordings)
        due = []
        for obj in objs:
            interval = self.snapshot_every.get(type(obj))
            new = saved.get(getattr(obj, "id", None), 0)
            if interval and new and obj.version // interval > (obj.version - new) // interval:
                snapshot_class = getattr(type(obj), "Snapshot", self.snapshot_class)
                due.append(snapshot_class.take(obj))
        to_stored_event = self.snapshots.mapper.to_stored_event
        self.snapshot_writer.put([to_stored_event(snapshot) for snapshot in due])

    def fingerprint(self, command: str, request: dict[str, Any]) -> Fingerprint:
        """The keyed fingerprint of a request sent with an idempotency key."""
        return Fingerprint(self._fingerprint_key, command, request)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

    # --- commands ----------------------------------------------------------------------------

    def execute(
        self,
        command: Command,
        *,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
        pii_read_purpose: str | None = None,
    ) -> CommandResult:
        """Decides the command on fresh state and saves what it changed, through the process's
        one writer (service/group_commit.py); returns the command's answer and the position of
        its last event. pii_read_purpose: the answer is shown unmasked, and the read of the
        members it shows is recorded in the same write (attempt)."""
        return self.submit(
            command, actor=actor, idempotency=idempotency, pii_read_purpose=pii_read_purpose
        ).result()

    async def execute_async(
        self,
        command: Command,
        *,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
        pii_read_purpose: str | None = None,
    ) -> CommandResult:
        """execute() for an event loop: awaits the writer without holding a thread."""
        return await asyncio.wrap_future(
            self.submit(
                command, actor=actor, idempotency=idempotency, pii_read_purpose=pii_read_purpose
            )
        )

    def submit(
        self,
        command: Command,
        *,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
        pii_read_purpose: str | None = None,
    ) -> Future[CommandResult]:
        """Hands the command to the writer; the future is answered once it is written."""
        return self.committer.enqueue(
            self.prepare(
                command, actor=actor, idempotency=idempotency, pii_read_purpose=pii_read_purpose
            )
        )

    def prepare(
        self,
        command: Command,
        *,
        actor: str = "system",
        idempotency: IdempotencyKey | None = None,
        pii_read_purpose: str | None = None,
    ) -> PendingCommand:
        """The command as the writer takes it: with its fingerprint and the ids it may create,
        worked out here in the caller's thread rather than in the writer's."""
        return PendingCommand(
            command,
            self.fingerprint(command.command_name, command.request()),
            idempotency,
            actor,
            command.may_create(self.member_ids),
            command.will_read(),
            pii_read_purpose,
        )

    def attempt(self, uow: UnitOfWork, pending: PendingCommand) -> CommandResult | dict[str, Any]:
        """Decides a command once: an idempotent replay's result, or the new view (unsaved)."""
        idempotency = pending.idempotency
        if idempotency is not None:
            record = uow.get(idempotency.record_id)
            if record is not None:
                if not pending.digest.matches(record.fingerprint):
                    raise IdempotencyKeyReused(
                        "this Idempotency-Key was used for a different request"
                    )
                keys = [(record.id, 1)] + [
                    (UUID(k.split(":")[0]), int(k.split(":")[1])) for k in record.event_keys
                ]
                return CommandResult(record.result, self.last_position_of(keys), replayed=True)
        with acting_as(pending.actor):
            body = pending.command.decide(uow)
            if pending.pii_read_purpose is not None:
                # Answered unmasked: the read is stored with the command's events, so that it
                # is recorded if and only if the answer can be given. A replay of this answer
                # is another read, recorded by whoever shows it again.
                members = revealed_members(body, mask(body))
                if members is not None:
                    record_pii_read(uow, pending.pii_read_purpose, members)
            if idempotency is not None:
                event_keys = [f"{i.hex}:{v}" for i, v in uow.new_event_keys()]
                uow.add(
                    IdempotencyRecord(
                        id=idempotency.record_id,
                        command=pending.command.command_name,
                        fingerprint=pending.digest.keyed,
                        result=body,
                        event_keys=event_keys,
                    )
                )
        return body

    def run_alone(self, pending: PendingCommand) -> CommandResult:
        """Decides and saves one command, deciding again after each version conflict: the
        writer's way for a command whose batch met a writer that takes no lock."""
        for attempt in range(self.settings.conflict_retries):
            uow = self.unit_of_work()
            outcome = self.attempt(uow, pending)
            if isinstance(outcome, CommandResult):
                return outcome
            try:
                recordings = self.save(*uow.aggregates.values())
            except IntegrityError:
                # Another writer got there first: decide again on what it wrote.
                time.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            position = max((r.notification.id for r in recordings), default=None)
            return CommandResult(outcome, position)
        raise VersionConflict(
            f"{pending.command.command_name}: concurrent changes kept conflicting after "
            f"{self.settings.conflict_retries} attempts; try again"
        )

    # --- reads of the write side's aggregates ------------------------------------------------

    def unit_of_work(self) -> UnitOfWork:
        """A unit of work that reads through the repository (for reads outside a command)."""
        return UnitOfWork(RepositorySource(self.repository), self.member_ids)

    def member_id_for(self, id_number: str) -> UUID:
        return self.member_ids.for_id_number(IdNumber.parse(id_number).value)

    def find_member(self, id_number: str) -> dict[str, Any]:
        member = self.unit_of_work().get(self.member_id_for(id_number), snapshotted=False)
        if not isinstance(member, Member):
            raise NotFound(NO_SUCH_PERSON)
        return member_view(member)

    def get_member(self, member_id: str) -> dict[str, Any]:
        return member_view(self.unit_of_work().member(member_id))

    def get_organization(self, code: str) -> dict[str, Any]:
        return organization_view(self.unit_of_work().org(code))

    def organization_is_cached(self, code: str) -> bool:
        """Whether the organisation is in the process's cache. Organisations are never
        deleted, so one that is there exists."""
        cache = self.repository.cache
        if cache is None or not has_credit_code_shape(code):
            return False
        try:
            return cache.get(Organization.id_for(code)) is not None
        except KeyError:
            return False

    def require_organization(self, code: str) -> None:
        """NotFound unless the organisation exists (no store access if it is cached)."""
        if not (isinstance(code, str) and self.organization_is_cached(code)):
            self.unit_of_work().org(code)

    def organization_lineage(self, code: str, day: datetime.date) -> list[str]:
        """The organisation's code and its ancestors' as the tree stands on `day`, nearest
        first (NotFound if it does not exist)."""
        lineage: list[str] = []
        current: str | None = code
        while current is not None:
            if len(lineage) > MAX_TREE_DEPTH:
                raise TreeViolation(f"the tree above {code} is deeper than {MAX_TREE_DEPTH}")
            org = self._read_organization(current)
            lineage.append(org.code)
            current = org.parent_on(day)
        return lineage

    def _read_organization(self, code: str) -> Organization:
        """An organisation to read, not to change: the cache's own object, without the copy
        a command gets, which costs most on the busiest unions."""
        try:
            if not has_credit_code_shape(code):
                raise AggregateNotFoundError(code)
            return self.repository.get(Organization.id_for(code), deepcopy_from_cache=False)
        except AggregateNotFoundError:
            raise NotFound(f"organisation {str(code)[:40]} not found") from None

    def get_voucher(self, voucher_id: str) -> dict[str, Any]:
        return voucher_view(voucher_in(self.unit_of_work(), voucher_id))

    def voucher_record(self, voucher_id: str) -> dict[str, Any]:
        """The whole voucher: numbers, postings, reversal links, and the event that recorded
        it (position, time, actor)."""
        voucher = voucher_in(self.unit_of_work(), voucher_id)
        posted = next(iter(self.events.get(voucher.id, lte=1)))
        details = voucher.details
        return {
            **voucher_view(voucher),
            "description": details.get("description") or details.get("reason"),
            "position": self.position_of(voucher.id, 1),
            "recorded_at": posted.timestamp.isoformat(),
            "actor": posted.actor,
        }

    def levy_policy_in_force(self, region_code: str, on: Any) -> dict[str, Any]:
        region = parse_region_code(region_code, lengths=(2, 4, 6))
        day = parse_date(on, field="on")
        policies = self.unit_of_work().get(LevyPolicies.ID)
        if policies is None:
            raise NotFound("no levy policy has been recorded")
        try:
            return policy_view(policies.in_force(region, day))
        except NoLevyPolicy as exc:
            raise NotFound(exc.message) from None

    def periods(self, organization_code: str) -> dict[str, Any]:
        """月结 and 反结账 of one organisation, in the order they were recorded."""
        book = self.get_book(organization_code)
        log = book.period_log if book is not None else []
        last = book.last_closed if book is not None else None
        return {
            "organization_code": organization_code,
            "last_closed": str(last) if last is not None else None,
            "closed": [
                {"period": e["period"], "closed_at": e["at"], "actor": e["actor"]}
                for e in log
                if e["action"] == "close"
            ],
            "reopenings": [
                {
                    "period": e["period"],
                    "reopened_at": e["at"],
                    "actor": e["actor"],
                    "reason": e["reason"],
                }
                for e in log
                if e["action"] == "reopen"
            ],
        }

    def get_book(self, organization_code: str) -> Book | None:
        return self.unit_of_work().get(Book.id_for(organization_code))

    # --- the events table ---------------------------------------------------------------------

    def _select(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Runs a query on the events table: `{table}`, `{position}` (the global position
        column) and `{p}` (a parameter marker) are filled in for the store's dialect; UUID
        parameters are passed as the dialect stores them."""
        recorder = self.recorder
        is_sqlite = isinstance(recorder, SQLiteRecorder)  # by class: see storage/pg_recorder.py
        sql = sql.format(
            table=recorder.events_table_name,  # type: ignore[attr-defined]
            position="rowid" if is_sqlite else "notification_id",
            p="?" if is_sqlite else "%s",
        )
        if is_sqlite:
            params = [p.hex if isinstance(p, UUID) else p for p in params]
            with recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
                cursor.execute(sql, params)
                return [dict(row) for row in cursor.fetchall()]
        # PostgreSQL: one statement on an autocommit connection, which reads one snapshot
        # anyway; a transaction around it (BEGIN, ROLLBACK) tripled the round trips.
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
            cursor.execute(sql, params)
            return [dict(row) for row in cursor.fetchall()]

    def last_position_of(self, keys: list[tuple[UUID, int]]) -> int | None:
        """The greatest global position among stored events named by (aggregate id, version)."""
        match = " OR ".join(["(originator_id = {p} AND originator_version = {p})"] * len(keys))
        params: list[Any] = [x for key in keys for x in key]
        rows = self._select(
            f"SELECT MAX({{position}}) AS position FROM {{table}} WHERE {match}", params
        )
        return None if not rows or rows[0]["position"] is None else int(rows[0]["position"])

    def _one_of(self, column: str, values: Collection[Any], pg_type: str) -> tuple[str, list[Any]]:
        """storage/database.py one_of() for _select: a column of the events table is one of
        these values (pg_type: their type in PostgreSQL)."""
        sqlite = isinstance(self.recorder, SQLiteRecorder)
        return one_of(column, list(values), pg_type, sqlite=sqlite, marker="{p}")

    def stored_ids(self, ids: set[UUID]) -> set[UUID]:
        """Which of these aggregates have events in the store (one query)."""
        if not ids:
            return set()
        id_in, params = self._one_of("originator_id", ids, "uuid")
        rows = self._select(
            f"SELECT originator_id FROM {{table}} WHERE originator_version = 1 AND {id_in}", params
        )
        return {_uuid(row["originator_id"]) for row in rows}

    def members_of(self, ids: set[UUID]) -> list[Member]:
        """The members among these ids, each replayed from all its events as the repository
        reads a member (members are never snapshotted: LedgerRepository), read in one query.
        Ids with no events, or whose events are not a member's, are left out."""
        if not ids:
            return []
        id_in, params = self._one_of("originator_id", ids, "uuid")
        rows = self._select(
            "SELECT originator_id, originator_version, topic, state FROM {table} "
            f"WHERE {id_in} ORDER BY originator_id, originator_version",
            params,
        )
        members: list[Member] = []
        for _, stream in groupby(rows, key=itemgetter("originator_id")):
            events = [self.mapper.to_domain_event(StoredEvent(**_stored(row))) for row in stream]
            aggregate = replay(None, events)
            if isinstance(aggregate, Member):
                members.append(aggregate)
        return members

    def position_of(self, aggregate_id: UUID, version: int = 1) -> int | None:
        """The global position of one stored event."""
        return self.last_position_of([(aggregate_id, version)])

    def head_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def notifications_at(self, positions: Sequence[int]) -> list[Notification]:
        """The stored events at these global positions (one query), in position order."""
        if not positions:
            return []
        where, params = self._one_of("{position}", [int(p) for p in positions], "bigint")
        rows = self._select(
            "SELECT {position} AS position, originator_id, originator_version, "
            f"topic, state FROM {{table}} WHERE {where} ORDER BY {{position}}",
            params,
        )
        return [Notification(id=int(row["position"]), **_stored(row)) for row in rows]
