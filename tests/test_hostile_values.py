"""Hostile values inside well-formed trace files (found by fuzzing the readers and the
engine): JSON nested a thousand deep where a name, id, message or attribute goes, OTLP
values of the wrong shape, numbers no float holds, dates no calendar holds, console spans
with scalar links. Each is read (the value left out or kept as it came) or refused with a
named error and exit 2; none ends in ``internal error``."""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from opdiag.cli.main import main
from opdiag.diagnosis.conditions import Condition, as_number, as_time, check_operand, evaluate
from opdiag.diagnosis.run_profile import data_size
from opdiag.errors import TraceFormatError
from opdiag.model import Span
from opdiag.sources.reader_base import MAX_NESTING, TOO_DEEP, any_value, bounded
from opdiag.sources.readers import parse_bytes
from reader_paths import outcome, same_model

NOW = "2026-12-04T16:10:00Z"
OP = "op_training_20261204_160000_0badc0de"
TID = "0123456789abcdef0123456789abcdef"
T0_NS = 1_796_400_000_000_000_000


def _deep(levels: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


MARK = "__nested__"  # where ``_dumps`` puts JSON nested deeper than orjson writes (254)


def _dumps(doc: Any, levels: int = 900, *, otlp: bool = False) -> bytes:
    """``doc`` as JSON with each ``MARK`` string replaced by a list nested ``levels`` deep
    (an OTLP ``arrayValue`` nested ``levels // 3`` deep: three JSON levels each)."""
    if otlp:
        n = levels // 3
        deep = b'{"arrayValue":{"values":[' * n + b'{"stringValue":"x"}' + b"]}}" * n
    else:
        deep = b"[" * levels + b'"x"' + b"]" * levels
    return orjson.dumps(doc).replace(orjson.dumps(MARK), deep)


def _same(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """The typed and the general reader agree on ``data``."""
    fast = outcome(data, fast=True, monkeypatch=monkeypatch)
    assert fast == outcome(data, fast=False, monkeypatch=monkeypatch)


def _otlp_span(n: int, **fields: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": TID,
        "spanId": f"{n + 1:016x}",
        "name": "training.data_loading" if n else "POST /api/v1/trainings/start",
        "kind": 2,
        "startTimeUnixNano": str(T0_NS + n * 1_000_000),
        "endTimeUnixNano": str(T0_NS + n * 1_000_000 + 500_000),
        "attributes": [{"key": "operation.id", "value": {"stringValue": OP}}],
    }
    if n:
        span["parentSpanId"] = f"{1:016x}"
    span.update(fields)
    return span


def _otlp(*spans: dict[str, Any]) -> dict[str, Any]:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "ktrdr-api"}}]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}


