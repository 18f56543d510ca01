"""otlp_to_jaeger reproduces Jaeger's /api/transform on its own published pairs."""

from __future__ import annotations

import json

import pytest
from conftest import JAEGER_FIXTURES
from opdiag.sources.otlp2jaeger import otlp_to_jaeger
from opdiag.sources.readers import parse_document

# Keys the Jaeger UI adds when it loads a trace (the jaeger-ui pair's expected output is the
# UI's in-memory model, not the HTTP body): dropped before comparing.
UI_ONLY_KEYS = {"span", "process", "relativeStartTime", "depth", "hasChildren", "childSpanIds"}


def _load(name: str) -> dict:
    return json.loads((JAEGER_FIXTURES / name).read_text())


def _strip_ui(value):
    """Drop UI-only keys; the UI also turns a span's ``warnings: null`` into ``[]``."""
    if isinstance(value, dict):
        out = {k: _strip_ui(v) for k, v in value.items() if k not in UI_ONLY_KEYS}
        if out.get("warnings") == [] and "spanID" in out:
            out["warnings"] = None
        return out
    if isinstance(value, list):
        return [_strip_ui(v) for v in value]
    return value


def test_jaeger_pair_matches_exactly():
    # Byte-level JSON structure, key for key: nothing is normalised for this pair.
    got = otlp_to_jaeger(_load("jaeger__otlp2jaeger-in.json"))
    assert got == _load("jaeger__otlp2jaeger-out.json")


def test_jaeger_ui_pair_with_library_tag_names():
    got = otlp_to_jaeger(
        _load("jaeger-ui__otlp2jaeger-multi-in-combined.json"), scope_tags="library"
    )
    want = _strip_ui(_load("jaeger-ui__oltp2jaeger-multi-out.json"))
    assert got == want
    # tag order is part of the contract (scope, attributes, span.kind)
    assert [t["key"] for t in got["data"][0]["spans"][2]["tags"]] == [
        "otel.library.name",
        "otel.library.version",
        "span.kind",
    ]


def test_default_scope_tags_are_the_new_names():
    got = otlp_to_jaeger(_load("jaeger-ui__otlp2jaeger-multi-in-combined.json"))
    keys = {t["key"] for s in got["data"][0]["spans"] for t in s["tags"]}
    assert "otel.scope.name" in keys and "otel.library.name" not in keys


def test_status_links_events_and_two_traces():
    got = otlp_to_jaeger(_load("jaeger__otel_traces_01.json"))
    assert [t["traceID"] for t in got["data"]] == [
        "00000000000000010000000000000000",
        "00000000000000020000000000000000",
    ]
    span = got["data"][0]["spans"][0]
    tags = {t["key"]: (t["type"], t["value"]) for t in span["tags"]}
    assert tags["otel.status_code"] == ("string", "ERROR")
    assert tags["error"] == ("bool", True)
    assert tags["span.kind"] == ("string", "server")
    assert tags["w3c.tracestate"] == ("string", "state.2")
    assert tags["blob"] == ("binary", "AAAwOQ==")
    assert tags["peer.ipv4"] == ("int64", 23456)
    assert [(r["refType"], r["spanID"]) for r in span["references"]] == [
        ("CHILD_OF", "0000000000000003"),
        ("FOLLOWS_FROM", "0000000000000004"),
        ("CHILD_OF", "00000000000000ff"),
    ]
    assert span["logs"][0]["fields"][0] == {
        "key": "event",
        "type": "string",
        "value": "testing-event",
    }
    assert span["logs"][1]["fields"] == [{"key": "x", "type": "string", "value": "y"}]
    assert "flags" not in span


def test_short_trace_id_and_big_ints():
    otlp = {
        "resourceSpans": [
            {
                "resource": {},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "00000000000000000000000000000001",
                                "spanId": "0000000000000002",
                                "name": "x",
                                "kind": 0,
                                "attributes": [
                                    {"key": "big", "value": {"intValue": "9223372036854775222"}},
                                    {
                                        "key": "m",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "b", "value": {"intValue": "1"}},
                                                    {"key": "a", "value": {"stringValue": "<"}},
                                                ]
                                            }
                                        },
                                    },
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    got = otlp_to_jaeger(otlp)
    (trace,) = got["data"]
    assert trace["traceID"] == "0000000000000001"
    assert trace["processes"] == {"p1": {"serviceName": "OTLPResourceNoServiceName", "tags": []}}
    tags = trace["spans"][0]["tags"]
    assert tags == [
        {"key": "big", "type": "int64", "value": "9223372036854775222"},
        {"key": "m", "type": "string", "value": '{"a":"\\u003c","b":1}'},
    ]


def test_round_trip_through_the_reader_keeps_the_model():
    otlp = _load("jaeger__otel_traces_01.json")
    direct = {t.trace_id: t for t in parse_document(otlp, "otlp")}
    via = {t.trace_id: t for t in parse_document(otlp_to_jaeger(otlp), "legacy")}
    assert direct.keys() == via.keys()
    for tid, trace in direct.items():
        other = via[tid]
        for span in trace.spans:
            twin = other.by_id[span.span_id]
            assert (span.name, span.service, span.kind, span.start_us, span.duration_us) == (
                twin.name,
                twin.service,
                twin.kind,
                twin.start_us,
                twin.duration_us,
            )
            assert span.error == twin.error
            assert span.parent_id == twin.parent_id


def test_bad_scope_tags_option():
    with pytest.raises(ValueError, match="scope_tags"):
        otlp_to_jaeger({"resourceSpans": []}, scope_tags="nope")
