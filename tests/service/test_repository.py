"""service/repository.py: replay() projects stored events into the aggregate eventsourcing's
project_aggregate() gives, through the ledger's repository too. Both stores."""

from __future__ import annotations

import datetime

import pytest
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent

from domain.money import Money
from domain.period import Month
from domain.vouchers import Book, credit, debit
from service.application import Ledger
from service.repository import is_current, replay
from tests.domain.builders import join as join_in_memory
from tests.domain.builders import small_tree


def test_replay_gives_the_aggregate_project_aggregate_gives(ledger: Ledger) -> None:
    tree = small_tree()
    members = [join_in_memory(tree["b1"]) for _ in range(3)]
    ledger.save(*members, *tree.values())
    for aggregate in (*members, *tree.values()):
        ours = replay(None, ledger.events.get(aggregate.id))
        library = project_aggregate(None, ledger.events.get(aggregate.id))
        assert type(ours) is type(library) and vars(ours) == vars(library)
        # The repository reads with replay(): from the store, at a version, and from the cache.
        uncached = ledger.repository._reconstruct_aggregate(aggregate.id, None, project_aggregate)
        assert vars(ledger.repository.get(aggregate.id)) == vars(uncached) == vars(library)
        first = ledger.repository.get(aggregate.id, version=1)
        assert vars(first) == vars(project_aggregate(None, ledger.events.get(aggregate.id, lte=1)))
    # Something that is not an event fails as loudly as it does in project_aggregate().
    with pytest.raises(AttributeError):
        replay(None, [object()])


def test_a_book_snapshot_from_before_dated_movements_is_passed_over(ledger: Ledger) -> None:
    """A snapshot of a Book taken before class version 2 has no dated movements: the book is
    replayed from its events instead of restored from it, and a fresh snapshot is used."""
    book = Book(organization_code="A")
    book.record(
        "v1",
        datetime.date(2024, 3, 1),
        [debit("A", "102", Money(500)), credit("A", "401", Money(500))],
    )
    book.record(
        "v2",
        datetime.date(2024, 3, 9),
        [debit("A", "501", Money(200)), credit("A", "102", Money(200))],
    )
    ledger.save(book)
    old = Book.Snapshot.take(book)
    old.state.pop("class_version")
    old.state.pop("movements")
    ledger.snapshots.put([old])
    assert not is_current(old)
    ledger.repository.cache = None
    restored = ledger.repository.get(book.id)
    assert restored.movements == {"102": {"2024-03-01": 500, "2024-03-09": -200}}
    fresh = Book.Snapshot.take(book)
    assert is_current(fresh)
    assert Book.Snapshot.take(restored).state == fresh.state


# A month close as the code before the year-end close stored it (version 1, no
# year_end_voucher): its plaintext, before compression and encryption.
V1_MONTH_CLOSED = (
    '{"timestamp":{"_type_":"datetime_iso","_data_":"2025-01-05T02:00:00+00:00"},'
    '"actor":"cli:demo","period":"2024-12"}'
)


def test_a_month_close_stored_before_the_year_end_close_reads_back(ledger: Ledger) -> None:
    book = Book(organization_code="A")
    book.record(
        "v1",
        datetime.date(2024, 12, 1),
        [debit("A", "102", Money(500)), credit("A", "401", Money(500))],
    )
    ledger.save(book)
    state = ledger.mapper._cipher().seal(
        ledger.mapper.compressor.compress(V1_MONTH_CLOSED.encode()),
        book.id,
        3,
        "ledger:Book.MonthClosed",
    )
    ledger.recorder.insert_events([StoredEvent(book.id, 3, "ledger:Book.MonthClosed", state)])
    ledger.repository.cache = None
    stored = ledger.repository.get(book.id)
    assert stored.closed_months == ["2024-12"] and stored.year_end_vouchers == {}
    assert stored.period_log == [
        {
            "action": "close",
            "period": "2024-12",
            "at": "2025-01-05T02:00:00+00:00",
            "actor": "cli:demo",
            "reason": None,
        }
    ]
    assert stored.year_end_voucher(Month(2024, 12)) is None


def test_a_member_is_read_without_asking_for_a_snapshot(ledger: Ledger) -> None:
    """Members are never snapshotted: a member read past the cache is one query, for its
    events; the member read is the one the library's two queries give."""
    tree = small_tree()
    member = join_in_memory(tree["b1"])
    ledger.save(member, *tree.values())
    asked: list[object] = []
    snapshot_get = ledger.repository.snapshot_store.get

    def counting_get(*args: object, **kwargs: object) -> object:
        asked.append(kwargs.get("originator_id"))
        return snapshot_get(*args, **kwargs)

    ledger.repository.snapshot_store.get = counting_get  # type: ignore[method-assign]
    ledger.repository.cache = None
    assert ledger.get_member(str(member.id))["member_id"] == str(member.id)
    assert asked == []
    library = project_aggregate(None, ledger.events.get(member.id))
    assert vars(ledger.repository.get(member.id, snapshotted=False)) == vars(library)
    # Every other read still asks first (organisations and books are snapshotted).
    ledger.repository.get(tree["b1"].id)
    assert asked == [tree["b1"].id]


def test_reading_a_snapshotted_aggregate_without_its_snapshot_gives_the_same(
    ledger: Ledger,
) -> None:
    book = Book(organization_code="A")
    for day in (1, 9, 20):
        book.record(
            f"v{day}",
            datetime.date(2024, 3, day),
            [debit("A", "102", Money(500)), credit("A", "401", Money(500))],
        )
        ledger.save(book)
        ledger.snapshots.put([Book.Snapshot.take(book)])
    ledger.repository.cache = None
    from_snapshot = ledger.repository.get(book.id)
    from_events = ledger.repository.get(book.id, snapshotted=False)
    assert Book.Snapshot.take(from_events).state == Book.Snapshot.take(from_snapshot).state
