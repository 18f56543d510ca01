"""Self time and critical-path time per span, for the bottleneck and the execution flow.

The numbers come from ``opdiag.analysis.analyse(trace, reattach_async=True)``: Jaeger UI's
critical path with async children reattached, so worker phases that outlive the dispatch call
(KTRDR's ``asyncio.create_task``) are on the path instead of being clipped away.

Transport noise must not steal the path: a CLI that polls ``GET /api/v1/operations/{id}``
until the end has a polling call as its last-finishing child at every step, and the worker's
phases never make it onto the path. So when a noise span lands on the path, the path is
recomputed on a copy of the trace without noise spans (their children hang from the nearest
kept ancestor). Self times always come from the real trace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from opdiag.analysis import analyse
from opdiag.model import CHILD_OF, Reference, Span, Trace, build_trace


@dataclasses.dataclass(slots=True)
class Timing:
    """Per span id: self time and time on the critical path (µs); the path's length."""

    self_us: dict[str, int]
    critical_us: dict[str, int]
    critical_length_us: int


def trace_timing(trace: Trace, is_noise: Callable[[Span], bool] | None = None) -> Timing:
    """Timing of one trace; the path length counts every section (idle gaps included)."""
    result = analyse(trace, reattach_async=True)
    timing = Timing(result.self_time, result.critical_time, result.critical_path.length_us)
    if is_noise is None:
        return timing
    noisy = {s.span_id for s in trace.spans if is_noise(s)}
    if not noisy or not any(sid in timing.critical_us for sid in noisy):
        return timing
    quiet = analyse(_without(trace, noisy), reattach_async=True)
    return Timing(result.self_time, quiet.critical_time, quiet.critical_path.length_us)


def _without(trace: Trace, noisy: set[str]) -> Trace:
    """A private copy of ``trace`` minus the ``noisy`` spans (the input is not touched)."""
    kept: list[Span] = []
    for span in trace.spans:
        if span.span_id in noisy:
            continue
        parent = span.parent_id
        while parent is not None and parent in noisy:
            parent = trace.by_id[parent].parent_id
        refs = [Reference(CHILD_OF, trace.trace_id, parent)] if parent is not None else []
        kept.append(dataclasses.replace(span, references=refs, warnings=[]))
    return build_trace(trace.trace_id, kept)
