"""What every aggregate shares: the acting token on every event, stable ids, explicit topics."""

from __future__ import annotations

import datetime
import uuid

import pytest
from eventsourcing.domain import event

from domain.base import LedgerAggregate, acting_as, current_actor, stable_id, stable_topic
from domain.money import Money
from domain.organisations import Organisation
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
    assert Organisation.id_for("X") == stable_id("organisation", "X") == Organisation.id_for("X")
    assert Organisation.id_for("X") != Book.id_for("X")
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
