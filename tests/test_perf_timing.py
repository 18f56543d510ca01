"""``critical_path(..., transparent=ids)`` equals the path of the trace rebuilt without those
spans (what ``diagnosis.timing`` used to compute on a copy), on every fixture, the demo corpus
and random trees. ``trace_timing`` computes that path once, noise transparent from the start:
on every fixture and demo trace it gives the numbers of the old two passes (the plain path
first, the transparent one only when noise was on it); on random trees it gives the rebuilt
trace's path, which is what the old passes meant (they differed when noise off the plain path
changed the rebuilt tree)."""

from __future__ import annotations

import random
from collections.abc import Callable

import msgspec
import pytest
from conftest import DEMO_TRACES, JAEGER_FIXTURES
from opdiag.analysis import analyse, critical_path
from opdiag.diagnosis.bottleneck import noise_check as _noise_check
from opdiag.diagnosis.rules import Globs
from opdiag.diagnosis.timing import Timing, trace_timing
from opdiag.errors import TraceFormatError
from opdiag.model import (
    CHILD_OF,
    CLIENT,
    CONSUMER,
    PRODUCER,
    SERVER,
    Reference,
    Span,
    Trace,
    build_trace,
)
from opdiag.settings import DiagnosisSettings
from opdiag.sources.files import trace_files
from opdiag.sources.readers import read_file


def _without(trace: Trace, noisy: set[str]) -> Trace:
    """The old way: a copy of ``trace`` minus the ``noisy`` spans, rebuilt."""
    kept: list[Span] = []
    for span in trace.spans:
        if span.span_id in noisy:
            continue
        parent = span.parent_id
        while parent is not None and parent in noisy:
            parent = trace.by_id[parent].parent_id
        refs = [Reference(CHILD_OF, trace.trace_id, parent)] if parent is not None else []
        kept.append(msgspec.structs.replace(span, references=refs, warnings=[]))
    return build_trace(trace.trace_id, kept)


def _noisy(trace: Trace, is_noise: Callable[[Span], bool]) -> set[str]:
    return {s.span_id for s in trace.spans if is_noise(s)}


def _old_timing(trace: Trace, is_noise: Callable[[Span], bool]) -> Timing:
    """The two passes timing used to make: the plain path, and only when noise was on it
    the path of the trace rebuilt without noise."""
    result = analyse(trace, reattach_async=True)
    timing = Timing(result.self_time, result.critical_time, result.critical_path.length_us)
    noisy = _noisy(trace, is_noise)
    if not noisy or not any(sid in timing.critical_us for sid in noisy):
        return timing
    quiet = analyse(_without(trace, noisy), reattach_async=True)
    return Timing(result.self_time, quiet.critical_time, quiet.critical_path.length_us)


def _rebuilt_timing(trace: Trace, is_noise: Callable[[Span], bool]) -> Timing:
    """Self times of the trace, the critical path of the trace rebuilt without noise."""
    result = analyse(trace, reattach_async=True)
    quiet = analyse(_without(trace, _noisy(trace, is_noise)), reattach_async=True)
    return Timing(result.self_time, quiet.critical_time, quiet.critical_path.length_us)


def _all_traces() -> list[Trace]:
    traces: list[Trace] = []
    for path in [*sorted(JAEGER_FIXTURES.glob("*.json")), *trace_files(DEMO_TRACES)]:
        try:
            traces.extend(read_file(path))
        except TraceFormatError:
            continue
    return traces


TRACES = _all_traces()
NOISE = _noise_check(Globs.of(DiagnosisSettings().noise_span_patterns))


def _same_paths(trace: Trace, hidden: set[str]) -> None:
    quiet = _without(trace, hidden)
    for reattach in (False, True):
        for strict in (False, True):
            got = critical_path(
                trace, reattach_async=reattach, strict_boundary=strict, transparent=hidden
            )
            want = critical_path(quiet, reattach_async=reattach, strict_boundary=strict)
            assert got.sections == want.sections
            assert got.failed == want.failed
            assert got.reattached == want.reattached


@pytest.mark.parametrize("index", range(len(TRACES)))
def test_transparent_equals_rebuilt_trace_on_fixtures(index: int) -> None:
    trace = TRACES[index]
    rng = random.Random(index)
    ids = [s.span_id for s in trace.spans]
    _same_paths(trace, {s.span_id for s in trace.spans if NOISE(s)})
    for share in (0.2, 0.5, 0.9):
        _same_paths(trace, {sid for sid in ids if rng.random() < share})
    if trace.roots:
        _same_paths(trace, {trace.roots[0].span_id})


