"""The execution flow: an operation's spans as rows in start order, cut to a readable
length without losing an error span."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence

from opdiag.diagnosis.bottleneck import call_target
from opdiag.diagnosis.recovered import NOTHING_RECOVERED, Recovered
from opdiag.diagnosis.result import FlowStep
from opdiag.diagnosis.timing import Timing
from opdiag.model import Span, Trace

__all__ = ["execution_flow"]

_NONE: frozenset[str] = frozenset()

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


def execution_flow(
    walks: Walks,
    timings: list[Timing],
    start_us: int,
    limit: int,
    *,
    made_good: Recovered = NOTHING_RECOVERED,
    noisy: Mapping[str, Collection[str]] | None = None,
) -> tuple[list[FlowStep], int]:
    """Every scoped span in start order; cut at ``limit``, counting the rest.

    Only spans starting no later than the ``limit``-th earliest start can be in the cut, so
    a 100k-span operation sorts a few thousand rows, not all of them. Error spans past the
    cut still get a row (at most ``limit`` more): the root cause is chosen among the flow's
    error spans and must be marked in the flow, however late it happened in a huge
    operation. ``noisy``: per trace, the ids of its transport noise; when the operation has
    more spans than the limit, the noise (a followed training's thousands of status polls)
    gives way to the work: a 4-minute training's completion was cut behind 2,000 polls."""
    cut = max(0, limit)
    total = sum(len(walk) for _, walk in walks)
    rows: list[tuple[int, int, int, Span, int]] = []
    if cut:
        threshold: int | None = None
        quiet = [noisy.get(t.trace_id, _NONE) if noisy else _NONE for t, _ in walks]
        all_work = False  # fewer work spans than the limit: every one of them is a row
        if total > cut:
            work_starts: list[int] = []
            noise_starts: list[int] = []
            for ids, (_, walk) in zip(quiet, walks, strict=True):
                if not ids:
                    work_starts.extend(span.start_us for span, _ in walk)
                    continue
                for span, _ in walk:
                    (noise_starts if span.span_id in ids else work_starts).append(span.start_us)
            if len(work_starts) >= cut:
                threshold = heapq.nsmallest(cut, work_starts)[-1]
            else:  # every work span fits: the earliest noise fills the rest
                threshold = heapq.nsmallest(cut - len(work_starts), noise_starts)[-1]
                all_work = True
        rows = [
            (span.start_us, t_index, order, span, depth)
            for t_index, (_, walk) in enumerate(walks)
            for order, (span, depth) in enumerate(walk)
            if threshold is None
            or span.start_us <= threshold
            or span.error
            or (all_work and span.span_id not in quiet[t_index])
        ]
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        if len(rows) > cut and noisy:
            # the work first, then noise by start, then late errors beyond the cut
            work = [r for r in rows if r[3].span_id not in quiet[r[1]]]
            noise = [r for r in rows if r[3].span_id in quiet[r[1]]]
            room = max(0, cut - len(work))
            kept = work[:cut] + noise[:room]
            late = [r for r in work[cut:] + noise[room:] if r[3].error]
            rows = sorted(kept, key=lambda r: (r[0], r[1], r[2])) + late[:cut]
        elif len(rows) > cut:
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
                target=call_target(span),
            )
        )
    return steps, max(0, total - len(steps))
