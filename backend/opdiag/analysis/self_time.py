"""Self time of every span, exactly as Jaeger UI computes it, plus its Trace Statistics table.

Self time is the part of a span's duration not covered by any of its children: the duration
minus the union of the children's intervals clipped to the span, floored at 0. Jaeger UI
(``utils/compute-span-self-time.ts``) computes it with one sweep over the children sorted by
start; we do the same, so the numbers match the Trace Statistics view to the microsecond.
Children are all tree children (FOLLOWS_FROM and async consumers included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec

from opdiag.model import Span, Trace


def _start(span: Span) -> int:
    return span.start_us


def span_self_time(span: Span, children: Sequence[Span]) -> int:
    """One span's self time: the sweep over its children sorted by start.

    ::

        parent |..........................|
        child     |.....|                      counted
        child       |..|                       ends before the previous end: skipped
        child           |.....|                counted from the previous end on
        child                       |......|   clipped at the parent end; the sweep stops
        child                                |...| starts after the parent end: skipped
    """
    self_us = span.duration_us
    span_end = span.start_us + span.duration_us
    prev_end = span.start_us
    for child in sorted(children, key=_start):
        child_end = child.start_us + child.duration_us
        if child.start_us > span_end or child_end < prev_end:
            continue
        clipped_end = min(span_end, child_end)
        self_us -= clipped_end - max(prev_end, child.start_us)
        if clipped_end == span_end:
            break
        prev_end = child_end
    return max(0, self_us)


def self_times(trace: Trace) -> dict[str, int]:
    """Self time (µs) of every span of the trace, keyed by span id.

    ``build_trace`` keeps children sorted by start (a stable sort), so the sweep runs on them
    as they are instead of sorting every list again."""
    children = trace.children
    out: dict[str, int] = {}
    for span in trace.spans:
        kids = children.get(span.span_id)
        out[span.span_id] = _sweep(span, kids) if kids else max(0, span.duration_us)
    return out


class LazySelfTimes(Mapping[str, int]):
    """``self_times(trace)`` computed span by span on first use: the diagnosis engine reads
    the self time of the spans on the critical path and of the first rows of the execution
    flow, a fraction of a 100k-span trace. Compares equal to the full dict."""

    __slots__ = ("_done", "_trace")

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._done: dict[str, int] = {}

    def __getitem__(self, span_id: str) -> int:
        value = self._done.get(span_id)
        if value is None:
            span = self._trace.by_id[span_id]  # KeyError for an unknown id, as a dict
            kids = self._trace.children.get(span_id)
            value = _sweep(span, kids) if kids else max(0, span.duration_us)
            self._done[span_id] = value
        return value

    def get(self, span_id: str, default: Any = None) -> Any:  # type: ignore[override]
        try:
            return self[span_id]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._trace.by_id)

    def __len__(self) -> int:
        return len(self._trace.by_id)


def _sweep(span: Span, children: Sequence[Span]) -> int:
    """``span_self_time`` on children already in start order."""
    self_us = span.duration_us
    span_end = span.start_us + span.duration_us
    prev_end = span.start_us
    for child in children:
        child_start = child.start_us
        child_end = child_start + child.duration_us
        if child_start > span_end or child_end < prev_end:
            continue
        clipped_end = span_end if child_end > span_end else child_end
        self_us -= clipped_end - (prev_end if prev_end > child_start else child_start)
        if clipped_end == span_end:
            break
        prev_end = child_end
    return max(0, self_us)


def round_ms(value_us: float) -> float:
    """µs → ms rounded to 2 decimals the way the UI does (``Math.round``: halves go up)."""
    return math.floor((value_us / 1000) * 100 + 0.5) / 100


class StatsRow(msgspec.Struct, frozen=True):
    """One row of the Trace Statistics table; every time in ms, 2 decimals."""

    key: tuple[str, ...]
    count: int
    total_ms: float
    avg_ms: float
    min_ms: float
    max_ms: float
    self_total_ms: float
    self_avg_ms: float
    self_min_ms: float
    self_max_ms: float
    percent: float  # self total / trace duration × 100, 2 decimals ("ST in Duration")


_GROUP_KEYS: dict[str, Callable[[Span], str]] = {
    "service": lambda s: s.service,
    "operation": lambda s: s.name,
}


def trace_statistics(
    trace: Trace,
    by: Sequence[str] = ("service",),
    self_time: dict[str, int] | None = None,
) -> list[StatsRow]:
    """Group spans like the Trace Statistics view: ``by`` is ``("service",)``,
    ``("operation",)``, ``("service", "operation")`` or ``("operation", "service")``.

    Rows come in first-seen span order, as the UI lists them. Pass ``self_time`` when it has
    been computed already (``analyse`` does) to avoid a second sweep.
    """
    getters = [_GROUP_KEYS[name] for name in by]
    st = self_time if self_time is not None else self_times(trace)
    groups: dict[tuple[str, ...], list[Span]] = {}
    for span in trace.spans:
        groups.setdefault(tuple(g(span) for g in getters), []).append(span)
    duration = trace.duration_us or 1
    rows: list[StatsRow] = []
    for key, spans in groups.items():
        durations = [s.duration_us for s in spans]
        selfs = [st[s.span_id] for s in spans]
        total, self_total, n = sum(durations), sum(selfs), len(spans)
        rows.append(
            StatsRow(
                key=key,
                count=n,
                total_ms=round_ms(total),
                avg_ms=round_ms(total / n),
                min_ms=round_ms(min(durations)),
                max_ms=round_ms(max(durations)),
                self_total_ms=round_ms(self_total),
                self_avg_ms=round_ms(self_total / n),
                self_min_ms=round_ms(min(selfs)),
                self_max_ms=round_ms(max(selfs)),
                percent=math.floor(self_total * (100 / duration) * 100 + 0.5) / 100,
            )
        )
    return rows
