"""A small thread-safe cache for Jaeger answers: time-to-live, a weight bound, single-flight.

Why each part:

* **TTL** — search answers about recent time change as spans arrive; they may be reused only
  for a short while (``JaegerSettings.search_ttl_s``, ``services_ttl_s``), and a caller can
  ask for a younger answer (``max_age_s=0``: never reuse a stored one).
* **Weight bound** — an entry weighs as many traces as it holds, so the memory of the cache
  is bounded by traces, not by entry count (one window search can hold hundreds of traces).
  Least recently used entries go first; expired ones are dropped whenever something is added.
* **Single-flight** — concurrent identical requests (Grafana fires every panel of a
  dashboard at once) wait for the one call in flight instead of each asking Jaeger. A joined
  call is always at least as fresh as the request that joins it, so joining is allowed even
  when no stored answer may be reused. A failure is handed to every waiter and never stored,
  except that a waiter given another request's spent budget (``jaeger.budget_s``) asks
  again on its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from opdiag.sources.budget import BudgetSpentError
from opdiag.sources.budget import current as current_budget

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    stored_at: float
    weight: int


class TtlCache(Generic[V]):
    """``get_or_load(key, load)``: a stored answer younger than the TTL, else the answer of
    the identical call already in flight, else ``load()`` (stored unless it raised)."""

    def __init__(
        self,
        ttl_s: float,
        max_weight: int,
        *,
        weigh: Callable[[V], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = max(0.0, ttl_s)
        self.max_weight = max(0, max_weight)
        self.hits = 0
        self.misses = 0
        self.joined = 0
        self._weigh = weigh or (lambda _value: 1)
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._weight = 0
        self._inflight: dict[Hashable, Future[V]] = {}

    def get_or_load(
        self,
        key: Hashable,
        load: Callable[[], V],
        *,
        max_age_s: float | None = None,
        accept: Callable[[V], bool] | None = None,
        store: bool = True,
    ) -> V:
        """The cached or joined or freshly loaded value of ``key``. ``max_age_s`` narrows
        the TTL for this caller; ``accept`` may refuse a stored value (e.g. a window that
        does not cover the request), which is then reloaded and replaced; ``store=False``
        only shares the call (nobody may reuse its answer later, so it takes no room)."""
        limit = self.ttl_s if max_age_s is None else min(self.ttl_s, max(0.0, max_age_s))
        with self._lock:
            entry = self._data.get(key)
            if (
                entry is not None
                and limit > 0
                and self._clock() - entry.stored_at <= limit
                and (accept is None or accept(entry.value))
            ):
                self._data.move_to_end(key)
                self.hits += 1
                return entry.value
            pending = self._inflight.get(key)
            if pending is None:
                pending = Future()
                self._inflight[key] = pending
                owner = True
                self.misses += 1
            else:
                owner = False
                self.joined += 1
        if not owner:
            try:
                return pending.result()
            except BudgetSpentError as exc:
                if exc.budget is current_budget():
                    raise
            # the call joined ran out of its own request's budget, not of this one's: ask
            return self.get_or_load(key, load, max_age_s=max_age_s, accept=accept, store=store)
        try:
            value = load()
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            pending.set_exception(exc)
            # The waiters hold the future; nobody awaits the owner's copy of the exception.
            raise
        with self._lock:
            self._inflight.pop(key, None)
            if store:
                self._store(key, value)
        pending.set_result(value)
        return value

    def peek(self, key: Hashable, max_age_s: float | None = None) -> V | None:
        """A stored value young enough, without loading, joining or counting."""
        limit = self.ttl_s if max_age_s is None else min(self.ttl_s, max(0.0, max_age_s))
        with self._lock:
            entry = self._data.get(key)
            if entry is None or limit <= 0 or self._clock() - entry.stored_at > limit:
                return None
            return entry.value

    def _store(self, key: Hashable, value: V) -> None:
        """Add under the lock; drop expired entries, then the least recently used ones."""
        if self.ttl_s <= 0 or self.max_weight <= 0:
            return
        old = self._data.pop(key, None)
        if old is not None:
            self._weight -= old.weight
        now = self._clock()
        for stale in [k for k, e in self._data.items() if now - e.stored_at > self.ttl_s]:
            self._weight -= self._data.pop(stale).weight
        weight = max(1, int(self._weigh(value)))
        if weight > self.max_weight:
            return  # larger than the whole cache: serve it, do not keep it
        self._data[key] = _Entry(value, now, weight)
        self._weight += weight
        while self._weight > self.max_weight:
            _, dropped = self._data.popitem(last=False)
            self._weight -= dropped.weight

    @property
    def weight(self) -> int:
        with self._lock:
            return self._weight

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._weight = 0

    def stats(self) -> dict[str, int]:
        """Counters for opdiag's own ``/metrics``."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "joined": self.joined,
                "size": len(self._data),
                "weight": self._weight,
            }
