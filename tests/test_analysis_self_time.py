"""Self time edge cases the vectors and fixtures do not reach."""

from __future__ import annotations

from opdiag.analysis.self_time import self_times, span_self_time, trace_statistics
from opdiag.model import Reference, Span, build_trace


def _span(sid: str, start: int, duration: int, parent: str | None = None) -> Span:
    refs = [Reference("CHILD_OF", "t", parent)] if parent else []
    return Span("t", sid, sid, "svc", start, duration, references=refs)


def test_floored_at_zero_for_hostile_negative_durations():
    assert span_self_time(_span("p", 10, -5), [_span("c", 6, 1)]) == 0
    assert self_times(build_trace("t", [_span("p", 10, -5)])) == {"p": 0}


def test_union_not_sum_of_overlapping_children():
    parent = _span("p", 0, 100)
    kids = [_span("a", 10, 40), _span("b", 20, 10), _span("c", 30, 40), _span("d", 90, 50)]
    # union inside the parent: [10, 70) + [90, 100) = 70
    assert span_self_time(parent, kids) == 30


def test_statistics_group_keys_and_order():
    trace = build_trace("t", [_span("r", 0, 100), _span("a", 10, 10, "r"), _span("b", 50, 10, "r")])
    rows = trace_statistics(trace, ("operation",))
    assert [r.key for r in rows] == [("r",), ("a",), ("b",)]
    assert rows[0].self_total_ms == 0.08 and rows[0].percent == 80.0