def _random_trace(rng: random.Random, n: int) -> Trace:
    """Children that start before, after and inside their parents, outlive them, share start
    times (ties), producer/consumer pairs and several roots."""
    spans: list[Span] = []
    kinds = [SERVER, CLIENT, PRODUCER, CONSUMER, "internal"]
    for i in range(n):
        sid = f"{i + 1:016x}"
        parent = spans[rng.randrange(len(spans))] if spans and rng.random() < 0.9 else None
        if parent is None:
            start = rng.randrange(0, 50) * 10
        else:
            start = parent.start_us + rng.randrange(-2, 12) * 10
        duration = rng.randrange(0, 12) * 10
        refs = [Reference(CHILD_OF, "ab" * 16, parent.span_id)] if parent else []
        spans.append(
            Span(
                "ab" * 16,
                sid,
                f"op{i % 7}",
                "svc",
                start,
                duration,
                rng.choice(kinds),
                {},
                [],
                refs,
            )
        )
    rng.shuffle(spans)
    return build_trace("ab" * 16, spans)


@pytest.mark.parametrize("seed", range(60))
def test_transparent_equals_rebuilt_trace_on_random_trees(seed: int) -> None:
    rng = random.Random(seed)
    trace = _random_trace(rng, rng.randrange(2, 80))
    for share in (0.1, 0.3, 0.6):
        hidden = {s.span_id for s in trace.spans if rng.random() < share}
        _same_paths(trace, hidden)


@pytest.mark.parametrize("index", range(len(TRACES)))
def test_trace_timing_unchanged(index: int) -> None:
    trace = TRACES[index]
    assert trace_timing(trace, NOISE) == _old_timing(trace, NOISE)
    assert trace_timing(trace, NOISE) == _rebuilt_timing(trace, NOISE)
    plain = analyse(trace, reattach_async=True)
    assert trace_timing(trace) == Timing(
        plain.self_time, plain.critical_time, plain.critical_path.length_us
    )


@pytest.mark.parametrize("seed", range(40))
def test_trace_timing_is_the_rebuilt_traces_on_random_trees(seed: int) -> None:
    rng = random.Random(1000 + seed)
    trace = _random_trace(rng, rng.randrange(2, 60))
    noisy_names = {f"op{k}" for k in range(7) if rng.random() < 0.4}

    def is_noise(span: Span) -> bool:
        return span.name in noisy_names

    assert trace_timing(trace, is_noise) == _rebuilt_timing(trace, is_noise)


@pytest.mark.parametrize("seed", range(30))
def test_copy_from_the_cached_walk_equals_copy_subtree(seed: int) -> None:
    from opdiag.analysis.critical_path import _copy_walked, _root_ranges, copy_subtree

    rng = random.Random(3000 + seed)
    trace = TRACES[seed % len(TRACES)] if seed % 2 else _random_trace(rng, rng.randrange(2, 60))
    ranges = _root_ranges(trace, trace.roots)
    assert ranges is not None
    for root, (lo, hi) in zip(trace.roots, ranges, strict=True):
        want = copy_subtree(trace, root, prune=True, base=7)
        got = _copy_walked(trace.walked(), lo, hi, 7)
        assert [(n.span_id, n.start, n.end, n.kind, n.parent, n.dropped) for n in got] == [
            (n.span_id, n.start, n.end, n.kind, n.parent, n.dropped) for n in want
        ]
    assert trace.walk_list() == list(trace.walk()) == trace.walked()
    assert trace.walk_list() is not trace.walked()


def test_scoped_walk_shortcut_sees_every_foreign_id() -> None:
    from opdiag.diagnosis import facts

    rng = random.Random(7)
    values: list[object] = ["op_a", "op_b", " op_a ", "None", "", 1, True, 1.0, None, ["x"]]
    for _ in range(200):
        trace = _random_trace(rng, rng.randrange(2, 30))
        for span in trace.spans:
            value = rng.choice(values)
            if value is not None:
                span.attributes["operation.id"] = value
        for wanted in ("op_a", "1", "True", "1.0"):
            got = facts.scoped_walk(trace, wanted)
            spans = trace.spans
            texts = {facts.operation_id_of(s) for s in spans} - {None}
            assert facts._has_foreign_id(spans, wanted) or texts <= {wanted}
            if texts <= {wanted}:
                assert got == (trace.walk_list(), frozenset())
