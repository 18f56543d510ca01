"""Readers: every Jaeger fixture loads, each format quirk is normalised, bad input is refused
with the file and the problem named."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import orjson
import pytest
from conftest import JAEGER_FIXTURES, KTRDR_REFERENCE
from opdiag.errors import TraceFormatError
from opdiag.model import CHILD_OF, FOLLOWS_FROM, SERVER, STATUS_ERROR, is_error
from opdiag.sources.readers import parse_bytes, parse_document, read_file

# Reference files that hold no spans: refused with a message saying what they are (a trace
# source skips them and lists them in its problems).
NOT_TRACES = {
    "jaeger-ui__small.json": "dependency links",
    "jaeger__FindTraceSummaries.json": "trace-summaries",
    "jaeger__GetServices.json": "services response",
    "jaeger__GetOperations.json": "operations response",
}
FIXTURES = sorted(p.name for p in JAEGER_FIXTURES.glob("*.json"))


def _span(traces, span_id):
    for trace in traces:
        for span in trace.spans:
            if span.span_id == span_id:
                return span
    raise AssertionError(f"no span {span_id}")


def _write(tmp_path: Path, name: str, content: bytes | str | object) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_bytes(orjson.dumps(content))
    return path


def _legacy(spans, processes=None, **extra):
    trace = {
        "traceID": "abc",
        "spans": spans,
        "processes": processes or {"p1": {"serviceName": "svc", "tags": []}},
    }
    return {"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None, **extra}


def _lspan(span_id="1", **over):
    span = {
        "traceID": "abc",
        "spanID": span_id,
        "operationName": "op",
        "references": [],
        "startTime": 1_000,
        "duration": 10,
        "tags": [],
        "logs": [],
        "processID": "p1",
    }
    span.update(over)
    return span


def _otlp_span(**over):
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "name": "op",
        "kind": 2,
        "startTimeUnixNano": "1700000000000001000",
        "endTimeUnixNano": "1700000000002001999",
    }
    span.update(over)
    return span


def _otlp(*spans, service="svc"):
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "lib", "version": "1.0"}, "spans": list(spans)}],
            }
        ]
    }


# ----------------------------------------------------------------------------- fixtures


@pytest.mark.parametrize("name", FIXTURES)
def test_every_jaeger_fixture_loads_or_is_refused_clearly(name):
    path = JAEGER_FIXTURES / name
    if name in NOT_TRACES:
        with pytest.raises(TraceFormatError) as info:
            read_file(path)
        assert name in str(info.value)
        assert NOT_TRACES[name] in str(info.value)
        return
    traces = read_file(path)
    assert traces, f"{name} gave no trace"
    for trace in traces:
        assert len(trace.trace_id) == 32
        assert trace.trace_id == trace.trace_id.lower()
        assert trace.sources == [str(path)]
        assert trace.roots
        for span in trace.spans:
            assert len(span.original_span_id) == 16
            assert span.service
            assert span.duration_us >= 0
            assert span.error == is_error(span)


@pytest.mark.parametrize(
    ("name", "traces", "spans", "services"),
    [
        ("jaeger__ui_01.json", 1, 5, ["service-x", "service-y"]),
        ("jaeger__trace_success.json", 1, 2, ["16af988c443cff37", "3c220036602f839e"]),
        ("jaeger-ui__genaiTestTrace.json", 1, 57, None),
        ("jaeger-ui__testTrace.json", 1, 11, ["service1", "service2"]),
        ("jaeger__otel_traces_01.json", 2, 4, ["service-x"]),
        ("jaeger__example_trace.json", 1, 5, [f"example-service-{i}" for i in (1, 2, 3)]),
        ("jaeger-analytics-java__ui-trace.json", 1, 2, ["jaeger-query"]),
        ("jaeger__GetTrace.json", 1, 1, ["unknown"]),
    ],
)
def test_fixture_counts(name, traces, spans, services):
    got = read_file(JAEGER_FIXTURES / name)
    assert len(got) == traces
    assert sum(len(t.spans) for t in got) == spans
    if services is not None:
        assert sorted({s for t in got for s in t.services()}) == services


def test_genai_trace_has_ten_services_and_one_error():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger-ui__genaiTestTrace.json")
    assert len(trace.services()) == 10
    assert [s.span_id for s in trace.spans if s.error] == ["0000000000000011"]


# ----------------------------------------------------------------------------- quirks


def test_short_trace_id_is_left_padded():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger__ui_01.json")
    assert trace.trace_id == "0" * 31 + "1"


def test_unpadded_15_char_span_id_is_padded_and_linked():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger-analytics-java__ui-trace.json")
    child = trace.by_id["0ec2b4e0bcea566d"]
    assert child.parent_id == "2db17286b3e6b148"
    assert trace.trace_id == "0000000000000000" + "2db17286b3e6b148"


def test_string_true_error_with_bool_type_is_an_error():
    traces = read_file(JAEGER_FIXTURES / "jaeger__trace_success.json")
    span = _span(traces, "7bd66f09ba90ea3d")
    assert span.attributes["error"] is True
    assert span.error
    assert span.kind == "client"
    assert not _span(traces, "7606ddfe69932d34").error


def test_ui01_tag_values():
    traces = read_file(JAEGER_FIXTURES / "jaeger__ui_01.json")
    span = next(s for s in traces[0].spans if s.name == "some-operation" and s.attributes)
    assert span.attributes["javascript_limit"] == 9223372036854775222
    assert span.attributes["blob"] == "AAAwOQ=="
    assert span.attributes["temperature"] == 72.5
    assert span.attributes["peer.ipv4"] == 23456
    assert span.error


def test_duplicate_span_ids_are_kept_apart():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger__ui_01.json")
    assert "0000000000000002" in trace.by_id
    assert "0000000000000002_1" in trace.by_id
    assert trace.by_id["0000000000000002_1"].original_span_id == "0000000000000002"


def test_reference_into_another_trace_is_kept_and_skipped_for_the_parent():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger__ui_01.json")
    span = trace.by_id["0000000000000004"]
    assert [(r.ref_type, r.trace_id[-2:], r.span_id[-2:]) for r in span.references] == [
        (CHILD_OF, "ff", "ff"),
        (CHILD_OF, "01", "02"),
        (FOLLOWS_FROM, "01", "02"),
    ]
    assert span.references[0].trace_id == "0" * 30 + "ff"
    assert span.parent_id == "0000000000000002"
    assert span.warnings == ["some span warning"]
    assert trace.warnings == ["some trace warning"]


def test_log_becomes_event_named_after_event_field():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger__ui_01.json")
    span = next(s for s in trace.spans if s.name == "test-general-conversion")
    assert [e.name for e in span.events] == ["some-event", "log"]
    assert span.events[1].attributes == {"x": "y"}
    assert span.events[0].time_us == 1485467191639875


def test_two_traces_in_one_otlp_payload():
    traces = read_file(JAEGER_FIXTURES / "jaeger__otel_traces_01.json")
    assert sorted(t.trace_id for t in traces) == [
        "00000000000000010000000000000000",
        "00000000000000020000000000000000",
    ]
    span = _span(traces, "0000000000000002")
    assert span.kind == SERVER
    assert span.status == STATUS_ERROR and span.error
    assert span.attributes["peer.ipv4"] == 23456
    assert span.attributes["otel.scope.name"] == "testing-library-2"
    # parent 03 is in the other trace; the follows_from link to 04 is in this one
    assert [(r.ref_type, r.span_id[-2:]) for r in span.references] == [
        (CHILD_OF, "03"),
        (FOLLOWS_FROM, "04"),
        (CHILD_OF, "ff"),
    ]
    assert span.parent_id == "0000000000000004"
    assert [e.name for e in span.events] == ["testing-event", "log"]


def test_v3_body_and_console_sample():
    (trace,) = read_file(JAEGER_FIXTURES / "jaeger__GetTrace.json")
    (span,) = trace.spans
    assert span.kind == SERVER and span.error
    (trace,) = read_file(KTRDR_REFERENCE / "phase1-console-trace.json")
    (span,) = trace.spans
    assert span.service == "ktrdr-api"
    assert span.kind == SERVER
    assert trace.trace_id == "7a2c617e07d34d8c76e89c24d9878fa1"
    assert span.span_id == "56fb11a6d6017475"
    assert span.start_us == 1762836983722114
    assert span.duration_us == 1436
    assert span.attributes["http.status_code"] == 200
    assert span.resource["deployment.environment"] == "development"
    assert not span.error


def test_console_exporter_concatenated_objects(tmp_path):
    sample = json.loads((KTRDR_REFERENCE / "phase1-console-trace.json").read_text())
    child = copy.deepcopy(sample)
    child["name"] = "data.load_cache"
    child["kind"] = "SpanKind.INTERNAL"
    child["context"]["span_id"] = "0x00000000000000aa"
    child["parent_id"] = sample["context"]["span_id"]
    child["status"] = {"status_code": "ERROR", "description": "boom"}
    child["events"] = [
        {
            "name": "exception",
            "timestamp": "2025-11-11T04:56:23.723000Z",
            "attributes": {"exception.type": "DataNotFoundError", "exception.message": "x"},
        }
    ]
    text = json.dumps(sample, indent=4) + "\n" + json.dumps(child, indent=4) + "\n"
    (trace,) = read_file(_write(tmp_path, "console.json", text))
    assert len(trace.spans) == 2
    kid = trace.by_id["00000000000000aa"]
    assert kid.parent_id == "56fb11a6d6017475"
    assert kid.status == STATUS_ERROR and kid.status_message == "boom"
    assert kid.exception_events()[0].attributes["exception.type"] == "DataNotFoundError"


def test_exception_event_from_legacy_logs():
    doc = _legacy(
        [
            _lspan(
                logs=[
                    {
                        "timestamp": 1_005,
                        "fields": [
                            {"key": "event", "type": "string", "value": "exception"},
                            {"key": "exception.type", "type": "string", "value": "ValueError"},
                            {"key": "exception.message", "type": "string", "value": "bad"},
                        ],
                    }
                ]
            )
        ]
    )
    (trace,) = parse_document(doc, "mem")
    (span,) = trace.spans
    (event,) = span.exception_events()
    assert event.name == "exception"
    assert event.attributes["exception.message"] == "bad"
    assert span.error


def test_exception_event_from_otlp_events():
    span = _otlp_span(
        events=[
            {
                "timeUnixNano": "1700000000001000000",
                "name": "exception",
                "attributes": [{"key": "exception.type", "value": {"stringValue": "ConnectError"}}],
            }
        ]
    )
    (trace,) = parse_document(_otlp(span), "mem")
    (s,) = trace.spans
    assert s.error
    assert s.events[0].time_us == 1700000000001000
    assert s.exception_events()[0].attributes["exception.type"] == "ConnectError"


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ([{"key": "error", "type": "string", "value": "false"}], False),
        ([{"key": "error", "type": "bool", "value": "false"}], False),
        ([{"key": "error", "type": "string", "value": "true"}], True),
        ([{"key": "otel.status_code", "type": "string", "value": "ERROR"}], True),
        (
            [
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "http.status_code", "type": "int64", "value": 503},
            ],
            True,
        ),
        (
            [
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "http.status_code", "type": "int64", "value": 404},
            ],
            False,
        ),
        (
            [
                {"key": "span.kind", "type": "string", "value": "client"},
                {"key": "http.status_code", "type": "string", "value": "404"},
            ],
            False,
        ),
    ],
)
def test_error_flag(tags, error):
    (trace,) = parse_document(_legacy([_lspan(tags=tags)]), "mem")
    (span,) = trace.spans
    assert span.error is error
    assert span.error == is_error(span)


def test_otlp_values_kinds_and_base64_ids():
    span = _otlp_span(
        traceId="CvdlGRbNQ92ESOshHIAxnA==",  # base64 of 0af7651916cd43dd8448eb211c80319c
        spanId="t61rcWkgMzE=",
        parentSpanId="",
        kind="SPAN_KIND_CLIENT",
        status={"code": "STATUS_CODE_ERROR", "message": "refused"},
        attributes=[
            {"key": "s", "value": {"stringValue": "x"}},
            {"key": "i", "value": {"intValue": "9007199254740993"}},
            {"key": "d", "value": {"doubleValue": 1.5}},
            {"key": "b", "value": {"boolValue": True}},
            {"key": "y", "value": {"bytesValue": "AAAwOQ=="}},
            {"key": "a", "value": {"arrayValue": {"values": [{"intValue": "1"}]}}},
            {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {}}]}}},
        ],
        links=[
            {
                "traceId": "0af7651916cd43dd8448eb211c80319c",
                "spanId": "00000000000000ab",
                "attributes": [
                    {"key": "opentracing.ref_type", "value": {"stringValue": "child_of"}}
                ],
            }
        ],
    )
    (trace,) = parse_document({"result": _otlp(span)}, "mem")
    (s,) = trace.spans
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert s.span_id == "b7ad6b7169203331"
    assert s.kind == "client"
    assert s.status == STATUS_ERROR and s.status_message == "refused"
    assert s.attributes == {
        "s": "x",
        "i": 9007199254740993,
        "d": 1.5,
        "b": True,
        "y": "AAAwOQ==",
        "a": [1],
        "m": {"k": None},
        "otel.scope.name": "lib",
        "otel.scope.version": "1.0",
    }
    assert s.start_us == 1700000000000001
    assert s.duration_us == 2000  # (…2001999 − …0001000) ns → 2000 µs, truncated
    assert [(r.ref_type, r.span_id) for r in s.references] == [(CHILD_OF, "00000000000000ab")]


def test_otlp_lines_file_merges_parts_of_one_trace(tmp_path):
    root = _otlp_span(spanId="00000000000000a1", kind=1)
    child = _otlp_span(spanId="00000000000000a2", parentSpanId="00000000000000a1")
    other = _otlp_span(traceId="1" * 32, spanId="00000000000000b1")
    lines = b"\n".join(
        orjson.dumps(d) for d in (_otlp(root), _otlp(child, service="w"), _otlp(other))
    )
    traces = read_file(_write(tmp_path, "spans.jsonl", lines + b"\n"))
    by_id = {t.trace_id: t for t in traces}
    trace = by_id["0af7651916cd43dd8448eb211c80319c"]
    assert trace.by_id["00000000000000a2"].parent_id == "00000000000000a1"
    assert trace.services() == ["svc", "w"]
    assert len(by_id["1" * 32].spans) == 1


def test_several_traces_in_one_legacy_envelope():
    doc = _legacy([_lspan("1")])
    second = copy.deepcopy(doc["data"][0])
    second["traceID"] = "def"
    second["spans"][0]["traceID"] = "def"
    doc["data"].append(second)
    traces = parse_document(doc, "mem")
    assert sorted(t.trace_id[-3:] for t in traces) == ["abc", "def"]


def test_envelope_errors_become_trace_warnings():
    doc = _legacy([_lspan()], errors=[{"code": 404, "msg": "trace not found", "traceID": "x"}])
    (trace,) = parse_document(doc, "mem")
    assert any("trace not found" in w for w in trace.warnings)


def test_es_bare_spans_with_parent_span_id_and_embedded_process():
    spans = [
        _lspan("a", process={"serviceName": "api", "tags": []}),
        _lspan("b", parentSpanID="a", process={"serviceName": "db", "tags": []}),
    ]
    for s in spans:
        del s["processID"]
    (trace,) = parse_document(spans, "mem")
    assert trace.by_id["000000000000000b"].parent_id == "000000000000000a"
    assert trace.services() == ["api", "db"]


def test_unknown_process_id_keeps_the_span():
    (trace,) = parse_document(_legacy([_lspan(processID="p9")]), "mem")
    (span,) = trace.spans
    assert span.service == "unknown"
    assert "p9" in span.warnings[0]


def test_extra_top_level_keys_tolerated_and_input_unchanged():
    doc = {"_comment": "generated", **_legacy([_lspan()])["data"][0]}
    before = copy.deepcopy(doc)
    (trace,) = parse_document(doc, "mem")
    assert trace.spans[0].service == "svc"
    assert doc == before


def test_hostile_strings_are_data():
    evil = "__import__('os').system('false'); {{7*7}} <script>"
    doc = _legacy(
        [_lspan(operationName=evil, tags=[{"key": evil, "type": "string", "value": evil}])]
    )
    (trace,) = parse_document(doc, "mem")
    assert trace.spans[0].name == evil
    assert trace.spans[0].attributes[evil] == evil


# ----------------------------------------------------------------------------- empty / errors


def test_v3_not_found_is_empty_and_other_v3_errors_are_errors():
    body = b'{"error":{"httpCode":404,"message":"No traces found"}}\n'
    assert parse_bytes(body, "http://jaeger/api/v3/traces") == []
    with pytest.raises(TraceFormatError, match=r"HTTP 500: storage down"):
        parse_bytes(b'{"error":{"httpCode":500,"message":"storage down"}}', "jaeger")


def test_legacy_envelope_with_only_errors_is_an_error():
    body = orjson.dumps(
        {
            "data": None,
            "total": 0,
            "errors": [{"code": 400, "msg": "parameter 'service' is required"}],
        }
    )
    with pytest.raises(TraceFormatError, match="parameter 'service' is required") as info:
        parse_bytes(body, "search.json")
    assert str(info.value).startswith("search.json: ")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"this is not json", "not valid JSON"),
        (b"", "empty"),
        (b'{"data": [{"traceID": "1", "spans": [', "truncated"),
        (b'{"hello": 1, "world": 2}', "not a Jaeger or OTLP trace document: top-level keys"),
        (b"42", "not a Jaeger or OTLP trace document"),
        (b'["a", "b"]', "not a Jaeger or OTLP trace document"),
        (orjson.dumps(_legacy([_lspan(spanID=None)])), "span without spanID"),
        (orjson.dumps(_legacy([_lspan(duration=-5)])), "negative duration"),
        (orjson.dumps(_legacy([_lspan(startTime="soon")])), "startTime is not an integer"),
        (orjson.dumps(_legacy([_lspan(duration=1.5)])), "duration is not an integer"),
        (orjson.dumps(_legacy([_lspan(tags="oops")])), "tags is not a list"),
        (orjson.dumps(_otlp(_otlp_span(spanId=None))), "span without spanId"),
        (orjson.dumps(_otlp(_otlp_span(spanId="zz!"))), "spanId neither hex nor base64"),
        (
            orjson.dumps(_otlp(_otlp_span(endTimeUnixNano="1"))),
            "negative duration",
        ),
        (
            orjson.dumps(_otlp(_otlp_span(startTimeUnixNano="12.5e3"))),
            "startTimeUnixNano is not an integer",
        ),
        (b'{"resourceSpans": []}\n{"resourceSpans": [}\n', "line 2"),
    ],
)
def test_malformed_input_names_file_and_problem(tmp_path, content, problem):
    path = _write(tmp_path, "bad.json", content)
    with pytest.raises(TraceFormatError) as info:
        read_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert problem in message


def test_error_names_the_place_in_the_document(tmp_path):
    doc = _legacy([_lspan("1"), _lspan("2", duration=-1)])
    with pytest.raises(TraceFormatError, match=r"data\[0\]\.spans\[1\]: negative duration"):
        read_file(_write(tmp_path, "t.json", doc))


def test_not_json_reports_line_and_column(tmp_path):
    with pytest.raises(TraceFormatError, match=r"line 2 column \d+"):
        read_file(_write(tmp_path, "t.json", '{"data": [\n  nope ]}'))


def test_missing_file_is_a_trace_format_error(tmp_path):
    with pytest.raises(TraceFormatError, match="does not exist"):
        read_file(tmp_path / "nope.json")


def test_parse_bytes_of_the_same_data_as_document():
    data = (JAEGER_FIXTURES / "jaeger-ui__testTrace.json").read_bytes()
    a = parse_bytes(data, "x")
    b = parse_document(json.loads(data), "x")
    assert [(s.span_id, s.parent_id, s.error) for s in a[0].spans] == [
        (s.span_id, s.parent_id, s.error) for s in b[0].spans
    ]


def test_byte_order_mark_is_ignored():
    data = b"\xef\xbb\xbf" + (JAEGER_FIXTURES / "jaeger__trace_success.json").read_bytes()
    (trace,) = parse_bytes(data, "bom.json")
    assert len(trace.spans) == 2
