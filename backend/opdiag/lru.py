"""A small thread-safe LRU for the service's diagnoses and run profiles, with the hit and
miss counters ``/metrics`` reports."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    """A small thread-safe LRU (diagnoses, run profiles) with hit/miss counters (for
    ``/metrics``)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: V) -> None:
        if self.capacity == 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def later(self) -> deque[tuple[str, V]]:
        """Puts to make later with ``put_all``: only the last ``capacity`` are kept, as an
        LRU keeps them (a long listing would otherwise put every entry just to evict it)."""
        return deque(maxlen=self.capacity)

    def put_all(self, entries: Iterable[tuple[str, V]]) -> None:
        for key, value in entries:
            self.put(key, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
