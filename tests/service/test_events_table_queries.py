"""The ledger's own queries on eventsourcing's events table (Ledger.stored_ids,
notifications_at, last_position_of) answer what the library's recorder and its recordings say,
in one query instead of one per id or position. Both stores."""

from __future__ import annotations

import random
import uuid

from service.application import Ledger
from tests.domain.builders import join as join_in_memory
from tests.domain.builders import small_tree


def test_the_events_table_queries_agree_with_the_recorder(ledger: Ledger) -> None:
    tree = small_tree()
    members = [join_in_memory(tree["b1"]) for _ in range(5)]
    recordings = ledger.save(*members, *tree.values())
    recorder = ledger.recorder
    position = {
        (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
        for r in recordings
    }

    ids = {m.id for m in members} | {o.id for o in tree.values()} | {uuid.uuid4() for _ in range(9)}
    assert ledger.stored_ids(ids) == {i for i in ids if recorder.select_events(i, limit=1)}

    positions = sorted(random.sample(range(1, ledger.head_position() + 1), 7))
    assert ledger.notifications_at(positions) == [
        recorder.select_notifications(start=p, limit=1)[0] for p in positions
    ]
    assert ledger.notifications_at([]) == []

    for key, notification_id in position.items():
        assert ledger.position_of(*key) == notification_id
    union = tree["b1"]
    keys = [(m.id, 1) for m in members[:2]] + [(union.id, union.version)]
    assert ledger.last_position_of(keys) == max(position[k] for k in keys)
    assert ledger.position_of(union.id, union.version + 1) is None
