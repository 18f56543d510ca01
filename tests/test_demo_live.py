"""Live mode's metrics: KTRDR's names and labels, fed by the same scenario code."""

from __future__ import annotations

import random
import socket

import pytest
from ktrdr_sim.clock import NS_PER_S, SimClock
from ktrdr_sim.flows import BacktestPlan, DataLoadPlan, run_backtest, run_data_load
from ktrdr_sim.ktrdr import Ktrdr
from ktrdr_sim.live.agent import AgentError, AgentSpec, start_agent
from ktrdr_sim.live.metrics import KtrdrMetrics
from ktrdr_sim.live.observer import LiveObserver
from ktrdr_sim.runtime import World
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import generate_latest


def _text(metrics: KtrdrMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_backend_registry_has_ktrdr_metric_names_and_labels() -> None:
    m = KtrdrMetrics("backend", "backend", 8000)
    m.apply(("registry", {"backtesting": (2, 1), "training": (2, 2)}))
    m.apply(("http", "POST", "/api/v1/backtests/start", 503, 4.2, "backend", 8000))
    m.apply(("created", "data_load"))
    m.apply(("terminal", "data_load", "failed", 2.1))
    text = _text(m)
    assert 'ktrdr_workers_registered_total{worker_type="backtesting"} 2.0' in text
    assert 'ktrdr_workers_available{worker_type="backtesting"} 1.0' in text
    assert 'ktrdr_operations_total{operation_type="data_load",status="failed"} 1.0' in text
    assert "ktrdr_operations_active 0.0" in text
    assert 'ktrdr_operation_duration_seconds_bucket{le="5.0",operation_type="data_load"' in text
    line = next(x for x in text.splitlines()
                if x.startswith("http_server_duration_milliseconds_count"))
    for label in ('http_target="/api/v1/backtests/start"', 'http_status_code="503"',
                  'http_host="backend:8000"', 'net_host_port="8000"', 'http_method="POST"'):
        assert label in line
    assert "process_cpu_seconds_total" in text
    assert 'target_info{' in text


def test_workers_expose_no_http_or_registry_metrics() -> None:
    m = KtrdrMetrics("worker", "backtest-worker-1", 5003)
    m.apply(("http", "POST", "/backtests/start", 200, 1.0, "backtest-worker-1", 5003))
    m.apply(("registry", {"backtesting": (2, 2)}))
    text = _text(m)
    assert "http_server_duration_milliseconds" not in text
    assert "ktrdr_workers_registered_total" not in text
    assert "ktrdr_operations_active" in text


def _world(observer: LiveObserver) -> World:
    return World(SimClock(1_700_000_000 * NS_PER_S), lambda r: TracerProvider(resource=r),
                 random.Random(1), observer)


def test_observer_routes_events_like_ktrdr_counts_them() -> None:
    events: dict[str, list[tuple]] = {h: [] for h in ("backend", "backtest-worker-1",
                                                       "backtest-worker-2")}
    observer = LiveObserver({h: events[h].append for h in events})
    k = Ktrdr(_world(observer))
    k.start_worker("backtesting")
    k.start_worker("backtesting")
    run_backtest(k, BacktestPlan())
    run_data_load(k, DataLoadPlan(segments=1))
    worker = events["backtest-worker-1"]
    assert worker[0] == ("created", "backtesting")
    (terminal,) = [e for e in worker if e[0] == "terminal"]
    assert terminal[:3] == ("terminal", "backtesting", "completed")
    assert terminal[3] == pytest.approx(4.2 + 11.5 + 38.0, abs=0.1)
    backend = events["backend"]
    routes = {e[2] for e in backend if e[0] == "http"}
    assert {"/api/v1/backtests/start", "/api/v1/operations/{operation_id}",
            "/api/v1/data/acquire/download"} <= routes
    assert ("registry", {"backtesting": (2, 2), "training": (0, 0)}) in backend
    # the backend-local data load is counted on the backend, the backtest is not
    assert [e[1:3] for e in backend if e[0] == "terminal"] == [("data_load", "completed")]
    assert not any(e[0] == "http" for e in worker)


def test_agent_reports_a_taken_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(AgentError, match="cannot serve /metrics"):
            start_agent(AgentSpec("worker", "backtest-worker-1", port, "127.0.0.1"))
