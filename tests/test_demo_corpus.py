"""The committed demo corpus: reproducible, real SDK output, and faithful to KTRDR's quirks."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

DEMO = Path(__file__).resolve().parents[1] / "demo" / "traces"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
VERDICTS = {"healthy", "failed", "invalid_input", "data_missing", "service_unreachable",
            "no_workers", "no_capable_workers", "workers_busy", "stuck", "slow", "cancelled"}


@dataclass
class S:
    """A span read back from any corpus format, just enough for these checks."""

    file: str
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    service: str
    kind: str
    start_ns: int
    end_ns: int
    attrs: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0


def _otlp_value(value: dict[str, Any]) -> Any:
    (kind, raw), = value.items()
    return int(raw) if kind == "intValue" else raw


def _otlp_docs(path: Path) -> Iterator[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        yield from (json.loads(line) for line in text.splitlines() if line.strip())
    else:
        doc = json.loads(text)
        yield doc.get("result", doc)


_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _otlp_spans(path: Path) -> Iterator[S]:
    for doc in _otlp_docs(path):
        for rs in doc["resourceSpans"]:
            res = {a["key"]: _otlp_value(a["value"]) for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    yield S(
                        path.name, sp["traceId"], sp["spanId"], sp.get("parentSpanId"),
                        sp["name"], res["service.name"], _KINDS[sp["kind"]],
                        int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"]),
                        {a["key"]: _otlp_value(a["value"]) for a in sp.get("attributes", [])},
                        [{"name": e["name"], **{a["key"]: _otlp_value(a["value"])
                                                 for a in e.get("attributes", [])}}
                         for e in sp.get("events", [])],
                        sp.get("status", {}).get("code", 0),
                    )


def _jaeger_spans(path: Path) -> Iterator[S]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for tr in doc.get("data", [doc]):
        for sp in tr["spans"]:
            tags = {t["key"]: t["value"] for t in sp["tags"]}
            parent = next((r["spanID"] for r in sp["references"] if r["refType"] == "CHILD_OF"),
                          None)
            yield S(
                path.name, sp["traceID"].rjust(32, "0"), sp["spanID"], parent,
                sp["operationName"], tr["processes"][sp["processID"]]["serviceName"],
                str(tags.get("span.kind", "internal")), sp["startTime"] * 1000,
                (sp["startTime"] + sp["duration"]) * 1000, tags,
                [{("name" if f["key"] == "event" else f["key"]): f["value"]
                  for f in log["fields"]} for log in sp["logs"]],
                2 if tags.get("otel.status_code") == "ERROR" else 0,
            )


def corpus_files() -> list[Path]:
    return sorted(p for p in DEMO.iterdir() if p.name != "expected.yaml")


def read_spans(path: Path) -> list[S]:
    if path.name.endswith((".jaeger.json", ".jaeger-trace.json")):
        return list(_jaeger_spans(path))
    return list(_otlp_spans(path))


@pytest.fixture(scope="module")
def spans() -> list[S]:
    return [s for p in corpus_files() for s in read_spans(p)]


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return yaml.safe_load((DEMO / "expected.yaml").read_text(encoding="utf-8"))


def _by_trace(spans: list[S]) -> dict[str, list[S]]:
    out: dict[str, list[S]] = {}
    for s in spans:
        out.setdefault(s.trace_id, []).append(s)
    return out


def _operation_traces(spans: list[S], key: str) -> dict[str, list[S]]:
    """Traces holding an operation id (any span) or, for dispatch failures, the trace id."""
    traces = _by_trace(spans)
    if key in traces:
        return {key: traces[key]}
    return {t: ss for t, ss in traces.items() if any(s.attrs.get("operation.id") == key
                                                      for s in ss)}


# ---------------------------------------------------------------------------- reproducible


def test_rerecording_reproduces_the_committed_corpus_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "ktrdr_sim.record", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    produced = sorted(p.name for p in tmp_path.iterdir())
    assert produced == sorted(p.name for p in DEMO.iterdir())
    for name in produced:
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), name


def test_every_format_is_in_the_corpus() -> None:
    names = [p.name for p in corpus_files()]
    assert any(n.endswith(".otlp.jsonl") for n in names)
    assert any(n.endswith(".api_v3.json") for n in names)
    envelope = [n for n in names if n.endswith(".jaeger.json")]
    single = [n for n in names if n.endswith(".jaeger-trace.json")]
    assert envelope and single
    assert "data" in json.loads((DEMO / envelope[0]).read_text())
    assert "spans" in json.loads((DEMO / single[0]).read_text())


def test_no_trace_is_in_two_files(spans: list[S]) -> None:
    files: dict[str, set[str]] = {}
    for s in spans:
        files.setdefault(s.trace_id, set()).add(s.file)
    assert {t: f for t, f in files.items() if len(f) > 1} == {}


# ------------------------------------------------------------------------ real SDK output


def test_otlp_files_are_real_sdk_output() -> None:
    scopes: set[tuple[str, str | None]] = set()
    for path in corpus_files():
        if path.name.endswith((".jaeger.json", ".jaeger-trace.json")):
            continue
        for doc in _otlp_docs(path):
            for rs in doc["resourceSpans"]:
                res = {a["key"]: _otlp_value(a["value"]) for a in rs["resource"]["attributes"]}
                assert res["telemetry.sdk.name"] == "opentelemetry"
                assert res["telemetry.sdk.language"] == "python"
                assert res["telemetry.sdk.version"] == "1.38.0"
                assert res["deployment.environment"] == "development"
                for ss in rs["scopeSpans"]:
                    scopes.add((ss["scope"]["name"], ss["scope"].get("version")))
                    for sp in ss["spans"]:
                        assert HEX32.match(sp["traceId"]), sp["traceId"]
                        assert HEX16.match(sp["spanId"]), sp["spanId"]
                        assert "parentSpanId" not in sp or HEX16.match(sp["parentSpanId"])
                        assert isinstance(sp["kind"], int) and 1 <= sp["kind"] <= 5
                        assert isinstance(sp["startTimeUnixNano"], str)
                        assert isinstance(sp["status"].get("code", 0), int)
                        assert sp["flags"] & 0x100  # the SDK's "has is_remote" flag bit
    assert ("opentelemetry.instrumentation.fastapi", "0.59b0") in scopes
    assert ("opentelemetry.instrumentation.httpx", "0.59b0") in scopes
    assert ("ktrdr.monitoring.service_telemetry", None) in scopes


def test_service_names_follow_ktrdr(spans: list[S]) -> None:
    services = {s.service for s in spans}
    assert {"ktrdr-cli", "ktrdr-api", "ktrdr-ib-host-service"} <= services
    workers = {s for s in services if "worker" in s}
    assert workers and all(re.fullmatch(r"ktrdr-(backtest|training)-worker-[0-9a-f]{8}", s)
                           for s in workers)
    # workers restart during the corpus: more than one suffix per worker type
    assert len([s for s in workers if "backtest" in s]) > 2


def test_client_spans_are_named_by_method_and_server_spans_by_route(spans: list[S]) -> None:
    clients = {s.name for s in spans if s.kind == "client"}
    assert clients <= {"GET", "POST", "DELETE"}
    servers = {s.name for s in spans if s.kind == "server"}
    assert "POST /api/v1/backtests/start" in servers
    assert "GET /api/v1/operations/{operation_id}" in servers
    assert any(s.name == "POST /api/v1/backtests/start http send" for s in spans)


# ------------------------------------------------------------------------------ expectations


def test_expected_yaml_covers_every_verdict_and_has_traces(spans: list[S],
                                                           expected: dict[str, Any]) -> None:
    ops = expected["operations"]
    assert {e["verdict"] for e in ops.values()} == VERDICTS
    for key in ops:
        assert _operation_traces(spans, key), f"no trace for {key}"
    healthy_types = {e["operation_type"] for e in ops.values() if e["verdict"] == "healthy"}
    assert healthy_types == {"backtesting", "training", "data_load"}


def test_dispatch_failures_are_keyed_by_trace_and_carry_no_operation_id(
        spans: list[S], expected: dict[str, Any]) -> None:
    traces = _by_trace(spans)
    keyed = [k for k in expected["operations"] if HEX32.match(k)]
    assert len(keyed) == 3
    for key in keyed:
        assert not any("operation.id" in s.attrs for s in traces[key])
        server = [s for s in traces[key] if s.name == "POST /api/v1/backtests/start"]
        assert server[0].attrs["http.status_code"] == 503


def test_an_operation_spans_several_traces_across_files(spans: list[S],
                                                        expected: dict[str, Any]) -> None:
    split = [k for k, e in expected["operations"].items()
             if e["scenario"] == "healthy_backtest_split_traces"]
    traces = _operation_traces(spans, split[0])
    assert len(traces) == 2
    assert len({s.file for ss in traces.values() for s in ss}) == 2


def test_stuck_operation_is_silent_past_the_threshold_at_now(
        spans: list[S], expected: dict[str, Any]) -> None:
    now_ns = int(datetime.fromisoformat(expected["now"]).timestamp()) * 1_000_000_000
    assert max(s.end_ns for s in spans) < now_ns
    (key,) = [k for k, e in expected["operations"].items() if e["verdict"] == "stuck"]
    op_spans = [s for ss in _operation_traces(spans, key).values() for s in ss]
    assert now_ns - max(s.end_ns for s in op_spans) > 300 * 1_000_000_000
    statuses = {s.attrs.get("operation.to_status") for s in op_spans}
    assert statuses & {"completed", "failed", "cancelled"} == set()


def test_slow_training_is_far_slower_than_the_healthy_baseline(
        spans: list[S], expected: dict[str, Any]) -> None:
    def indicators_s(key: str) -> float:
        (sp,) = [s for ss in _operation_traces(spans, key).values() for s in ss
                 if s.name == "training.indicators"]
        return (sp.end_ns - sp.start_ns) / 1e9

    ops = expected["operations"]
    healthy = [indicators_s(k) for k, e in ops.items()
               if e["verdict"] == "healthy" and e["operation_type"] == "training"]
    (slow,) = [indicators_s(k) for k, e in ops.items() if e["verdict"] == "slow"]
    assert len(healthy) >= 3
    assert slow > 10 * statistics.median(healthy)


# ------------------------------------------------------------------------------- the quirks


def test_worker_counts_are_strings_in_the_real_dialect(spans: list[S]) -> None:
    selects = [s for s in spans if s.name == "workers.select"]
    assert selects
    for s in selects:
        for key in ("worker.total_workers", "worker.capable_workers",
                    "worker.available_workers"):
            assert isinstance(s.attrs[key], str)
    assert {"0", "4"} <= {s.attrs["worker.total_workers"] for s in selects}
    documented = [s for s in spans if s.name == "worker_registry.select_worker"]
    assert documented[0].attrs["worker_registry.selection_status"] == "NO_CAPABLE_WORKERS"


def test_exception_details_are_events_not_attributes(spans: list[S]) -> None:
    assert not [s.name for s in spans if any(k.startswith("exception.") for k in s.attrs)]
    types = set()
    for s in spans:
        for e in s.events:
            if e["name"] == "exception":
                assert {"exception.type", "exception.message", "exception.stacktrace",
                        "exception.escaped"} <= e.keys()
                assert "/work/" not in e["exception.stacktrace"]  # no machine paths
                types.add(e["exception.type"])
    assert {"RuntimeError", "ValueError", "FileNotFoundError", "httpx.ConnectError",
            "ConnectionRefusedError", "ktrdr.errors.exceptions.DataNotFoundError"} <= types


def test_refused_connection_has_no_http_status(spans: list[S]) -> None:
    refused = [s for s in spans if s.kind == "client" and s.status == 2
               and "http.status_code" not in s.attrs]
    assert refused
    assert refused[0].attrs["http.url"] == "http://host.docker.internal:5001/data/historical"


def test_worker_phases_start_after_their_server_span_ended(spans: list[S]) -> None:
    by_id = {(s.trace_id, s.span_id): s for s in spans}
    late = [s for s in spans if s.parent_id and (s.trace_id, s.parent_id) in by_id
            and by_id[(s.trace_id, s.parent_id)].kind == "server"
            and s.start_ns >= by_id[(s.trace_id, s.parent_id)].end_ns
            and s.name in {"backtest.data_loading", "training.data_loading"}]
    assert late


def test_cancelled_and_failed_transitions_carry_their_reason(spans: list[S]) -> None:
    to = {s.attrs.get("operation.to_status"): s for s in spans
          if s.name == "operation.state_transition"}
    assert to["cancelled"].attrs["operation.cancellation_reason"]
    assert to["failed"].attrs["operation.error"]


def test_quirk_file_has_jaeger_quirks_and_clock_skew() -> None:
    path = DEMO / "data-load-quirks.jaeger.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    tags = [t for tr in doc["data"] for sp in tr["spans"] for t in sp["tags"]]
    assert any(t["type"] == "bool" and t["value"] == "true" for t in tags)  # a string
    assert any(t["key"] == "otel.library.name" for t in tags)
    assert not any(t["key"] == "otel.scope.name" for t in tags)
    spans = read_spans(path)
    by_id = {s.span_id: s for s in spans}
    skewed = [s for s in spans if s.service == "ktrdr-ib-host-service" and s.kind == "server"
              and s.start_ns < by_id[s.parent_id].start_ns]
    assert skewed  # the IB host's clock runs behind: children start before their parent


def test_background_traffic_is_traced_without_operation_ids() -> None:
    spans = read_spans(DEMO / "background.otlp.jsonl")
    assert not [s for s in spans if "operation.id" in s.attrs]
    health = [s for s in spans if s.name == "GET /health"]
    assert health and all(s.service.startswith("ktrdr-") and "worker" in s.service
                          for s in health)
    roots = [s for s in spans if s.parent_id is None]
    assert {"GET", "GET /metrics", "GET /api/v1/health"} <= {s.name for s in roots}
    # one line is one export batch holding several traces, not one trace per line
    lines = (DEMO / "background.otlp.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len({sp["traceId"] for rs in first["resourceSpans"] for ss in rs["scopeSpans"]
                for sp in ss["spans"]}) > 1


def test_record_check_flags_a_stale_corpus(tmp_path: Path) -> None:
    from ktrdr_sim.record import main

    assert main(["--check", "--out", str(DEMO)]) == 0
    for path in DEMO.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    stale = tmp_path / "expected.yaml"
    stale.write_text(stale.read_text().replace("verdict: stuck", "verdict: healthy"))
    assert main(["--check", "--out", str(tmp_path)]) == 1
