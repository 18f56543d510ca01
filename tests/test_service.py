"""DiagnosisService: lookup, grouping, baselines, listing, counts, variables and the cache."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opdiag import service as service_module
from opdiag.errors import InputError, NotFoundError
from opdiag.lru import LRUCache
from opdiag.model import CHILD_OF, SERVER, Reference, Span, Trace, build_trace
from opdiag.service import DiagnosisService
from opdiag.settings import Settings

S = 1_000_000
NOW = 1_763_900_000 * S
BT = "ktrdr-backtest-worker-1a2b"


def span(tid, sid, name, service=BT, *, parent=None, start=0, dur=1_000, kind="internal",
         **attrs) -> Span:
    return Span(trace_id=tid, span_id=sid, name=name, service=service, start_us=start,
                duration_us=dur, kind=kind, attributes=dict(attrs),
                references=[Reference(CHILD_OF, tid, parent)] if parent else [])


def backtest(n: int, start: int, seconds: float, *, finished: bool = True) -> tuple[str, Trace]:
    """A worker trace of one backtest: dispatch, register, phases, terminal transition."""
    op = f"op_backtesting_20251122_10{n:04d}_{n:08x}"
    tid = f"{n:032x}"
    dur = int(seconds * S)
    ids = {"operation.id": op}
    spans = [
        span(tid, "1", "POST /backtests/start", kind=SERVER, start=start, dur=2_000,
             **{"http.status_code": 200}),
        span(tid, "2", "operations.create", parent="1", start=start + 10, **ids),
        span(tid, "3", "operation.register", parent="2", start=start + 20,
             **ids, **{"operation.type": "backtesting", "operation.status": "pending"}),
        span(tid, "4", "operation.state_transition", parent="1", start=start + 100,
             **ids, **{"operation.from_status": "pending", "operation.to_status": "running"}),
        span(tid, "5", "backtest.data_loading", parent="1", start=start + 200, dur=dur - 1_000,
             **{"data.symbol": "AAPL"}),
    ]
    if finished:
        spans.append(
            span(tid, "6", "operation.state_transition", parent="1", start=start + dur, dur=50,
                 **ids, **{"operation.from_status": "running",
                           "operation.to_status": "completed"})
        )
    return op, build_trace(tid, spans)


class FakeSource:
    """An in-memory TraceSource (the protocol, nothing more)."""

    def __init__(self, traces: list[Trace]) -> None:
        self.traces = traces
        self.calls = 0
        self.windows: list[Any] = []

    def describe(self) -> str:
        return "memory"

    def check(self) -> None:
        return None

    def traces_for(self, ident: str, window: Any = None) -> list[Trace]:
        self.calls += 1
        self.windows.append(window)
        tid = ident.lower().rjust(32, "0")
        return [t for t in self.traces
                if t.trace_id == tid or any(s.attr("operation.id") == ident for s in t.spans)]

    def recent_traces(self, start_us: int, end_us: int, limit: int = 500) -> list[Trace]:
        found = [t for t in self.traces if any(start_us <= s.start_us < end_us for s in t.spans)]
        return sorted(found, key=lambda t: t.start_us, reverse=True)[:limit]

    def all_services(self) -> list[str]:
        return sorted({s.service for t in self.traces for s in t.spans})


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def counting(monkeypatch):
    """Counts engine.diagnose calls per operation id."""
    calls: dict[str | None, int] = {}
    real = service_module.engine.diagnose

    def wrapper(traces, **kwargs):
        key = kwargs.get("operation_id") or kwargs.get("ident")
        calls[key] = calls.get(key, 0) + 1
        return real(traces, **kwargs)

    monkeypatch.setattr(service_module.engine, "diagnose", wrapper)
    return calls


def corpus() -> tuple[list[str], list[Trace]]:
    ops, traces = [], []
    for n, secs in enumerate([10, 11, 12, 100], start=1):
        op, tr = backtest(n, NOW - 3600 * S + n * 200 * S, secs)
        ops.append(op)
        traces.append(tr)
    return ops, traces


def test_unknown_id_is_not_found(settings):
    svc = DiagnosisService(FakeSource([]), settings)
    with pytest.raises(NotFoundError):
        svc.diagnose("op_nope", now_us=NOW)
    with pytest.raises(InputError):
        svc.diagnose("  ", now_us=NOW)


def test_diagnose_fills_links_and_trace_ids(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    d = svc.diagnose(ops[0], now_us=NOW)
    assert d.operation_id == ops[0]
    assert d.trace_ids == [traces[0].trace_id]
    assert d.verdict == "healthy"
    assert d.links.diagnosis_page.endswith(
        f"/operations/{ops[0]}?from={d.started_at_ms - 60_000}&to={d.ended_at_ms + 60_000}"
    )
    assert d.links.traces[traces[0].trace_id].endswith("/trace/" + traces[0].trace_id)


def test_trace_id_of_a_one_operation_trace_diagnoses_the_operation(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    d = svc.diagnose(traces[1].trace_id, now_us=NOW)
    assert d.operation_id == ops[1]


def test_slow_against_the_baseline_of_healthy_runs(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    slow = svc.diagnose(ops[3], now_us=NOW)
    assert slow.verdict == "slow"
    assert slow.baseline_ms == pytest.approx(11_000, rel=0.05)  # median of 10, 11, 12 s
    assert svc.diagnose(ops[0], now_us=NOW).verdict == "healthy"
    # The listing agrees with the one-by-one answers.
    listed = {d.key: d.verdict for d in svc.operations(0, 2**62, NOW)}
    assert listed[ops[3]] == "slow" and listed[ops[0]] == "healthy"


def test_too_few_runs_fall_back_to_the_budget(settings):
    op, tr = backtest(1, NOW - 3600 * S, 100)
    svc = DiagnosisService(FakeSource([tr]), settings)
    d = svc.diagnose(op, now_us=NOW)
    assert d.verdict == "healthy"  # 100 s < 600 s budget
    assert d.comparison.runs == [] and "no good run of backtesting" in d.comparison.note


def test_cache_serves_finished_and_recomputes_unfinished(settings, counting):
    ops, traces = corpus()
    running_op, running = backtest(9, NOW - 30 * S, 600, finished=False)
    svc = DiagnosisService(FakeSource([*traces, running]), settings)
    first = svc.diagnose(ops[0], now_us=NOW)
    calls_after_first = counting[ops[0]]
    again = svc.diagnose(ops[0], now_us=NOW)
    assert again is first
    assert counting[ops[0]] == calls_after_first
    assert svc.cache_stats()["hits"] >= 1
    before = counting.get(running_op, 0)  # a baseline candidate of ops[0] already
    svc.diagnose(running_op, now_us=NOW)
    svc.diagnose(running_op, now_us=NOW)
    assert counting[running_op] == before + 2
    assert not svc.diagnose(running_op, now_us=NOW).finished


def test_cache_is_bounded():
    cache = LRUCache(2)
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), Settings())
    d = svc.diagnose(ops[0], now_us=NOW)
    cache.put("a", d)
    cache.put("b", d)
    assert cache.get("a") is d  # a is now most recent
    cache.put("c", d)
    assert cache.get("b") is None and cache.get("a") is d and len(cache) == 2
    assert (cache.hits, cache.misses) == (2, 1)


def test_operations_newest_first_with_filters_and_limit(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    listed = svc.operations(0, 2**62, NOW)
    assert [d.key for d in listed] == list(reversed(ops))
    assert [d.key for d in svc.operations(0, 2**62, NOW, limit=2)] == [ops[3], ops[2]]
    assert [d.key for d in svc.operations(0, 2**62, NOW, verdicts=["slow"])] == [ops[3]]
    assert svc.operations(0, 2**62, NOW, operation_types=["training"]) == []
    assert len(svc.operations(0, 2**62, NOW, services=[BT])) == 4
    with pytest.raises(InputError):
        svc.operations(10, 5, NOW)


def test_verdict_counts_per_bucket(settings):
    _ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    start = NOW - 7200 * S
    rows = svc.verdict_counts(start, NOW, 3600 * S, NOW)
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.verdict] = totals.get(row.verdict, 0) + row.count
    assert totals == {"healthy": 3, "slow": 1}
    hour_ms = 3600 * 1000
    times = sorted({r.time for r in rows})
    assert all(t % hour_ms == 0 for t in times)  # epoch-aligned buckets
    assert times[0] <= start // 1000 < times[0] + hour_ms and times[-1] < NOW // 1000
    assert times == list(range(times[0], times[-1] + 1, hour_ms))  # none missing
    assert len(rows) == 2 * len(times)  # zero-filled: every verdict in every bucket
    with pytest.raises(InputError):
        svc.verdict_counts(start, NOW, 0, NOW)


def test_variable_values(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    window = (NOW - 7200 * S, NOW)
    assert [r.value for r in svc.variable_values("operation_types", *window)] == ["backtesting"]
    assert [r.value for r in svc.variable_values("operation_ids", *window)] == list(reversed(ops))
    assert [r.value for r in svc.variable_values("services", *window)] == [BT]
    assert "stuck" in [r.value for r in svc.variable_values("verdicts", *window)]
    with pytest.raises(InputError):
        svc.variable_values("nope", *window)


def test_concurrent_diagnoses_agree(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    results: list[str] = []
    errors: list[BaseException] = []

    def work(op: str) -> None:
        try:
            results.append(svc.diagnose(op, now_us=NOW).verdict)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ops[i % 4],)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(set(results)) == ["healthy", "slow"]


def test_baseline_diagnoses_only_finished_runs_of_the_same_type(settings, counting):
    ops, traces = corpus()
    _running_op, running = backtest(9, NOW - 30 * S, 600, finished=False)
    tid = "f" * 32
    training_op = "op_training_20251122_101600_aaaabbbb"
    training = build_trace(tid, [
        span(tid, "1", "operation.state_transition", "ktrdr-training-worker-1",
             start=NOW - 100 * S, **{"operation.id": training_op,
                                      "operation.to_status": "completed"}),
    ])
    svc = DiagnosisService(FakeSource([*traces, running, training]), settings)
    assert svc.diagnose(ops[3], now_us=NOW).verdict == "slow"
    assert set(counting) == set(ops)  # neither the running run nor the other type


class ReusingSource(FakeSource):
    """A source with a recent window (like JaegerSource.recent_traces_for) that may be stale:
    ``window`` is what the window held when it was searched, ``traces`` is Jaeger now."""

    def __init__(self, traces: list[Trace], window: list[Trace]) -> None:
        super().__init__(traces)
        self.window = window
        self.reused = 0

    def recent_traces_for(self, ident: str) -> list[Trace] | None:
        self.reused += 1
        found = [t for t in self.window if any(s.attr("operation.id") == ident for s in t.spans)]
        return found or None


def test_finished_operations_are_diagnosed_from_the_recent_window(settings):
    ops, traces = corpus()
    src = ReusingSource(traces, window=traces)
    d = DiagnosisService(src, settings).diagnose(ops[0], now_us=NOW)
    assert d.finished and d.verdict == "healthy"
    assert src.reused == 1 and src.calls == 0  # no lookup of its own


def test_stale_window_of_unfinished_work_is_looked_up_again(settings):
    """The window saw the operation running; Jaeger now holds its completion."""
    op, running = backtest(7, NOW - 600 * S, 30, finished=False)
    _, done = backtest(7, NOW - 600 * S, 30, finished=True)
    src = ReusingSource([done], window=[running])
    d = DiagnosisService(src, settings).diagnose(op, now_us=NOW)
    assert src.calls == 1  # asked the source itself
    assert d.finished and d.status == "completed"


def test_unfinished_work_is_never_served_from_the_window(settings):
    op, running = backtest(8, NOW - 60 * S, 30, finished=False)
    src = ReusingSource([running], window=[running])
    svc = DiagnosisService(src, settings)
    assert not svc.diagnose(op, now_us=NOW).finished
    assert not svc.diagnose(op, now_us=NOW).finished
    assert src.calls == 2  # each request looked it up afresh


def test_an_operation_newer_than_the_window_is_looked_up(settings):
    ops, traces = corpus()
    src = ReusingSource(traces, window=[])
    assert DiagnosisService(src, settings).diagnose(ops[0], now_us=NOW).verdict == "healthy"
    assert src.calls == 1


def test_slow_baseline_is_healthy_not_slow_runs_only(settings):
    """60 s is slow against the others; counting it (as healthy-or-slow baselines did) would
    lift the median to 20.5 s and let the 25 s run pass. Without it: median 11 s, slow."""
    ops, traces = [], []
    for n, secs in enumerate([10, 11, 30, 60, 25], start=1):
        op, tr = backtest(n, NOW - 3600 * S + n * 200 * S, secs)
        ops.append(op)
        traces.append(tr)
    svc = DiagnosisService(FakeSource(traces), settings)
    last = svc.diagnose(ops[4], now_us=NOW)
    assert last.verdict == "slow"
    assert last.baseline_ms == pytest.approx(11_000, rel=0.05)
    assert [r.key for r in last.comparison.runs] == [ops[2], ops[1], ops[0]]  # newest first
    assert svc.diagnose(ops[3], now_us=NOW).verdict == "slow"
    listed = {d.key: d for d in svc.operations(0, 2**62, NOW)}
    assert listed[ops[4]].verdict == "slow" and listed[ops[4]].baseline_ms == last.baseline_ms


def test_baseline_runs_setting_bounds_the_runs(settings):
    ops, traces = corpus()
    narrow = settings.model_copy(
        update={"comparison": settings.comparison.model_copy(update={"baseline_runs": 2})}
    )
    svc = DiagnosisService(FakeSource(traces), narrow)
    c = svc.diagnose(ops[3], now_us=NOW).comparison
    assert [r.key for r in c.runs] == [ops[2], ops[1]] and c.wanted_runs == 2


def test_unfinished_operations_have_no_comparison(settings):
    running_op, running = backtest(9, NOW - 30 * S, 600, finished=False)
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource([*traces, running]), settings)
    assert svc.diagnose(running_op, now_us=NOW).comparison is None
    assert svc.diagnose(ops[0], now_us=NOW).comparison is not None


def test_compare_two_operations(settings):
    ops, traces = corpus()
    svc = DiagnosisService(FakeSource(traces), settings)
    this, other, c = svc.compare(ops[3], ops[0], now_us=NOW)
    assert (this.key, other.key) == (ops[3], ops[0])
    assert [r.key for r in c.runs] == [ops[0]]
    assert c.phases[0].name == "backtest.data_loading" and c.phases[0].status == "slower"
    assert c.headline.endswith(f"vs {ops[0]}")
    with pytest.raises(InputError):
        svc.compare(ops[0], ops[0], now_us=NOW)
    with pytest.raises(NotFoundError):
        svc.compare(ops[0], "op_nope", now_us=NOW)
