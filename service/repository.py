"""The repository the ledger reads aggregates through: eventsourcing's, replaying events
without a runtime protocol check per event."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from typing import Any

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.utils import resolve_topic


def replay(aggregate: Any, events: Iterable[Any]) -> Any:
    """eventsourcing's project_aggregate() without its `assert isinstance(event,
    CanMutateProtocol)`: an isinstance() against a runtime-checkable Protocol walks the
    protocol's attributes on every call, and took an eighth of a member lookup's time. Every
    event and snapshot this store holds decodes to a class of domain/ or eventsourcing's own
    Snapshot, all of which have mutate(); anything else fails here just as loudly."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class _EventsOnly:
    """A projector function that also tells _reconstruct_aggregate not to look for a
    snapshot (see LedgerRepository.get)."""

    def __init__(self, projector_func: Any) -> None:
        self.projector_func = projector_func

    def __call__(self, aggregate: Any, events: Iterable[Any]) -> Any:
        return self.projector_func(aggregate, events)


class LedgerRepository(Repository):
    """Repository.get() with replay() as its default projector function.

    snapshotted=False: the aggregate is of a kind never snapshotted (a member: only the kinds
    in Ledger.snapshot_every are), so a read that misses the cache is one query, for its
    events, instead of two (eventsourcing asks the snapshot table first, whatever the kind).
    Passing it for an aggregate that has snapshots is still correct, only slower: its every
    event is replayed."""

    def get(
        self,
        aggregate_id: Any,
        *,
        projector_func: Any = replay,
        snapshotted: bool = True,
        **kwargs: Any,
    ) -> Any:
        if not snapshotted:
            projector_func = _EventsOnly(projector_func)
        return super().get(aggregate_id, projector_func=projector_func, **kwargs)

    def _reconstruct_aggregate(
        self, aggregate_id: Any, version: int | None, projector_func: Any
    ) -> Any:
        """Repository._reconstruct_aggregate, except that a snapshot taken by an older version
        of its class that cannot be upcast (a Book before its dated movements: the dates are
        not in the snapshot) is passed over and the aggregate replayed from its events."""
        snapshots: list[Any] = []
        if self.snapshot_store is not None and not isinstance(projector_func, _EventsOnly):
            snapshots = [
                s
                for s in self.snapshot_store.get(
                    originator_id=aggregate_id, desc=True, limit=1, lte=version
                )
                if is_current(s)
            ]
        gt = snapshots[0].originator_version if snapshots else None
        events = self.event_store.get(originator_id=aggregate_id, gt=gt, lte=version)
        aggregate = projector_func(None, chain(snapshots, events))
        if aggregate is None:
            raise AggregateNotFoundError(
                f"Aggregate {aggregate_id!r} version {version!r} not found."
            )
        return aggregate


def is_current(snapshot: Any) -> bool:
    """Whether a snapshot can be restored as its class is now: taken at the class's version,
    or older with an upcast method for every step."""
    cls = resolve_topic(snapshot.topic)
    taken = snapshot.state.get("class_version", 1)
    now = getattr(cls, "class_version", 1)
    return all(hasattr(cls, f"upcast_v{v}_v{v + 1}") for v in range(taken, now))
