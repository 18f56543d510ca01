"""The typed readers decode tags/attributes once per distinct raw text and build the usual
OTLP span inline (issue 10): every span still gets its own attribute dict, the memo's bound
changes nothing, and every odd OTLP span the inline code leaves to ``otlp_fields`` gives the
model (or the error) the general path gives."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from opdiag.sources import legacy_typed, otlp_typed, readers
from opdiag.sources.documents import typed
from reader_paths import same_model

TID = "ab" * 16


_same = same_model


def _legacy(tags: list[list[dict[str, Any]]]) -> dict[str, Any]:
    spans = [
        {
            "traceID": TID,
            "spanID": f"{n + 1:016x}",
            "operationName": "op",
            "references": [],
            "startTime": 1_700_000_000_000_000 + n,
            "duration": 10,
            "tags": t,
            "logs": [],
            "processID": "p1",
        }
        for n, t in enumerate(tags)
    ]
    return {"data": [{"traceID": TID, "spans": spans, "processes": {"p1": {"serviceName": "s"}}}]}


def _otlp_span(n: int, **extra: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TID,
        "spanId": f"{n + 1:016x}",
        "parentSpanId": "" if n == 0 else f"{1:016x}",
        "name": f"op{n}",
        "kind": 2,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + n * 1000),
        "endTimeUnixNano": str(1_700_000_000_000_500_000 + n * 1000),
        "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
        "status": {"code": 0},
    }
    span.update(extra)
    return span


def _otlp(spans: list[dict[str, Any]], scope: Any = None) -> dict[str, Any]:
    scope_spans: dict[str, Any] = {"spans": spans}
    if scope is not None:
        scope_spans["scope"] = scope
    return {
        "result": {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]
                    },
                    "scopeSpans": [scope_spans],
                }
            ]
        }
    }


TAGS = [{"key": "k", "type": "string", "value": "v"}, {"key": "n", "type": "int64", "value": 1}]


def test_legacy_spans_with_the_same_tags_get_dicts_of_their_own() -> None:
    data = orjson.dumps(_legacy([TAGS, TAGS, TAGS]))
    [trace] = readers.parse_bytes(data, "f.json")
    a, b, c = trace.spans
    assert a.attributes == b.attributes == c.attributes == {"k": "v", "n": 1}
    a.attributes["k"] = "changed"
    assert b.attributes == c.attributes == {"k": "v", "n": 1}


def test_traces_of_one_document_share_decoded_processes_and_tags_not_dicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The traces of one answer share what was decoded (processes, tags): every span still
    gets its own attribute dict, and the model is the general path's."""
    process = {"serviceName": "s", "tags": [{"key": "host", "type": "string", "value": "h"}]}
    doc = {"data": []}
    for n, tid in enumerate(("ab" * 16, "cd" * 16, "ef" * 16)):
        trace = _legacy([TAGS, [{"key": "k", "type": "string", "value": str(n)}]])["data"][0]
        trace["traceID"] = tid
        for span in trace["spans"]:
            span["traceID"] = tid
        trace["processes"] = {"p1": process, "p2": {"serviceName": "other"}}
        doc["data"].append(trace)
    doc["data"][2]["spans"][1]["processID"] = "p2"
    calls: list[object] = []
    real = legacy_typed.process_typed
    monkeypatch.setattr(legacy_typed, "process_typed", lambda p: calls.append(p) or real(p))
    data = orjson.dumps(doc)
    assert typed(data, "f.json") is not None
    assert len(calls) == 2  # one per distinct process, not one per trace
    traces = readers.parse_bytes(data, "f.json")
    firsts = [t.spans[0] for t in sorted(traces, key=lambda t: t.trace_id)]
    assert all(s.attributes == {"k": "v", "n": 1} for s in firsts)
    assert all(s.resource == {"host": "h", "service.name": "s"} for s in firsts)
    firsts[0].attributes["k"] = "changed"
    assert firsts[1].attributes == firsts[2].attributes == {"k": "v", "n": 1}
    last = next(t for t in traces if t.trace_id == "ef" * 16)
    assert [s.service for s in last.spans] == ["s", "other"]
    monkeypatch.undo()
    _same(doc, monkeypatch)


def test_otlp_spans_with_the_same_attributes_get_dicts_of_their_own() -> None:
    doc = _otlp([_otlp_span(0), _otlp_span(1), _otlp_span(2)], scope={"name": "lib"})
    data = orjson.dumps(doc)
    assert typed(data, "f.json") is not None
    [trace] = readers.parse_bytes(data, "f.json")
    a, b, _ = trace.spans
    assert a.attributes == b.attributes == {"k": "v", "otel.scope.name": "lib"}
    a.attributes.clear()
    assert b.attributes == {"k": "v", "otel.scope.name": "lib"}


def _resource_spans(resource: Any, n: int) -> dict[str, Any]:
    return {"resource": resource, "scopeSpans": [{"spans": [_otlp_span(n)]}]}


ODD_RESOURCES: list[Any] = [
    {"attributes": None},
    {},
    None,
    {"attributes": []},
    {"attributes": [{"key": "service.name", "value": {"intValue": "5"}}]},
    {"attributes": [{"key": "service.name"}]},
    {"attributes": [{"key": "service.name", "value": {"stringValue": ""}}]},
    {"attributes": "not a list"},
    {"attributes": [{"key": "host.name", "value": {"stringValue": "h"}}]},
]


