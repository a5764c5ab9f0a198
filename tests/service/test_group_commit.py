"""The group-commit writer's critical section (service/group_commit.py): events are mapped
before the writer lock and only inserted under it; a batch decided again under the lock writes
its new mapping; answers come only after the commit; a failed insert answers no command with
success; deciding again reuses what the first decision's look-up learned. Both stores.

Each batch here is exact: its commands are queued before a fresh application's writer starts,
so the writer takes them all at once; another application instance plays the other process.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import IntegrityError, OperationalError
from pydantic import ValidationError

from domain.errors import AlreadyMember, InvalidValue
from domain.organizations import Organization
from domain.vouchers import Book
from service import group_commit
from service.application import Ledger
from service.commands import (
    AcceptTransfer,
    ChangeOrganization,
    CorrectMember,
    ExitMember,
    JoinMember,
    RecordDues,
    RecordLevy,
    RetainMember,
    StartTransfer,
)
from service.group_commit import WriterCache
from storage.outage import PROBE_INTERVAL_S
from storage.settings import Settings
from tests.conftest import Backend
from tests.service.scenario import Tree, found_tree, lines, person

WAIT_S = 60


@pytest.fixture
def tree(ledger: Ledger) -> Tree:
    return found_tree(ledger)


def join(n: int, org: str) -> Callable[[Ledger], Any]:
    return lambda app: app.execute(
        JoinMember(
            id_number=person(n), name=f"会员{n}", organization_code=org, joined_on="2024-01-02"
        )
    )


def dues(
    org: str, amount: str = "10.00", *, month: int = 1, members: list | None = None
) -> Callable[[Ledger], Any]:
    return lambda app: app.execute(
        RecordDues(
            organization_code=org,
            period=f"2024-{month:02d}",
            amount=amount,
            received_on=f"2024-{month:02d}-28",
            members=members,
        )
    )


def queue_batch(app: Ledger, calls: list[Callable[[Ledger], Any]]) -> list[Future]:
    """Queues the commands for app's writer, which must not have started yet: once started
    (app.committer._ensure_started()) it takes them as one batch."""
    assert app.committer._thread is None
    pendings = []

    def collect(command: Any, *, actor: str = "system", idempotency: Any = None) -> None:
        pendings.append(app.prepare(command, actor=actor, idempotency=idempotency))

    app.execute = collect  # type: ignore[method-assign]  # the calls queue, not execute
    try:
        for call in calls:
            call(app)
    finally:
        del app.execute
    for pending in pendings:
        app.committer._queue.put(pending)
    return [pending.future for pending in pendings]


def run_batch(app: Ledger, calls: list[Callable[[Ledger], Any]]) -> list[Any]:
    futures = queue_batch(app, calls)
    app.committer._ensure_started()
    return [f.exception(WAIT_S) or f.result() for f in futures]


def run_batch_again(app: Ledger, calls: list[Callable[[Ledger], Any]]) -> list[Any]:
    """One batch on a writer that may have started: its loop is stopped first."""
    app.committer.close()
    return run_batch(app, calls)


def before_first_lock(
    app: Ledger, monkeypatch: pytest.MonkeyPatch, action: Callable[[], Any]
) -> None:
    """Runs action (another writer's command) once, after app's writer decided its first batch
    and before it takes the writer lock."""
    lock = app.committer.lock
    write = lock.write
    done: list[Any] = []

    def write_after_action(body: Callable[[Any], Any], **options: Any) -> Any:
        if not done:
            done.append(action())
        return write(body, **options)

    monkeypatch.setattr(lock, "write", write_after_action)


def on_insert(
    app: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    """Replaces the insert of app's writer, in each of its turns, by wrap(the turn's insert)."""
    lock = app.committer.lock
    write = lock.write

    class Wrapped:
        def __init__(self, turn: Any) -> None:
            self.select_notifications = turn.select_notifications
            self.insert_events = wrap(turn.insert_events)

    monkeypatch.setattr(
        lock, "write", lambda body, **options: write(lambda turn: body(Wrapped(turn)), **options)
    )


def spy(monkeypatch: pytest.MonkeyPatch, obj: Any, name: str) -> list[tuple[Any, ...]]:
    """Records each call's arguments of obj.name (on this instance)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(obj, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, recording)
    return calls


