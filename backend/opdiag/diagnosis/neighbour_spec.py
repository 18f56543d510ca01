"""A pack's ``neighbours`` and ``workers`` sections as the engine uses them: which spans of
other traces to bring in (health checks, periodic spans), how far around an operation to look,
and which services are workers of which operation type."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from opdiag.diagnosis.patterns import Pattern
from opdiag.model import SpanQuery


class HealthCheck(SpanQuery, frozen=True):
    """A probe of a worker: a client span whose URL path matches ``url``."""

    url: Pattern = Pattern(r"/health$")


_DEFAULT_MARGINS = {
    "before_s": 600.0,
    "after_s": 60.0,
    "settle_s": 15.0,
    "max_traces": 500,
    "timeouts_to_lose": 1,
}


_MAX_MEMO = 256
_WORKER_GLOBS: dict[
    tuple[int, str | None], tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]
] = {}


class NeighbourSpec(msgspec.Struct, frozen=True):
    """A pack's ``neighbours`` and ``workers`` sections. ``margins`` holds only what a pack
    set (``before_s``, ``after_s``, ``settle_s``, ``max_traces``), so a later pack that sets
    nothing keeps the earlier pack's values."""

    margins: tuple[tuple[str, float], ...] = ()
    health_checks: tuple[HealthCheck, ...] = ()
    spans: tuple[SpanQuery, ...] = ()
    workers: tuple[tuple[str, tuple[str, ...]], ...] = ()  # operation type -> service globs
    # spans the prober's service writes periodically whatever workers exist (KTRDR's orphan
    # detector lists operations every 15 s): they show it ran, and was recorded, when no
    # probe was made at all
    heartbeats: tuple[SpanQuery, ...] = ()
    # the workers' own runs (their state transitions): asked only for a request that never
    # became an operation (a 503), to say which run held each worker (diagnosis.occupancy)
    occupancy: tuple[SpanQuery, ...] = ()

    def _margin(self, name: str) -> float:
        return dict(self.margins).get(name, _DEFAULT_MARGINS[name])

    @property
    def before_s(self) -> float:
        """How far before the operation's start to look."""
        return self._margin("before_s")

    @property
    def after_s(self) -> float:
        """How far after its end (never past now)."""
        return self._margin("after_s")

    @property
    def settle_s(self) -> float:
        """A request that got no worker is judged on the probes up to this long after it."""
        return self._margin("settle_s")

    @property
    def max_traces(self) -> int:
        return int(self._margin("max_traces"))

    @property
    def timeouts_to_lose(self) -> int:
        """Probes in a row that connected but got no answer in time (or a 5xx) before the
        worker counts as silent; one that could not connect at all counts at once."""
        return max(1, int(self._margin("timeouts_to_lose")))

    @property
    def queries(self) -> tuple[SpanQuery, ...]:
        """Every (service, span name) to search for, probes first."""
        seen: dict[tuple[str, str], SpanQuery] = {}
        for q in (*self.health_checks, *self.spans, *self.heartbeats):
            seen.setdefault((q.service, q.span), SpanQuery(q.service, q.span))
        return tuple(seen.values())

    @property
    def probe_queries(self) -> tuple[SpanQuery, ...]:
        """The (service, span name) searches that find the health checks alone."""
        return tuple(dict.fromkeys(SpanQuery(q.service, q.span) for q in self.health_checks))

    def queries_for(self, *, started: bool) -> tuple[SpanQuery, ...]:
        """``queries``, and for a request that never started an operation the workers' runs
        too (``occupancy``)."""
        if started or not self.occupancy:
            return self.queries
        known = {(q.service, q.span) for q in self.queries}
        extra = tuple(q for q in self.occupancy if (q.service, q.span) not in known)
        return self.queries + extra

    @property
    def active(self) -> bool:
        return bool(self.health_checks or self.spans)

    def worker_globs(self, operation_type: str | None = None) -> tuple[str, ...]:
        """Service globs of workers of ``operation_type`` (all workers when None); asked
        twice per diagnosis, so kept per ``workers`` section (held: its id stays its)."""
        key = (id(self.workers), operation_type)
        known = _WORKER_GLOBS.get(key)
        if known is not None and known[0] is self.workers:
            return known[1]
        found = tuple(
            g for t, globs in self.workers if operation_type in (None, t) for g in globs
        )
        if len(_WORKER_GLOBS) >= _MAX_MEMO:
            _WORKER_GLOBS.clear()
        _WORKER_GLOBS[key] = (self.workers, found)
        return found

    def window(self, start_us: int, end_us: int, now_us: int) -> tuple[int, int]:
        """The neighbour window of an operation: a margin before it, one after, never past
        now (nothing recorded after the clock the diagnosis judges by can be evidence)."""
        lo = start_us - int(self.before_s * 1e6)
        hi = min(end_us + int(self.after_s * 1e6), now_us + 1)
        return lo, max(lo, hi)


def merge_specs(specs: Iterable[NeighbourSpec | None]) -> NeighbourSpec:
    """Later packs add queries and worker types; the margins they set win."""
    margins: dict[str, float] = {}
    checks: dict[tuple[str, str, str], HealthCheck] = {}
    spans: dict[tuple[str, str], SpanQuery] = {}
    beats: dict[tuple[str, str], SpanQuery] = {}
    held: dict[tuple[str, str], SpanQuery] = {}
    workers: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        if spec is None:
            continue
        margins.update(spec.margins)
        for c in spec.health_checks:
            checks[(c.service, c.span, c.url.pattern)] = c
        for q in spec.spans:
            spans[(q.service, q.span)] = q
        for q in spec.heartbeats:
            beats[(q.service, q.span)] = q
        for q in spec.occupancy:
            held[(q.service, q.span)] = q
        for t, globs in spec.workers:
            workers[t] = tuple(dict.fromkeys((*workers.get(t, ()), *globs)))
    return NeighbourSpec(
        margins=tuple(margins.items()),
        health_checks=tuple(checks.values()),
        spans=tuple(spans.values()),
        workers=tuple(workers.items()),
        heartbeats=tuple(beats.values()),
        occupancy=tuple(held.values()),
    )
