"""Live mode's building blocks: metrics, configuration, plans, the scenario mix, the traced
HTTP server (the multi-process run itself is in test_stack_live.py)."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import pytest
from ktrdr_sim.errors import DataNotFoundError
from ktrdr_sim.flows import BacktestPlan, DataLoadPlan, TrainingPlan
from ktrdr_sim.live import config, driver, ops, supervisor
from ktrdr_sim.live.metrics import KtrdrMetrics
from ktrdr_sim.live.node import make_node
from ktrdr_sim.live.web import App, Response
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
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


def test_the_ib_host_exports_only_process_metrics() -> None:
    m = KtrdrMetrics("host", "ib-host", 5001)
    m.apply(("created", "data_load"))
    text = _text(m)
    assert "process_cpu_seconds_total" in text
    assert "ktrdr_" not in text


def test_config_reads_ktrdr_and_sim_variables() -> None:
    cfg = config.from_env("backtest-worker", {
        "KTRDR_SIM_PORT": "5004", "KTRDR_WORKER_PUBLIC_BASE_URL": "http://backtest-worker-2:5004",
        "KTRDR_OTEL_OTLP_ENDPOINT": "http://jaeger:4318", "KTRDR_SIM_SPEEDUP": "20",
        "KTRDR_WORKER_ID": "w2"})
    assert (cfg.port, cfg.public_url, cfg.otlp_endpoint, cfg.worker_id) == (
        5004, "http://backtest-worker-2:5004", "http://jaeger:4318", "w2")
    assert cfg.real_s(40) == 2.0
    assert config.from_env("backend", {}).port == 8000
    assert not config.from_env("driver", {"OTEL_EXPORTER_OTLP_ENDPOINT": "none"}).exports
    with pytest.raises(ValueError, match="role"):
        config.from_env("frontend", {})


def test_plans_cross_the_wire_with_their_fault() -> None:
    wire = ops.plan_to_wire(TrainingPlan(symbols="MSFT", loop_s=600.0), "no_data")
    plan = ops.plan_from_wire("training", wire)
    assert isinstance(plan, TrainingPlan)
    assert (plan.symbols, plan.loop_s) == ("MSFT", 600.0)
    assert plan.fault is not None and isinstance(plan.fault.exc, DataNotFoundError)
    assert plan.fault.phase == "training.data_loading"
    assert str(plan.fault.exc) == "No data found in cache for MSFT 1h"
    back = ops.plan_from_wire("backtesting", ops.plan_to_wire(
        BacktestPlan(symbol="ZZZZ"), "no_data"))
    assert isinstance(back, BacktestPlan) and back.fault is not None
    assert back.fault.phase == "backtest.data_loading"
    assert isinstance(ops.plan_from_wire("data_load", ops.plan_to_wire(DataLoadPlan())),
                      DataLoadPlan)
    with pytest.raises(ValueError, match="unknown fault"):
        ops.plan_from_wire("backtesting", {"fault": "gremlins"})


def test_the_default_mix_runs_every_scenario_with_a_baseline_before_slow() -> None:
    names = driver.cycle(driver.parse_mix(""))
    assert set(names) == set(driver.SCENARIOS)
    assert names.count("healthy_training") >= 2
    assert names.index("slow_training") > max(
        i for i, n in enumerate(names) if n == "healthy_training")


def test_the_mix_is_configurable() -> None:
    weights = driver.parse_mix("stuck_training=0,failed_backtest=3")
    assert {"worker_killed_training", "ib_gateway_down"} <= set(driver.cycle(weights))
    names = driver.cycle(weights)
    assert "stuck_training" not in names and names.count("failed_backtest") == 3
    assert driver.cycle(driver.parse_mix("healthy_backtest,no_workers")) == [
        "healthy_backtest", "no_workers"]
    with pytest.raises(ValueError, match="unknown scenario"):
        driver.parse_mix("meteor_strike=1")


def test_supervisor_refuses_unknown_services_and_wires_children() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        supervisor.plan({"frontend": 1})
    children = supervisor.plan({"backend": 18000})
    cfg = config.from_env("all", {})
    worker = next(c for c in children if c.name == "training-worker-2")
    env = supervisor.child_env(cfg, worker, children, {"KTRDR_WORKER_ID": "x"})
    assert env["KTRDR_SIM_PORT"] == "5006"
    assert env["KTRDR_SIM_BACKEND_URL"] == "http://127.0.0.1:18000"
    assert env["KTRDR_WORKER_PUBLIC_BASE_URL"] == "http://127.0.0.1:5006"
    assert "KTRDR_WORKER_ID" not in env  # two workers must not share one service name


def _port() -> int:
    from ktrdr_sim.live.launch import free_ports  # outside the ephemeral range

    return free_ports(1)[0]


def test_the_server_traces_routes_like_fastapi_and_propagates_context() -> None:
    cfg = config.from_env("backend", {"OTEL_EXPORTER_OTLP_ENDPOINT": "none"},
                          port=_port(), bind="127.0.0.1")
    node = make_node(cfg, "ktrdr-api", "backend", body_sends=2)
    exporter = InMemorySpanExporter()
    provider = node.proc.provider
    assert isinstance(provider, TracerProvider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App(node, http_metrics=True)
    app.route("GET", "/api/v1/operations/{operation_id}")(
        lambda req: Response(503 if req.params["operation_id"] == "busy" else 200,
                             {"id": req.params["operation_id"]}))
    app.route("POST", "/_sim/x", traced=False)(lambda _req: Response(200, {}))
    app.serve()
    try:
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        with httpx.Client(base_url=f"http://127.0.0.1:{cfg.port}") as http:
            assert http.get("/api/v1/operations/op_1",
                            headers={"traceparent": parent}).json() == {"id": "op_1"}
            assert http.get("/api/v1/operations/busy").status_code == 503
            assert http.post("/_sim/x").status_code == 200
            assert http.get("/nowhere").status_code == 404
    finally:
        app.stop()
        node.shutdown()
    servers = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert [s.name for s in servers] == ["GET /api/v1/operations/{operation_id}"] * 2
    first, second = servers
    assert format(first.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert first.parent is not None and format(first.parent.span_id, "016x") == \
        "b7ad6b7169203331"
    assert first.attributes["http.route"] == "/api/v1/operations/{operation_id}"
    assert first.attributes["http.target"] == "/api/v1/operations/op_1"
    assert second.status.status_code.name == "ERROR"
    sends = [s for s in exporter.get_finished_spans() if s.name.endswith(" http send")]
    assert len(sends) == 6  # the backend: the response start and two body sends
    (start_503,) = [s for s in sends if s.attributes.get("http.status_code") == 503]
    assert start_503.status.status_code.name == "ERROR"
    text = _text(node.metrics)
    assert 'http_status_code="503"' in text
    assert 'http_target="/api/v1/operations/{operation_id}"' in text


def test_a_taken_port_stops_the_role_with_a_message() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "ktrdr_sim.live", "--role", "ib-host", "--bind", "127.0.0.1",
             "--port", str(port), "--otlp-endpoint", "none"],
            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "cannot listen" in result.stderr


def test_free_ports_differ_and_stay_out_of_the_ephemeral_range() -> None:
    """Outgoing connections draw their ports from the ephemeral range: a port chosen there
    and released was taken by one before a worker bound it (a red CI run)."""
    from ktrdr_sim.live.launch import _ephemeral_range, free_ports

    low, high = _ephemeral_range()
    ports = free_ports(60)
    assert len(set(ports)) == 60
    assert not [p for p in ports if low <= p <= high]


def test_parallel_test_workers_draw_ports_from_disjoint_slices(monkeypatch) -> None:
    """Two xdist workers never pick the same port: each draws from its own slice."""
    from ktrdr_sim.live.launch import _ephemeral_range, free_ports

    low = _ephemeral_range()[0]
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    chosen = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        chosen[worker] = set(free_ports(200))
    assert chosen["gw0"].isdisjoint(chosen["gw1"])
    assert max(p for p in chosen["gw0"] if p < low) < min(p for p in chosen["gw1"] if p < low)
