"""The replay Jaeger answers in the shapes real Jaeger does (research/jaeger.md §0-§2):
golden bodies, quirks, search semantics per span within a service, flavors and faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opdiag.devtools.replay_jaeger import Fault, ReplayJaeger, go_json
from opdiag.sources.readers import parse_document

DATA = Path(__file__).parent / "data" / "jaeger_replay"
T0 = 1_764_000_000
WINDOW_CAMEL = {
    "query.startTimeMin": "2025-11-24T15:00:00Z",
    "query.startTimeMax": "2025-11-24T17:00:00.000000001Z",
}
WINDOW_SNAKE = {
    "query.start_time_min": "2025-11-24T15:00:00Z",
    "query.start_time_max": "2025-11-24T17:00:00Z",
}
OP1 = "op_backtesting_20251124_160000_1a2b"
WORKER1 = "ktrdr-backtest-worker-1a2b3c4d"


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[ReplayJaeger] = []

    def make(*args: Any, **kwargs: Any) -> ReplayJaeger:
        server = ReplayJaeger(*(args or (DATA,)), **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def get(server: ReplayJaeger, path: str, params: Any = None) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=10)


def trace_ids(body: dict[str, Any]) -> set[str]:
    return {
        span["traceId"]
        for rs in body["result"]["resourceSpans"]
        for ss in rs["scopeSpans"]
        for span in ss["spans"]
    }


# --------------------------------------------------------------------------- index and catch-all


@pytest.mark.parametrize(("flavor", "version"), [("v2.20", "v2.20.0"), ("v1", "v1.76.0")])
def test_index_page_carries_the_injected_version(serve: Any, flavor: str, version: str):
    server = serve(flavor=flavor)
    response = get(server, "/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert f'const JAEGER_VERSION = {{"gitCommit":"{"0" * 40}","gitVersion":"{version}"' in (
        response.text
    )


@pytest.mark.parametrize("path", ["/api/v3/nope", "/trace/abc", "/api/operations/x"])
def test_unknown_paths_answer_the_ui_with_200(serve: Any, path: str):
    response = get(serve(), path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!doctype html>")


def test_v1_has_no_api_v3(serve: Any):
    server = serve(flavor="v1")
    response = get(server, "/api/v3/services")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert get(server, "/api/services").json()["data"]


# --------------------------------------------------------------------------- golden bodies


def test_golden_api_v3_get_trace_and_find_traces(serve: Any, jaeger_fixtures: Path):
    golden_get = json.loads((jaeger_fixtures / "jaeger__GetTrace.json").read_text())
    golden_find = json.loads((jaeger_fixtures / "jaeger__FindTraces.json").read_text())
    server = serve([golden_get])
    response = get(server, "/api/v3/traces/00000000000000000000000000000001")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == golden_get
    assert response.content == go_json(golden_get)  # compact, as the gateway writes it
    window = {
        "query.startTimeMin": "1970-01-01T00:00:00Z",
        "query.startTimeMax": "1970-01-02T00:00:00Z",
    }
    assert get(server, "/api/v3/traces", window).json() == golden_find


def test_golden_services_body(serve: Any, jaeger_fixtures: Path):
    golden = json.loads((jaeger_fixtures / "jaeger__GetServices.json").read_text())
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "foo"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {},
                        "spans": [{"traceId": "01" * 16, "spanId": "02" * 8, "name": "x"}],
                    }
                ],
            }
        ]
    }
    assert get(serve([doc]), "/api/v3/services").json() == golden


def test_legacy_input_is_served_verbatim_on_legacy_endpoints(serve: Any, jaeger_fixtures: Path):
    trace = json.loads((jaeger_fixtures / "jaeger__ui_01.json").read_text())
    server = serve([jaeger_fixtures / "jaeger__ui_01.json"])
    body = get(server, f"/api/traces/{trace['traceID']}").json()
    assert body == {"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None}


def test_otlp_input_is_served_as_jaeger_converts_it(serve: Any, jaeger_fixtures: Path):
    expected = json.loads((jaeger_fixtures / "jaeger__otlp2jaeger-out.json").read_text())
    server = serve([jaeger_fixtures / "jaeger__otlp2jaeger-in.json"])
    trace_id = expected["data"][0]["traceID"]
    response = get(server, f"/api/traces/{trace_id}")
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected


@pytest.mark.parametrize(
    "name", ["jaeger__ui_01.json", "jaeger-ui__testTraceNormal.json", "jaeger__trace_success.json"]
)
def test_legacy_input_over_api_v3_keeps_the_trace(serve: Any, jaeger_fixtures: Path, name: str):
    path = jaeger_fixtures / name
    original = parse_document(json.loads(path.read_text()), "file")
    server = serve([path])
    (trace,) = original
    body = get(server, f"/api/v3/traces/{trace.trace_id}").json()
    (served,) = parse_document(body, "v3")

    def shape(t: Any) -> list[tuple[Any, ...]]:
        return sorted(
            (s.span_id, s.name, s.service, s.start_us, s.duration_us, s.parent_id, s.kind, s.error)
            for s in t.spans
        )

    assert served.trace_id == trace.trace_id
    assert shape(served) == shape(trace)


# --------------------------------------------------------------------------- api_v3 quirks


def test_empty_search_is_404_no_traces_found_as_text_plain(serve: Any):
    response = get(serve(), "/api/v3/traces", {"query.serviceName": "nobody", **WINDOW_CAMEL})
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == b'{"error":{"httpCode":404,"message":"No traces found"}}\n'


def test_unknown_trace_id_is_404(serve: Any):
    response = get(serve(), "/api/v3/traces/" + "ab" * 16)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No traces found"


@pytest.mark.parametrize(
    ("flavor", "params", "message"),
    [
        ("v2.20", {}, "query.startTimeMin and query.startTimeMax are required"),
        ("v2.20", {"query.start_time_min": "2025-11-24T15:00:00Z"}, "query.startTimeMin and"),
        ("v2.18", {}, "query.start_time_min and query.start_time_max are required"),
        # camelCase names mean nothing to a v2.18 server: its wording reveals the dialect
        ("v2.18", WINDOW_CAMEL, "query.start_time_min and query.start_time_max are required"),
    ],
)
def test_missing_time_bounds_400_in_the_flavors_wording(
    serve: Any, flavor: str, params: dict[str, str], message: str
):
    response = get(serve(flavor=flavor), "/api/v3/traces", params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert message in response.json()["error"]["message"]


def test_snake_case_aliases_accepted_by_v2_20(serve: Any):
    response = get(serve(), "/api/v3/traces", {"query.service_name": WORKER1, **WINDOW_SNAKE})
    assert response.status_code == 200


def test_v2_18_json_is_sniffed_text_plain(serve: Any):
    response = get(serve(flavor="v2.18"), "/api/v3/services")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert WORKER1 in response.json()["services"]


def test_search_merges_whole_traces_into_one_resource_spans_list(serve: Any):
    body = get(serve(), "/api/v3/traces", {"query.serviceName": "ktrdr-api", **WINDOW_CAMEL}).json()
    assert trace_ids(body) == {"b2" * 16, "c3" * 16, "d4" * 16}
    services = {
        a["value"]["stringValue"]
        for rs in body["result"]["resourceSpans"]
        for a in rs["resource"]["attributes"]
        if a["key"] == "service.name"
    }
    # whole traces: the worker spans of the dispatch traces come along
    assert services == {"ktrdr-api", WORKER1, "ktrdr-training-worker-deadbeef"}


def test_tag_search_matches_per_span_within_the_requested_service(serve: Any):
    server = serve()
    attrs = json.dumps({"operation.id": OP1})
    backend = get(
        server,
        "/api/v3/traces",
        {"query.serviceName": "ktrdr-api", "query.attributes": attrs, **WINDOW_CAMEL},
    )
    assert backend.status_code == 404  # the dispatch trace holds OP1, but not on a backend span
    worker = get(
        server,
        "/api/v3/traces",
        {"query.serviceName": WORKER1, "query.attributes": attrs, **WINDOW_CAMEL},
    )
    assert trace_ids(worker.json()) == {"b2" * 16}
    legacy = get(
        server,
        "/api/traces",
        {
            "service": "ktrdr-api",
            "tag": f"operation.id:{OP1}",
            "start": str(T0 * 10**6 - 1),
            "end": str((T0 + 3600) * 10**6),
        },
    )
    assert legacy.json()["data"] == []


def test_v2_18_ignores_attributes(serve: Any):
    server = serve(flavor="v2.18")
    attrs = json.dumps({"operation.id": "nothing-has-this"})
    response = get(
        server,
        "/api/v3/traces",
        {
            "query.service_name": WORKER1,
            "query.attributes": attrs,
            "query.num_traces": "20",
            **WINDOW_SNAKE,
        },
    )
    assert response.status_code == 200
    assert trace_ids(response.json()) == {"b2" * 16, "e5" * 16, "f6" * 16}


@pytest.mark.parametrize("depth", [None, "0", "100001"])
def test_a_depth_outside_the_storage_bounds_is_a_500(serve: Any, depth: str | None):
    """v2.12's in-memory storage: no default depth before v2.19, and 1..max traces only."""
    params = {"query.service_name": WORKER1, **WINDOW_SNAKE}
    if depth is not None:
        params["query.num_traces"] = depth
    response = get(serve(flavor="v2.18"), "/api/v3/traces", params)
    assert response.status_code == 500
    assert response.json()["error"]["message"] == (
        "search depth must be greater than 0 and less than max traces"
    )


