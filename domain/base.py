"""What every aggregate of the ledger shares: stable topics, the acting token, stable ids."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import deepcopy
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, CanMutateAggregate, DomainEvent
from eventsourcing.utils import register_topic

# Who is acting: the API sets the token's id, the command line "cli:<command>". Every event
# records it, so that the audit trail names the actor of every change.
_actor: ContextVar[str] = ContextVar("ledger_actor", default="system")

# Ids of aggregates named by a business key (an organisation's code, a month's book) are derived
# from that key, so that "create it twice" becomes a uniqueness violation in the event store.
_NAMESPACE = uuid5(NAMESPACE_URL, "urn:union-ledger")

A = TypeVar("A", bound=type)


def current_actor() -> str:
    return _actor.get()


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


STABLE_ID_CACHE = 1 << 16  # ids (a few hundred bytes each with the key)


@lru_cache(maxsize=STABLE_ID_CACHE)
def stable_id(kind: str, key: str) -> UUID:
    # Cached: a command asks for the same ids several times (its union's, its book's, its
    # idempotency record's), and uuid5 hashes with SHA-1 each time.
    return uuid5(_NAMESPACE, f"{kind}:{key}")


# Types whose instances never change: an aggregate's copy may share them. Value classes of the
# domain add themselves with @value_type.
_IMMUTABLE: set[type] = {
    str,
    int,
    float,
    bool,
    type(None),
    bytes,
    datetime.date,
    datetime.datetime,
    UUID,
    Decimal,
    Fraction,
}


def value_type(cls: A) -> A:
    """Marks a class whose instances are immutable values (frozen, with immutable fields)."""
    _IMMUTABLE.add(cls)
    return cls


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    immutable = _IMMUTABLE
    if kind is dict:
        # Immutable values inline: most are, and a call per value cost more than the copy.
        return {k: v if type(v) in immutable else _copy(v, memo) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in immutable else _copy(v, memo) for v in value]
    if kind is tuple:
        return tuple(_copy(v, memo) for v in value)
    if kind is set:
        return {_copy(v, memo) for v in value}
    if kind is defaultdict:
        copied: defaultdict[Any, Any] = defaultdict(value.default_factory)
        copied.update((k, _copy(v, memo)) for k, v in value.items())
        return copied
    if isinstance(value, DomainEvent):
        # A pending event (the aggregate's _pending_events): a frozen dataclass that nothing
        # changes once triggered. Copying each, the generic way, was a quarter of the writer's
        # time: a union's pending events grow with every command of a batch that joins it.
        return value
    return deepcopy(value, memo)  # anything else: the general way


class LedgerAggregate(Aggregate):
    """Base aggregate: every event carries the actor that caused it."""

    # Attributes that are dicts whose values the aggregate replaces and never changes in
    # place: a copy gets a dict of its own that shares the values.
    _SHARED_WITH_COPIES: ClassVar[frozenset[str]] = frozenset()

    def __deepcopy__(self, memo: dict[int, Any]) -> LedgerAggregate:
        # Every command works on copies (service/group_commit.py): copy.deepcopy's generic
        # machinery was a tenth of the writer's time; most of an aggregate's state is
        # builtin containers of immutable values, copied here directly.
        clone = object.__new__(type(self))
        shared = self._SHARED_WITH_COPIES
        clone.__dict__.update(
            {k: dict(v) if k in shared else _copy(v, memo) for k, v in self.__dict__.items()}
        )
        return clone

    class Event(Aggregate.Event):
        actor: str

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs.setdefault("actor", _actor.get())
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("actor", _actor.get())
        return super()._create(event_class, **kwargs)


def stable_topic(topic: str) -> Callable[[A], A]:
    """Gives an aggregate class a fixed topic and registers its events' explicit topics.

    Stored events name their class by topic; a fixed topic means that moving or renaming a
    module never orphans stored events. Each event names its own topic in its @event call.
    """

    def decorate(cls: A) -> A:
        cls.TOPIC = topic  # type: ignore[attr-defined]
        register_topic(topic, cls)
        for name, obj in vars(cls).items():
            if not (isinstance(obj, type) and issubclass(obj, CanMutateAggregate)):
                continue
            if name in ("Event", "Created"):
                continue
            explicit = vars(obj).get("TOPIC")
            declared = obj.__bases__[0]
            if explicit is None and declared.__qualname__ == obj.__qualname__:
                # An event class declared in the aggregate's body (to give it a class_version
                # and upcasters, see docs/events.md): the aggregate's metaclass redefined it as
                # a subclass of the declared one, which names the topic.
                explicit = vars(declared).get("TOPIC")
                obj.TOPIC = explicit  # type: ignore[attr-defined]
            if not explicit or not explicit.startswith(topic + "."):
                raise TypeError(f"{cls.__name__}.{name} needs an explicit topic under {topic}")
            register_topic(explicit, obj)
        return cls

    return decorate
