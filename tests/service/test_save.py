"""Ledger.save: aggregates are saved without eventsourcing's per-object protocol checks, with
the same outcome as Application.save (events stored in order, positions returned, the
aggregate readable back); anything else still goes through Application.save. Both stores."""

from __future__ import annotations

from eventsourcing.application import Application

from domain.members import Member
from service.application import Ledger
from tests.domain.builders import join as join_in_memory
from tests.domain.builders import small_tree


def test_aggregates_are_saved_as_application_save_would(backend, ledger: Ledger) -> None:
    tree = small_tree()
    members = [join_in_memory(tree["b1"]) for _ in range(3)]
    pending = [e for a in (*members, tree["b1"]) for e in a.pending_events]
    assert len(pending) == 3 + 4  # three joins; b1 founded and three members admitted
    head = ledger.head_position()
    recordings = ledger.save(*members, tree["b1"])
    assert [r.domain_event for r in recordings] == pending
    assert [r.notification.id for r in recordings] == list(range(head + 1, head + 8))
    assert all(not m.pending_events for m in members)
    reopened = backend.open()
    try:
        for member in members:
            stored = reopened.repository.get(member.id)
            assert isinstance(stored, Member) and stored.version == member.version
        assert reopened.repository.get(tree["b1"].id).member_count == 3
    finally:
        reopened.close()


def test_other_objects_still_go_through_application_save(ledger: Ledger, monkeypatch) -> None:
    calls = []
    original = Application.save

    def spy(self, *objs, **kwargs):
        calls.append(objs)
        return original(self, *objs, **kwargs)

    monkeypatch.setattr(Application, "save", spy)
    member = join_in_memory(small_tree()["b1"])
    ledger.save(member)
    assert calls == []
    event = join_in_memory(small_tree()["b2"]).collect_events()[0]
    ledger.save(None, event)  # a bare event (and None): not an aggregate
    assert len(calls) == 1
    assert ledger.repository.get(event.originator_id).version == 1
