"""The execution flow: an operation's spans as rows in start order, cut to a readable
length without losing an error span."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from opdiag.diagnosis.recovered import NOTHING_RECOVERED, Recovered
from opdiag.diagnosis.result import FlowStep
from opdiag.diagnosis.timing import Timing
from opdiag.model import Span, Trace

__all__ = ["execution_flow"]

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


def execution_flow(
    walks: Walks,
    timings: list[Timing],
    start_us: int,
    limit: int,
    *,
    made_good: Recovered = NOTHING_RECOVERED,
    is_noise: Callable[[Span], bool] | None = None,
) -> tuple[list[FlowStep], int]:
    """Every scoped span in start order; cut at ``limit``, counting the rest.

    Only spans starting no later than the ``limit``-th earliest start can be in the cut, so
    a 100k-span operation sorts a few thousand rows, not all of them. Error spans past the
    cut still get a row (at most ``limit`` more): the root cause is chosen among the flow's
    error spans and must be marked in the flow, however late it happened in a huge
    operation. ``is_noise``: when the operation has more spans than the limit, transport
    noise (a followed training's thousands of status polls) gives way to the work: a
    4-minute training's completion was cut behind 2,000 rows of polls."""
    cut = max(0, limit)
    total = sum(len(walk) for _, walk in walks)
    rows: list[tuple[int, int, int, Span, int]] = []
    if cut:
        threshold: int | None = None
        quiet: Callable[[Span], bool] = (lambda _: False) if is_noise is None else is_noise
        all_work = False  # fewer work spans than the limit: every one of them is a row
        if total > cut:
            starts = [
                span.start_us for _, walk in walks for span, _ in walk if not quiet(span)
            ]
            if len(starts) >= cut:
                threshold = heapq.nsmallest(cut, starts)[-1]
            else:  # every work span fits: the earliest noise fills the rest
                noisy = [span.start_us for _, walk in walks for span, _ in walk if quiet(span)]
                threshold = heapq.nsmallest(cut - len(starts), noisy)[-1]
                all_work = True
        rows = [
            (span.start_us, t_index, order, span, depth)
            for t_index, (_, walk) in enumerate(walks)
            for order, (span, depth) in enumerate(walk)
            if threshold is None
            or span.start_us <= threshold
            or span.error
            or (all_work and not quiet(span))
        ]
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        if len(rows) > cut and is_noise is not None:
            # the work first, then noise by start, then late errors beyond the cut
            work = [r for r in rows if not quiet(r[3])]
            noise = [r for r in rows if quiet(r[3])]
            kept = work[:cut] + noise[: max(0, cut - len(work))]
            late = [r for r in work[cut:] + noise[max(0, cut - len(work)) :] if r[3].error]
            rows = sorted(kept, key=lambda r: (r[0], r[1], r[2])) + late[:cut]
        else:
            # Late error spans sort after every span of the cut: the cut itself is unchanged.
            rows = rows[:cut] + [r for r in rows[cut:] if r[3].error][:cut]
    steps: list[FlowStep] = []
    for index, (_, t_index, _, span, depth) in enumerate(rows):
        timing = timings[t_index]
        steps.append(
            FlowStep(
                index=index + 1,
                trace_id=span.trace_id,
                span_id=span.span_id,
                parent_id=span.parent_id,
                service=span.service,
                span_name=span.name,
                start_ms=(span.start_us - start_us) / 1000,
                duration_ms=span.duration_us / 1000,
                self_time_ms=timing.self_us.get(span.span_id, 0) / 1000,
                depth=depth,
                critical=timing.critical_us.get(span.span_id, 0) > 0,
                error=span.error,
                recovered=bool(made_good) and made_good.of(span) is not None,
            )
        )
    return steps, max(0, total - len(steps))
