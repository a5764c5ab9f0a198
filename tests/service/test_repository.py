"""service/repository.py: replay() projects stored events into the aggregate eventsourcing's
project_aggregate() gives, through the ledger's repository too. Both stores."""

from __future__ import annotations

import pytest
from eventsourcing.application import project_aggregate

from service.application import Ledger
from service.repository import replay
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