def _legacy(tags: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    span = {
        "traceID": TID,
        "spanID": "0000000000000001",
        "operationName": "training.data_loading",
        "references": [],
        "startTime": T0_NS // 1000,
        "duration": 1000,
        "tags": [{"key": "operation.id", "type": "string", "value": OP}, *tags],
        "logs": [],
        "processID": "p1",
    }
    span.update(fields)
    procs = {"p1": {"serviceName": "ktrdr-training-worker-1", "tags": []}}
    return {"data": [{"traceID": TID, "spans": [span], "processes": procs}]}


def _run(tmp_path: Path, doc: Any, *args: str, raw: bytes | None = None) -> tuple[int, str, str]:
    path = tmp_path / "t.json"
    path.write_bytes(raw if raw is not None else _dumps(doc))
    out, err = io.StringIO(), io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--traces", str(path), "--now", NOW])
    return code, out.getvalue(), err.getvalue()


def _clean(tmp_path: Path, doc: Any, raw: bytes | None = None) -> tuple[int, str]:
    """Every command on the file ends in a diagnosis or a named error, never an internal
    one; the listing's exit status and its error text."""
    code, out, err = _run(tmp_path, doc, "operations", "--format", "json", raw=raw)
    assert code in (0, 2), err
    assert "internal error" not in err and "Traceback" not in err
    if code == 0:
        for row in orjson.loads(out):
            ident = row["operation_id"] or row["trace_id"]
            for fmt in ("json", "markdown"):
                d_code, _, d_err = _run(tmp_path, doc, "diagnose", ident, "--format", fmt, raw=raw)
                assert d_code == 0, d_err
    return code, err


# -------------------------------------------------------------- JSON nested a thousand deep

@pytest.fixture(params=[None, 300], ids=["stack as it is", "deep stack"])
def stack_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whether ``str()`` of a value 900 deep fails depends on how deep the stack already is:
    a recursion limit of 300 stands for a caller deep in a server's stack."""
    before = sys.getrecursionlimit()
    if request.param is not None:
        sys.setrecursionlimit(request.param)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize(
    "field", ["spanId", "traceId", "name", "parentSpanId", "status", "kind"]
)
def test_a_deep_value_where_the_format_wants_a_scalar_is_named(
    tmp_path: Path, field: str, stack_limit: None
) -> None:
    value = {"code": 2, "message": MARK} if field == "status" else MARK
    code, err = _clean(tmp_path, _otlp(_otlp_span(0), _otlp_span(1, **{field: value})))
    if code == 2:
        assert "nested too deeply" in err or "not a string" in err, err


def test_a_deep_id_is_named_with_its_place(stack_limit: None) -> None:
    raw = _dumps(_otlp(_otlp_span(0, spanId=MARK)))
    with pytest.raises(TraceFormatError, match=r"spans\[0\]: spanId not a string: "):
        parse_bytes(raw, "t.json")
    if sys.getrecursionlimit() <= 300:
        with pytest.raises(TraceFormatError, match="a list nested too deeply to show"):
            parse_bytes(raw, "t.json")


@pytest.mark.parametrize("where", ["errors", "warnings", "span warnings"])
def test_deep_jaeger_errors_and_warnings_are_read_or_named(tmp_path: Path, where: str) -> None:
    """Jaeger's messages are kept as text: one too deep to turn into text is named (whether
    it is depends on how deep the stack already is)."""
    doc = _legacy([], warnings=[MARK]) if where == "span warnings" else _legacy([])
    if where != "span warnings":
        doc[where] = [MARK]
    code, err = _clean(tmp_path, doc)
    assert code == 0 or "nested too deeply" in err, err


@pytest.mark.parametrize("key", ["operation.id", "progress.phase", "cli.args", "data.symbol"])
def test_a_deep_attribute_is_left_out_and_the_operation_diagnosed(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attribute any rule, fact or template reads: the value is replaced, the rest of the
    span stays, and both readers (typed and general) agree."""
    span = _otlp_span(1)
    span["attributes"] = [*span["attributes"], {"key": key, "value": MARK}]
    otlp = _dumps(_otlp(_otlp_span(0), span), otlp=True)
    [trace] = parse_bytes(otlp, "t.json")
    assert trace.by_id[f"{2:016x}"].attributes[key] == TOO_DEEP
    _same(otlp, monkeypatch)
    legacy = _dumps(_legacy([{"key": key, "type": "string", "value": MARK}]))
    [trace] = parse_bytes(legacy, "t.json")
    assert trace.spans[0].attributes[key] == TOO_DEEP
    _same(legacy, monkeypatch)
    for raw in (otlp, legacy):
        code, _ = _clean(tmp_path, None, raw=raw)
        assert code == 0


def test_deep_process_tags_log_fields_and_resources_are_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = _legacy([])
    trace_doc = legacy["data"][0]
    trace_doc["processes"]["p1"]["tags"] = [{"key": "host", "type": "string", "value": _deep(99)}]
    trace_doc["spans"][0]["logs"] = [
        {"timestamp": T0_NS // 1000, "fields": [{"key": "event", "type": "string",
                                                   "value": _deep(99)}]}
    ]
    [trace] = parse_bytes(orjson.dumps(legacy), "t.json")
    span = trace.spans[0]
    assert span.resource["host"] == TOO_DEEP
    assert span.events[0].attributes["event"] == TOO_DEEP
    same_model(legacy, monkeypatch)
    doc = _otlp(_otlp_span(0))
    doc["resourceSpans"][0]["resource"]["attributes"].append({"key": "host", "value": MARK})
    raw = _dumps(doc, 300, otlp=True)
    [trace] = parse_bytes(raw, "t.json")
    assert trace.spans[0].resource["host"] == TOO_DEEP
    _same(raw, monkeypatch)
    assert _clean(tmp_path, legacy)[0] == 0 and _clean(tmp_path, None, raw=raw)[0] == 0


def test_only_values_nested_too_deeply_are_left_out() -> None:
    at_limit, over = _deep(MAX_NESTING), _deep(MAX_NESTING + 1)
    wide = [[1, 2, {"a": [3]}]] * 10_000
    values = {"a": at_limit, "b": over, "c": wide, "d": "text", "e": {"k": over}}
    out = bounded(copy.deepcopy(values))
    assert out["a"] == at_limit and out["c"] == wide and out["d"] == "text"
    assert out["b"] == TOO_DEEP and out["e"] == TOO_DEEP


def test_a_pretty_printed_document_nested_too_deeply_is_named(tmp_path: Path) -> None:
    raw = b'{\n  "data": ' + b"[\n " * 2000 + b"]" * 2000 + b"\n}"
    code, err = _clean(tmp_path, None, raw=raw)
    assert code == 2 and "JSON" in err, err


# ------------------------------------------------------------------ values of the wrong shape


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ({"arrayValue": {"values": 5}}, []),
        ({"arrayValue": {"values": {"a": 1}}}, []),
        ({"kvlistValue": {"values": 5}}, {}),
        ({"kvlistValue": {"values": "ab"}}, {}),
        ({"intValue": float("inf")}, float("inf")),
        ({"intValue": "12"}, 12),
        ({"arrayValue": {"values": [{"intValue": "3"}]}}, [3]),
    ],
)
def test_odd_otlp_values_are_read_leniently(value: dict[str, Any], want: Any) -> None:
    assert any_value(value) == want


def test_odd_otlp_values_in_a_file_read_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    span = _otlp_span(1)
    span["attributes"] = [
        *span["attributes"],
        {"key": "a", "value": {"arrayValue": {"values": 5}}},
        {"key": "m", "value": {"kvlistValue": {"values": 7}}},
    ]
    doc = _otlp(_otlp_span(0), span)
    same_model(doc, monkeypatch)
    assert _clean(tmp_path, doc)[0] == 0


def test_an_infinite_int_value_in_a_second_pretty_printed_document(tmp_path: Path) -> None:
    """The documents after the first of a file are read by ``json``, which takes Infinity."""
    first = orjson.dumps(_otlp(_otlp_span(0)), option=orjson.OPT_INDENT_2)
    second = orjson.dumps(_otlp(_otlp_span(1)), option=orjson.OPT_INDENT_2).replace(
        b'"stringValue": "' + OP.encode() + b'"', b'"intValue": Infinity', 1
    )
    assert b"Infinity" in second
    code, _ = _clean(tmp_path, None, raw=first + b"\n" + second)
    assert code == 0


# ------------------------------------------------------------- numbers and dates out of range


def test_numbers_no_float_holds_are_not_numbers() -> None:
    huge = 10**400
    assert as_number(huge) is None
    assert as_number(str(huge)) == float("inf")
    span = Span(TID, "1" * 16, "data.load", "svc", 0, 1, attributes={"data.rows": huge})
    assert data_size([span], ["data.rows"]) is None
    assert evaluate(Condition("data.rows", "gt", check_operand("gt", 5)), huge) is False
    assert evaluate(Condition("n", "eq", huge), 3) is False
    assert evaluate(Condition("n", "in", (huge, 3)), 3) is True


def test_a_rule_pack_number_no_float_holds_is_a_pack_error() -> None:
    with pytest.raises(ValueError, match="gt"):
        check_operand("gt", 10**400)


def test_dates_no_calendar_holds_in_utc_are_not_times(tmp_path: Path) -> None:
    assert as_time("0001-01-01T00:00:00+14:00") is None
    assert as_time("9999-12-31T23:59:59-14:00") is None
    assert as_time("2023-06-30") is not None
    span = _otlp_span(1)
    span["attributes"] = [
        *span["attributes"],
        {"key": "data.start_date", "value": {"stringValue": "0001-01-01T00:00:00+14:00"}},
        {"key": "data.end_date", "value": {"stringValue": "2023-01-01"}},
        {"key": "data.symbol", "value": {"intValue": str(10**400)}},
    ]
    assert _clean(tmp_path, _otlp(_otlp_span(0), span))[0] == 0


def test_a_huge_data_size_compares_as_no_size(tmp_path: Path) -> None:
    """``compare`` reads the runs' data size (``data.rows``): a 400-digit one is no size."""
    docs = []
    for n, op in enumerate((OP, OP.replace("0badc0de", "0badc0df"))):
        span = _otlp_span(0, traceId=f"{n + 1:032x}")
        span["attributes"] = [
            {"key": "operation.id", "value": {"stringValue": op}},
            {"key": "data.rows", "value": {"intValue": str(10**400)}},
        ]
        docs.append(_otlp(span))
    merged = {"resourceSpans": [rs for d in docs for rs in d["resourceSpans"]]}
    code, _, err = _run(tmp_path, merged, "compare", OP, OP.replace("0badc0de", "0badc0df"))
    assert code == 0, err


# ------------------------------------------------------------------------- console spans


def _console(**fields: Any) -> dict[str, Any]:
    span = {
        "name": "training.data_loading",
        "context": {"trace_id": "0x" + TID, "span_id": "0x0000000000000001"},
        "kind": "SpanKind.INTERNAL",
        "parent_id": None,
        "start_time": "2026-12-04T16:00:00.000000Z",
        "end_time": "2026-12-04T16:00:01.000000Z",
        "status": {"status_code": "UNSET"},
        "attributes": {"operation.id": OP},
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "ktrdr-training-worker-1"}},
    }
    span.update(fields)
    return span


