"""A busy Jaeger: health checks and polling fill every search's depth.

Jaeger answers a search with at most ``depth`` traces, the last received first, and has no
offset to page with. On a real system most traces of the backend are health checks, so a
window search by service alone showed only those. The client searches such a service again
per span name that can belong to an operation, and splits a tag search whose answer reached
the depth (releases before v2.19 ignore the tag and answer every trace of the window).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opdiag.devtools.replay_jaeger import ReplayJaeger
from opdiag.settings import JaegerSettings
from opdiag.sources.jaeger import JaegerSource
from opdiag.sources.jaeger_api import trace_ids_of, without_traces

S = 1_000_000
T0 = 1_764_000_000
API = "ktrdr-api"
NOISE = 60
OPS = 3
DEPTH = 10


def _span(tid: str, k: int, name: str, at_us: int, *tags: tuple[str, str]) -> dict[str, Any]:
    return {
        "traceID": tid,
        "spanID": f"{int(tid[-8:], 16):08x}{k:08x}",
        "operationName": name,
        "references": [],
        "startTime": at_us,
        "duration": 1000,
        "tags": [{"key": key, "type": "string", "value": value} for key, value in tags],
        "logs": [],
        "processID": "p1",
    }


def _trace(tid: str, spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {"traceID": tid, "spans": spans, "processes": {"p1": {"serviceName": API, "tags": []}}}


def busy_backend() -> tuple[list[str], list[dict[str, Any]]]:
    """Three operations, then sixty health checks received after them (newer)."""
    ops, docs = [], []
    for n in range(OPS):
        op = f"op_backtesting_20251124_16{n:02d}00_{n:08x}"
        tid = f"{0xA0 + n:032x}"
        at = (T0 + 60 * n) * S
        docs.append({"data": [_trace(tid, [
            _span(tid, 1, "POST /api/v1/backtests/start", at, ("span.kind", "server")),
            _span(tid, 2, "operations.create", at + 10, ("operation.id", op)),
        ])]})  # fmt: skip
        ops.append(op)
    for n in range(NOISE):
        tid = f"{0xC000 + n:032x}"
        at = (T0 + 5 * n) * S
        tags = (("span.kind", "client"), ("http.url", "http://backtest-worker:5003/health"))
        docs.append({"data": [_trace(tid, [_span(tid, 1, "GET", at, *tags)])]})
    return ops, docs


@pytest.fixture(params=["v2.20", "v2.18", "v1"])
def busy(request: pytest.FixtureRequest) -> Iterator[tuple[ReplayJaeger, JaegerSource, list[str]]]:
    ops, docs = busy_backend()
    with ReplayJaeger(docs, flavor=request.param) as server:
        settings = JaegerSettings(url=server.url, search_limit=DEPTH, live_depth=DEPTH)
        with JaegerSource(settings, clock=lambda: T0 + 3600) as source:
            yield server, source, ops


def test_a_window_finds_the_operations_behind_the_health_checks(busy):
    server, source, _ = busy
    found = source.recent_traces((T0 - 60) * S, (T0 + 3600) * S, limit=DEPTH)
    assert sorted(t.trace_id for t in found) == [f"{0xA0 + n:032x}" for n in range(OPS)]
    searched = [q for _, path, q in server.calls if path in ("/api/v3/traces", "/api/traces")]
    names = sorted(
        (q.get("operation") or q.get("query.operationName") or q.get("query.operation_name")
         or [None])[0] or ""
        for q in searched
    )
    # the service alone (answer cut at the depth), then each name but the bare GET
    assert names == ["", "POST /api/v1/backtests/start", "operations.create"]


def test_a_tag_search_whose_answer_was_cut_is_split(busy):
    _, source, ops = busy
    for op in ops:
        found = source.traces_for(op)
        assert [t.trace_id for t in found] == [f"{0xA0 + ops.index(op):032x}"], op


def test_search_answers_drop_traces_already_read():
    legacy = {"data": [{"traceID": "ab"}, {"traceID": "0" * 30 + "cd"}], "total": 0}
    assert trace_ids_of(legacy) == {"0" * 30 + "ab", "0" * 30 + "cd"}
    assert without_traces(legacy, {"0" * 30 + "ab"})["data"] == [{"traceID": "0" * 30 + "cd"}]
    base64 = "ASNFZ4mrze8BI0VniavN7w=="  # protobuf's JSON mapping of bytes
    v3 = {"result": {"resourceSpans": [
        {"scopeSpans": [{"spans": [{"traceId": "AB" * 16}]}]},
        {"scopeSpans": [{"spans": [{"traceId": base64}]}]},
    ]}}  # fmt: skip
    assert trace_ids_of(v3) == {"ab" * 16, "0123456789abcdef" * 2}
    kept = without_traces(v3, {"ab" * 16})["result"]["resourceSpans"]
    assert kept == [v3["result"]["resourceSpans"][1]]
    assert without_traces(v3, set()) is v3
