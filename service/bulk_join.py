"""会员名册导入's bulk write path: a roster's rows become stored events without an aggregate per
member, and are inserted many thousands to a transaction with COPY (storage/bulk_insert.py).

What stays the command path's (service/commands/members.py JoinMembers), so that a row stores
exactly what the command would store:
- the chunks: IMPORT_CHUNK_ROWS rows each, with the command's name, request fingerprint and
  idempotency key (service/imports.py), one IdempotencyRecord and one MembersAdmitted event of
  the union per chunk; a chunk already recorded under its key is replayed, not written again;
- the checks of a first join (Member.joined_fields, then Admissions.admit), in the same order,
  refusing with the same field and reason;
- every row whose person already has a member (stored, or joined earlier in the same import)
  goes through the command's own function (commands.members.admit) on the real aggregate: a
  rejoin after leaving, or the AlreadyMember refusal;
- the events: the Joined event is the domain's own class, with the fields and topics the
  aggregate would give it, mapped by the ledger's mapper (its transcoder, compressor and
  payload cipher, bound to the row), so it decodes to what the command path stores.

What differs is where the work is done. The caller's thread parses the rows, derives the member
ids, checks each row as a first join against the union as read, and maps each Joined event to
its stored bytes (most of the CPU), while the writer writes the previous transaction. The
writer (service/group_commit.py, an exclusive write in its turn, holding the writer lock that
every writer of every process takes) then decides what depends on the store: which people have
a member by now, the union as it stands, idempotency records; it inserts the transaction's
events at once. A person who joins over HTTP while an import runs is thus decided either before
the import's transaction (the import's row then meets the member: AlreadyMember) or after it
(the join meets the member): never both, and the store's unique (stream, version) key stands
behind it all the same.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.base import acting_as
from domain.errors import DomainError, InvalidValue
from domain.idempotency import IdempotencyRecord
from domain.identity import IdNumber
from domain.members import Member
from domain.organizations import Admissions, Organization
from domain.period import parse_date
from service.commands.members import JoinMembers, admit
from service.group_commit import BatchView, ExclusiveOutcome, PendingCommand, WriterCache
from service.idempotency import IdempotencyKey
from service.unit_of_work import CommandResult, UnitOfWork
from service.writer_lock import Turn

MEMBER_TOPIC = get_topic(Member)
# The Joined event's fields as the aggregate's metaclass gives them: built here without it.
_HEAD_FIELDS = ("originator_id", "originator_version", "timestamp", "originator_topic", "actor")
_JOINED_FIELDS = tuple(f.name for f in dataclasses.fields(Member.Joined))
if _JOINED_FIELDS[: len(_HEAD_FIELDS)] != _HEAD_FIELDS:
    raise TypeError(f"Member.Joined's fields changed: {_JOINED_FIELDS}; see service/bulk_join.py")


def _refusal(number: int, exc: DomainError) -> dict[str, Any]:
    # As JoinMembers.decide reports a refused row.
    if isinstance(exc, InvalidValue):
        return {"row": number, "field": exc.field, "reason": exc.reason}
    return {"row": number, "field": None, "reason": exc.message}


def joined_event(member_id: UUID, actor: str, fields: dict[str, Any]) -> Any:
    """The Joined event Member(id=member_id, **fields) would trigger acting as actor: the
    domain's own event class, its state laid out as the library lays it out (and as the mapper
    itself builds an event it decodes), without constructing the aggregate."""
    event = object.__new__(Member.Joined)
    state = {
        "originator_id": member_id,
        "originator_version": 1,
        "timestamp": Member.Joined.create_timestamp(),
        "originator_topic": MEMBER_TOPIC,
        "actor": actor,
        **fields,
    }
    if tuple(state) != _JOINED_FIELDS:
        raise TypeError(f"a Joined event has the fields {_JOINED_FIELDS}, not {tuple(state)}")
    object.__setattr__(event, "__dict__", state)
    return event


@dataclass
class PlannedRow:
    """One row as the caller's thread left it: refused whatever the store holds, or its
    first join checked against the union as read (an event mapped, or the refusal)."""

    number: int
    row: dict[str, Any]
    identity: IdNumber | None = None
    member_id: UUID | None = None
    refusal: dict[str, Any] | None = None  # invalid identity number or date: always refused
    day: datetime.date | None = None
    first_join_refused: DomainError | None = None
    event: Any = None
    stored: StoredEvent | None = None


def _union_state(org: Organization) -> tuple[Any, ...]:
    """What the checks of a first join read of the union (Member.joined_fields, and
    Organization.check_admission): the plan holds while these are as they were."""
    return (org.code, org.status, org.level, org.founded_on)


@dataclass
class PlannedChunk:
    """One chunk: the command as the command path would send it, and its rows planned."""

    pending: PendingCommand
    rows: list[PlannedRow]
    union_state: tuple[Any, ...]

    @property
    def command(self) -> JoinMembers:
        assert isinstance(self.pending.command, JoinMembers)
        return self.pending.command


def plan_rows(mapper: Any, command: JoinMembers, org: Organization, actor: str) -> list[PlannedRow]:
    """Each row of the chunk checked as a first join against org, its Joined event mapped."""
    planned: list[PlannedRow] = []
    for (number, row), (identity, member_id) in zip(command.rows, command.prepared, strict=True):
        plan = PlannedRow(number, row)
        planned.append(plan)
        if isinstance(identity, InvalidValue):
            plan.refusal = _refusal(number, identity)
            continue
        plan.identity, plan.member_id = identity, member_id
        try:
            # admit()'s first step, whether or not the person has a member.
            plan.day = parse_date(row["joined_on"], field="joined_on")
        except DomainError as exc:
            plan.refusal = _refusal(number, exc)
            continue
        try:
            fields = Member.joined_fields(
                id_number=identity,
                name=row["name"],
                mobile=row.get("mobile"),
                migrant_worker=row.get("migrant_worker", False),
                new_employment_form=row.get("new_employment_form", False),
                organization=org,
                joined_on=plan.day,
            )
        except DomainError as exc:
            plan.first_join_refused = exc
            continue
        assert member_id is not None
        plan.event = joined_event(member_id, actor, fields)
        plan.stored = mapper.to_stored_event(plan.event)
    return planned


Pairs = list[tuple[Any, StoredEvent | None]]  # events, and those already mapped


@dataclass
class BulkWrite:
    """One transaction of an import: its chunks planned, and the ids they look for (members
    and idempotency records), which the writer asks the store about in its turn."""

    ledger: Any  # service.application.Ledger, whose writer runs body
    actor: str
    chunks: list[PlannedChunk]
    looked_for: set[UUID]
    results: list[CommandResult] = field(default_factory=list)
    error: DomainError | None = None

    def body(self, _app: Any, known: WriterCache, turn: Turn) -> ExclusiveOutcome:
        """In the writer's turn: each chunk decided on the store as it now stands, then every
        event of the transaction inserted at once."""
        ledger = self.ledger
        self.results, self.error = [], None
        # One query, in the turn, for only the ids the chunks look for: asking instead for
        # every id created since planning read the thousands of this import's own previous
        # transaction, row by row (the store answers either by probing each id's key).
        exists = ledger.stored_ids(self.looked_for)
        view = BatchView(ledger, known)
        fast: dict[UUID, Any] = {}  # first joins of this transaction: their Joined events
        pairs: Pairs = []
        chunk_keys: list[tuple[int, list[tuple[UUID, int]]]] = []
        for chunk in self.chunks:
            uow = UnitOfWork(view, ledger.member_ids)
            try:
                with acting_as(self.actor):
                    outcome = self._decide(ledger, uow, chunk, exists, fast)
            except DomainError as exc:
                self.error = exc  # the chunks before it stand, as separate commands would
                break
            if isinstance(outcome, CommandResult):
                self.results.append(outcome)
                continue
            body, chunk_pairs = outcome
            view.current.update(uow.aggregates)
            pairs += chunk_pairs
            keys = [(e.originator_id, e.originator_version) for e, _ in chunk_pairs]
            chunk_keys.append((len(self.results), keys))
            self.results.append(CommandResult(body, None))
        processing = ProcessingEvent()
        processing.events.extend(e for e, _ in pairs)
        for aggregate in view.current.values():
            if aggregate is not None and aggregate.pending_events:
                processing.aggregates[aggregate.id] = aggregate
        stored = [s or ledger.mapper.to_stored_event(e) for e, s in pairs]
        recordings = ledger.save_prepared(processing, stored, turn.insert_many) if stored else []
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        for index, keys in chunk_keys:
            position = max((positions[k] for k in keys), default=None)
            self.results[index] = CommandResult(self.results[index].body, position)
        return ExclusiveOutcome(self, list(processing.aggregates.values()), recordings)

    def _decide(
        self,
        ledger: Any,
        uow: UnitOfWork,
        chunk: PlannedChunk,
        exists: set[UUID],
        fast: dict[UUID, Any],
    ) -> CommandResult | tuple[dict[str, Any], Pairs]:
        """One chunk, as JoinMembers.decide and Ledger.attempt would decide it: a replay of
        its idempotency record, or its answer and its events (members', the union's, the
        record's) in the order the command path stores them."""
        pending = chunk.pending
        key = pending.idempotency
        if key is not None and key.record_id in exists and uow.get(key.record_id) is not None:
            return ledger.attempt(uow, pending)  # a replay (or IdempotencyKeyReused)
        org = uow.org(chunk.command.organization_code, field="organization_code")
        rows = chunk.rows
        if _union_state(org) != chunk.union_state:
            rows = plan_rows(ledger.mapper, chunk.command, org, self.actor)  # checked again
        admissions = Admissions(org)
        org_before = len(org.pending_events)
        results: list[dict[str, Any]] = []
        touched: list[UUID] = []  # members in the order the command's unit of work meets them
        joined_here: dict[UUID, PlannedRow] = {}
        for plan in rows:
            if plan.refusal is not None:
                results.append(plan.refusal)
                continue
            member_id = plan.member_id
            assert member_id is not None and plan.identity is not None
            if member_id in exists or member_id in fast or member_id in uow.aggregates:
                # The person has a member: the command's own way (rejoin, or refused).
                if member_id not in uow.aggregates:
                    if member_id not in joined_here:  # the command met it here first
                        touched.append(member_id)
                    if member_id in fast:  # joined earlier in this transaction
                        uow.aggregates[member_id] = fast[member_id].mutate(None)
                        uow.loaded_versions[member_id] = 1
                try:
                    member = admit(uow, org, plan.identity, plan.row, member_id, admissions)
                except DomainError as exc:
                    results.append(_refusal(plan.number, exc))
                else:
                    results.append({"row": plan.number, "member_id": str(member.id)})
                continue
            if plan.first_join_refused is not None:
                results.append(_refusal(plan.number, plan.first_join_refused))
                continue
            assert plan.day is not None
            try:
                admissions.admit(str(member_id), plan.day)
            except DomainError as exc:
                results.append(_refusal(plan.number, exc))
                continue
            fast[member_id] = plan.event
            joined_here[member_id] = plan
            touched.append(member_id)
            results.append({"row": plan.number, "member_id": str(member_id)})
        admissions.record()
        body = {"rows": results}
        pairs: Pairs = []
        member_keys: list[tuple[UUID, int]] = []
        for member_id in touched:
            plan_here = joined_here.get(member_id)
            if plan_here is not None:  # a first join here (a later row of it was refused)
                pairs.append((plan_here.event, plan_here.stored))
                member_keys.append((member_id, 1))
                continue
            member = uow.aggregates[member_id]
            first = uow.loaded_versions[member_id] + 1
            pairs += [(e, None) for e in member.pending_events if e.originator_version >= first]
            member_keys += [(member_id, v) for v in range(first, member.version + 1)]
        org_events = org.pending_events[org_before:]
        event_keys = [(org.id, e.originator_version) for e in org_events] + member_keys
        if key is not None:
            uow.add(
                IdempotencyRecord(
                    id=key.record_id,
                    command=pending.command.command_name,
                    fingerprint=pending.digest.keyed,
                    result=body,
                    event_keys=[f"{i.hex}:{v}" for i, v in event_keys],
                )
            )
        pairs += [(e, None) for e in org_events]
        if key is not None:
            pairs += [(e, None) for e in uow.aggregates[key.record_id].pending_events]
        return body, pairs


def chunk_key(idempotency: IdempotencyKey | None, chunk: Sequence[tuple[int, Any]]) -> Any:
    """The idempotency key of a chunk of rows, as the command path derives it."""
    if idempotency is None:
        return None
    # \x00 never occurs in a client's key: a chunk's key cannot collide with one.
    return IdempotencyKey(
        idempotency.scope, f"{idempotency.key}\x00rows:{chunk[0][0]}-{chunk[-1][0]}"
    )


def plan_chunk(
    ledger: Any,
    org: Organization,
    rows: Sequence[tuple[int, dict[str, Any]]],
    *,
    actor: str,
    idempotency: IdempotencyKey | None,
) -> PlannedChunk:
    """The caller's share of one chunk: its command prepared as the command path prepares it,
    its rows checked against org and mapped."""
    part = list(rows)
    command = JoinMembers.prepare(ledger.member_ids, org.code, part)
    pending = ledger.prepare(command, actor=actor, idempotency=chunk_key(idempotency, part))
    return PlannedChunk(pending, plan_rows(ledger.mapper, command, org, actor), _union_state(org))


def plan_write(ledger: Any, chunks: list[PlannedChunk], *, actor: str) -> BulkWrite:
    """One transaction of planned chunks (of one union or several)."""
    looked_for = {i for c in chunks for i in c.pending.may_create}
    looked_for |= {c.pending.idempotency.record_id for c in chunks if c.pending.idempotency}
    return BulkWrite(ledger, actor, chunks, looked_for)
