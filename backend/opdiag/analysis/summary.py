"""Everything the diagnosis engine needs from one trace, computed once.

``analyse(trace)`` runs each analysis exactly once (self times, critical path, error chains,
depths) so the engine and the renderers read values instead of recomputing them. It is pure:
the trace is read, never modified, and nothing depends on the clock.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from opdiag.analysis.critical_path import CriticalPath, critical_path
from opdiag.analysis.errors import ErrorChain, error_chains
from opdiag.analysis.self_time import self_times
from opdiag.model import Span, Trace


@dataclass(frozen=True, slots=True)
class TraceAnalysis:
    """The analysed trace. Times in epoch µs; ``self_time``/``critical_time`` in µs per span."""

    trace: Trace
    self_time: dict[str, int]
    critical_path: CriticalPath
    critical_time: dict[str, int]  # µs each real span spent on the critical path
    error_chains: list[ErrorChain]
    depths: dict[str, int]
    services: list[str]
    start_us: int
    end_us: int
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def error_spans(self) -> list[Span]:
        return [s for s in self.trace.spans if s.error]

    def on_critical_path(self, span_id: str) -> bool:
        return span_id in self.critical_time


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: analysis allocates only acyclic values, and on 100 000-span traces
    the collector rescanning the whole trace costs more than the analysis itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def analyse(trace: Trace, *, reattach_async: bool = True) -> TraceAnalysis:
    """Analyse one trace (``reattach_async``: see :mod:`opdiag.analysis.critical_path`)."""
    with _gc_paused():
        return _analyse(trace, reattach_async)


def _analyse(trace: Trace, reattach_async: bool) -> TraceAnalysis:
    walked = trace.walk_list()
    depth = {span.span_id: d for span, d in walked}
    path = critical_path(trace, reattach_async=reattach_async)
    start = min((s.start_us for s in trace.spans), default=0)
    end = max((s.start_us + s.duration_us for s in trace.spans), default=0)
    warnings = list(trace.warnings)
    warnings.extend(f"critical path: {msg}" for msg in path.failed)
    return TraceAnalysis(
        trace=trace,
        self_time=self_times(trace),
        critical_path=path,
        critical_time=path.time_by_span(),
        error_chains=error_chains(trace, walked),
        depths=depth,
        services=sorted({s.service for s in trace.spans}),
        start_us=start,
        end_us=end,
        warnings=warnings,
    )
