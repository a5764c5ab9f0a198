"""The repository the ledger reads aggregates through: eventsourcing's, replaying events
without a runtime protocol check per event."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eventsourcing.application import Repository


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's project_aggregate() without its `assert isinstance(event,
    CanMutateProtocol)`: an isinstance() against a runtime-checkable Protocol walks the
    protocol's attributes on every call, and took an eighth of a member lookup's time. Every
    event and snapshot this store holds decodes to a class of domain/ or eventsourcing's own
    Snapshot, all of which have mutate(); anything else fails here just as loudly."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class LedgerRepository(Repository):
    """Repository.get() with replay() as its default projector function."""

    def get(self, aggregate_id: Any, *, projector_func: Any = replay, **kwargs: Any) -> Any:
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)
