"""The typed (msgspec) path gives exactly the model (or the error message) of the general
path over plain JSON values, on every reference fixture, the demo corpus, a generated KTRDR
trace in every whitespace style and hostile inputs; what it does not fit, it leaves to the
general path."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import DEMO_TRACES, JAEGER_FIXTURES, KTRDR_REFERENCE, REPO_ROOT
from opdiag.errors import TraceFormatError
from opdiag.model import Trace
from opdiag.sources import readers
from reader_paths import plain

FIXTURE_FILES = sorted(JAEGER_FIXTURES.glob("*.json")) + sorted(KTRDR_REFERENCE.glob("*.json"))
DEMO_FILES = sorted(p for p in DEMO_TRACES.iterdir() if p.suffix in (".json", ".jsonl"))


def _write_generated(path: Path, spans: int) -> None:
    """``bench.gen_traces.write`` (bench/ is not a package on the test path)."""
    spec = importlib.util.spec_from_file_location(
        "gen_traces", REPO_ROOT / "bench" / "gen_traces.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write(path, spans)


def _dump(traces: list[Trace]) -> list[Any]:
    """Everything a trace holds, as plain values (spans field by field, tree by ids)."""
    out = []
    for trace in traces:
        spans = []
        for span in trace.spans:
            fields = plain(span)
            spans.append(sorted(fields.items(), key=lambda kv: kv[0]))
        out.append(
            (
                trace.trace_id,
                trace.sources,
                trace.warnings,
                trace.first_start_us,
                trace.last_end_us,
                [r.span_id for r in trace.roots],
                {k: [c.span_id for c in v] for k, v in trace.children.items()},
                sorted(trace.by_id),
                spans,
            )
        )
    return out


def _outcome(data: bytes, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The dumped model, or the error message, of one parse with the typed path on or off."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(readers, "_typed", lambda data, source: None)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(1000)  # parse as a console run does (deep_values raises it)
        try:
            traces = readers.parse_bytes(data, "f.json")
        except TraceFormatError as exc:
            return ("error", str(exc))
        finally:
            sys.setrecursionlimit(limit)
        return _dump(traces)


def _same(data: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    whole = _outcome(data, fast=False, monkeypatch=monkeypatch)
    assert _outcome(data, fast=True, monkeypatch=monkeypatch) == whole
    return whole


def _used(data: bytes) -> bool:
    """Did the typed path produce the result itself (no fallback)?"""
    return readers._typed(data, "f.json") is not None


def _compact(path: Path) -> bytes:
    return orjson.dumps(orjson.loads(path.read_bytes()))


def _envelope(*traces: dict[str, Any], errors: Any = None) -> dict[str, Any]:
    return {"data": list(traces), "total": 0, "limit": 0, "offset": 0, "errors": errors}


def _span(n: int, parent: int | None = None, **extra: Any) -> dict[str, Any]:
    refs = []
    if parent is not None:
        refs = [{"refType": "CHILD_OF", "traceID": "ab" * 16, "spanID": f"{parent:016x}"}]
    span: dict[str, Any] = {
        "traceID": "ab" * 16,
        "spanID": f"{n:016x}",
        "flags": 1,
        "operationName": f"op{n}",
        "references": refs,
        "startTime": 1_700_000_000_000_000 + n * 10,
        "duration": 1000 - n,
        "tags": [{"key": "k", "type": "string", "value": f"v{n}"}],
        "logs": [],
        "processID": "p1",
        "warnings": None,
    }
    span.update(extra)
    return span


def _trace(spans: list[dict[str, Any]], trace_id: str = "ab" * 16) -> dict[str, Any]:
    return {
        "traceID": trace_id,
        "spans": spans,
        "processes": {"p1": {"serviceName": "svc", "tags": []}},
        "warnings": None,
    }


def _spans(count: int) -> list[dict[str, Any]]:
    return [_span(0)] + [_span(n, parent=n // 2) for n in range(1, count)]


@pytest.mark.parametrize("path", FIXTURE_FILES + DEMO_FILES, ids=lambda p: p.name)
def test_every_reference_and_demo_file_as_is_and_compact(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = path.read_bytes()
    _same(raw, monkeypatch)
    if path.suffix == ".json":
        _same(_compact(path), monkeypatch)


def test_legacy_and_otlp_fixtures_take_the_typed_path() -> None:
    legacy = [
        p for p in FIXTURE_FILES if b'"spans"' in p.read_bytes() and b"spanID" in p.read_bytes()
    ]
    otlp = [p for p in FIXTURE_FILES if b'"resourceSpans"' in p.read_bytes()]
    assert legacy and otlp
    assert all(_used(p.read_bytes()) for p in legacy if p.name.startswith("jaeger-ui__t"))
    assert any(_used(p.read_bytes()) for p in otlp)
    assert _used((DEMO_TRACES / "data-loads.jaeger.json").read_bytes())


@pytest.mark.parametrize(
    "style",
    [{}, {"separators": (",", ":")}, {"indent": 2}, {"indent": 4}, {"sort_keys": True}],
    ids=["default", "compact", "indent2", "indent4", "sorted"],
)
def test_generated_ktrdr_trace_in_every_style(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: dict[str, Any]
) -> None:
    path = tmp_path / "ktrdr.json"
    _write_generated(path, 1500)
    data = json.dumps(json.loads(path.read_bytes()), **style).encode()
    assert _used(data)
    (trace,) = _same(data, monkeypatch)
    assert len(trace[-1]) == 1500
    assert _same(path.read_bytes(), monkeypatch) == [trace]


@pytest.mark.parametrize(
    "doc",
    [
        _envelope(_trace(_spans(40))),
        _trace(_spans(40)),  # one trace object, as Jaeger UI downloads it
        _envelope(_trace(_spans(3)), _trace(_spans(5), trace_id="cd" * 16)),
        _envelope(_trace(_spans(1))),
    ],
    ids=["envelope", "trace", "two-traces", "one-span"],
)
def test_compact_shapes_take_the_typed_path(doc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = orjson.dumps(doc)
    assert _used(data)
    _same(data, monkeypatch)


def _hostile() -> dict[str, bytes]:
    base = _spans(6)
    cases: dict[str, bytes] = {}
    # a reference whose first key is traceID: a false span start inside a span
    odd_ref = [dict(s) for s in base]
    odd_ref[3]["references"] = [{"traceID": "ab" * 16, "spanID": "0" * 15 + "1"}]
    cases["ref-starts-with-traceID"] = orjson.dumps(_envelope(_trace(odd_ref)))
    # strings holding the byte patterns the cutter looks for
    texty = [dict(s) for s in base]
    texty[2]["tags"] = [
        {"key": "a", "type": "string", "value": '}]},{"traceID":"x"}],"spans":[{"traceID"'},
        {"key": "b", "type": "string", "value": "}]}]"},
    ]
    cases["patterns-in-strings"] = orjson.dumps(_envelope(_trace(texty)))
    # "}]" inside the last span many times, beyond the tries allowed
    tail = [dict(s) for s in base]
    tail[-1]["tags"] = [{"key": f"k{i}", "type": "string", "value": "}]"} for i in range(100)]
    cases["many-closers-in-last-span"] = orjson.dumps(_envelope(_trace(tail)))
    # the spans key twice (the last one wins in a JSON parser)
    one = orjson.dumps(_trace(base[:2]))
    cases["duplicate-spans-key"] = one[:-1] + b',"spans":' + orjson.dumps(base[2:]) + b"}"
    cases["list-of-traces"] = orjson.dumps([_trace(base), _trace(base[:2], trace_id="cd" * 16)])
    cases["unknown-top-level-key"] = orjson.dumps({**_envelope(_trace(base)), "x": 1})
    cases["unknown-key-bad-utf8"] = orjson.dumps(_envelope(_trace(base))).replace(
        b'"flags"', b'"fl\xffags"', 1
    )
    cases["tag-key-number"] = orjson.dumps(_envelope(_trace(base))).replace(
        b'"key":"k"', b'"key":5', 1
    )
    cases["float-time"] = orjson.dumps(_envelope(_trace(base))).replace(
        b'"duration":', b'"duration":5.0,"z":', 1
    )
    cases["string-time"] = orjson.dumps(_envelope(_trace(base))).replace(
        b'"startTime":', b'"startTime":"1700000000000000","z":', 1
    )
    # errors beside data, holding objects that start with traceID
    cases["errors-with-traceID"] = orjson.dumps(
        _envelope(_trace(base), errors=[{"traceID": "ab" * 16, "msg": "partial"}])
    )
    # spans key not first, processes first
    reordered = {"processes": {"p1": {"serviceName": "svc"}}, "spans": base, "traceID": "ab" * 16}
    cases["processes-first"] = orjson.dumps(_envelope(reordered))
    # whitespace between spans
    cases["space-between-spans"] = orjson.dumps(_envelope(_trace(base))).replace(
        b'},{"traceID"', b'}, {"traceID"'
    )
    # errors inside spans: every one must be worded as the whole parse words it
    broken = orjson.dumps(_envelope(_trace(base)))
    cases["truncated"] = broken[: len(broken) // 2]
    cases["truncated-last-span"] = broken[: broken.rindex(b"}]")]
    cases["bad-json-in-span"] = broken.replace(b'"flags":1', b'"flags":1,,', 1)
    cases["trailing-garbage"] = broken + b"x"
    cases["negative-duration"] = orjson.dumps(
        _envelope(_trace([*base[:3], _span(9, parent=0, duration=-5)]))
    )
    cases["span-without-id"] = orjson.dumps(_envelope(_trace([*base, _span(7, spanID=None)])))
    cases["not-an-int"] = broken.replace(b'"startTime":', b'"startTime":1e999,"x":', 1)
    cases["huge-int"] = broken.replace(
        b'"duration":', b'"duration":99999999999999999999999,"y":', 1
    )
    cases["bom"] = b"\xef\xbb\xbf" + broken
    cases["invalid-utf8"] = broken.replace(b'"op3"', b'"op\xff3"', 1)
    # nesting around orjson's depth limit (1024), inside a tag value
    for depth in (1017, 1018, 1019, 1020, 1021, 1022):
        deep = broken.replace(b'"value":"v2"', b'"value":' + b"[" * depth + b"]" * depth, 1)
        cases[f"deep-{depth}"] = deep
    return cases


HOSTILE = _hostile()


@pytest.fixture
def deep_values() -> Iterator[None]:
    """Copying and comparing values ~1020 lists deep needs more than 1000 Python frames."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.usefixtures("deep_values")
def test_hostile_inputs_give_the_whole_parse_result(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same(HOSTILE[name], monkeypatch)


@pytest.mark.usefixtures("deep_values")
def test_deep_nesting_is_decided_like_the_whole_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = {
        name: _outcome(HOSTILE[name], fast=False, monkeypatch=monkeypatch)[0] == "error"
        for name in HOSTILE
        if name.startswith("deep-")
    }
    assert set(outcomes.values()) == {True, False}  # the limit is inside the tested range


def test_read_file_uses_the_typed_path(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(orjson.dumps(_envelope(_trace(_spans(30)))))
    (trace,) = readers.read_file(path)
    assert len(trace.spans) == 30
    assert trace.sources == [str(path)]
