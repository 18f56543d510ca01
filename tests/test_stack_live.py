"""The live demo as separate processes: spans cross processes over real HTTP, and opdiag finds
every verdict in what they export.

One module-scoped run: every role on loopback (``python -m ktrdr_sim.live --role all``, time
compressed 100x), one cycle of the full scenario mix, spans sent over OTLP/HTTP to an in-test
sink. Everything is stopped (process group) before the assertions read the spans.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ktrdr_sim.live import launch
from ktrdr_sim.live.sink import Sink
from opdiag.cli.main import main as opdiag_main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("live-demo")]

CYCLE_TIMEOUT_S = 150.0
ALL_VERDICTS = {"healthy", "failed", "invalid_input", "data_missing", "service_unreachable",
                "no_workers", "no_capable_workers", "workers_busy", "worker_lost", "stuck",
                "slow", "cancelled"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, dict]]]:
    """Run one full cycle; return the OTLP-JSON lines file and (service, span) pairs."""
    tmp = tmp_path_factory.mktemp("live")
    out, log = tmp / "live.otlp.jsonl", tmp / "demo.log"
    sink = Sink(out=out).start()
    try:
        launch.run_cycle(sink.endpoint, log, timeout_s=CYCLE_TIMEOUT_S)
        # Stopped: every process flushed its BatchSpanProcessor on SIGTERM.
        return out, sink.spans()
    finally:
        sink.stop()


def _by_id(spans: list[tuple[str, dict]]) -> dict[tuple[str, str], tuple[str, dict]]:
    return {(sp["traceId"], sp["spanId"]): (svc, sp) for svc, sp in spans}


def test_every_role_exports_its_own_service(recorded):
    _, spans = recorded
    services = {svc for svc, _ in spans}
    assert {"ktrdr-api", "ktrdr-cli", "ktrdr-ib-host-service"} <= services
    assert len([s for s in services if s.startswith("ktrdr-backtest-worker-")]) == 2
    # the killed training worker came back as a new process: a new service name
    assert len([s for s in services if s.startswith("ktrdr-training-worker-")]) == 3


def _chain(index: dict, svc_span: tuple[str, dict]) -> list[tuple[str, str]]:
    """(service, span name) from a span up to its root, following parentSpanId."""
    chain = []
    current: tuple[str, dict[str, Any]] | None = svc_span
    while current is not None:
        svc, sp = current
        chain.append((svc, sp["name"]))
        parent = sp.get("parentSpanId")
        current = index.get((sp["traceId"], parent)) if parent else None
    return chain


def test_a_backtest_trace_crosses_cli_backend_and_worker(recorded):
    _, spans = recorded
    index = _by_id(spans)
    worker_starts = [(svc, sp) for svc, sp in spans
                     if sp["name"] == "POST /backtests/start" and "worker" in svc]
    assert worker_starts
    chain = _chain(index, worker_starts[0])
    services = [svc for svc, _ in chain]
    names = [name for _, name in chain]
    # worker server span <- backend httpx client <- backend server span <- CLI client <- cli.*
    assert names[:5] == ["POST /backtests/start", "POST", "POST /api/v1/backtests/start",
                         "POST", "cli.backtest"]
    assert services[0].startswith("ktrdr-backtest-worker-")
    assert services[1:3] == ["ktrdr-api", "ktrdr-api"]
    assert services[3:5] == ["ktrdr-cli", "ktrdr-cli"]


def test_worker_phases_outlive_the_dispatch_span(recorded):
    """The work runs after the response, as children of the ended server span (KTRDR)."""
    _, spans = recorded
    index = _by_id(spans)
    phases = [sp for svc, sp in spans if sp["name"] == "backtest.feature_compute"]
    assert phases
    for sp in phases:
        _, parent = index[(sp["traceId"], sp["parentSpanId"])]
        assert parent["name"] == "POST /backtests/start"
        assert int(sp["endTimeUnixNano"]) > int(parent["endTimeUnixNano"])


def test_ib_host_calls_are_traced_on_both_sides(recorded):
    _, spans = recorded
    index = _by_id(spans)
    fetches = [(svc, sp) for svc, sp in spans if sp["name"] == "ib.fetch_historical"]
    assert fetches
    chain = _chain(index, fetches[0])
    assert chain[:3] == [("ktrdr-ib-host-service", "ib.fetch_historical"),
                         ("ktrdr-ib-host-service", "POST /data/historical"),
                         ("ktrdr-api", "POST")]


def _attrs(sp: dict) -> dict[str, Any]:
    return {a["key"]: next(iter(a["value"].values())) for a in sp.get("attributes", [])}


def test_a_really_killed_worker_fails_its_health_checks_then_the_orphan_detector(recorded):
    """The worker process was SIGKILLed: the backend's health checks to it are refused, and
    KTRDR's orphan detector fails its operation in a one-span trace of its own."""
    _, spans = recorded
    refused = [sp for svc, sp in spans if svc == "ktrdr-api" and sp["name"] == "GET"
               and "parentSpanId" not in sp and _attrs(sp)["http.url"].endswith("/health")
               and sp.get("status", {}).get("code") == 2]
    assert refused and all(e["name"] == "exception" for sp in refused for e in sp["events"])
    orphans = [sp for svc, sp in spans if svc == "ktrdr-api" and "parentSpanId" not in sp
               and sp["name"] == "operation.state_transition"
               and _attrs(sp).get("operation.error") ==
               "Operation was RUNNING but no worker claimed it"]
    killed = {_attrs(sp)["operation.id"] for sp in orphans}
    assert any(op.startswith("op_training_") for op in killed)


def test_the_gateway_down_shows_in_ib_connect_traces_of_their_own(recorded):
    _, spans = recorded
    connects = [sp for svc, sp in spans if sp["name"] == "ib.connect"]
    assert all("parentSpanId" not in sp for sp in connects)
    refused = [sp for sp in connects if _attrs(sp)["connection.status"] == "error"]
    assert refused and all(len(sp["events"]) == 2 for sp in refused)
    assert any(_attrs(sp)["connection.status"] == "connected" for sp in connects)
    timeouts = [sp for svc, sp in spans if svc == "ktrdr-api" and sp["name"] == "POST"
                and _attrs(sp)["http.url"].endswith("/data/validate")
                and sp.get("status", {}).get("message", "").startswith("ReadTimeout")]
    assert len(timeouts) >= 4


def test_opdiag_finds_every_verdict_in_the_live_traces(recorded, capsys):
    path, spans = recorded
    last_ns = max(int(sp["endTimeUnixNano"]) for _, sp in spans)
    # Long after the run, so the hung training is stuck; finished operations are unaffected.
    now = datetime.fromtimestamp(last_ns / 1e9, tz=UTC) + timedelta(minutes=20)
    code = opdiag_main(["operations", "--traces", str(path), "--now",
                        now.strftime("%Y-%m-%dT%H:%M:%SZ"), "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    by_verdict: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        by_verdict[row["verdict"]].append(row["operation_id"])
    assert set(by_verdict) == ALL_VERDICTS, dict(by_verdict)
    # Health checks, registrations, scrapes and the orphan detector's rounds are traced too,
    # but are no operations: what has no operation id is a request the API refused.
    refused = [(r["verdict"], r["summary"]) for r in rows
               if not r["operation_id"].startswith("op_")]
    assert {v for v, _ in refused} <= {"no_workers", "no_capable_workers", "workers_busy",
                                       "worker_lost", "invalid_input"}, refused
