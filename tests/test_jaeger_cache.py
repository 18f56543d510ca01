"""Fewer Jaeger calls on the live path: the TtlCache (TTL, weight bound, single-flight), the
service-list and search caches of JaegerSource, the shared live window, and the service's
reuse of it for finished operations only (unfinished ones are looked up again)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opdiag.devtools.replay_jaeger import ReplayJaeger
from opdiag.errors import SourceUnavailableError
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.jaeger import JaegerSource
from opdiag.sources.jaeger_cache import TtlCache

DATA = Path(__file__).parent / "data" / "jaeger_replay"
T0 = 1_764_000_000
NOW = T0 + 3600
S = 1_000_000
WINDOW = ((T0 - 60) * S, NOW * S)
RUNNING_OP = "op_backtesting_20251124_160000_1a2b"  # no terminal transition: "stuck" at NOW
OTHER_RUNNING_OP = "op_training_20251124_161000_3c4d"
FINISHED_OP = "op_legacy_20251124_003"  # failed: finished
SEARCH = "/api/v3/traces"
SERVICES = "/api/v3/services"


class Clock:
    """A hand-moved monotonic clock for TTL tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Callable[[], bool]) -> None:
    """Let other threads reach a state; a guard against hanging, not a timing assertion."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("state never reached")
        time.sleep(0.001)


# --------------------------------------------------------------------------- TtlCache


def test_cache_reuses_until_the_ttl_passes() -> None:
    clock = Clock()
    cache: TtlCache[str] = TtlCache(10.0, 100, clock=clock)
    loads: list[int] = []

    def load() -> str:
        loads.append(1)
        return f"answer {len(loads)}"

    assert cache.get_or_load("k", load) == "answer 1"
    clock.now += 9.9
    assert cache.get_or_load("k", load) == "answer 1"
    clock.now += 0.2
    assert cache.get_or_load("k", load) == "answer 2"
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 2


def test_cache_max_age_zero_and_store_false_never_reuse() -> None:
    cache: TtlCache[int] = TtlCache(60.0, 100, clock=Clock())
    counter = iter(range(100))
    assert cache.get_or_load("k", lambda: next(counter)) == 0
    assert cache.get_or_load("k", lambda: next(counter), max_age_s=0) == 1
    assert cache.get_or_load("j", lambda: next(counter), store=False) == 2
    assert cache.get_or_load("j", lambda: next(counter), store=False) == 3
    assert cache.peek("j") is None


def test_cache_accept_can_refuse_a_stored_value() -> None:
    cache: TtlCache[int] = TtlCache(60.0, 100, clock=Clock())
    cache.get_or_load("k", lambda: 1)
    assert cache.get_or_load("k", lambda: 2, accept=lambda v: v >= 2) == 2
    assert cache.get_or_load("k", lambda: 3, accept=lambda v: v >= 2) == 2


def test_cache_is_bounded_by_weight_least_recently_used_first() -> None:
    cache: TtlCache[list[int]] = TtlCache(60.0, 10, weigh=len, clock=Clock())
    cache.get_or_load("a", lambda: [0] * 4)
    cache.get_or_load("b", lambda: [0] * 4)
    cache.get_or_load("a", lambda: [1])  # a is now the most recently used
    cache.get_or_load("c", lambda: [0] * 4)
    assert cache.weight <= 10
    assert cache.peek("b") is None and cache.peek("a") is not None
    cache.get_or_load("huge", lambda: [0] * 11)  # served, never kept
    assert cache.peek("huge") is None and cache.weight <= 10


def test_cache_drops_expired_entries_when_adding() -> None:
    clock = Clock()
    cache: TtlCache[int] = TtlCache(5.0, 1000, clock=clock)
    for key in range(20):
        cache.get_or_load(key, lambda: 1)
    clock.now += 6
    cache.get_or_load("new", lambda: 1)
    assert len(cache) == 1


def test_concurrent_identical_requests_share_one_load() -> None:
    cache: TtlCache[object] = TtlCache(0.0, 100)  # nothing stored: only the flight is shared
    release = threading.Event()
    loads: list[object] = []

    def load() -> object:
        release.wait(30)
        value = object()
        loads.append(value)
        return value

    results: list[object] = []

    def ask() -> None:
        results.append(cache.get_or_load("k", load))

    threads = [threading.Thread(target=ask) for _ in range(5)]
    threads[0].start()
    wait_until(lambda: cache.misses == 1)
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: cache.joined == 4)
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(loads) == 1
    assert len(results) == 5 and all(r is loads[0] for r in results)


def test_a_failed_load_reaches_every_waiter_and_is_not_stored() -> None:
    cache: TtlCache[int] = TtlCache(60.0, 100)
    release = threading.Event()

    def failing() -> int:
        release.wait(30)
        raise SourceUnavailableError("jaeger down")

    errors: list[BaseException] = []

    def ask() -> None:
        try:
            cache.get_or_load("k", failing)
        except SourceUnavailableError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(3)]
    threads[0].start()
    wait_until(lambda: cache.misses == 1)
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: cache.joined == 2)
    release.set()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 3
    assert cache.get_or_load("k", lambda: 7) == 7  # the failure was not cached


# --------------------------------------------------------------------------- JaegerSource


@pytest.fixture
def server() -> Iterator[ReplayJaeger]:
    replay = ReplayJaeger(DATA).start()
    yield replay
    replay.stop()


@pytest.fixture
def make_source(server: ReplayJaeger) -> Iterator[Callable[..., JaegerSource]]:
    opened: list[JaegerSource] = []

    def make(**overrides: Any) -> JaegerSource:
        settings = Settings.model_validate(
            {"jaeger": {"url": server.url, "backoff_s": 0.0, **overrides}}
        )
        src = JaegerSource(settings.jaeger, clock=lambda: NOW)
        opened.append(src)
        return src

    yield make
    for src in opened:
        src.close()


def calls_to(server: ReplayJaeger, path: str, since: int = 0) -> list[dict[str, list[str]]]:
    return [query for _, p, query in server.calls[since:] if p == path]


def test_service_list_is_reused_for_its_ttl(server: ReplayJaeger, make_source: Any) -> None:
    src = make_source()
    first = src.all_services()
    before = len(calls_to(server, SERVICES))
    assert src.all_services() == first
    src.recent_traces(*WINDOW)
    assert len(calls_to(server, SERVICES)) == before
    src.check()  # readiness always asks Jaeger
    assert len(calls_to(server, SERVICES)) == before + 1


def test_service_list_ttl_zero_asks_every_time(server: ReplayJaeger, make_source: Any) -> None:
    src = make_source(services_ttl_s=0)
    src.all_services()
    before = len(calls_to(server, SERVICES))
    src.all_services()
    assert len(calls_to(server, SERVICES)) == before + 1


def test_window_searches_are_reused_and_cut_to_the_window(
    server: ReplayJaeger, make_source: Any
) -> None:
    src = make_source()
    everything = src.recent_traces(*WINDOW)
    searches = len(calls_to(server, SEARCH))
    assert searches > 0
    assert [t.trace_id for t in src.recent_traces(*WINDOW)] == [t.trace_id for t in everything]
    narrow = src.recent_traces((T0 + 500) * S, (T0 + 950) * S)
    assert len(calls_to(server, SEARCH)) == searches
    assert narrow and all(t in everything for t in narrow)
    assert all(any((T0 + 500) * S <= s.start_us < (T0 + 950) * S for s in t.spans) for t in narrow)
    assert len(narrow) < len(everything)


def test_search_ttl_zero_disables_reuse(server: ReplayJaeger, make_source: Any) -> None:
    src = make_source(search_ttl_s=0)
    src.recent_traces(*WINDOW)
    searches = len(calls_to(server, SEARCH))
    src.recent_traces(*WINDOW)
    assert len(calls_to(server, SEARCH)) == 2 * searches
    assert src.recent_traces_for(RUNNING_OP) is None


def test_operation_lookup_always_asks_jaeger(server: ReplayJaeger, make_source: Any) -> None:
    src = make_source()
    src.traces_for(RUNNING_OP)
    tagged = len(calls_to(server, SEARCH))
    src.traces_for(RUNNING_OP)
    assert len(calls_to(server, SEARCH)) == 2 * tagged


def test_lookup_from_the_live_window_matches_the_tag_search(
    server: ReplayJaeger, make_source: Any
) -> None:
    src = make_source()
    src.recent_traces(*WINDOW)  # the operations list fills the live window
    before = len(server.calls)
    for op in (RUNNING_OP, OTHER_RUNNING_OP, FINISHED_OP):
        reused = src.recent_traces_for(op)
        assert reused is not None
        assert len(server.calls) == before  # no call at all
        assert [t.trace_id for t in reused] == [t.trace_id for t in src.traces_for(op)]
        before = len(server.calls)
    assert src.recent_traces_for("op_nobody_20251124_000000_0000") is None


def test_a_cut_live_window_is_not_used_for_lookups(server: ReplayJaeger, make_source: Any) -> None:
    src = make_source(search_limit=1, live_depth=1)
    assert src.recent_traces_for(RUNNING_OP) is None


# --------------------------------------------------------------------------- the service


@pytest.fixture
def service(server: ReplayJaeger) -> Iterator[DiagnosisService]:
    settings = Settings.model_validate({"jaeger": {"url": server.url, "backoff_s": 0.0}})
    src = JaegerSource(settings.jaeger, clock=lambda: NOW)
    yield DiagnosisService(src, settings)
    src.close()


def test_a_cold_diagnosis_searches_the_window_once_for_its_baseline(
    server: ReplayJaeger, service: DiagnosisService
) -> None:
    """Every finished operation, failed ones too, is compared with the last good runs of its
    type: its own traces come from tag searches, the runs from one window search per service
    (the live window the operations list shares), not one search per run."""
    d = service.diagnose(FINISHED_OP, now_us=NOW * S)
    assert d.finished and d.verdict not in ("healthy", "slow")
    assert d.comparison is not None
    searches = calls_to(server, SEARCH)
    # tag searches for the operation, the neighbour evidence searched by span name (health
    # checks, ib.connect), and the baseline's window: one search per service, not per run
    assert any("query.attributes" in q for q in searches)
    window = [
        q["query.serviceName"][0]
        for q in searches
        if "query.attributes" not in q and "query.operationName" not in q
    ]
    assert window and len(window) == len(set(window))


def _tag(key: str, value: Any) -> dict[str, Any]:
    kind = "int64" if isinstance(value, int) else "string"
    return {"key": key, "type": kind, "value": value}


def _legacy_span(n: int, k: int, name: str, at: int, dur: int, *tags: Any) -> dict[str, Any]:
    """Span ``k`` of backtest ``n`` in legacy JSON; span 1 is the root of the others."""
    tid = f"{0xB0 + n:032x}"
    parent = [{"refType": "CHILD_OF", "traceID": tid, "spanID": f"{n:08x}{1:08x}"}]
    return {
        "traceID": tid,
        "spanID": f"{n:08x}{k:08x}",
        "operationName": name,
        "references": [] if k == 1 else parent,
        "startTime": at,
        "duration": dur,
        "tags": list(tags),
        "logs": [],
        "processID": "p1",
    }


def healthy_backtests(count: int, start_s: int) -> tuple[list[str], dict[str, Any]]:
    """Legacy Jaeger JSON of ``count`` finished, healthy backtests (one worker trace each)."""
    ops, data = [], []
    for n in range(1, count + 1):
        op = f"op_backtesting_20251124_17{n:04d}_{n:08x}"
        start = (start_s + 60 * n) * S
        ident = _tag("operation.id", op)
        running = (_tag("operation.from_status", "pending"), _tag("operation.to_status", "running"))
        done = (_tag("operation.from_status", "running"), _tag("operation.to_status", "completed"))
        registered = (_tag("operation.type", "backtesting"), _tag("operation.status", "pending"))
        spans = [
            _legacy_span(n, 1, "POST /backtests/start", start, 20 * S, _tag("span.kind", "server")),
            _legacy_span(n, 2, "operation.register", start + 10, 100, ident, *registered),
            _legacy_span(n, 3, "operation.state_transition", start + 200, 100, ident, *running),
            _legacy_span(n, 4, "backtest.data_loading", start + 300, 10 * S),
            _legacy_span(
                n, 5, "operation.state_transition", start + 20 * S - 100, 50, ident, *done
            ),
        ]
        processes = {"p1": {"serviceName": "ktrdr-backtest-worker-0a0b0c0d", "tags": []}}
        data.append({"traceID": f"{0xB0 + n:032x}", "spans": spans, "processes": processes})
        ops.append(op)
    return ops, {"data": data}


def test_the_baseline_window_serves_the_next_cold_diagnoses() -> None:
    ops, document = healthy_backtests(4, T0)
    replay = ReplayJaeger([document]).start()
    settings = Settings.model_validate({"jaeger": {"url": replay.url, "backoff_s": 0.0}})
    src = JaegerSource(settings.jaeger, clock=lambda: NOW)
    try:
        service = DiagnosisService(src, settings)
        first = service.diagnose(ops[0], now_us=NOW * S)
        assert first.verdict == "healthy" and first.baseline_ms  # a baseline was computed
        windows = [q for q in calls_to(replay, SEARCH) if "query.attributes" not in q]
        assert len(windows) == 1  # one matching service, one window search for the baseline
        before = len(replay.calls)
        for op in ops[1:]:
            d = service.diagnose(op, now_us=NOW * S)
            assert d.verdict == "healthy" and d.baseline_ms
        assert len(replay.calls) == before  # found in the window, baseline from it too
    finally:
        src.close()
        replay.stop()


def test_unfinished_operations_are_looked_up_again(
    server: ReplayJaeger, service: DiagnosisService
) -> None:
    service.operations(*WINDOW, now_us=NOW * S)  # the live window is now cached
    before = len(server.calls)
    d = service.diagnose(RUNNING_OP, now_us=NOW * S)
    assert not d.finished
    tagged = [q for q in calls_to(server, SEARCH, before) if "query.attributes" in q]
    assert tagged  # reused traces were not trusted for unfinished work
    again = len(server.calls)
    service.diagnose(RUNNING_OP, now_us=NOW * S)
    assert len(server.calls) > again  # and never cached


def test_finished_operations_come_from_the_list_without_a_call(
    server: ReplayJaeger, service: DiagnosisService
) -> None:
    rows = service.operations(*WINDOW, now_us=NOW * S)
    assert FINISHED_OP in {d.key for d in rows}
    service._final.clear()  # not the diagnosis cache: the traces of the live window
    service._base.clear()
    before = len(server.calls)
    d = service.diagnose(FINISHED_OP, now_us=NOW * S)
    assert d.finished and len(server.calls) == before


def test_window_answers_are_decoded_one_at_a_time(
    server: ReplayJaeger, make_source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fetches overlap, decoding does not (it only raised the memory high-water mark)."""
    src = make_source()
    api = src._query_api()
    real = type(api).search_document
    inside: list[int] = []
    most = [0]
    lock = threading.Lock()
    other_arrived = threading.Event()

    def tracked(self: Any, reply: Any) -> Any:
        with lock:
            inside.append(1)
            most[0] = max(most[0], len(inside))
            if len(inside) > 1:
                other_arrived.set()
        other_arrived.wait(0.2)  # gives a second decoder the chance to overlap, if it can
        try:
            return real(self, reply)
        finally:
            with lock:
                inside.pop()

    monkeypatch.setattr(type(api), "search_document", tracked)
    assert src.recent_traces(*WINDOW)
    assert most[0] == 1
