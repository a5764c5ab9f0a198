"""What every aggregate shares: the acting token on every event, stable ids, explicit topics."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import pytest
from eventsourcing.domain import event

from domain.base import LedgerAggregate, acting_as, current_actor, stable_id, stable_topic
from domain.money import Money
from domain.organizations import Organization
from domain.vouchers import Book, Voucher, credit, debit
from tests.domain.builders import join, small_tree


def test_every_event_records_the_acting_token() -> None:
    assert current_actor() == "system"
    with acting_as("token:clerk-7"):
        tree = small_tree()
        member = join(tree["b1"])
        member.retain(effective_on=member.joined_on, reason_code=3)
    assert current_actor() == "system"
    events = [e for agg in (*tree.values(), member) for e in agg.collect_events()]
    assert events and {e.actor for e in events} == {"token:clerk-7"}


def test_acting_as_restores_the_previous_actor_after_a_failure() -> None:
    with pytest.raises(RuntimeError), acting_as("cli:import"):
        raise RuntimeError("boom")
    assert current_actor() == "system"


def test_business_keys_give_stable_ids() -> None:
    assert Organization.id_for("X") == stable_id("organisation", "X") == Organization.id_for("X")
    assert Organization.id_for("X") != Book.id_for("X")
    assert Book(organization_code="A").id == Book.id_for("A")
    # A voucher's id is whatever the caller chose.
    chosen = uuid.uuid4()
    voucher = Voucher(
        id=chosen,
        kind="dues",
        effective_on=datetime.date(2024, 1, 1),
        postings=[debit("A", "102", Money(1)), credit("A", "401", Money(1))],
        details={},
        reverses=None,
    )
    assert voucher.id == chosen


def test_stable_topic_refuses_an_event_without_an_explicit_topic() -> None:
    with pytest.raises(TypeError, match="explicit topic"):

        @stable_topic("ledger:TestOnlyBroken")
        class Broken(LedgerAggregate):
            @event("Happened")
            def happen(self) -> None:
                pass


def test_stable_topic_refuses_an_event_topic_outside_its_aggregates() -> None:
    with pytest.raises(TypeError, match="explicit topic"):

        @stable_topic("ledger:TestOnlyMisplaced")
        class Misplaced(LedgerAggregate):
            @event("Happened", topic="ledger:SomethingElse.Happened")
            def happen(self) -> None:
                pass


def test_a_copy_shares_no_mutable_state_with_its_original() -> None:
    """Commands work on deep copies of cached aggregates: changing a copy must leave the
    original exactly as it was, however deep its state (lists, dicts of dicts, sets)."""
    import copy

    tree = small_tree()
    org = tree["b1"]
    for _ in range(3):
        join(org)
    book = Book(organization_code="A")
    day = datetime.date(2024, 3, 1)
    book.record("v1", day, [debit("A", "102", Money(500)), credit("A", "401", Money(500))])
    for aggregate in (book, *tree.values()):
        aggregate.collect_events()
        clone = copy.deepcopy(aggregate)
        assert type(clone) is type(aggregate) and clone.__dict__ == aggregate.__dict__
        for key, value in vars(clone).items():
            if isinstance(value, list | dict | set):
                assert value is not vars(aggregate)[key], key
    # dict.copy() of __dict__ and deepcopy of a plain dict use the general machinery.
    book_before, org_before = copy.deepcopy(dict(book.__dict__)), copy.deepcopy(dict(org.__dict__))
    book_clone, org_clone = copy.deepcopy(book), copy.deepcopy(org)
    book_clone.record("v2", day, [debit("A", "102", Money(7)), credit("A", "401", Money(7))])
    join(org_clone)
    assert book_clone.balance("102") == Money(507) and org_clone.member_count == 4
    assert book.__dict__ == book_before and org.__dict__ == org_before


def test_a_book_copy_shares_its_dated_movements_until_it_records() -> None:
    """A book's movements per date and flows per year are replaced, never changed in place, so
    a command's copy shares them (a county's book holds hundreds); what the copy records is
    its own, and the original stays as it was."""
    import copy

    book = Book(organization_code="A")
    day = datetime.date(2024, 3, 1)
    book.record("v1", day, [debit("A", "102", Money(500)), credit("A", "401", Money(500))])
    before = copy.deepcopy(dict(book.__dict__))  # the general machinery: nothing shared
    clone = copy.deepcopy(book)
    for name in ("movements", "year_flows"):
        assert vars(clone)[name] is not vars(book)[name]
        assert all(vars(clone)[name][k] is v for k, v in vars(book)[name].items())
    clone.record("v2", day, [debit("A", "102", Money(7)), credit("A", "401", Money(7))])
    assert clone.movements["102"] == {"2024-03-01": 507}
    assert clone.year_flows == {"401|0": {"2024": -507}}
    assert book.__dict__ == before


def test_a_copy_shares_its_pending_events_but_not_their_list() -> None:
    """Pending events are frozen and never changed once triggered, so a copy shares them (a
    batch's union collects one per join); the list is the copy's own, so events the copy
    triggers, or a failed command's, never reach the original."""
    import copy

    book = Book(organization_code="A")
    day = datetime.date(2024, 3, 1)
    book.record("v1", day, [debit("A", "102", Money(500)), credit("A", "401", Money(500))])
    pending = list(book._pending_events)
    assert len(pending) == 2  # opened, recorded
    clone = copy.deepcopy(book)
    assert clone._pending_events is not book._pending_events
    assert all(a is b for a, b in zip(clone._pending_events, pending, strict=True))
    clone.record("v2", day, [debit("A", "102", Money(7)), credit("A", "401", Money(7))])
    assert len(clone._pending_events) == 3
    assert book._pending_events == pending and book.balance("102") == Money(500)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pending[1].actor = "someone else"  # type: ignore[misc]
