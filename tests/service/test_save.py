"""Ledger.save and Ledger.save_prepared: what they store is what eventsourcing's
Application.save stores (events in order, positions, the aggregates read back), and a snapshot
taken from the aggregate in memory is the one eventsourcing's take_snapshot would take from the
store. Both stores."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent, project_aggregate
from eventsourcing.domain import Snapshot

from domain.members import Member
from domain.organizations import Organization
from service.application import Ledger
from tests.conftest import Backend
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


def stored_rows(app: Ledger) -> list[tuple[Any, ...]]:
    """Every stored event: position, stream, version, topic and the event it decodes to (the
    payload's bytes differ from store to store: each has its own key and nonces)."""
    return [
        (
            n.id,
            UUID(str(n.originator_id)),
            n.originator_version,
            n.topic,
            app.mapper.to_domain_event(n),
        )
        for n in app.recorder.select_notifications(start=1, limit=10_000)
    ]


def test_save_prepared_stores_what_application_save_stores(
    backend: Backend, tmp_path: Path
) -> None:
    """The group-commit writer maps a batch's events before it takes the writer lock and
    inserts them under it with save_prepared: the same rows, positions, recordings and
    aggregates as Application.save of the same aggregates, on a twin store."""
    twin_path = tmp_path / "twin"
    twin_path.mkdir()
    twin = Backend(backend.kind, twin_path)
    try:
        library, ours = backend.open(), twin.open()
        tree = small_tree()
        members = [join_in_memory(tree["b1"]) for _ in range(3)]
        objs = [*members, *tree.values()]
        copies = copy.deepcopy(objs)  # the same ids and the same pending events
        library_recordings = Application.save(library, *objs)
        prepared: ProcessingEvent = ProcessingEvent()
        for obj in copies:
            prepared.events.extend(obj.collect_events())
            prepared.aggregates[obj.id] = obj
        stored = [ours.mapper.to_stored_event(e) for e in prepared.events]
        our_recordings = ours.save_prepared(prepared, stored)

        # Three joined; six founded, five attached to their parents, three admitted.
        assert len(our_recordings) == len(library_recordings) == 3 + 6 + 5 + 3
        assert [(r.domain_event, r.notification.id) for r in our_recordings] == [
            (r.domain_event, r.notification.id) for r in library_recordings
        ]
        assert stored_rows(ours) == stored_rows(library)
        for obj in objs:
            assert vars(ours.repository.get(obj.id)) == vars(library.repository.get(obj.id))
    finally:
        twin.close()


def test_a_snapshot_from_memory_is_the_one_the_library_takes_from_the_store(
    ledger: Ledger,
) -> None:
    """take_due_snapshots snapshots a union as it is in memory when a save takes its version
    past its interval; eventsourcing's take_snapshot would read it back from its stored events
    at that version. Both give the same snapshot."""
    interval = Ledger.snapshot_every[Organization]
    tree = small_tree()
    union = tree["b1"]
    ledger.save(*tree.values())
    assert ledger.snapshots is not None
    ledger.save(*[join_in_memory(union) for _ in range(interval - 10 - union.version)], union)
    ledger.wait_for_snapshots()  # inserted in the background
    assert list(ledger.snapshots.get(union.id)) == []  # none before the interval
    ledger.save(*[join_in_memory(union) for _ in range(interval - union.version)], union)
    assert union.version == interval
    ledger.wait_for_snapshots()

    [ours] = ledger.snapshots.get(union.id)
    from_store = project_aggregate(None, ledger.events.get(union.id, lte=interval))
    # What Application.take_snapshot would store, as it reads back (tuples come back lists).
    mapper = ledger.mapper
    library = mapper.to_domain_event(mapper.to_stored_event(Snapshot.take(from_store)))
    assert (ours.originator_id, ours.originator_version, ours.topic) == (
        library.originator_id,
        library.originator_version,
        library.topic,
    )
    assert ours.state == library.state
