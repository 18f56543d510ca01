"""Everything the diagnosis engine needs from one trace, computed once.

``analyse(trace)`` runs each analysis exactly once (self times, critical path, error chains,
depths) so the engine and the renderers read values instead of recomputing them. It is pure:
the trace is read, never modified, and nothing depends on the clock.
"""

from __future__ import annotations

import msgspec

from opdiag.analysis.critical_path import CriticalPath, critical_path
from opdiag.analysis.errors import ErrorChain, error_chains
from opdiag.analysis.self_time import self_times
from opdiag.gcpause import gc_paused
from opdiag.model import Span, Trace


class TraceAnalysis(msgspec.Struct, frozen=True):
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
    warnings: list[str] = msgspec.field(default_factory=list)

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us

    @property
    def error_spans(self) -> list[Span]:
        return [s for s in self.trace.spans if s.error]


def analyse(trace: Trace, *, reattach_async: bool = True) -> TraceAnalysis:
    """Analyse one trace (``reattach_async``: see :mod:`opdiag.analysis.critical_path`)."""
    with gc_paused():
        return _analyse(trace, reattach_async)


def _analyse(trace: Trace, reattach_async: bool) -> TraceAnalysis:
    walked = trace.walk_list()
    depth = {span.span_id: d for span, d in walked}
    path = critical_path(trace, reattach_async=reattach_async)
    warnings = list(trace.warnings)
    warnings.extend(f"critical path: {msg}" for msg in path.failed)
    return TraceAnalysis(
        trace=trace,
        self_time=self_times(trace),
        critical_path=path,
        critical_time=path.time_by_span(),
        error_chains=error_chains(trace, walked),
        depths=depth,
        services=trace.services(),
        start_us=trace.first_start_us,  # computed once by build_trace
        end_us=trace.last_end_us,
        warnings=warnings,
    )
