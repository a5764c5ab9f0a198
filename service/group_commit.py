"""Group commit: many requests' events written in one transaction, each answered after it.

One writer thread per process takes every command waiting in its queue, decides them one after
another on a shared in-memory view of the aggregates, and saves all their events in one atomic
write. A durable commit costs about the same for one event as for hundreds, so under load this
multiplies throughput; with one request at a time it behaves exactly like a plain save.

Isolation inside a batch: each command works on deep copies of the aggregates it touches; its
copies replace the batch's view only if it succeeds, so a command that fails (a domain error)
leaves no trace and never fails the others.

Reads: the writer keeps its own cache of the aggregates (WriterCache), current up to a known
position of the log; before a batch it reads the events written since by anyone else (another
server process, a command saved alone) in one query and applies them. The ids a batch may create
(idempotency records, joining people) are looked up together in one query.

Several processes: a batch is decided without any lock, on what its writer knows, and its
events are mapped to stored events (encoded, compressed, encrypted) there too; then, holding the
writer lock (service/writer_lock.py), the writer catches up again and checks whether another
writer changed any aggregate the batch read or looked for. If none did, the prepared events are
inserted as they are; if one did, the batch is decided (and mapped) again under the lock, where
nothing can change under it, on the writer's cache the catch-up has just brought up to date and
on what the first decision's look-up learned. The processes parse, check and answer requests in
parallel, decide and map in parallel, and take turns only for the short check-and-insert; the
answers are given once the lock is released, the transaction having committed. A write that
still fails on the store's (id, version) constraint (a writer that takes no lock: token minting,
read records) sends each command of the batch through the ordinary retry loop: a conflict in one
request never fails the others.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, LRUCache, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording, StoredEvent

from domain.base import LedgerAggregate
from domain.errors import VersionConflict
from domain.organizations import Deployment, Organization
from domain.policies import LevyPolicies
from domain.vouchers import Book
from service.commands.base import Command
from service.idempotency import Fingerprint, IdempotencyKey
from service.unit_of_work import CommandResult, UnitOfWork
from service.writer_lock import Turn, writer_lock

MAX_BATCH_COMMANDS = 500
# The tree's aggregates (organisations, their books, the deployment, the levy policies) are
# held apart from the rest, in an LRU order of their own (Settings.tree_cache_size): every
# month's dues and levies read each union and its book again, while the members, vouchers and
# idempotency records between two such reads are mostly read once. In one cache, a month of
# those (more than 20,000 in the demo's province at scale 0.03) pushed the tree out, and every
# union and book was read from the store again each month.
TREE_KINDS = (Organization, Book, Deployment, LevyPolicies)
# More foreign events than this since the writer last looked: forget everything instead.
MAX_TAILED_EVENTS = 50_000
# Events a catch-up reads in its first query (more: it asks the head how many there are).
REFRESH_PAGE = 1_000
# A batch of this many commands or more catches up with other writers before it is decided,
# so that it is seldom decided again under the lock. A lone command (a lookup's record, a
# single client's POST) skips that query when the writer looked less than RECENT_LOOK_S ago:
# the catch-up under the lock still sees every other write, and deciding one command again
# costs less than the round trip it saves. After a longer pause (or before the first look)
# it catches up first, so that a backlog of other writers' events is read outside the lock.
REFRESH_FIRST_FROM = 2
RECENT_LOOK_S = 1.0
# An exclusive write that keeps meeting writers outside the lock gives up after this many.
EXCLUSIVE_ATTEMPTS = 5

log = logging.getLogger("ledger.writer")
T = TypeVar("T")


class WriterHost(Protocol):
    """What the writer needs of the application it writes for (service/application.py)."""

    settings: Any
    recorder: Any
    mapper: Any
    repository: Any
    member_ids: Any
    snapshot_writer: Any  # service/snapshot_writer.py SnapshotWriter, or None

    def head_position(self) -> int: ...
    def stored_ids(self, ids: set[UUID]) -> set[UUID]: ...
    def members_of(self, ids: set[UUID]) -> Sequence[LedgerAggregate]: ...
    def attempt(self, uow: UnitOfWork, pending: PendingCommand) -> CommandResult | dict: ...
    def run_alone(self, pending: PendingCommand) -> CommandResult: ...
    def save_prepared(
        self, processing_event: ProcessingEvent, stored: list[StoredEvent], insert: Any = None
    ) -> list[Recording]: ...
    def take_due_snapshots(self, objs: Any, recordings: list[Recording]) -> None: ...


@dataclass
class PendingCommand:
    """A command waiting for the writer: what to decide, and where to put the answer."""

    command: Command
    digest: Fingerprint
    idempotency: IdempotencyKey | None
    actor: str
    # Aggregates the command will look for that may not exist yet (a joining person's member
    # id): the batch finds out which exist in one query instead of one read each.
    may_create: tuple[UUID, ...] = ()
    # Members the command will read (Command.will_read): the batch reads those the writer
    # does not hold in one query.
    will_read: tuple[UUID, ...] = ()
    # Set when the answer goes out unmasked (a token with the pii flag): the read of what it
    # shows is recorded in the command's own write (Ledger.attempt), under this purpose.
    pii_read_purpose: str | None = None
    future: Future = field(default_factory=Future)


@dataclass
class ExclusiveOutcome:
    """What an exclusive write did: its answer, the aggregates it saved (copies, their events
    inserted), and the recordings of every event it inserted."""

    answer: Any
    aggregates: list[LedgerAggregate]
    recordings: list[Recording]


@dataclass
class ExclusiveWrite:
    """A write the writer does alone, in its own turn: a roster import's transaction
    (service/bulk_join.py). body(app, known, turn) runs under the writer lock on the writer's
    cache, brought up to date in that turn, and inserts at most once; an IntegrityError (a
    writer that takes no lock wrote first) runs it again on what that writer wrote."""

    body: Callable[[WriterHost, WriterCache, Turn], ExclusiveOutcome]
    future: Future = field(default_factory=Future)


class WriterCache:
    """The aggregates as the writer last saw them, and the position up to which they are known
    to be current. The tree's aggregates are held in an LRU order of their own (TREE_KINDS).

    The writer's own, apart from the repository's cache that request threads read through (and
    fast-forward in place), so that only the writer ever changes what is in it. Before a batch
    is decided, and again under the writer lock before it is written, one query reads the
    events written since the last look by writers other than this one (another process, or a
    command saved alone after a conflict). Their aggregates' ids are known at once; the events
    are decoded and applied to the aggregates they belong to when the cache is next read or
    written (under the lock only if the batch must be decided again). An aggregate may be newer
    than the position (read from the store after it): events it already reflects are
    skipped."""

    def __init__(self, app: WriterHost, *, maxsize: int, tree_size: int) -> None:
        self.app = app
        self.maxsize = maxsize
        self.tree_size = tree_size
        # The tree's aggregates (TREE_KINDS), and the rest, each in its own LRU order.
        self.tree: LRUCache[UUID, LedgerAggregate] = LRUCache(tree_size)
        self.aggregates: LRUCache[UUID, LedgerAggregate] = LRUCache(maxsize)
        self.tree_overflowed = False  # warned that the tree no longer fits
        # Tree aggregates read from the store because this cache did not hold them (the metric
        # ledger_writer_tree_reads): each once after a start, then only if the tree outgrew it.
        self.tree_reads = 0
        self.head: int | None = None  # every event up to here is read (and applied, or _unapplied)
        self.looked_at = 0.0  # time.monotonic() of the last catch-up
        self._unapplied: list[Any] = []

    def refresh(self, turn: Turn | None = None) -> set[UUID] | None:
        """Catches up with the store; returns the ids of the aggregates other writers changed
        since the last look (None: too many to say, or the first look). turn: the writer's
        turn to read through (under the writer lock), else the recorder.

        One query when fewer than a page of events came: the events after the last position
        read, whatever they are (none, usually, for a writer alone). The stores give
        positions in commit order (PostgreSQL's recorder inserts under a table lock), so
        those read are all there is up to the last of them."""
        self.looked_at = time.monotonic()
        if self.head is None:
            return self._reset()
        select = (turn or self.app.recorder).select_notifications
        notifications = select(start=self.head + 1, limit=REFRESH_PAGE)
        if len(notifications) == REFRESH_PAGE:  # many: the head tells how many more
            head = self.app.head_position()
            if head - self.head > MAX_TAILED_EVENTS:
                return self._reset(head)
            last = notifications[-1].id
            notifications = [
                *notifications,
                *select(start=last + 1, limit=max(head - last, 1), stop=head),
            ]
        if not notifications:
            return set()
        self._unapplied.extend(notifications)
        self.head = notifications[-1].id
        return {n.originator_id for n in notifications}

    def next_read(self) -> tuple[int, int] | None:
        """(start, limit) of the read refresh() makes first (None: it reads the head)."""
        return None if self.head is None else (self.head + 1, REFRESH_PAGE)

    def _reset(self, head: int | None = None) -> None:
        self.tree = LRUCache(self.tree_size)
        self.aggregates = LRUCache(self.maxsize)
        self._unapplied = []
        self.head = self.app.head_position() if head is None else head

    def apply(self) -> None:
        """Applies the events read by refresh() and not yet applied."""
        notifications, self._unapplied = self._unapplied, []
        for notification in notifications:
            aggregate_id = notification.originator_id
            aggregate = self._held(aggregate_id)
            if aggregate is None:
                continue
            if aggregate.version >= notification.originator_version:
                continue  # read from the store after this event
            if aggregate.version != notification.originator_version - 1:
                self._forget(aggregate_id)  # a gap: read it afresh when next needed
                continue
            event = self.app.mapper.to_domain_event(notification)
            event.mutate(aggregate)  # in place: only the writer holds these objects

    def _held(self, aggregate_id: UUID) -> LedgerAggregate | None:
        try:
            return self.aggregates.get(aggregate_id)
        except KeyError:
            pass
        try:
            return self.tree.get(aggregate_id)
        except KeyError:
            return None

    def _forget(self, aggregate_id: UUID) -> None:
        for cache in (self.tree, self.aggregates):
            with contextlib.suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    def _keep(self, aggregate: LedgerAggregate) -> None:
        if not isinstance(aggregate, TREE_KINDS):
            self.aggregates.put(aggregate.id, aggregate)
            return
        evicted, _ = self.tree.put(aggregate.id, aggregate)
        if evicted is not None and not self.tree_overflowed:
            # Once per process: from now on some unions and books are read from the store
            # again each month, and a command costs more the larger the tree.
            self.tree_overflowed = True
            log.warning(
                "the writer's tree cache is full (LEDGER_TREE_CACHE_SIZE=%d): unions and "
                "books now leave it and are read from the store again; size it to hold "
                "the tree, two per organisation (docs/operations.md, 'Memory')",
                self.tree_size,
            )

    def get(self, aggregate_id: UUID) -> LedgerAggregate | None:
        if self._unapplied:
            self.apply()
        return self._held(aggregate_id)

    def adopt(self, aggregate: LedgerAggregate) -> None:
        """An aggregate the writer read from the store (a private copy, at least as new as
        the head): kept, so that deciding the batch again needs no second read."""
        if isinstance(aggregate, TREE_KINDS):
            self.tree_reads += 1
        self._keep(aggregate)

    def saved(self, aggregates: list[LedgerAggregate], positions: list[int]) -> None:
        """After the writer's own write. The head moves past it only if no other write came
        between (the stores give one transaction's events consecutive positions, in commit
        order); otherwise the next refresh reads what came between."""
        self.apply()
        for aggregate in aggregates:
            self._keep(aggregate)
        if positions and self.head is not None and min(positions) == self.head + 1:
            self.head = max(positions)


class BatchView:
    """The aggregates as the batch has left them so far (each loaded once)."""

    def __init__(self, app: WriterHost, known: WriterCache) -> None:
        self.app = app
        self.known = known
        self.current: dict[UUID, LedgerAggregate | None] = {}
        # What the look-up learned: every id it settled, and those no stored aggregate had.
        self.settled: set[UUID] = set()
        self.absent: set[UUID] = set()
        self.reads: set[UUID] | None = None  # the ids the command being decided looked for

    def look_up(
        self, ids: set[UUID], earlier: BatchView | None = None, changed: set[UUID] | None = None
    ) -> None:
        """Notes which of these ids no stored aggregate has, in one query.

        earlier: the view of an earlier decision of the same batch, and changed the ids of
        every aggregate other writers changed since that decision's catch-up (which came
        before its look-up). Aggregates are never deleted, and one that the look-up found
        absent and that was created since is among changed: what the earlier look-up learned
        holds for every other id, and only ids it did not settle are asked for."""
        unknown = {i for i in ids if i not in self.current and self.known.get(i) is None}
        if earlier is not None and changed is not None:
            absent = (earlier.absent & unknown) - changed
            self.settled = earlier.settled & unknown
            self.absent = set(absent)
            unknown -= earlier.settled
        else:
            absent = set()
        if unknown:
            absent |= unknown - self.app.stored_ids(unknown)
            self.settled |= unknown
            self.absent |= absent
        for aggregate_id in absent:
            self.current[aggregate_id] = None

    def read_ahead(self, ids: set[UUID]) -> None:
        """Reads the members of these ids that neither the batch nor the writer holds, in one
        query, and keeps them as load() keeps what it reads (a batch's dues receipts may
        list thousands of members: one read each was most of their cost once they outgrew
        the cache). At most half the cache's size, so that they are still held when the
        batch's commands read them."""
        wanted = [i for i in ids if i not in self.current and self.known.get(i) is None]
        for aggregate in self.app.members_of(set(wanted[: self.known.maxsize // 2])):
            self.known.adopt(aggregate)

    def load(self, aggregate_id: UUID, *, snapshotted: bool = True) -> LedgerAggregate | None:
        if self.reads is not None:
            self.reads.add(aggregate_id)
        if aggregate_id not in self.current:
            # No copy of a known aggregate here: copy_of() copies before anything changes.
            aggregate = self.known.get(aggregate_id)
            if aggregate is None:
                try:
                    # a copy of its own
                    aggregate = self.app.repository.get(aggregate_id, snapshotted=snapshotted)
                except AggregateNotFoundError:
                    aggregate = None
                else:
                    self.known.adopt(aggregate)
            self.current[aggregate_id] = aggregate
        return self.current[aggregate_id]

    def copy_of(self, aggregate_id: UUID, *, snapshotted: bool = True) -> LedgerAggregate | None:
        aggregate = self.load(aggregate_id, snapshotted=snapshotted)
        return None if aggregate is None else deepcopy(aggregate)


@dataclass
class Step:
    """One command as decided on the batch's view: every id it looked for (found or not), and
    its outcome: a body to write, a replay's result, or an error."""

    pending: PendingCommand
    reads: set[UUID]
    outcome: dict[str, Any] | CommandResult | BaseException
    writes: bool = False  # outcome is a body: its events are to be written
    aggregates: dict[UUID, LedgerAggregate] = field(default_factory=dict)  # its copies
    keys: list[tuple[UUID, int]] = field(default_factory=list)  # its new events

    @property
    def wrote(self) -> set[UUID]:
        return {aggregate_id for aggregate_id, _ in self.keys}


@dataclass
class Decision:
    """A batch decided on a view: its commands in order (a duplicate of a key in the batch is
    answered by replay once the first is written, later), then their events mapped."""

    view: BatchView
    steps: list[Step] = field(default_factory=list)
    later: list[PendingCommand] = field(default_factory=list)
    # Deciding again: the ids whose state may differ from the earlier decision's (None: all).
    dirty: set[UUID] | None = None
    # The changed aggregates and their events, mapped to stored events (see _prepare).
    written: ProcessingEvent | None = None
    stored: list[StoredEvent] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return any(step.writes for step in self.steps)


class GroupCommitter:
    """The process's single writer of commands."""

    def __init__(self, app: WriterHost, max_batch: int = MAX_BATCH_COMMANDS) -> None:
        self.app = app
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[PendingCommand | ExclusiveWrite | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.known = WriterCache(
            app,
            maxsize=app.settings.aggregate_cache_size,
            tree_size=app.settings.tree_cache_size,
        )
        self.lock = writer_lock(app.recorder)
        self.batches = 0
        self.commands = 0
        self.decided_again = 0  # batches decided a second time, under the lock
        self.commands_decided_again = 0  # commands of those decided a second time
        # Seconds spent waiting for the writer lock, and holding it (api/metrics.py): when the
        # processes' turns together fill the time, the lock bounds what they write.
        self.lock_wait_s = 0.0
        self.turn_s = 0.0

    @property
    def tree_reads(self) -> int:
        return self.known.tree_reads

    @property
    def snapshots_written(self) -> int:
        snapshots = self.app.snapshot_writer
        return 0 if snapshots is None else snapshots.written

    @property
    def snapshots_dropped(self) -> int:
        snapshots = self.app.snapshot_writer
        return 0 if snapshots is None else snapshots.dropped

    def submit(self, pending: PendingCommand) -> CommandResult:
        return self.enqueue(pending).result()

    def enqueue(self, pending: PendingCommand) -> Future:
        """Queues the command; its future is answered once its batch is written."""
        self._ensure_started()
        self._queue.put(pending)
        return pending.future

    def enqueue_exclusive(self, write: ExclusiveWrite) -> Future:
        """Queues a write that the writer does alone, after every command queued before it;
        its future is answered with the write's answer once it is committed."""
        self._ensure_started()
        self._queue.put(write)
        return write.future

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=30)
                self._thread = None
            self.lock.close()

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="ledger-group-commit", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if isinstance(first, ExclusiveWrite):
                self._exclusive(first)
                continue
            batch = [first]
            after: ExclusiveWrite | None = None
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                if isinstance(item, ExclusiveWrite):
                    after = item  # in queue order: after the commands before it
                    break
                batch.append(item)
            try:
                self._commit(batch)
            except BaseException as exc:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
            if after is not None:
                self._exclusive(after)

    def _exclusive(self, write: ExclusiveWrite) -> None:
        """Runs an exclusive write in the writer's turn, again after an IntegrityError (a
        writer outside the lock got there first), then keeps what it saved."""
        conflict: IntegrityError | None = None
        try:
            for _ in range(EXCLUSIVE_ATTEMPTS):
                self.known.refresh()

                def in_turn(turn: Turn) -> ExclusiveOutcome:
                    self.known.refresh(turn)
                    return write.body(self.app, self.known, turn)

                try:
                    outcome = self._in_turn(in_turn)
                except IntegrityError as exc:
                    conflict = exc
                    continue
                for aggregate in outcome.aggregates:
                    aggregate.collect_events()  # inserted: no longer pending
                self.known.saved(
                    outcome.aggregates, [r.notification.id for r in outcome.recordings]
                )
                self._snapshot(outcome.aggregates, outcome.recordings)
                write.future.set_result(outcome.answer)
                return
            raise VersionConflict(
                f"a bulk write met a concurrent writer {EXCLUSIVE_ATTEMPTS} times; try again"
            ) from conflict
        except BaseException as exc:
            if not write.future.done():
                write.future.set_exception(exc)

    def _commit(self, batch: list[PendingCommand]) -> None:
        """Decides the batch on what the writer knows and maps its events, then, holding the
        writer lock, checks that no other writer changed anything the batch read, and inserts
        the events. If another did, the batch is decided again under the lock, where nothing
        can change under it. The answers are given after the lock is released."""
        self.batches += 1
        self.commands += len(batch)
        known = self.known
        recent = known.head is not None and time.monotonic() - known.looked_at < RECENT_LOOK_S
        if len(batch) >= REFRESH_FIRST_FROM or not recent:
            known.refresh()
        decision = self._prepare(self._decide(batch))

        def in_turn(turn: Turn) -> list[Recording] | None:
            nonlocal decision
            changed = self.known.refresh(turn)
            if changed is None or not changed.isdisjoint(decision.view.current):
                self.decided_again += 1
                decision = self._prepare(self._decide(batch, decision, changed), decision)
            return self._insert(decision, turn)

        recordings = self._in_turn(in_turn)
        self._answer(decision, recordings)

    def _in_turn(self, body: Callable[[Turn], T]) -> T:
        """body run in the writer's turn (self.lock), its wait and its turn timed."""
        asked = time.perf_counter()

        def timed(turn: Turn) -> T:
            started = time.perf_counter()
            self.lock_wait_s += started - asked
            try:
                return body(turn)
            finally:
                self.turn_s += time.perf_counter() - started

        # Every turn's body starts with the cache's catch-up (WriterCache.refresh).
        return self.lock.write(timed, read_ahead=self.known.next_read())

    def _decide(
        self,
        batch: list[PendingCommand],
        earlier: Decision | None = None,
        changed: set[UUID] | None = None,
    ) -> Decision:
        """Each command decided in turn on the batch's view; nothing answered yet.

        Deciding again (earlier: the first decision; changed: the ids of the aggregates other
        writers changed since its catch-up): a command stands as first decided unless it
        looked for an aggregate that may now differ from what it saw then: one another writer
        changed, or one written (then or now) by a command before it that is decided again.
        Everything else it looked for is as it was, and a command's outcome depends only on
        what it looks for (through the view): deciding it again would give the same."""
        view = BatchView(self.app, self.known)
        again = earlier if changed is not None else None  # None: everything decided afresh
        view.look_up(
            {i for p in batch for i in p.may_create}
            | {p.idempotency.record_id for p in batch if p.idempotency is not None},
            None if again is None else again.view,
            changed,
        )
        if again is None:  # first decided, outside the writer lock
            view.read_ahead({i for p in batch for i in p.will_read})
        dirty = set(changed or ())
        decision = Decision(view, dirty=None if again is None else dirty)
        first = {} if again is None else {id(step.pending): step for step in again.steps}
        keys_in_batch: set[UUID] = set()
        for pending in batch:
            if pending.idempotency is not None:
                if pending.idempotency.record_id in keys_in_batch:
                    decision.later.append(pending)  # a duplicate: replayed after the write
                    continue
                keys_in_batch.add(pending.idempotency.record_id)
            step = first.get(id(pending))
            if step is not None and step.reads.isdisjoint(dirty):
                if step.writes:
                    view.current.update(step.aggregates)  # as it left them the first time
            else:
                redone = self._step(view, pending)
                if earlier is not None:
                    self.commands_decided_again += 1
                if step is not None:
                    dirty |= step.wrote | redone.wrote
                step = redone
            decision.steps.append(step)
        return decision

    def _step(self, view: BatchView, pending: PendingCommand) -> Step:
        """Decides one command on the view: its copies replace the view's aggregates only if
        it succeeds."""
        uow = UnitOfWork(view, self.app.member_ids)
        reads: set[UUID] = set()
        view.reads = reads
        try:
            outcome = self.app.attempt(uow, pending)
        except Exception as exc:  # a domain error, or a defect: this command's alone
            return Step(pending, reads, exc)
        finally:
            view.reads = None
        if isinstance(outcome, CommandResult):
            return Step(pending, reads, outcome)  # a replay: nothing to write
        view.current.update(uow.aggregates)
        return Step(pending, reads, outcome, True, uow.aggregates, uow.new_event_keys())

    def _prepare(self, decision: Decision, earlier: Decision | None = None) -> Decision:
        """Gathers the new events of the aggregates the batch changed and maps them to stored
        events: the CPU-bound part of a write, done before the writer lock. Deciding again,
        the events of an aggregate no command decided again wrote, and no other writer
        changed, are those of the earlier decision: mapped once. The events stay pending
        (a command that stands may be built on again) until inserted (see _answer)."""
        if not decision.writes:
            return decision
        mapped: dict[tuple[UUID, int], StoredEvent] = {}
        if decision.dirty is not None and earlier is not None and earlier.written is not None:
            mapped = {
                (e.originator_id, e.originator_version): stored
                for e, stored in zip(earlier.written.events, earlier.stored, strict=True)
                if e.originator_id not in decision.dirty
            }
        written = ProcessingEvent()
        for aggregate in decision.view.current.values():
            # Only the changed ones: the others are the cache's own objects (or unchanged).
            if aggregate is not None and aggregate.pending_events:
                written.events.extend(aggregate.pending_events)
                written.aggregates[aggregate.id] = aggregate
        decision.written = written
        to_stored_event = self.app.mapper.to_stored_event
        decision.stored = [
            mapped.get((e.originator_id, e.originator_version)) or to_stored_event(e)
            for e in written.events
        ]
        return decision

    def _insert(self, decision: Decision, turn: Turn) -> list[Recording] | None:
        """Inserts the prepared events in one transaction, in the writer's turn. None: a writer
        outside the lock (a token, a read record) wrote one of these aggregates first."""
        if decision.written is None:
            return []
        try:
            return self.app.save_prepared(decision.written, decision.stored, turn.insert_events)
        except IntegrityError:
            return None

    def _answer(self, decision: Decision, recordings: list[Recording] | None) -> None:
        """After the batch's transaction committed (or failed on a conflict): the snapshots
        due, every command's answer, then the duplicates' replays."""
        if recordings is not None and decision.written is not None:
            for aggregate in decision.written.aggregates.values():
                aggregate.collect_events()  # inserted: no longer pending
            self.known.saved(
                [a for a in decision.view.current.values() if a is not None],
                [r.notification.id for r in recordings],
            )
            self._snapshot(list(decision.written.aggregates.values()), recordings)
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings or ()
        }
        for step in decision.steps:
            if isinstance(step.outcome, BaseException):
                step.pending.future.set_exception(step.outcome)
            elif not step.writes:
                step.pending.future.set_result(step.outcome)
            elif recordings is not None:
                position = max((positions[k] for k in step.keys), default=None)
                step.pending.future.set_result(CommandResult(step.outcome, position))
        if recordings is None:
            # Decide each command again, alone.
            for step in decision.steps:
                if step.writes:
                    self._run_alone(step.pending)
        for pending in decision.later:
            self._run_alone(pending)

    def _snapshot(self, aggregates: list[LedgerAggregate], recordings: list[Recording]) -> None:
        """The snapshots due after a write, taken before its answers (an answered client may
        then wait_for_snapshots) and inserted in the background (service/snapshot_writer.py).
        Only a cache of state for readers: the commands stand without it."""
        try:
            self.app.take_due_snapshots(aggregates, recordings)
        except Exception:
            log.warning("a snapshot after a write failed", exc_info=True)

    def _run_alone(self, pending: PendingCommand) -> None:
        try:
            pending.future.set_result(self.app.run_alone(pending))
        except BaseException as exc:
            pending.future.set_exception(exc)
