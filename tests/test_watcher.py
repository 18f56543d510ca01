"""The watcher: what a pass records, what it counts, how it survives failures, who leads."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.devtools.replay_jaeger import Fault, ReplayJaeger
from opdiag.diagnosis.result import Diagnosis
from opdiag.errors import NotFoundError, SourceUnavailableError
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.budget import Budget, BudgetSpentError, current
from opdiag.sources.files import FileSource
from opdiag.sources.jaeger import JaegerSource
from opdiag.store.sql import SqlStore
from opdiag.timeutil import parse_now
from opdiag.verdict_metrics import VerdictMetrics
from opdiag.watcher import Watcher
from prometheus_client import CollectorRegistry, generate_latest
from store_support import BASE_MS, Backends, diagnosis

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "demo" / "traces"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
CORPUS_NOW_US = parse_now(str(EXPECTED["now"]))
MIN_MS = 60_000
US = 1000


class FakeService:
    """The two calls the watcher makes, answering what a test sets."""

    source = None

    def __init__(self) -> None:
        self.window: list[Diagnosis] = []
        self.singles: dict[str, Diagnosis | Exception] = {}
        self.failure: Exception | None = None
        self.diagnosed: list[str] = []
        self.budgets: list[Budget | None] = []  # the Jaeger budget open at each call

    def operations(self, start_us: int, end_us: int, now_us: int | None = None) -> list[Diagnosis]:
        self.budgets.append(current())
        if self.failure is not None:
            raise self.failure
        return list(self.window)

    def diagnose(self, ident: str, now_us: int | None = None) -> Diagnosis:
        self.budgets.append(current())
        self.diagnosed.append(ident)
        answer = self.singles[ident]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _metric(registry: CollectorRegistry, line_start: str) -> float | None:
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def backends(request, tmp_path: Path) -> Backends:
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    return Backends(request.param, tmp_path, server)


@pytest.fixture
def store(backends: Backends) -> Iterator[SqlStore]:
    opened = backends.open()
    yield opened
    opened.close()


def _watcher(service: Any, store: SqlStore, *, count_from_ms: int = BASE_MS,
             settings: Settings | None = None) -> tuple[Watcher, CollectorRegistry]:
    registry = CollectorRegistry()
    metrics = VerdictMetrics(registry)
    watcher = Watcher(service, store, settings or Settings(), metrics,
                      count_from_us=count_from_ms * US)
    metrics.seed(["training"])
    return watcher, registry


def test_a_running_operation_becomes_stuck_then_lost_then_settles(store):
    service = FakeService()
    watcher, registry = _watcher(service, store)
    key = "op_training_1"
    steps = [
        ("healthy", False, "running"),
        ("healthy", False, "running"),  # same verdict again: no new history entry
        ("stuck", False, "running"),
        ("worker_lost", False, "running"),
        ("failed", True, "failed"),
    ]
    for minute, (verdict, finished, status) in enumerate(steps, start=1):
        service.window = [diagnosis(key, verdict, finished=finished, status=status,
                                    duration_ms=minute * MIN_MS)]
        report = watcher.run_once(now_us=(BASE_MS + minute * MIN_MS) * US)
        assert report is not None and report.leading
        if verdict == "stuck":
            gauge = 'opdiag_operations_in_progress{operation_type="training",state="stuck"}'
            assert _metric(registry, gauge) == 1.0
            assert [r.verdict_changed for r in report.recorded] == [True]
    history = store.history(key)
    assert [(h.verdict, h.status) for h in history] == [
        ("healthy", "running"), ("stuck", "running"), ("worker_lost", "running"),
        ("failed", "failed")]
    assert [h.recorded_at_ms for h in history] == [
        BASE_MS + m * MIN_MS for m in (1, 3, 4, 5)]
    assert history[-1].duration_ms == 5 * MIN_MS
    assert _metric(
        registry, 'opdiag_operations_finished_total{operation_type="training",verdict="failed"}'
    ) == 1.0
    assert _metric(registry, 'opdiag_operation_duration_seconds_count'
                   '{operation_type="training",verdict="failed"}') == 1.0
    assert _metric(registry, 'opdiag_operation_duration_seconds_sum'
                   '{operation_type="training",verdict="failed"}') == 300.0
    for state in ("running", "stuck", "lost"):
        assert _metric(registry, 'opdiag_operations_in_progress'
                       f'{{operation_type="training",state="{state}"}}') == 0.0
    assert _metric(registry, "opdiag_watcher_last_success_timestamp_seconds") == (
        (BASE_MS + 5 * MIN_MS) / 1000)
    # Settled: the next pass neither records nor counts it again.
    report = watcher.run_once(now_us=(BASE_MS + 6 * MIN_MS) * US)
    assert report is not None and report.recorded == []
    assert _metric(
        registry, 'opdiag_operations_finished_total{operation_type="training",verdict="failed"}'
    ) == 1.0


def test_the_backlog_is_recorded_but_not_counted(store):
    service = FakeService()
    watcher, registry = _watcher(service, store, count_from_ms=BASE_MS)
    service.window = [
        diagnosis("op_old", "failed", finished=True, status="failed",
                  start_ms=BASE_MS - 60 * MIN_MS, duration_ms=MIN_MS),
        diagnosis("op_new", "failed", finished=True, status="failed",
                  start_ms=BASE_MS - MIN_MS, duration_ms=2 * MIN_MS),
    ]
    report = watcher.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US)
    assert report is not None and report.counted == 1
    assert {r.operation_id for r in store.operations(0, 2**62)} == {"op_old", "op_new"}
    assert _metric(
        registry, 'opdiag_operations_finished_total{operation_type="training",verdict="failed"}'
    ) == 1.0


def test_a_new_operation_type_is_exported_at_zero_before_it_counts(store):
    service = FakeService()
    watcher, registry = _watcher(service, store)
    series = 'opdiag_operations_finished_total{operation_type="agent",verdict="failed"}'
    service.window = [diagnosis("op_agent_1", "failed", finished=True, status="failed",
                                op_type="agent", start_ms=BASE_MS + MIN_MS)]
    watcher.run_once(now_us=(BASE_MS + 3 * MIN_MS) * US)
    assert _metric(registry, series) == 0.0  # created, not yet counted: a scrape sees 0
    watcher.run_once(now_us=(BASE_MS + 4 * MIN_MS) * US)
    assert _metric(registry, series) == 1.0


def test_unsettled_operations_outside_the_window_are_followed(store):
    service = FakeService()
    settings = Settings.model_validate({"watcher": {"follow_limit": 5}})
    watcher, _ = _watcher(service, store, settings=settings)
    service.window = [
        diagnosis("op_a", "healthy", finished=False, start_ms=BASE_MS),
        diagnosis("op_b", "healthy", finished=False, start_ms=BASE_MS),
    ]
    watcher.run_once(now_us=(BASE_MS + MIN_MS) * US)
    # Both left the window (older than the lookback, or beyond its trace limit).
    service.window = []
    service.singles = {
        "op_a": diagnosis("op_a", "stuck", finished=False, start_ms=BASE_MS),
        "op_b": NotFoundError("no trace holds op_b"),
    }
    report = watcher.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US)
    assert report is not None and report.followed == 2
    assert sorted(service.diagnosed) == ["op_a", "op_b"]
    assert [h.verdict for h in store.history("op_a")] == ["healthy", "stuck"]
    assert [h.verdict for h in store.history("op_b")] == ["healthy"]  # kept as it was
    # Both were judged at this pass (op_b marked, not rewritten): none is followed again
    # before the next pass.
    assert store.to_follow(BASE_MS + 2 * MIN_MS, 0, 10) == []


def test_follow_ups_share_one_jaeger_budget_and_stop_when_it_is_spent(store, caplog):
    service = FakeService()
    settings = Settings.model_validate({"watcher": {"follow_limit": 5}})
    watcher, _ = _watcher(service, store, settings=settings)
    keys = ["op_a", "op_b", "op_c", "op_d"]
    service.window = [
        diagnosis(k, "healthy", finished=False, start_ms=BASE_MS + i) for i, k in enumerate(keys)
    ]
    watcher.run_once(now_us=(BASE_MS + MIN_MS) * US)
    service.window = []
    spent = BudgetSpentError("Jaeger is too slow (jaeger.budget_s)", Budget())
    service.singles = {
        "op_a": diagnosis("op_a", "stuck", finished=False, start_ms=BASE_MS),
        "op_b": NotFoundError("no trace holds op_b"),
        "op_c": spent,
        "op_d": diagnosis("op_d", "stuck", finished=False, start_ms=BASE_MS),
    }
    service.budgets.clear()
    with caplog.at_level(logging.WARNING, logger="opdiag.watcher"):
        report = watcher.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US)
    # The pass goes on: what it judged is recorded, the rest waits for the next pass.
    assert report is not None and report.followed == 2
    assert service.diagnosed == ["op_a", "op_b", "op_c"]
    assert "followed 2 of 4" in caplog.text and "jaeger.budget_s" in caplog.text
    assert watcher.failures == 0
    assert [h.verdict for h in store.history("op_a")] == ["healthy", "stuck"]
    listing, *follow_ups = service.budgets
    # one budget for the listing, another shared by every follow-up of the pass
    assert listing is not None and follow_ups[0] is not None and follow_ups[0] is not listing
    assert all(b is follow_ups[0] for b in follow_ups)
    assert current() is None  # closed with the pass
    # the operations not judged again come first at the next pass
    assert store.to_follow(BASE_MS + 3 * MIN_MS, 0, 2) == ["op_c", "op_d"]


def test_a_pass_over_a_slow_jaeger_ends_at_its_budget(tmp_path: Path, caplog):
    """Each Jaeger call is bounded on its own; a pass makes dozens. Over a Jaeger answering
    each call slowly the pass fails once its budget is spent, instead of running on; the
    next pass has a budget of its own."""
    with ReplayJaeger(CORPUS) as jaeger:
        jaeger_settings = {"url": jaeger.url, "retries": 0, "search_limit": 5000,
                           "concurrency": 1}
        settings = Settings.model_validate({
            "jaeger": jaeger_settings, "store": {"path": str(tmp_path / "v.sqlite3")}})
        tight = Settings.model_validate({
            "jaeger": {**jaeger_settings, "budget_s": 1.0},
            "store": {"path": str(tmp_path / "v.sqlite3")}})
        from opdiag.store.factory import open_store

        store = open_store(settings)
        sources = [JaegerSource(s.jaeger, clock=lambda: CORPUS_NOW_US / 1e6)
                   for s in (settings, tight, settings)]
        try:
            watcher, registry = _watcher(DiagnosisService(sources[0], settings), store,
                                         settings=settings)
            assert watcher.run_once(now_us=CORPUS_NOW_US) is not None
            calls_of_a_pass = len(jaeger.calls)
            jaeger.calls.clear()
            jaeger.set_faults([Fault("slow", seconds=0.3)])
            # a source and service of their own: the first ones' caches would answer
            watcher.service = DiagnosisService(sources[1], tight)
            with caplog.at_level(logging.WARNING, logger="opdiag.watcher"):
                assert watcher.run_once(now_us=CORPUS_NOW_US) is None
            assert "jaeger.budget_s" in caplog.text and "(source)" in caplog.text
            assert 0 < len(jaeger.calls) < calls_of_a_pass
            assert _metric(registry, 'opdiag_watcher_errors_total{stage="source"}') == 1.0
            jaeger.set_faults([])
            watcher.service = DiagnosisService(sources[2], settings)
            assert watcher.run_once(now_us=CORPUS_NOW_US) is not None
        finally:
            for source in sources:
                source.close()
            store.close()


def test_operations_older_than_follow_s_are_left_alone(store):
    service = FakeService()
    settings = Settings.model_validate({"watcher": {"follow_s": 3600}})
    watcher, registry = _watcher(service, store, settings=settings)
    service.window = [diagnosis("op_x", "stuck", finished=False, start_ms=BASE_MS)]
    watcher.run_once(now_us=(BASE_MS + MIN_MS) * US)
    service.window = []
    report = watcher.run_once(now_us=(BASE_MS + 2 * 3600 * 1000) * US)
    assert report is not None and report.followed == 0 and service.diagnosed == []
    gauge = 'opdiag_operations_in_progress{operation_type="training",state="stuck"}'
    assert _metric(registry, gauge) == 0.0


def test_a_failing_source_is_a_metric_and_a_log_line_and_the_watcher_resumes(store, caplog):
    service = FakeService()
    watcher, registry = _watcher(service, store)
    service.failure = SourceUnavailableError("cannot reach Jaeger at http://jaeger:16686")
    with caplog.at_level(logging.WARNING, logger="opdiag.watcher"):
        assert watcher.run_once(now_us=(BASE_MS + MIN_MS) * US) is None
    assert "cannot reach Jaeger" in caplog.text and "(source)" in caplog.text
    assert _metric(registry, 'opdiag_watcher_errors_total{stage="source"}') == 1.0
    assert _metric(registry, 'opdiag_watcher_errors_total{stage="store"}') == 0.0
    assert watcher.last_error and not watcher.ready.is_set()
    service.failure = None
    service.window = [diagnosis("op_1", "healthy", finished=True, status="completed")]
    assert watcher.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US) is not None
    assert watcher.ready.is_set() and watcher.last_error is None
    assert [r.operation_id for r in store.operations(0, 2**62)] == ["op_1"]


def test_a_failing_store_is_a_metric_too(backends: Backends):
    store = backends.open()
    service = FakeService()
    watcher, registry = _watcher(service, store)
    store.close()
    assert watcher.run_once(now_us=BASE_MS * US) is None
    assert _metric(registry, 'opdiag_watcher_errors_total{stage="store"}') == 1.0


def test_a_bug_in_a_pass_is_counted_not_raised(store):
    service = FakeService()
    watcher, registry = _watcher(service, store)
    service.failure = KeyError("surprise")
    assert watcher.run_once(now_us=BASE_MS * US) is None
    assert _metric(registry, 'opdiag_watcher_errors_total{stage="internal"}') == 1.0


def test_the_thread_passes_until_stopped(store):
    service = FakeService()
    service.window = [diagnosis("op_1", "healthy", finished=True, status="completed")]
    settings = Settings.model_validate({"watcher": {"interval_s": 0.01}})
    watcher, _ = _watcher(service, store, settings=settings)
    watcher.start()
    try:
        assert watcher.ready.wait(60)
        deadline = time.monotonic() + 60
        while watcher.passes < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watcher.passes >= 3
    finally:
        watcher.stop()
    passes = watcher.passes
    time.sleep(0.05)
    assert watcher.passes == passes  # stopped for good
    assert store.last_pass_ms() is not None


def test_only_the_leading_replica_records(pg_server):
    location = pg_server.create_database()
    backends = Backends("postgresql", Path("."), pg_server)
    first_store, second_store = backends.open(location), backends.open(location)
    first, second = FakeService(), FakeService()
    leader, _ = _watcher(first, first_store)
    standby, standby_registry = _watcher(second, second_store)
    try:
        first.window = [diagnosis("op_1", "stuck", finished=False)]
        second.window = [diagnosis("op_2", "healthy", finished=True, status="completed")]
        assert leader.run_once(now_us=(BASE_MS + MIN_MS) * US).leading
        report = standby.run_once(now_us=(BASE_MS + MIN_MS) * US)
        assert report is not None and not report.leading and report.recorded == []
        assert [r.operation_id for r in second_store.operations(0, 2**62)] == ["op_1"]
        assert standby.ready.is_set()  # the leader filled the store
        gauge = 'opdiag_operations_in_progress{operation_type="training",state="stuck"}'
        assert _metric(standby_registry, gauge) == 1.0  # read from the shared store
        assert _metric(standby_registry, "opdiag_watcher_leader") == 0.0
        first_store.close()  # the leader goes away: its lock with it
        second.singles = {"op_1": diagnosis("op_1", "stuck", finished=False)}  # followed up
        deadline = time.monotonic() + 30  # the server releases the lock asynchronously
        report = standby.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US)
        while report is not None and not report.leading and time.monotonic() < deadline:
            time.sleep(0.05)
            report = standby.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US)
        assert report is not None and report.leading
        assert _metric(standby_registry, "opdiag_watcher_leader") == 1.0
        assert {r.operation_id for r in second_store.operations(0, 2**62)} == {"op_1", "op_2"}
    finally:
        second_store.close()


# -- with the real service ----------------------------------------------------------------


def test_a_pass_over_the_demo_corpus_records_every_verdict(tmp_path: Path):
    settings = Settings.model_validate(
        {"trace_paths": [str(CORPUS)], "store": {"path": str(tmp_path / "v.sqlite3")}}
    )
    from opdiag.store.factory import open_store

    store = open_store(settings)
    try:
        service = DiagnosisService(FileSource([CORPUS]), settings)
        watcher, _ = _watcher(service, store, settings=settings)
        report = watcher.run_once(now_us=CORPUS_NOW_US)
        assert report is not None
        expected = {k: v["verdict"] for k, v in EXPECTED["operations"].items()}
        assert {r.operation_id: r.verdict for r in store.operations(0, 2**62)} == expected
        assert len(report.new_verdicts) == len(expected)
        again = watcher.run_once(now_us=CORPUS_NOW_US + 60_000_000)
        assert again is not None and again.new_verdicts == []
        # Only the one unfinished operation is judged again each pass.
        assert {r.record.key for r in again.recorded} == {
            k for k, v in expected.items() if v == "stuck"}
    finally:
        store.close()


def test_jaeger_down_then_back(tmp_path: Path, caplog):
    """A real JaegerSource against the replayed demo corpus: a failing Jaeger fails the
    pass (counted, logged), and the next pass records everything."""
    with ReplayJaeger(CORPUS) as jaeger:
        settings = Settings.model_validate({
            # The corpus holds many background traces (health checks, connection loops):
            # a search limit that reaches every operation of it.
            "jaeger": {"url": jaeger.url, "retries": 0, "search_limit": 5000},
            "store": {"path": str(tmp_path / "v.sqlite3")},
        })
        from opdiag.store.factory import open_store

        store = open_store(settings)
        source = JaegerSource(settings.jaeger, clock=lambda: CORPUS_NOW_US / 1e6)
        try:
            service = DiagnosisService(source, settings)
            watcher, registry = _watcher(service, store, settings=settings)
            jaeger.set_faults(["http500"])
            with caplog.at_level(logging.WARNING, logger="opdiag.watcher"):
                assert watcher.run_once(now_us=CORPUS_NOW_US) is None
            assert "watcher pass failed (source)" in caplog.text
            assert _metric(registry, 'opdiag_watcher_errors_total{stage="source"}') == 1.0
            assert store.operations(0, 2**62) == []
            jaeger.set_faults([])
            report = watcher.run_once(now_us=CORPUS_NOW_US)
            assert report is not None and report.seen == len(EXPECTED["operations"])
            assert len(store.operations(0, 2**62)) == len(EXPECTED["operations"])
        finally:
            source.close()
            store.close()


def _refused(trace_id: str, *, start_ms: int) -> Diagnosis:
    """A start refused with a 503 before any operation id existed: keyed by its trace."""
    from msgspec.structs import replace

    d = diagnosis(trace_id, "workers_busy", finished=False, status="unknown",
                  start_ms=start_ms, duration_ms=20.0)
    return replace(d, operation_id=None, trace_ids=[trace_id])


def test_a_refused_request_is_final_only_once_its_cli_stopped_retrying(store):
    """The watcher passing 1 ms after a 503 made it final at once, so when the CLI's retry
    succeeded a moment later the phantom refusal stayed, and was counted as workers_busy.
    Now it is final a minute after nothing more happened in it; a retry that turns its trace
    into an operation's makes the row go, and only the operation is counted."""
    service = FakeService()
    watcher, registry = _watcher(service, store)
    trace = "3c" * 16
    service.window = [_refused(trace, start_ms=BASE_MS)]
    watcher.run_once(now_us=(BASE_MS + 1) * US)
    busy = 'opdiag_operations_finished_total{operation_type="training",verdict="workers_busy"}'
    assert _metric(registry, busy) in (None, 0.0)
    # the retry succeeded: the trace now belongs to the operation, which completes
    done = diagnosis("op_training_2", "healthy", finished=True, status="completed",
                     start_ms=BASE_MS + 2_000)
    service.window = [done]
    service.singles = {trace: done}  # asked by its trace id, the diagnosis is the operation's
    watcher.run_once(now_us=(BASE_MS + 5_000) * US)
    assert store.history(trace) == []  # the phantom is gone
    assert [h.verdict for h in store.history("op_training_2")] == ["healthy"]
    assert _metric(registry, busy) in (None, 0.0)
    healthy = 'opdiag_operations_finished_total{operation_type="training",verdict="healthy"}'
    assert _metric(registry, healthy) == 1.0