@pytest.mark.parametrize("limit", [1, 2, 100])
def test_spans_of_one_resource_share_it_and_read_as_the_general_path_reads_them(
    limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file exporter may write one resourceSpans per span: each distinct resource is
    decoded once and its spans share it; odd resources read as the general path reads them."""
    monkeypatch.setattr(otlp_typed, "MEMO_LIMIT", limit)
    first = {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]}
    second = {"attributes": [{"key": "service.name", "value": {"stringValue": "t"}}]}
    order = [first, first, second, first, second, second]
    doc = {"resourceSpans": [_resource_spans(r, n) for n, r in enumerate(order)]}
    [trace] = readers.parse_bytes(orjson.dumps(doc), "f.json")
    by_service = {}
    for span in trace.spans:
        by_service.setdefault(span.service, []).append(span.resource)
    assert sorted(by_service) == ["s", "t"]
    assert by_service["s"][0] == {"service.name": "s"}
    if limit > 2:
        assert all(r is by_service["s"][0] for r in by_service["s"])
        assert all(r is by_service["t"][0] for r in by_service["t"])
    _same(doc, monkeypatch)
    for n, odd in enumerate(ODD_RESOURCES):
        odd_doc = {"resourceSpans": [_resource_spans(odd, 0), _resource_spans(first, 1)]}
        odd_doc["resourceSpans"].append(_resource_spans(odd, 2 + n))
        _same(odd_doc, monkeypatch)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_the_memo_bound_changes_nothing(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(legacy_typed, "MEMO_LIMIT", limit)
    monkeypatch.setattr(otlp_typed, "MEMO_LIMIT", limit)
    other = [{"key": "k", "type": "string", "value": "w"}]
    legacy = _legacy([TAGS, other, TAGS, [], other, TAGS, other])
    assert orjson.dumps(legacy)  # sanity
    _same(legacy, monkeypatch)
    spans = [
        _otlp_span(n, attributes=[{"key": "k", "value": {"stringValue": str(n % 3)}}])
        for n in range(7)
    ]
    _same(_otlp(spans, scope={"name": "lib", "version": "1"}), monkeypatch)


def _b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


ODD_SPANS: dict[str, dict[str, Any]] = {
    "parent-none": {"parentSpanId": None},
    "parent-zero": {"parentSpanId": "0" * 16},
    "parent-upper": {"parentSpanId": f"{1:016X}"},
    "parent-short": {"parentSpanId": "1"},
    "parent-base64": {"parentSpanId": _b64(f"{1:016x}")},
    "parent-not-hex": {"parentSpanId": "zz" * 8},
    "parent-number": {"parentSpanId": 7},
    "span-upper": {"spanId": "AB" * 8},
    "span-zero": {"spanId": "0" * 16},
    "span-base64": {"spanId": _b64("cd" * 8)},
    "span-not-hex": {"spanId": "zz" * 8},
    "span-missing": {"spanId": None},
    "times-numbers": {
        "startTimeUnixNano": 1_700_000_000_000_000_000,
        "endTimeUnixNano": 1_700_000_000_000_900_000,
    },
    "times-float": {"startTimeUnixNano": 1.7e18},
    "times-spaces": {"startTimeUnixNano": " 1700000000000000000 "},
    "times-bad": {"endTimeUnixNano": "soon"},
    "negative-duration": {"endTimeUnixNano": "1"},
    "after-3000": {"startTimeUnixNano": str(10**20), "endTimeUnixNano": str(10**20 + 5)},
    "status-message": {"status": {"code": 2, "message": "boom"}},
    "status-words": {"status": {"code": "STATUS_CODE_ERROR"}},
    "status-odd": {"status": "ERROR"},
    "status-none": {"status": None},
    "kind-word": {"kind": "SPAN_KIND_CLIENT"},
    "kind-bool": {"kind": True},
    "name-number": {"name": 5},
    "name-none": {"name": None},
    "links": {"links": [{"traceId": TID, "spanId": f"{1:016x}"}]},
    "events": {"events": [{"name": "exception", "timeUnixNano": "1700000000000000001"}]},
    "jaeger-warnings": {
        "attributes": [
            {"key": "@jaeger@warnings", "value": {"arrayValue": {"values": [{"stringValue": "w"}]}}}
        ]
    },
    "trace-upper": {"traceId": "AB" * 16},
    "trace-zero": {"traceId": "0" * 32},
}


@pytest.mark.parametrize("name", sorted(ODD_SPANS))
def test_odd_otlp_spans_read_as_the_general_path_reads_them(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = [_otlp_span(0), _otlp_span(1, **ODD_SPANS[name]), _otlp_span(2)]
    _same(_otlp(spans), monkeypatch)


@pytest.mark.parametrize("scope", [{"name": ["a", "list"]}, {"name": "lib", "version": {"v": 1}}])
def test_scopes_of_any_shape_read_as_the_general_path_reads_them(
    scope: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same(_otlp([_otlp_span(0), _otlp_span(1)], scope=scope), monkeypatch)


def test_the_usual_otlp_span_stays_on_the_typed_path() -> None:
    data = orjson.dumps(_otlp([_otlp_span(n) for n in range(5)]))
    assert typed(data, "f.json") is not None


def test_only_a_trace_s_first_usual_otlp_span_goes_through_otlp_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    general = otlp_typed._span

    def counted(*args: Any) -> Any:
        calls.append(args[0])
        return general(*args)

    monkeypatch.setattr(otlp_typed, "_span", counted)
    data = orjson.dumps(_otlp([_otlp_span(n) for n in range(5)]))
    [trace] = readers.parse_bytes(data, "f.json")
    assert len(trace.spans) == 5
    assert len(calls) == 1  # the trace id is checked once, then read from the cache