@pytest.mark.parametrize("field", ["links", "events"])
@pytest.mark.parametrize("value", [5, 2.5, "x", {"a": 1}])
def test_console_links_and_events_that_are_not_lists_are_named(
    tmp_path: Path, field: str, value: Any
) -> None:
    raw = orjson.dumps(_console(**{field: value}), option=orjson.OPT_INDENT_2)
    code, err = _clean(tmp_path, None, raw=raw + b"\n" + raw)
    assert code == 2 and field in err, err
    with pytest.raises(TraceFormatError, match=field):
        parse_bytes(raw + b"\n" + raw, "t.json")


def test_a_console_span_with_deep_attributes_is_read(tmp_path: Path) -> None:
    raw = orjson.dumps(_console(attributes={"operation.id": OP, "x": _deep(99)}))
    [trace] = parse_bytes(raw, "t.json")
    assert trace.spans[0].attributes["x"] == TOO_DEEP
    assert _clean(tmp_path, None, raw=raw)[0] == 0


def test_valid_json_deeper_than_the_decoder_goes_is_named_as_such(tmp_path: Path) -> None:
    """2,000 levels of lists are valid JSON; called "not valid JSON" the message sent the
    user looking for a syntax error."""
    deep = "[" * 2000 + "]" * 2000
    doc = '{"data": [{"traceID": "ab", "spans": [], "processes": {}, "x": ' + deep + "}]}"
    path = tmp_path / "deep.json"
    path.write_text(doc, encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        parse_bytes(path.read_bytes(), str(path))
    assert "nested too deeply to read" in info.value.message
    assert "not valid JSON" not in info.value.message