def test_a_refused_request_nobody_retried_is_final_after_a_minute(store):
    service = FakeService()
    watcher, registry = _watcher(service, store)
    service.window = [_refused("4d" * 16, start_ms=BASE_MS)]
    watcher.run_once(now_us=(BASE_MS + 1) * US)
    busy = 'opdiag_operations_finished_total{operation_type="training",verdict="workers_busy"}'
    assert _metric(registry, busy) in (None, 0.0)
    ended_ms = BASE_MS + 20  # the refused request lasted 20 ms
    watcher.run_once(now_us=(ended_ms + 59_000) * US)  # the CLI may still retry
    assert _metric(registry, busy) in (None, 0.0)
    watcher.run_once(now_us=(ended_ms + 61_000) * US)  # a minute without news: final
    assert _metric(registry, busy) == 1.0
    watcher.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US)
    assert _metric(registry, busy) == 1.0  # counted once


def test_settlements_are_counted_even_when_a_later_step_of_the_pass_fails(store):
    """The pass records its settlements, then follows up: one Jaeger failure there failed
    the pass after the store already held them as final, and no later pass counted them."""
    service = FakeService()
    watcher, registry = _watcher(service, store)
    service.window = [diagnosis("op_x", "healthy", finished=False, start_ms=BASE_MS)]
    watcher.run_once(now_us=(BASE_MS + MIN_MS) * US)
    service.window = [diagnosis("op_done", "healthy", finished=True, status="completed",
                                start_ms=BASE_MS)]
    service.singles = {"op_x": SourceUnavailableError("Jaeger answered HTTP 502")}
    assert watcher.run_once(now_us=(BASE_MS + 2 * MIN_MS) * US) is None  # the pass failed
    healthy = 'opdiag_operations_finished_total{operation_type="training",verdict="healthy"}'
    assert _metric(registry, healthy) == 1.0


