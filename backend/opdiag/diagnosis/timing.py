"""Self time and critical-path time per span, for the bottleneck and the execution flow.

The numbers are Jaeger UI's self time and critical path with async children reattached
(``opdiag.analysis``, ``reattach_async=True``), so worker phases that outlive the dispatch call
(KTRDR's ``asyncio.create_task``) are on the path instead of being clipped away.

Transport noise must not steal the path: a CLI that polls ``GET /api/v1/operations/{id}``
until the end has a polling call as its last-finishing child at every step, and the worker's
phases never make it onto the path. So the path is computed with the noise spans transparent
(their children hang from the nearest kept ancestor, as if the trace had been rebuilt without
them), once. Self times always come from the real trace.

Cost on a 100k-span trace: only what the engine reads is computed (``analyse`` would add
depths and error chains); only the spans that are not noise are copied for the path (a
polling CLI's trace is mostly noise); self times are computed per span on first read (the
engine reads those of the spans on the path).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import msgspec

from opdiag.analysis import critical_path
from opdiag.analysis.self_time import LazySelfTimes
from opdiag.model import Span, Trace


class Timing(msgspec.Struct):
    """Per span id: self time and time on the critical path (µs); the path's length."""

    self_us: Mapping[str, int]  # computed on first use: the engine reads a few of them
    critical_us: dict[str, int]
    critical_length_us: int


def noise_ids(trace: Trace, is_noise: Callable[[Span], bool]) -> set[str]:
    """The ids of the trace's noise spans (computed once, read by timing, bottleneck, gaps)."""
    return {s.span_id for s in trace.spans if is_noise(s)}


def trace_timing(
    trace: Trace,
    is_noise: Callable[[Span], bool] | None = None,
    *,
    noisy: Collection[str] | None = None,
    ends: Mapping[str, int] | None = None,
) -> Timing:
    """Timing of one trace; the path length counts every section (idle gaps included).
    ``noisy``: the noise span ids when the caller has them (else ``is_noise`` decides).
    ``ends``: where spans working for a caller that gave up stop counting (facts'
    ``clipped_ends``)."""
    if noisy is None and is_noise is not None:
        noisy = noise_ids(trace, is_noise)
    path = critical_path(trace, reattach_async=True, transparent=noisy, ends=ends)
    return Timing(LazySelfTimes(trace), path.time_by_span(), path.length_us)