def test_a_batch_decided_again_under_the_lock_writes_its_second_mapping(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other process moves the base union between the levy's first decision and the
    lock: the levy reads the union's parents, so it is decided again under the lock, and the
    events inserted are those of the second decision (the first mapping would have gone in
    without any version conflict: the levy writes books, not the union)."""
    writer = backend.open()
    before_first_lock(
        writer,
        monkeypatch,
        lambda: ledger.execute(
            ChangeOrganization(
                code=tree.base_a, effective_on="2024-06-01", parent_code=tree.township
            )
        ),
    )
    mapped: list[list[Any]] = []
    prepare = writer.committer._prepare

    def recording_prepare(*args: Any) -> Any:
        decision = prepare(*args)
        mapped.append(decision.stored)
        return decision

    monkeypatch.setattr(writer.committer, "_prepare", recording_prepare)
    inserted = spy(monkeypatch, writer, "save_prepared")
    (levy,) = run_batch(
        writer,
        [
            lambda app: app.execute(
                RecordLevy(
                    receiving_organization_code=tree.county,
                    base_organization_code=tree.base_a,
                    employer_code=tree.employer_a,
                    period="2024-06",
                    payroll_total="100000.00",
                    amount="2000.00",
                    channel="tax",
                    received_on="2024-07-10",
                )
            )
        ],
    )
    assert writer.committer.decided_again == 1
    assert len(mapped) == 2 and mapped[0] is not mapped[1]
    assert [args[1] for args in inserted] == [mapped[1]]
    assert (tree.county, "212", "0.00", "100.00", tree.township) in lines(levy.body)
    stored = backend.open().get_book(tree.county).owed("212")
    assert str(stored[tree.township]) == "100.00"


def test_answers_wait_for_the_commit_and_a_failed_insert_answers_no_command(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = backend.open()
    futures = queue_batch(
        writer, [join(1, tree.base_a), dues(tree.base_a), join(2, "no-such-union")]
    )
    done_at_insert: list[list[bool]] = []

    def failing_insert(insert: Any) -> Any:
        def failing(stored_events: Any) -> Any:
            done_at_insert.append([f.done() for f in futures])
            raise OperationalError("the database went away")

        return failing

    on_insert(writer, monkeypatch, failing_insert)
    head = ledger.head_position()
    writer.committer._ensure_started()
    outcomes = [f.exception(WAIT_S) for f in futures]
    assert done_at_insert == [[False, False, False]]  # not even the refused join
    assert all(isinstance(o, OperationalError) for o in outcomes)
    assert ledger.head_position() == head
    monkeypatch.undo()
    # On PostgreSQL the failure closed the outage gate (storage/outage.py): the next call
    # after the probe interval finds the database back.
    time.sleep(PROBE_INTERVAL_S * 1.5)
    # The writer's cache kept nothing of the failed batch: the same commands now land once.
    member = writer.execute(
        JoinMember(
            id_number=person(1), name="会员1", organization_code=tree.base_a, joined_on="2024-01-02"
        )
    )
    assert member.position is not None
    assert backend.open().get_organization(tree.base_a)["member_count"] == 1


def test_a_refused_command_is_answered_after_the_batch_commits(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = backend.open()
    futures = queue_batch(writer, [join(1, tree.base_a), join(2, "no-such-union")])
    done_at_insert: list[list[bool]] = []

    def observed_insert(insert: Any) -> Any:
        def observed(stored_events: Any) -> Any:
            done_at_insert.append([f.done() for f in futures])
            return insert(stored_events)

        return observed

    on_insert(writer, monkeypatch, observed_insert)
    writer.committer._ensure_started()
    assert futures[0].result(WAIT_S).position is not None
    assert isinstance(futures[1].exception(WAIT_S), InvalidValue)
    assert done_at_insert == [[False, False]]


def test_a_version_conflict_on_insert_sends_each_command_alone(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer outside the lock got there first: no command of the batch fails for it."""
    writer = backend.open()
    conflicts: list[int] = []

    def conflicting_once(insert: Any) -> Any:
        def conflicting(stored_events: Any) -> Any:
            if not conflicts:
                conflicts.append(len(stored_events))
                raise IntegrityError("duplicate key value violates unique constraint")
            return insert(stored_events)

        return conflicting

    on_insert(writer, monkeypatch, conflicting_once)
    outcomes = run_batch(writer, [join(1, tree.base_a), join(2, tree.base_a), dues(tree.base_a)])
    assert conflicts and not any(isinstance(o, BaseException) for o in outcomes)
    assert backend.open().get_organization(tree.base_a)["member_count"] == 2


def test_deciding_again_reuses_the_look_up_and_sees_who_joined_meanwhile(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Person 1 joins elsewhere through the other process between the batch's decision and
    the lock: deciding again refuses their join and still admits person 2, without asking the
    store again which members exist (what the first look-up learned holds for every id no
    event named since)."""
    writer = backend.open()
    before_first_lock(writer, monkeypatch, lambda: join(1, tree.base_b)(ledger))
    looked_up = spy(monkeypatch, writer, "stored_ids")
    alone = spy(monkeypatch, writer, "run_alone")
    first, second = run_batch(writer, [join(1, tree.base_a), join(2, tree.base_a)])
    assert writer.committer.decided_again == 1
    assert alone == []  # decided right under the lock, not by the fallback
    assert isinstance(first, AlreadyMember)
    assert second.body["organization_code"] == tree.base_a
    assert len(looked_up) == 1
    fresh = backend.open()
    assert fresh.get_organization(tree.base_a)["member_count"] == 1
    assert fresh.get_organization(tree.base_b)["member_count"] == 1


def test_deciding_again_redoes_only_the_commands_that_read_what_changed(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Base B's union changes (another process admits someone) between the decision and the
    lock: the join at base B is decided again, and so is the correction of the member that
    join creates (it reads what a command decided again wrote); the dues at bases A and C
    stand, their events mapped once."""
    writer = backend.open()
    before_first_lock(writer, monkeypatch, lambda: join(9, tree.base_b)(ledger))
    attempts = spy(monkeypatch, writer, "attempt")
    mapped = spy(monkeypatch, writer.mapper, "to_stored_event")
    inserted = spy(monkeypatch, writer, "save_prepared")
    member_id = writer.member_id_for(person(1))
    outcomes = run_batch(
        writer,
        [
            dues(tree.base_a),
            join(1, tree.base_b),
            lambda app: app.execute(
                CorrectMember(member_id=str(member_id), changes={"migrant_worker": True})
            ),
            dues(tree.base_c),
        ],
    )
    assert not any(isinstance(o, BaseException) for o in outcomes)
    assert writer.committer.decided_again == 1
    assert Counter(args[1].command.command_name for args in attempts) == {
        "record_dues": 2,
        "join_member": 2,
        "correct_member": 2,
    }
    ((written, stored, _),) = inserted
    again = {Organization.id_for(tree.base_b), member_id}
    assert len(mapped) == len(stored) + sum(e.originator_id in again for e in written.events)
    fresh = backend.open()
    assert fresh.get_organization(tree.base_b)["member_count"] == 2
    assert fresh.get_member(str(member_id))["organization_code"] == tree.base_b
    assert fresh.repository.get(member_id).migrant_worker is True


def test_other_writers_events_are_decoded_after_the_lock_when_the_batch_needs_none(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = backend.open()
    writer.execute(
        RecordDues(
            organization_code=tree.base_b, period="2024-01", amount="1.00", received_on="2024-01-31"
        )
    )  # the writer now holds base B's union
    lock = writer.committer.lock
    held: list[bool] = [False]
    write = lock.write

    def write_held(body: Callable[[Any], Any], **options: Any) -> Any:
        join(1, tree.base_b)(ledger)  # the other process changes base B's union

        def held_body(turn: Any) -> Any:
            held[0] = True
            try:
                return body(turn)
            finally:
                held[0] = False

        return write(held_body, **options)

    monkeypatch.setattr(lock, "write", write_held)
    decode = writer.mapper.to_domain_event
    decoded_under_lock: list[Any] = []

    def observed_decode(notification: Any) -> Any:
        if held[0]:
            decoded_under_lock.append(notification)
        return decode(notification)

    monkeypatch.setattr(writer.mapper, "to_domain_event", observed_decode)
    writer.execute(
        RecordDues(
            organization_code=tree.base_a, period="2024-01", amount="2.00", received_on="2024-01-31"
        )
    )
    assert writer.committer.decided_again == 0
    assert decoded_under_lock == []
    union = writer.committer.known.get(Organization.id_for(tree.base_b))
    assert union is not None and union.member_count == 1  # applied after the lock


def test_what_a_batch_wrote_is_cached_with_nothing_pending(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch builds on the cached aggregates: an event left pending there would be
    inserted again (and fail the whole batch on its version)."""
    writer = backend.open()
    alone = spy(monkeypatch, writer, "run_alone")
    for amount in ("1.00", "2.00"):
        assert not isinstance(
            run_batch_again(writer, [dues(tree.base_a, amount)])[0], BaseException
        )
    book = writer.committer.known.get(Book.id_for(tree.base_a))
    assert book is not None and book.version > 1 and not book.pending_events
    assert alone == []
    assert backend.open().get_book(tree.base_a).balances["102"] == 300


def test_the_writers_cache_keeps_an_aggregate_read_after_its_last_look(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    """An aggregate read from the store already reflects events the cache has not read yet:
    catching up skips them instead of forgetting the aggregate."""
    other = backend.open()
    known = WriterCache(ledger, maxsize=20_000, tree_size=20_000)
    known.refresh()
    join(1, tree.base_a)(other)
    union = ledger.repository.get(Organization.id_for(tree.base_a))
    known.adopt(union)
    assert Organization.id_for(tree.base_a) in known.refresh()
    assert known.get(union.id) is union and union.member_count == 1


def test_members_and_vouchers_do_not_push_the_tree_out_of_the_writers_cache(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each month's dues read every union and its book again; in a province the members,
    vouchers and idempotency records written between two such reads are more than the cache
    holds. The tree is held apart, so they cannot push it out."""
    writer = backend.open()
    writer.committer.known = WriterCache(writer, maxsize=3, tree_size=20_000)
    assert not isinstance(run_batch(writer, [dues(tree.base_a)])[0], BaseException)
    # More members than the cache holds besides the tree.
    joined = run_batch_again(writer, [join(n, tree.base_b) for n in range(10, 16)])
    assert not any(isinstance(r, BaseException) for r in joined)
    reads = spy(monkeypatch, writer.repository, "get")
    assert not isinstance(run_batch_again(writer, [dues(tree.base_a, month=2)])[0], BaseException)
    union_a = {Organization.id_for(tree.base_a), Book.id_for(tree.base_a)}
    assert not union_a & {call[0] for call in reads}


def test_the_cache_sizes_come_from_the_settings(backend: Backend) -> None:
    """A province's operator sizes the caches to its tree (docs/operations.md): the writer's
    tree, its other aggregates and the repository's cache each take their setting."""
    ledger = Ledger(
        backend.settings.model_copy(update={"tree_cache_size": 150, "aggregate_cache_size": 300})
    )
    try:
        known = ledger.committer.known
        assert (known.tree.maxsize, known.aggregates.maxsize) == (150, 300)
        assert ledger.repository.cache.maxsize == 300
    finally:
        ledger.close()


def test_a_tree_larger_than_its_cache_is_logged_once(
    backend: Backend, tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator learns that the tree no longer fits (and which setting to raise) from the
    log, once, not from a slower month."""
    writer = backend.open()
    writer.committer.known = WriterCache(writer, maxsize=20_000, tree_size=2)
    with caplog.at_level("WARNING", logger="ledger.writer"):
        assert not isinstance(run_batch(writer, [dues(tree.base_a)])[0], BaseException)
        assert not isinstance(run_batch_again(writer, [dues(tree.base_b)])[0], BaseException)
    full = [r for r in caplog.records if "tree cache is full" in r.getMessage()]
    assert len(full) == 1 and "LEDGER_TREE_CACHE_SIZE=2" in full[0].getMessage()


def test_the_tree_read_from_the_store_is_counted_once_while_it_fits(
    backend: Backend, tree: Tree
) -> None:
    """ledger_writer_tree_reads: a writer started on an existing tree reads the union once (its
    book is opened by this first receipt); the next month finds both held. With a cache too
    small for the tree, every month reads again and the count keeps rising."""
    writer = backend.open()
    assert not isinstance(run_batch(writer, [dues(tree.base_a)])[0], BaseException)
    first = writer.committer.tree_reads
    assert first >= 1
    assert not isinstance(run_batch_again(writer, [dues(tree.base_a, month=2)])[0], BaseException)
    assert writer.committer.tree_reads == first

    small = backend.open()
    small.committer.known = WriterCache(small, maxsize=20_000, tree_size=1)
    for month in (3, 4):
        before = small.committer.tree_reads
        assert not isinstance(
            run_batch_again(small, [dues(tree.base_a, month=month)])[0], BaseException
        )
        assert small.committer.tree_reads > before


def test_cache_sizes_below_a_hundred_are_refused() -> None:
    with pytest.raises(ValidationError, match="tree_cache_size"):
        Settings(tree_cache_size=99)
    with pytest.raises(ValidationError, match="aggregate_cache_size"):
        Settings(aggregate_cache_size=0)


def test_a_failed_snapshot_fails_no_command(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = backend.open()

    def failing_snapshots(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("the snapshot store went away")

    monkeypatch.setattr(writer, "take_due_snapshots", failing_snapshots)
    outcomes = run_batch(writer, [join(1, tree.base_a), dues(tree.base_a)])
    assert not any(isinstance(o, BaseException) for o in outcomes)


def joins_past_the_interval(app: Ledger, org_code: str, first: int) -> int:
    """Joins people into the union until its version passes a multiple of its snapshot
    interval; returns the next person's number."""
    interval = Ledger.snapshot_every[Organization]
    n = first
    while True:
        join(n, org_code)(app)
        n += 1
        union = app.repository.get(Organization.id_for(org_code), snapshotted=False)
        if union.version % interval == 0:
            return n


def test_the_writers_snapshots_are_written_in_the_background_and_restore_the_union(
    backend: Backend, ledger: Ledger, tree: Tree
) -> None:
    """A snapshot the group-commit writer takes goes to the snapshot writer, and once it is
    written the union restored from it equals the union replayed from its events."""
    writer = backend.open()
    union_id = Organization.id_for(tree.base_a)
    joins_past_the_interval(writer, tree.base_a, 1)
    writer.wait_for_snapshots()
    assert writer.snapshots is not None
    [snapshot] = writer.snapshots.get(union_id, desc=True, limit=1)
    assert snapshot.originator_version % Ledger.snapshot_every[Organization] == 0
    fresh = backend.open()
    version = snapshot.originator_version
    restored = fresh.repository.get(union_id, version=version)
    replayed = fresh.repository.get(union_id, version=version, snapshotted=False)
    mapper = fresh.mapper

    def as_stored(union: Organization) -> dict[str, Any]:
        """The union's state as a snapshot of it reads back (tuples become lists)."""
        return mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(union))).state

    assert as_stored(restored) == as_stored(replayed)
    assert writer.committer.snapshots_written >= 1  # ledger_writer_snapshots_written_total


def test_a_snapshot_the_background_fails_to_write_is_logged_and_fails_no_command(
    backend: Backend, ledger: Ledger, tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """The snapshot writer's insert failing (the store away) loses the snapshot, not a
    command; the next one due is written, and closing the ledger waits for what is queued."""
    writer = backend.open()
    assert writer.snapshot_writer is not None
    union_id = Organization.id_for(tree.base_a)
    inserting = writer.snapshot_writer._insert

    def away(snapshots: Any) -> None:
        raise OperationalError("the snapshot store went away")

    writer.snapshot_writer._insert = away  # type: ignore[method-assign]
    n = joins_past_the_interval(writer, tree.base_a, 1)
    writer.wait_for_snapshots()
    assert writer.committer.snapshots_dropped >= 1  # ledger_writer_snapshots_dropped_total
    assert "snapshots were not written" in caplog.text
    assert writer.snapshots is not None
    assert list(writer.snapshots.get(union_id)) == []
    writer.snapshot_writer._insert = inserting  # type: ignore[method-assign]
    joins_past_the_interval(writer, tree.base_a, n)
    writer.close()  # waits for the queued snapshot
    [snapshot] = backend.open().snapshots.get(union_id)  # type: ignore[union-attr]
    assert snapshot.originator_version == 2 * Ledger.snapshot_every[Organization]


def test_a_lone_command_skips_the_first_catch_up_and_is_decided_again_on_what_changed(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lone command (a lookup's record, a single client's POST) soon after the writer's last
    look is decided on its cache without the catch-up query before it; the catch-up under the
    lock still sees the other process's join into the same union, and the command is decided
    again there, not sent alone after a conflict. A batch of two catches up first, as before,
    and so does a lone command after a pause."""
    # "Soon" is a minute here, so that a slow machine between two batches changes nothing.
    monkeypatch.setattr(group_commit, "RECENT_LOOK_S", 60.0)
    writer = backend.open()
    run_batch(writer, [dues(tree.base_a)])  # the first batch looks first: no position yet
    refreshes = spy(monkeypatch, writer.committer.known, "refresh")
    alone = spy(monkeypatch, writer, "run_alone")
    before_first_lock(writer, monkeypatch, lambda: join(1, tree.base_b)(ledger))
    decided_again = writer.committer.decided_again
    [joined] = run_batch_again(writer, [join(2, tree.base_b)])
    assert joined.body["organization_code"] == tree.base_b
    assert [args for args in refreshes if not args] == []  # none before the decision
    assert len(refreshes) == 1  # the one under the lock, given the writer's turn
    assert writer.committer.decided_again == decided_again + 1
    assert alone == []
    assert backend.open().get_organization(tree.base_b)["member_count"] == 2

    refreshes.clear()
    run_batch_again(writer, [dues(tree.base_a), dues(tree.base_c)])
    assert [args for args in refreshes if not args] == [()]  # a batch of two looks first

    # A lone command after a pause looks first too: a backlog of other writers' events is
    # read outside the lock, not in the writer's turn.
    refreshes.clear()
    writer.committer.known.looked_at -= 60.0
    run_batch_again(writer, [dues(tree.base_c)])
    assert [args for args in refreshes if not args] == [()]


def _members_with_histories(ledger: Ledger, tree: Tree) -> list[str]:
    """Members with one event, and members with several of each kind."""
    ids = [join(n, tree.base_a)(ledger).body["member_id"] for n in range(80, 86)]
    ledger.execute(RetainMember(member_id=ids[1], effective_on="2024-04-01", reason_code=3))
    ledger.execute(CorrectMember(member_id=ids[2], changes={"name": "改名"}, note="typo"))
    moved = ledger.execute(
        StartTransfer(
            member_id=ids[3],
            to_organization_code=tree.base_b,
            effective_on="2024-02-01",
            reason_code=1,
        )
    )
    ledger.execute(
        AcceptTransfer(
            member_id=ids[3], transfer_id=moved.body["transfer_id"], effective_on="2024-02-01"
        )
    )
    ledger.execute(
        ExitMember(member_id=ids[4], effective_on="2024-02-01", change_code=6, reason_code=5)
    )
    return ids


def test_members_read_in_one_query_are_the_members_the_repository_reads(
    ledger: Ledger, tree: Tree
) -> None:
    ids = [UUID(i) for i in _members_with_histories(ledger, tree)]
    not_members = {Organization.id_for(tree.base_a), Book.id_for(tree.base_a), uuid4()}
    read = {m.id: m for m in ledger.members_of({*ids, *not_members})}
    assert set(read) == set(ids)  # an organisation, a book and an unknown id are left out
    for member_id in ids:
        stored = ledger.repository.get(member_id, snapshotted=False)
        assert type(read[member_id]) is type(stored) and vars(read[member_id]) == vars(stored)


def test_a_batch_reads_the_members_its_dues_receipts_list_in_one_query(
    backend: Backend, ledger: Ledger, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _members_with_histories(ledger, tree)
    listed = [ids[0], ids[2], ids[5]]  # active on base A's roll
    wage, amount = "5000.00", "25.00"
    receipt = [{"member_id": i, "wage": wage, "amount": amount} for i in listed]
    writer = backend.open()  # a writer that holds none of them
    reads = spy(monkeypatch, writer.repository, "get")
    queries = spy(monkeypatch, writer, "members_of")
    results = run_batch(
        writer,
        [
            dues(tree.base_a, "75.00", members=receipt),
            dues(tree.base_a, "50.00", month=2, members=receipt[:2]),
        ],
    )
    bodies = [r.body for r in results]
    assert [len(b["details"]["members"]) for b in bodies] == [3, 2]
    assert len(queries) == 1 and queries[0][0] == {UUID(i) for i in listed}
    assert not {UUID(i) for i in listed} & {call[0] for call in reads}
