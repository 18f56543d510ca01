"""The OTLP typed path's inline span code (issue 10) remembers the trace and parent id of the
span before and checks 16-character ids as bytes: whatever the order of spans and whatever
the id spelling, the model (or the error) is the one the general path gives, and the usual
spellings stay on the typed path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from opdiag.sources.documents import typed
from reader_paths import same_model

TID = "ab" * 16
OTHER_TID = "cd" * 16


def _same(doc: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return same_model(doc, monkeypatch, by_trace_id=True)


def _span(n: int, parent: Any = "", trace: Any = TID, **extra: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": trace,
        "spanId": f"{n:016x}",
        "parentSpanId": parent,
        "name": f"op{n % 3}",
        "kind": 2,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + n * 1000),
        "endTimeUnixNano": str(1_700_000_000_000_500_000 + n * 1000),
        "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
        "status": {"code": 0},
    }
    span.update(extra)
    return span


def _otlp(spans: list[dict[str, Any]]) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]}
    return {"result": {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}}


def _hex(n: int) -> str:
    return f"{n:016x}"


def test_spans_of_two_traces_interleaved(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = [_span(1), _span(2, trace=OTHER_TID)]
    spans += [_span(n, _hex(1 if n % 2 else 2), TID if n % 2 else OTHER_TID) for n in range(3, 12)]
    model = _same(_otlp(spans), monkeypatch)
    assert [len(t[4]) for t in model] == [6, 5]
    assert typed(orjson.dumps(_otlp(spans)), "f.json") is not None


def test_siblings_in_runs_and_alternating_parents(monkeypatch: pytest.MonkeyPatch) -> None:
    parents = [1, 1, 1, 2, 2, 1, 2, 1, 3, 3]
    spans = [_span(1), _span(2, _hex(1)), _span(3, _hex(1))]
    spans += [_span(10 + i, _hex(p)) for i, p in enumerate(parents)]
    spans += [_span(30, ""), _span(31, None), _span(32, "0" * 16), _span(33, _hex(2))]
    model = _same(_otlp(spans), monkeypatch)
    children = model[0][3]
    assert len(children["0000000000000001"]) == 2 + 5
    assert typed(orjson.dumps(_otlp(spans)), "f.json") is not None


def test_the_same_parent_text_in_another_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    spans = [_span(1), _span(2, _hex(1)), _span(1, trace=OTHER_TID), _span(3, _hex(1), OTHER_TID)]
    model = _same(_otlp(spans), monkeypatch)
    assert [t[3] for t in model] == [
        {"0000000000000001": ["0000000000000002"]},
        {"0000000000000001": ["0000000000000003"]},
    ]


# 16-character ids the bytes check does not take: the general path decides (and words them)
ODD_IDS = {
    "upper": "00000000000000AB",
    "blank-inside": "00000000 0000001",
    "blank-around": " 000000000000001",
    "0x": "0x00000000000001",
    "plus": "+000000000000001",
    "underscore": "00000000_0000001",
    "arabic-digits": "٠" * 15 + "١",
    "not-hex": "zz" * 8,
    "zero": "0" * 16,
    "base64-of-12": "AAAAAAAAAAAAAAAB",
    "short": "1",
    "base64": "AAAAAAAAAAE=",
    "long": "0" * 31 + "1",
    "number": 7,
    "list": ["0000000000000001"],
}


@pytest.mark.parametrize("name", sorted(ODD_IDS))
@pytest.mark.parametrize("field", ["spanId", "parentSpanId"])
def test_odd_ids_read_as_the_general_path_reads_them(
    name: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = _span(5, _hex(1), **{field: ODD_IDS[name]})
    _same(_otlp([_span(1), _span(2, _hex(1)), odd, _span(3, _hex(1))]), monkeypatch)


@pytest.mark.parametrize(
    "status",
    [
        None,
        {},
        {"code": 2, "message": "boom"},
        {"code": "STATUS_CODE_OK", "message": ""},
        {"code": 1, "message": 5},
        {"code": 2.0},
        {"code": True},
        {"code": [2]},
        {"code": 9},
        {"message": "only"},
        {"code": 2, "code2": "x", "extra": [1]},
        "ERROR",
        [],
        7,
    ],
    ids=repr,
)
def test_every_status_shape_reads_as_the_general_path_reads_it(
    status: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = [_span(1), _span(2, _hex(1), status=status), _span(3, _hex(1), status=status)]
    _same(_otlp(spans), monkeypatch)
    if status is None or type(status) is dict:
        assert typed(orjson.dumps(_otlp(spans)), "f.json") is not None


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("1700000000000000000", "1700000000000000000"),
        ("1700000000000000000", "1699999999999999000"),
        ("1_700_000_000_000_000_000", "1700000000000001000"),
        ("1e18", "1700000000000001000"),
        ("1700000000000000000", None),
        (None, "1000"),
        ("-1000", "1000"),
        ("9" * 5000, "1"),
        (True, "1"),
    ],
)
def test_odd_times_read_as_the_general_path_reads_them(
    start: Any, end: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = _span(2, _hex(1), startTimeUnixNano=start, endTimeUnixNano=end)
    _same(_otlp([_span(1), odd, _span(3, _hex(1))]), monkeypatch)


VALUES: list[Any] = [
    {"stringValue": None, "intValue": "5"},
    {"stringValue": 5},
    {"stringValue": "", "boolValue": True},
    {"intValue": None},
    {"intValue": "x"},
    {"intValue": 5.5},
    {"boolValue": "TRUE"},
    {"doubleValue": "1.5"},
    {"bytesValue": "AAE="},
    {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}},
    {"kvlistValue": {"values": [{"key": "a", "value": {"stringValue": None, "intValue": "1"}}]}},
    {},
    {"unknown": 1},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("beside", ["a value", "a null value", "no value"])
def test_attribute_values_read_as_the_general_path_reads_them(
    value: Any, beside: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``stringValue`` is the value whenever present, unless an attribute of the same list
    has no value object (the general path then reads every value with ``any_value``)."""
    other: dict[str, Any] = {"key": "o"}
    if beside != "no value":
        other["value"] = {"stringValue": "v"} if beside == "a value" else None
    attrs = [{"key": "k", "value": value}, other]
    doc = _otlp([_span(1, attributes=attrs), _span(2, _hex(1), attributes=attrs)])
    doc["result"]["resourceSpans"][0]["resource"]["attributes"] += attrs
    _same(doc, monkeypatch)
    assert typed(orjson.dumps(doc), "f.json") is not None