def test_an_operation_that_finished_while_opdiag_was_down_is_counted(store):
    """The store held it in flight; opdiag restarted after it finished. It settled unseen,
    after the store's last pass: counted (backlog the store never saw still is not)."""
    service = FakeService()
    first, _ = _watcher(service, store)
    service.window = [diagnosis("op_t", "worker_lost", finished=False, start_ms=BASE_MS)]
    first.run_once(now_us=(BASE_MS + MIN_MS) * US)  # the store's last pass before the stop
    # opdiag is down for 10 minutes; the operation fails at minute 5
    restart_ms = BASE_MS + 11 * MIN_MS
    second, registry = _watcher(service, store, count_from_ms=restart_ms)
    service.window = [
        diagnosis("op_t", "worker_lost", finished=True, status="failed", start_ms=BASE_MS,
                  duration_ms=5 * MIN_MS),
        diagnosis("op_old", "failed", finished=True, status="failed", start_ms=BASE_MS,
                  duration_ms=2 * MIN_MS),  # never seen in flight: backlog
    ]
    report = second.run_once(now_us=restart_ms * US)
    assert report is not None and report.counted == 1
    lost = 'opdiag_operations_finished_total{operation_type="training",verdict="worker_lost"}'
    assert _metric(registry, lost) == 1.0
    failed = 'opdiag_operations_finished_total{operation_type="training",verdict="failed"}'
    assert _metric(registry, failed) in (None, 0.0)