def test_search_depth_keeps_the_newest(serve: Any):
    params = {"query.serviceName": WORKER1, "query.searchDepth": "2", **WINDOW_CAMEL}
    assert trace_ids(get(serve(), "/api/v3/traces", params).json()) == {"e5" * 16, "f6" * 16}


def test_time_window_filters_on_span_start(serve: Any):
    params = {
        "query.serviceName": "ktrdr-api",
        "query.startTimeMin": "2025-11-24T16:09:00Z",
        "query.startTimeMax": "2025-11-24T16:11:00Z",
    }
    assert trace_ids(get(serve(), "/api/v3/traces", params).json()) == {"c3" * 16}


# --------------------------------------------------------------------------- legacy quirks


def test_legacy_search_requires_service(serve: Any):
    response = get(serve(), "/api/traces", {"tag": f"operation.id:{OP1}"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == (
        b'{"data":null,"total":0,"limit":0,"offset":0,'
        b'"errors":[{"code":400,"msg":"parameter \'service\' is required"}]}\n'
    )


def test_legacy_unknown_trace_is_404_envelope(serve: Any):
    response = get(serve(), "/api/traces/" + "ab" * 8)
    assert response.status_code == 404
    assert response.json()["errors"] == [{"code": 404, "msg": "trace not found"}]


def test_legacy_malformed_tag(serve: Any):
    response = get(serve(), "/api/traces", {"service": WORKER1, "tag": "operation.id"})
    assert response.status_code == 400
    assert "malformed 'tag' parameter, expecting key:value" in response.text


def test_legacy_trace_by_16_or_32_hex(serve: Any):
    server = serve()
    short = get(server, "/api/traces/1234abcd5678ef90").json()
    long = get(server, "/api/traces/00000000000000001234abcd5678ef90").json()
    assert short == long
    assert short["data"][0]["traceID"] == "1234abcd5678ef90"  # as stored: 16 hex


def test_legacy_services_envelope(serve: Any):
    body = get(serve(), "/api/services").json()
    assert body["total"] == len(body["data"]) == 6
    assert body["errors"] is None


@pytest.mark.parametrize(("storage", "expected"), [("memory", 1), ("elasticsearch", 2)])
def test_regex_matching_on_elasticsearch(serve: Any, storage: str, expected: int):
    server = serve(storage=storage)
    params = {
        "service": WORKER1,
        "tag": "operation.id:op_regex.1",
        "start": "0",
        "end": str((T0 + 3600) * 10**6),
    }
    assert len(get(server, "/api/traces", params).json()["data"]) == expected
    attrs = json.dumps({"operation.id": "op_regex.1"})
    v3 = get(
        server,
        "/api/v3/traces",
        {"query.serviceName": WORKER1, "query.attributes": attrs, **WINDOW_CAMEL},
    )
    assert len(trace_ids(v3.json())) == expected


# --------------------------------------------------------------------------- faults and bookkeeping


def test_refuse_fault_is_a_closed_port(serve: Any):
    server = serve(faults=["refuse"])
    with pytest.raises(httpx.ConnectError):
        get(server, "/api/v3/services")


def test_truncated_fault_cuts_the_json(serve: Any):
    server = serve(faults=[Fault("truncated", times=1)])
    cut = get(server, "/api/v3/services")
    assert cut.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert get(server, "/api/v3/services").json()["services"]  # only once


def test_http500_fault_counts_down(serve: Any):
    server = serve(faults=[Fault("http500", times=1, path="/api/services")])
    first = get(server, "/api/services")
    assert first.status_code == 500
    assert first.json()["errors"][0]["code"] == 500
    assert get(server, "/api/services").status_code == 200
    assert get(server, "/api/v3/services").status_code == 200  # other paths untouched


def test_calls_are_recorded(serve: Any):
    server = serve()
    get(server, "/api/traces", {"service": "a", "tag": ["x:1", "y:2"]})
    assert server.calls == [("GET", "/api/traces", {"service": ["a"], "tag": ["x:1", "y:2"]})]


def test_unknown_fault_and_flavor_are_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("explode")
    with pytest.raises(ValueError, match="unknown flavor"):
        ReplayJaeger([], flavor="v3.0")


def test_command_line_entry_point(tmp_path: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opdiag.devtools.replay_jaeger",
            "--traces",
            str(DATA),
            "--port",
            "0",
            "--flavor",
            "v1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "replaying 8 traces as Jaeger v1.76.0 at http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[1].strip()
        assert httpx.get(url + "/api/services", timeout=10).json()["total"] == 6
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_command_line_missing_path(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "opdiag.devtools.replay_jaeger", "--traces", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr
