"""The Jaeger client's HTTP seam with ``httpx.MockTransport``: retries and backoff, what is
not retried, content-type quirks, version detection for dev builds, base paths."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opdiag.errors import InputError, SourceTimeoutError, SourceUnavailableError
from opdiag.model import Event, Span, build_trace
from opdiag.settings import JaegerSettings
from opdiag.sources.jaeger import JaegerSource, holds_attribute
from opdiag.sources.jaeger_http import JaegerHttp

Handler = Callable[[httpx.Request], httpx.Response]
TEXT = "text/plain; charset=utf-8"


def text_json(status: int, doc: Any) -> httpx.Response:
    """What Go's http.Error, or a gateway that sets no Content-Type, sends."""
    body = json.dumps(doc).encode() + b"\n"
    return httpx.Response(status, content=body, headers={"content-type": TEXT})


def html() -> httpx.Response:
    return httpx.Response(
        200, text="<!doctype html><html></html>", headers={"content-type": "text/html"}
    )


def settings(**overrides: Any) -> JaegerSettings:
    return JaegerSettings(url="http://jaeger:16686", **{"backoff_s": 0.0, **overrides})


class Recorder:
    """A MockTransport handler routing on the path, remembering every request."""

    def __init__(self, routes: dict[str, Handler | list[httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return html()  # Jaeger's SPA catch-all
        if isinstance(route, list):
            return route.pop(0)
        return route(request)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def source(recorder: Recorder, **overrides: Any) -> JaegerSource:
    return JaegerSource(settings(**overrides), transport=httpx.MockTransport(recorder))


def page(version: str) -> str:
    """The part of the UI's index page that carries the injected version."""
    injected = json.dumps({"gitCommit": "", "gitVersion": version, "buildDate": ""})
    return f"<script>const JAEGER_VERSION = {injected};</script>"


def test_sniffed_text_plain_json_counts_as_api_v3():
    index = page("v2.19.1")
    rec = Recorder(
        {
            "/api/v3/services": lambda r: text_json(200, {"services": ["ktrdr-cli"]}),
            "/": lambda r: httpx.Response(200, text=index, headers={"content-type": "text/html"}),
        }
    )
    with source(rec) as src:
        assert src.api == "v3"
        assert src.all_services() == ["ktrdr-cli"]
        assert "v2.19.1" in src.describe()


@pytest.mark.parametrize(
    ("wording", "legacy_present", "expected"),
    [
        ("query.start_time_min and query.start_time_max are required", True, "legacy"),
        ("query.start_time_min and query.start_time_max are required", False, "v3"),
        ("query.startTimeMin and query.startTimeMax are required", True, "v3"),
    ],
)
def test_dev_build_dialect_from_the_missing_bounds_400(
    wording: str, legacy_present: bool, expected: str
):
    dev = page("dev")
    routes: dict[str, Any] = {
        "/api/v3/services": lambda r: text_json(200, {"services": ["s"]}),
        "/": lambda r: httpx.Response(200, text=dev, headers={"content-type": "text/html"}),
        "/api/v3/traces": lambda r: text_json(
            400, {"error": {"httpCode": 400, "message": wording}}
        ),
    }
    if legacy_present:
        routes["/api/services"] = lambda r: httpx.Response(200, json={"data": ["s"], "total": 1})
    rec = Recorder(routes)
    with source(rec) as src:
        assert src.api == expected


def test_old_v3_without_legacy_filters_client_side():
    otlp = {
        "result": {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "w"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": f"{n:032x}",
                                    "spanId": f"{n:016x}",
                                    "name": "x",
                                    "startTimeUnixNano": "1000",
                                    "endTimeUnixNano": "2000",
                                    "attributes": [
                                        {"key": "operation.id", "value": {"stringValue": f"op_{n}"}}
                                    ],
                                }
                                for n in (1, 2, 3)
                            ]
                        }
                    ],
                }
            ]
        }
    }
    old = page("v2.17.0")
    rec = Recorder(
        {
            "/api/v3/services": lambda r: text_json(200, {"services": ["w"]}),
            "/": lambda r: httpx.Response(200, text=old, headers={"content-type": "text/html"}),
            "/api/v3/traces": lambda r: text_json(200, otlp),
        }
    )
    with source(rec, service_patterns=["w"]) as src:
        found = src.traces_for("op_2")
    assert [t.trace_id for t in found] == [f"{2:032x}"]
    search = next(r for r in rec.requests if r.url.path == "/api/v3/traces")
    assert search.url.params["query.service_name"] == "w"


def test_retries_back_off_exponentially_on_5xx():
    sleeps: list[float] = []
    answers = [
        text_json(503, {"error": {"message": "busy"}}),
        text_json(500, {}),
        httpx.Response(200, json={"services": []}),
    ]
    rec = Recorder({"/api/v3/services": answers})
    http = JaegerHttp(
        settings(backoff_s=0.25, retries=3),
        transport=httpx.MockTransport(rec),
        sleep=sleeps.append,
    )
    reply = http.get("/api/v3/services", label="/api/v3/services")
    assert reply.status == 200
    assert sleeps == [0.25, 0.5]
    http.close()


def test_connect_errors_are_retried():
    calls = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200, json={"data": ["a"], "total": 1})

    rec = Recorder({"/api/services": flaky})
    with source(rec, api="legacy", retries=1) as src:
        assert src.all_services() == ["a"]
    assert calls["n"] == 2


def test_read_timeouts_are_not_retried():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    rec = Recorder({"/api/services": slow})
    with source(rec, api="legacy", retries=3) as src, pytest.raises(SourceTimeoutError):
        src.all_services()
    assert rec.paths() == ["/api/services"]


def test_client_errors_are_not_retried_and_carry_jaegers_message():
    bad = text_json(
        400, {"data": None, "errors": [{"code": 400, "msg": "malformed 'tag' parameter"}]}
    )
    rec = Recorder(
        {
            "/api/services": lambda r: httpx.Response(200, json={"data": ["ktrdr-cli"]}),
            "/api/traces": [bad],
        }
    )
    with source(rec, api="legacy", retries=3) as src, pytest.raises(SourceUnavailableError) as info:
        src.traces_for("op_1")
    assert str(info.value) == (
        "Jaeger rejected /api/traces with HTTP 400: malformed 'tag' parameter"
    )
    assert rec.paths().count("/api/traces") == 1


def test_legacy_null_data_and_v3_empty_services_are_empty():
    rec = Recorder(
        {
            "/api/services": lambda r: httpx.Response(200, json={"data": None, "total": 0}),
        }
    )
    with source(rec, api="legacy") as src:
        assert src.all_services() == []
        assert src.traces_for("op_1") == []
    index = '<script>const JAEGER_VERSION = {"gitVersion":"v2.20.0"};</script>'
    rec = Recorder(
        {
            "/api/v3/services": lambda r: httpx.Response(200, json={}),
            "/": lambda r: httpx.Response(200, text=index, headers={"content-type": "text/html"}),
        }
    )
    with source(rec) as src:
        assert src.api == "v3"
        assert src.all_services() == []


def test_base_path_is_kept():
    rec = Recorder({"/jaeger/api/services": lambda r: httpx.Response(200, json={"data": ["x"]})})
    src = JaegerSource(
        JaegerSettings(url="http://proxy/jaeger/", api="legacy"), transport=httpx.MockTransport(rec)
    )
    assert src.all_services() == ["x"]
    assert src.describe() == "jaeger http://proxy/jaeger (legacy /api)"
    src.close()


def test_client_has_explicit_timeouts_and_limits():
    src = JaegerSource(settings(timeout_s=7.0, connect_timeout_s=2.0, concurrency=4))
    timeout = src.client.timeout
    assert (timeout.connect, timeout.read, timeout.write) == (2.0, 7.0, 7.0)
    src.close()


def test_settings_errors():
    with pytest.raises(InputError, match="no Jaeger URL"):
        JaegerSource(JaegerSettings())
    rec = Recorder({})
    with (
        source(rec, api="v4") as src,
        pytest.raises(SourceUnavailableError, match="unknown Jaeger API"),
    ):
        src.check()
    with source(rec) as src, pytest.raises(InputError):
        src.traces_for("   ")


def test_unreadable_document_is_a_source_error():
    rec = Recorder(
        {
            "/api/services": lambda r: httpx.Response(200, json={"data": ["s"]}),
            "/api/traces/" + "0" * 16 + "1234abcd5678ef90": lambda r: httpx.Response(
                200, json={"services": ["not", "traces"]}
            ),
        }
    )
    with (
        source(rec, api="legacy") as src,
        pytest.raises(SourceUnavailableError, match="cannot read"),
    ):
        src.traces_for("1234abcd5678ef90")


def _span(service: str, attributes: dict[str, Any], **extra: Any) -> Span:
    return Span(
        trace_id="1" * 32,
        span_id=f"{abs(hash((service, str(attributes)))) % 10**16:016d}",
        name="x",
        service=service,
        start_us=1,
        duration_us=1,
        attributes=attributes,
        **extra,
    )


def test_holds_attribute_is_per_span_within_the_service():
    trace = build_trace(
        "1" * 32,
        [
            _span("api", {}),
            _span("worker", {"operation.id": "op_1"}),
            _span("cli", {}, resource={"operation.id": "op_r"}),
            _span("w2", {}, events=[Event("log", 1, {"operation.id": "op_e"})]),
            _span("w3", {"operation.id": True}),
        ],
    )
    assert holds_attribute(trace, "worker", "operation.id", "op_1")
    assert not holds_attribute(trace, "api", "operation.id", "op_1")
    assert holds_attribute(trace, "cli", "operation.id", "op_r")
    assert holds_attribute(trace, "w2", "operation.id", "op_e")
    assert holds_attribute(trace, "w3", "operation.id", "true")
    assert not holds_attribute(trace, "worker", "operation.id", "op_10")


def _otlp_answer(bad: set[int]) -> dict[str, Any]:
    spans = [
        {
            "traceId": f"{n:032x}",
            "spanId": f"{n:016x}",
            "name": "x",
            "startTimeUnixNano": "2000000" if n in bad else "1000000",
            "endTimeUnixNano": "1000000" if n in bad else "2000000",  # bad: ends before it starts
            "attributes": [{"key": "operation.id", "value": {"stringValue": f"op_{n}"}}],
        }
        for n in (1, 2, 3)
    ]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "w"}}]}
    return {"result": {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}}


def _v3(answer: dict[str, Any]) -> Recorder:
    index = page("v2.19.1")
    return Recorder(
        {
            "/api/v3/services": lambda r: text_json(200, {"services": ["w"]}),
            "/": lambda r: httpx.Response(200, text=index, headers={"content-type": "text/html"}),
            "/api/v3/traces": lambda r: text_json(200, answer),
        }
    )


def test_one_unreadable_trace_in_a_search_answer_is_left_out_and_named():
    """A broken span in one trace of a search answer used to fail the whole listing (and
    every diagnosis in the window); now that trace alone is left out, once, as a problem."""
    with source(_v3(_otlp_answer({2})), service_patterns=["w"]) as src:
        # (this mock answers every search with all three traces)
        found = {t.trace_id for t in src.traces_for("op_1")}
        assert found == {f"{1:032x}", f"{3:032x}"}
        assert {t.trace_id for t in src.traces_for("op_3")} == found
        (problem,) = src.problems
    assert problem.startswith(f"trace {2:032x}, unreadable") and "negative duration" in problem


def test_a_search_answer_with_nothing_readable_is_still_an_error():
    with (
        source(_v3(_otlp_answer({1, 2, 3})), service_patterns=["w"]) as src,
        pytest.raises(SourceUnavailableError, match="cannot read"),
    ):
        src.traces_for("op_1")


def test_api_detection_is_shared_and_waiting_for_it_is_bounded():
    """A Jaeger that hangs at start-up: one caller detects the API while the others wait
    for its answer at most ``jaeger.deadline_s`` each (504), instead of queueing behind a
    lock one detection after another (30 requests: the last answered after 63 s)."""
    import threading

    entered = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def services(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        entered.set()
        release.wait(60)
        return text_json(200, {"services": ["w"]})

    index = page("v2.19.1")
    rec = Recorder(
        {
            "/api/v3/services": services,
            "/": lambda r: httpx.Response(200, text=index, headers={"content-type": "text/html"}),
        }
    )
    outcomes: list[object] = []

    def ask(src: JaegerSource) -> None:
        try:
            outcomes.append(src.all_services())
        except SourceUnavailableError as exc:
            outcomes.append(exc)

    with source(rec, deadline_s=0.5) as src:
        leader = threading.Thread(target=ask, args=(src,))
        leader.start()
        assert entered.wait(30)
        waiters = [threading.Thread(target=ask, args=(src,)) for _ in range(6)]
        for t in waiters:
            t.start()
        for t in waiters:
            t.join(30)
        finished = [not t.is_alive() for t in waiters]
        release.set()
        leader.join(30)
        assert all(finished), "a caller waited on the detection past its deadline"
        assert calls == ["/api/v3/services"]  # one detection, not one per caller
        waited = [o for o in outcomes[:-1] if isinstance(o, SourceTimeoutError)]
        assert len(waited) == 6
        assert all("which API it serves within 0.5s" in o.message for o in waited)
        assert isinstance(outcomes[-1], SourceTimeoutError)  # the leader's own late answer
        # a failed detection is not kept: the next caller detects again, and it answers now
        assert src.all_services() == ["w"] and src.api == "v3"


def test_an_answer_that_is_not_http_is_named_as_such():
    """Another service on Jaeger's port answers bytes that are not HTTP: that is a wrong
    address, not "cannot reach"; a connection closed without an answer still is."""

    def garbage(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("illegal status line: bytearray(b'\\x00\\xffSSH-2.0')")

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with (
        source(Recorder({"/api/v3/services": garbage}), retries=0) as src,
        pytest.raises(SourceUnavailableError) as info,
    ):
        src.all_services()
    assert "with something that is not HTTP" in info.value.message
    with (
        source(Recorder({"/api/v3/services": dropped}), retries=0) as src,
        pytest.raises(SourceUnavailableError) as info,
    ):
        src.all_services()
    assert info.value.message.startswith("cannot reach Jaeger")
