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

Several processes: a batch is decided without any lock, on what its writer knows; then, holding
the writer lock (service/writer_lock.py), the writer catches up again and checks whether another
writer changed any aggregate the batch read or looked for. If none did, the batch is written as
decided; if one did, it is decided again under the lock, where nothing can change under it. The
processes parse, check and answer requests in parallel, decide in parallel, and take turns only
for the short check-and-write. A write that still fails on the store's (id, version) constraint
(a writer that takes no lock: token minting, read records) sends each command of the batch
through the ordinary retry loop: a conflict in one request never fails the others.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, LRUCache
from eventsourcing.persistence import IntegrityError

from domain.base import LedgerAggregate
from service.writer_lock import writer_lock

if TYPE_CHECKING:
    from service.application import CommandResult, Ledger, UnitOfWork
    from service.idempotency import IdempotencyKey

MAX_BATCH_COMMANDS = 500
WRITER_CACHE_SIZE = 20_000
# More foreign events than this since the writer last looked: forget everything instead.
MAX_TAILED_EVENTS = 50_000


@dataclass
class PendingCommand:
    """A command waiting for the writer: what to decide, and where to put the answer."""

    command: str
    digest: str
    idempotency: IdempotencyKey | None
    actor: str
    decide: Callable[[UnitOfWork], dict[str, Any]]
    # Aggregates the command will look for that may not exist yet (a joining person's member
    # id): the batch finds out which exist in one query instead of one read each.
    may_create: tuple[UUID, ...] = ()
    future: Future = field(default_factory=Future)


class WriterCache:
    """The aggregates as the writer last saw them, and the position up to which they are known
    to be current.

    The writer's own, apart from the repository's cache that request threads read through (and
    fast-forward in place), so that only the writer ever changes what is in it. Before a batch
    is decided, and again under the writer lock before it is written, one cheap query reads the
    store's head; events the writer did not write itself (another process's, or a command's
    saved alone after a conflict) are read from the log in one query and applied to the
    aggregates they belong to."""

    def __init__(self, app: Ledger, maxsize: int = WRITER_CACHE_SIZE) -> None:
        self.app = app
        self.maxsize = maxsize
        self.aggregates: LRUCache[UUID, LedgerAggregate] = LRUCache(maxsize)
        self.head: int | None = None  # every event up to here is reflected in the cache

    def refresh(self) -> set[UUID] | None:
        """Catches up with the store; returns the ids of the aggregates other writers changed
        since the last look (None: too many to say, or the first look)."""
        head = self.app.head_position()
        changed: set[UUID] | None = set()
        if self.head is None or head - self.head > MAX_TAILED_EVENTS:
            self.aggregates = LRUCache(self.maxsize)
            changed = None
        elif head > self.head:
            changed = self._apply(self.app.recorder.select_notifications(
                start=self.head + 1, limit=head - self.head, stop=head))
        self.head = head
        return changed

    def _apply(self, notifications: Sequence[Any]) -> set[UUID]:
        changed: set[UUID] = set()
        for notification in notifications:
            aggregate_id = notification.originator_id
            changed.add(aggregate_id)
            aggregate = self.get(aggregate_id)
            if aggregate is None:
                continue
            if aggregate.version != notification.originator_version - 1:
                self._forget(aggregate_id)  # a gap: read it afresh when next needed
                continue
            event = self.app.mapper.to_domain_event(notification)
            event.mutate(aggregate)  # in place: only the writer holds these objects
        return changed

    def _forget(self, aggregate_id: UUID) -> None:
        with contextlib.suppress(KeyError):
            self.aggregates.get(aggregate_id, evict=True)

    def get(self, aggregate_id: UUID) -> LedgerAggregate | None:
        try:
            return self.aggregates.get(aggregate_id)
        except KeyError:
            return None

    def saved(self, aggregates: list[LedgerAggregate], positions: list[int]) -> None:
        """After the writer's own write. The head moves past it only if no other write came
        between (the stores give one transaction's events consecutive positions, in commit
        order); otherwise the next refresh reads what came between."""
        for aggregate in aggregates:
            self.aggregates.put(aggregate.id, aggregate)
        if positions and self.head is not None and min(positions) == self.head + 1:
            self.head = max(positions)


class BatchView:
    """The aggregates as the batch has left them so far (each loaded once)."""

    def __init__(self, app: Ledger, known: WriterCache) -> None:
        self.app = app
        self.known = known
        self.current: dict[UUID, LedgerAggregate | None] = {}

    def look_up(self, ids: set[UUID]) -> None:
        """Notes which of these ids no stored aggregate has, in one query."""
        unknown = {i for i in ids if i not in self.current and self.known.get(i) is None}
        for aggregate_id in unknown - self.app.stored_ids(unknown):
            self.current[aggregate_id] = None

    def load(self, aggregate_id: UUID) -> LedgerAggregate | None:
        if aggregate_id not in self.current:
            # No copy of a known aggregate here: copy_of() copies before anything changes.
            aggregate = self.known.get(aggregate_id)
            if aggregate is None:
                try:
                    aggregate = self.app.repository.get(aggregate_id)
                except AggregateNotFoundError:
                    aggregate = None
            self.current[aggregate_id] = aggregate
        return self.current[aggregate_id]

    def copy_of(self, aggregate_id: UUID) -> LedgerAggregate | None:
        aggregate = self.load(aggregate_id)
        return None if aggregate is None else deepcopy(aggregate)


@dataclass
class Decision:
    """A batch decided on a view: commands to write, commands answered without a write, and
    duplicates of a key in the batch (answered by replay once the first is written)."""

    view: BatchView
    decided: list[tuple[PendingCommand, dict[str, Any], list[tuple[UUID, int]]]] = field(
        default_factory=list)
    answered: list[tuple[PendingCommand, CommandResult | BaseException]] = field(
        default_factory=list)
    later: list[PendingCommand] = field(default_factory=list)


class GroupCommitter:
    """The process's single writer of commands."""

    def __init__(self, app: Ledger, max_batch: int = MAX_BATCH_COMMANDS) -> None:
        self.app = app
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[PendingCommand | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.known = WriterCache(app)
        self.lock = writer_lock(app.recorder)
        self.batches = 0
        self.commands = 0
        self.decided_again = 0  # batches decided a second time, under the lock

    def submit(self, pending: PendingCommand) -> CommandResult:
        return self.enqueue(pending).result()

    def enqueue(self, pending: PendingCommand) -> Future:
        """Queues the command; its future is answered once its batch is written."""
        self._ensure_started()
        self._queue.put(pending)
        return pending.future

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
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            try:
                self._commit(batch)
            except BaseException as exc:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)

    def _commit(self, batch: list[PendingCommand]) -> None:
        """Decides the batch on what the writer knows, then, holding the writer lock, checks
        that no other writer changed anything the batch read, and writes it. If another did,
        the batch is decided again under the lock, where nothing can change under it."""
        self.batches += 1
        self.commands += len(batch)
        self.known.refresh()
        decision = self._decide(batch)
        self.lock.acquire()
        try:
            changed = self.known.refresh()
            if changed is None or not changed.isdisjoint(decision.view.current):
                self.decided_again += 1
                decision = self._decide(batch)
            self._write(decision)
        finally:
            self.lock.release()
        for pending in decision.later:
            self._run_alone(pending)

    def _decide(self, batch: list[PendingCommand]) -> Decision:
        """Each command decided in turn on the batch's view; nothing answered yet."""
        from service.unit_of_work import CommandResult, UnitOfWork

        view = BatchView(self.app, self.known)
        view.look_up({i for p in batch for i in p.may_create}
                     | {p.idempotency.record_id for p in batch if p.idempotency is not None})
        decision = Decision(view)
        keys_in_batch: set[UUID] = set()
        for pending in batch:
            if pending.idempotency is not None:
                if pending.idempotency.record_id in keys_in_batch:
                    decision.later.append(pending)  # a duplicate: replayed after the write
                    continue
                keys_in_batch.add(pending.idempotency.record_id)
            uow = UnitOfWork(self.app, view)
            try:
                outcome = self.app._attempt(uow, pending)
            except Exception as exc:  # a domain error, or a defect: this command's alone
                decision.answered.append((pending, exc))
                continue
            if isinstance(outcome, CommandResult):
                decision.answered.append((pending, outcome))  # a replay: nothing to write
                continue
            decision.decided.append((pending, outcome, uow.new_event_keys()))
            view.current.update(uow.aggregates)
        return decision

    def _write(self, decision: Decision) -> None:
        from service.unit_of_work import CommandResult

        for pending, answer in decision.answered:
            if isinstance(answer, BaseException):
                pending.future.set_exception(answer)
            else:
                pending.future.set_result(answer)
        if not decision.decided:
            return
        aggregates = [a for a in decision.view.current.values() if a is not None]
        try:
            # Only the changed ones: save() checks each object against typing protocols,
            # which costs tens of microseconds apiece on Python 3.11.
            recordings = self.app.save(*(a for a in aggregates if a.pending_events))
        except IntegrityError:
            # A writer outside the lock (a token, a read record) wrote one of these
            # aggregates: decide each command again, alone.
            for pending, _, _ in decision.decided:
                self._run_alone(pending)
            return
        self.known.saved(aggregates, [r.notification.id for r in recordings])
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        for pending, body, keys in decision.decided:
            position = max((positions[k] for k in keys), default=None)
            pending.future.set_result(CommandResult(body, position))

    def _run_alone(self, pending: PendingCommand) -> None:
        try:
            pending.future.set_result(self.app._run_alone(pending))
        except BaseException as exc:
            pending.future.set_exception(exc)
