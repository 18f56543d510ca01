"""Analysis on Jaeger's own published fixtures (read with the real reader), purity, and size.

Self-time values asserted upstream (jaeger-ui ``TraceStatistics/tableValues.test.js`` and the
``tableValuesTestTrace`` cases, listed in reference/jaeger/README.txt) must come out exactly,
in ms with 2 decimals as the Trace Statistics view rounds them.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
from opdiag.analysis import analyse, critical_path, self_times, trace_statistics
from opdiag.analysis.self_time import round_ms
from opdiag.model import Reference, Span, Trace, build_trace
from opdiag.sources.readers import read_file


def _read(jaeger_fixtures: Path, name: str) -> Trace:
    [trace] = read_file(jaeger_fixtures / f"jaeger-ui__{name}.json")
    return trace


def _self_total(trace: Trace, by: tuple[str, ...]) -> dict[tuple[str, ...], float]:
    return {row.key: row.self_total_ms for row in trace_statistics(trace, by)}


@pytest.mark.parametrize(
    ("name", "by", "key", "ms"),
    [
        ("testTraceNormal", ("service",), ("api-gateway",), 3.16),
        ("testTraceNormal", ("service",), ("customers-service",), 1.74),
        ("testTraceNormal", ("operation",), ("GET /api/customer/owners/8/pets/10",), 2.4),
        ("testTraceNormal", ("operation",), ("GET /owners/8/pets/10",), 2.43),
        ("testTraceNormal", ("operation",), ("HikariProxyPreparedStatement.executeQuery",), 0.07),
        ("spansAmongEachOther", ("service", "operation"),
         ("customers-service", "GET /owners"), 1.67),
        ("spanAmongEachOtherGroupedAndSpans", ("service", "operation"),
         ("customers-service", "GET /owners"), 1.56),
        ("spanLongerAsParent", ("service", "operation"),
         ("api-gateway", "GET /owners/8/pets/10"), 1.22),
        ("traceWithOverlappingChildren", ("service",), ("service-one",), 0),
        ("traceWithOverlappingChildrenLongerThanParent", ("service",), ("service-one",), 0.03),
        ("traceWithTwoNonOverlappingChildren", ("service",), ("service-one",), 0.03),
        ("traceWithSingleChildLongerThanParentAndStartsAfterParent", ("service",),
         ("service-one",), 0.04),
        ("traceWithThreeShortChildren", ("service",), ("service-one",), 0.01),
        ("traceWithTwoChildrenStartedAtTraceStart", ("service",), ("service-one",), 0),
    ],
)
def test_upstream_asserted_self_time(jaeger_fixtures, name, by, key, ms):
    assert _self_total(_read(jaeger_fixtures, name), by)[key] == ms


def test_upstream_statistics_row_for_test_trace_normal(jaeger_fixtures):
    """The full api-gateway row of tableValues.test.js (count, totals, avg/min/max, percent)."""
    rows = {r.key: r for r in trace_statistics(_read(jaeger_fixtures, "testTraceNormal"))}
    row = rows[("api-gateway",)]
    assert (row.count, row.total_ms, row.avg_ms, row.min_ms, row.max_ms) == (2, 7.4, 3.7, 2.5, 4.9)
    assert (row.self_total_ms, row.self_avg_ms, row.self_min_ms, row.self_max_ms) == (
        3.16, 1.58, 0.76, 2.4)
    assert row.percent == 64.52
    other = rows[("customers-service",)]
    assert (other.count, other.self_avg_ms, other.self_min_ms, other.percent) == (
        3, 0.58, 0.02, 35.48)


def test_round_ms_rounds_halves_up_like_math_round():
    assert round_ms(2125) == 2.13  # 212.5 is exact in binary; Python's round() gives 2.12
    assert round_ms(2500) == 2.5


def test_critical_path_child_after_parent_is_root_only(jaeger_fixtures):
    trace = _read(jaeger_fixtures, "traceWithSingleChildLongerThanParentAndStartsAfterParent")
    [section] = critical_path(trace).sections
    assert (section.start_us - trace.start_us + 100, section.end_us - trace.start_us + 100) == (
        100, 140)
    assert section.span_id == trace.roots[0].span_id


def test_test_trace_cross_check(jaeger_fixtures):
    """testTrace.json: derived (not asserted upstream) values from the README.

    Self time: service1 378 ms = span-1 224 (390 - 33 - 37 - 66 - 20 - 10) + 33 + 37
    + span-3 46 + span-6 20 (span-7 is span-6's child but starts 480 ms after it ended, so
    the sweep skips it) + span-12 1 (its children overlap: union 9) + 9 + 8; service2 220 ms =
    span-4 2 + span-5 18 + span-7 200. Ours agree. Critical path: span-7 is a consumer of the
    producer span-6 and is pruned; span-13/14 end together, and the tie goes to the earlier
    starter (span-13), as in Jaeger UI; no two siblings touch end-to-start, so opdiag's
    inclusive boundary gives the same visit order as Jaeger UI's strict one. Reattach mode
    changes nothing here (span-7 is pruned before re-attachment).
    """
    trace = _read(jaeger_fixtures, "testTrace")
    assert _self_total(trace, ("service",)) == {("service1",): 378.0, ("service2",): 220.0}
    expected = ["span-1", "span-13", "span-12", "span-1", "span-6", "span-1", "span-2_1", "span-1",
                "span-3", "span-4", "span-5", "span-4", "span-3", "span-1", "span-2", "span-1"]
    for cp in (critical_path(trace), critical_path(trace, strict_boundary=True),
               critical_path(trace, reattach_async=True)):
        assert [s.span_id.lstrip("0") for s in cp.sections] == expected
        assert cp.length_us == 390_000  # the root's duration: the path covers it exactly


def _snapshot(trace: Trace) -> bytes:
    return pickle.dumps(
        (trace.trace_id, [(s.span_id, s.parent_id, s.start_us, s.duration_us, s.kind,
                           s.attributes, s.error, list(s.warnings)) for s in trace.spans],
         {k: [c.span_id for c in v] for k, v in trace.children.items()},
         [r.span_id for r in trace.roots], sorted(trace.by_id), list(trace.warnings))
    )


@pytest.mark.parametrize("name", ["testTrace", "spanLongerAsParent", "testTraceNormal"])
def test_analyse_leaves_input_unchanged(jaeger_fixtures, name):
    trace = _read(jaeger_fixtures, name)
    before = _snapshot(trace)
    spans_before = copy.copy(trace.spans)
    for mode in (True, False):
        analyse(trace, reattach_async=mode)
    assert _snapshot(trace) == before
    assert all(a is b for a, b in zip(trace.spans, spans_before, strict=True))


def test_analyse_summary(jaeger_fixtures):
    trace = _read(jaeger_fixtures, "testTrace")
    result = analyse(trace)
    assert result.services == ["service1", "service2"]
    assert result.duration_us == 1_000_000
    assert result.self_time == self_times(trace)
    assert result.critical_time == result.critical_path.time_by_span()
    assert [c.origin.span_id.lstrip("0") for c in result.error_chains] == ["span-2"]
    assert max(result.depths.values()) == 3


def test_a_failing_root_is_reported_and_the_others_still_count():
    good = Span("t", "good", "good", "svc", 0, 10)
    bad = Span("t", "bad", "bad", "svc", 20, 10)
    broken_child = Span("t", "kid", "kid", "svc", 21, None,  # type: ignore[arg-type]
                        references=[Reference("CHILD_OF", "t", "bad")])
    trace = build_trace("t", [good, bad, broken_child])
    for mode in (False, True):
        cp = critical_path(trace, reattach_async=mode)
        assert [s.span_id for s in cp.sections] == ["good"]
        assert len(cp.failed) == 1 and "bad" in cp.failed[0]


def _chain(n: int, *, nested: bool) -> Trace:
    spans = []
    for i in range(n):
        start, duration = (i, 2 * n - 2 * i) if nested else (10 * i, 15)
        refs = [Reference("CHILD_OF", "t", f"s{i - 1}")] if i else []
        spans.append(Span("t", f"s{i}", "op", "svc", start, duration, references=refs))
    return build_trace("t", spans)


@pytest.mark.parametrize("nested", [True, False], ids=["nested", "outliving"])
def test_100k_deep_chain_completes(nested):
    n = 100_000
    trace = _chain(n, nested=nested)
    result = analyse(trace)
    assert result.critical_path.failed == []
    assert result.depths[f"s{n - 1}"] == n - 1
    plain = critical_path(trace)
    assert plain.failed == [] and plain.length_us == trace.roots[0].duration_us
    if not nested:  # every child outlives its parent by 5 µs: all re-attached, no idle time
        assert len(result.critical_path.reattached) == n - 1
        assert result.critical_path.length_us == trace.duration_us
        assert result.critical_path.idle_us == 0


def test_100k_wide_fan_out_completes():
    n = 100_000
    spans = [Span("t", "root", "root", "svc", 0, 10 * n)]
    spans += [Span("t", f"c{i}", "op", "svc", 10 * i, 1 + (i % 7),
                   references=[Reference("CHILD_OF", "t", "root")]) for i in range(1, n)]
    trace = build_trace("t", spans)
    busy = sum(1 + (i % 7) for i in range(1, n))
    result = analyse(trace)
    cp = result.critical_path
    assert cp.failed == [] and cp.reattached == {}
    assert cp.length_us == 10 * n
    assert len(cp.sections) == 2 * (n - 1) + 1  # every child, every gap, the root's head
    assert result.critical_time["root"] == 10 * n - busy
    assert result.self_time["root"] == 10 * n - busy


def test_analyse_bounds_are_earliest_start_and_latest_end_of_any_span():
    child = [Reference("CHILD_OF", "t", "root")]
    root = Span("t", "root", "root", "svc", 10, 100)
    early = Span("t", "early", "early", "svc", 5, 20, references=child)
    late = Span("t", "late", "late", "svc", 50, 155, references=child)
    short = Span("t", "short", "short", "svc", 80, 1, references=child)
    result = analyse(build_trace("t", [root, short, late, early]))
    assert (result.start_us, result.end_us, result.duration_us) == (5, 205, 200)
    assert result.services == ["svc"]
    assert analyse(build_trace("t", [])).duration_us == 0
