"""What a read-side process keeps in memory between reads: a least-recently-used map bounded
both in entries and in a weight the caller gives each value (a roll's anchor keys, a
listing's codes), safe to share between the threads that serve reads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class Kept(Generic[V]):
    def __init__(self, max_entries: int, max_weight: int) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._lock = threading.Lock()
        # key -> (value, its weight), least recently used first.
        self._entries: OrderedDict[tuple, tuple[V, int]] = OrderedDict()
        self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> list[tuple[tuple, V]]:
        """Every key and value kept, least recently used first."""
        with self._lock:
            return [(key, value) for key, (value, _) in self._entries.items()]

    def get(self, key: tuple) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: tuple, value: V, weight: int) -> None:
        """Keeps value under key (a value heavier than the whole bound is not kept), then lets
        the least recently used go until both bounds hold."""
        if weight > self.max_weight:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._entries[key] = (value, weight)
            self._weight += weight
            while len(self._entries) > self.max_entries or self._weight > self.max_weight:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._weight -= dropped
