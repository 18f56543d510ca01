"""Hostile trace input (issue 11, items 3–7): duplicate ids, files that are not files, size
caps, lone surrogates, compressed and mis-encoded files, times out of range. Every case gets a
named error with exit 2 (or is read), never a hang, a traceback or a wrong verdict."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from opdiag.api.app import create_app
from opdiag.cli.main import main
from opdiag.errors import TraceFormatError
from opdiag.settings import Settings
from opdiag.sources.files import FileSource
from opdiag.sources.rawbytes import repair_surrogates
from opdiag.sources.readers import parse_bytes, read_file

T0 = 1_763_806_500_000_000
OP = "op_backtesting_20251122_101500_1a2b3c4d"
LONE = "a\ud800b"
REPLACED = "a\ufffdb"
# The CLI guard is a hang guard, not a timing: the quadratic build took >400 s at 30k spans.
HANG_S = 120


def _span(sid: str, start: int = T0, duration: int = 1_000, parent: str | None = None,
          name: str = "POST /backtests/start", **tags: object) -> dict:
    all_tags = {"operation.id": OP, **tags}
    return {
        "traceID": "abc",
        "spanID": sid,
        "operationName": name,
        "references": [{"refType": "CHILD_OF", "traceID": "abc", "spanID": parent}]
        if parent else [],
        "startTime": start,
        "duration": duration,
        "tags": [{"key": k, "type": "string", "value": v} for k, v in all_tags.items()],
        "logs": [],
        "processID": "p1",
    }


def _doc(spans: list[dict]) -> dict:
    procs = {"p1": {"serviceName": "ktrdr-backtest-worker-1", "tags": []}}
    return {"data": [{"traceID": "abc", "spans": spans, "processes": procs}]}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opdiag.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=HANG_S,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


# ---- item 3: duplicate span ids


def test_thirty_thousand_spans_sharing_one_id_diagnose(tmp_path: Path):
    spans = [_span("1", T0 + i * 10, 100, parent="1" if i else None) for i in range(30_000)]
    path = tmp_path / "dups.json"
    path.write_bytes(orjson.dumps(_doc(spans)))
    done = _cli("diagnose", OP, "--traces", str(path), "--format", "json")
    assert done.returncode == 0, done.stderr
    trace = read_file(path)[0]
    ids = [s.span_id for s in trace.spans]
    assert len(set(ids)) == 30_000
    assert ids[:3] == ["0000000000000001", "0000000000000001_1", "0000000000000001_2"]
    assert ids[-1] == "0000000000000001_29999"
    assert all(s.original_span_id == "0000000000000001" for s in trace.spans)


def test_a_real_id_looking_like_a_renamed_one_is_skipped(tmp_path: Path):
    spans = [_span("1"), _span("0000000000000001_1"), _span("1"), _span("1")]
    path = tmp_path / "dups.json"
    path.write_bytes(orjson.dumps(_doc(spans)))
    ids = [s.span_id for s in read_file(path)[0].spans]
    assert ids == [
        "0000000000000001",
        "0000000000000001_1",
        "0000000000000001_2",
        "0000000000000001_3",
    ]


# ---- item 4: only regular files, within a size cap


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path):
    fifo = tmp_path / "traces.json"
    os.mkfifo(fifo)
    done = _cli("diagnose", OP, "--traces", str(fifo))
    assert done.returncode == 2
    assert "FIFO" in done.stderr and str(fifo) in done.stderr


def test_a_fifo_inside_a_directory_is_skipped(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "ok.json").write_bytes(orjson.dumps(_doc([_span("1")])))
    assert FileSource([tmp_path]).traces_for(OP)


def test_dev_zero_is_refused_at_once():
    done = _cli("diagnose", OP, "--traces", "/dev/zero")
    assert done.returncode == 2
    assert "/dev/zero" in done.stderr and "character device" in done.stderr


def test_a_file_over_the_cap_names_file_and_cap(tmp_path: Path):
    path = tmp_path / "big.json"
    path.write_bytes(orjson.dumps(_doc([_span(str(i)) for i in range(1, 50)])))
    done = _cli("diagnose", OP, "--traces", str(path), env={"OPDIAG_MAX_TRACE_FILE_BYTES": "1000"})
    assert done.returncode == 2
    assert str(path) in done.stderr and "1000 bytes cap" in done.stderr
    ok = _cli("diagnose", OP, "--traces", str(path), env={"OPDIAG_MAX_TRACE_FILE_BYTES": "1000000"})
    assert ok.returncode == 0, ok.stderr


def test_the_cap_is_a_setting():
    assert Settings().max_trace_file_bytes == 1 << 30
    with pytest.raises(Exception, match="max_trace_file_bytes"):
        Settings.model_validate({"max_trace_file_bytes": 0})


def test_a_gzip_bomb_stops_at_the_cap(tmp_path: Path):
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b" " * 5_000_000))
    with pytest.raises(TraceFormatError, match="inflates to something larger than the 1 MiB"):
        read_file(path, max_bytes=1 << 20)


# ---- item 5: lone surrogates, the same in every format


def _otlp(name: str) -> dict:
    return {
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "ktrdr-api"}}]},
            "scopeSpans": [{"spans": [{
                "traceId": "0" * 31 + "1",
                "spanId": "0" * 15 + "1",
                "name": name,
                "startTimeUnixNano": str(T0 * 1000),
                "endTimeUnixNano": str(T0 * 1000 + 5_000_000),
                "attributes": [{"key": "operation.id", "value": {"stringValue": OP}}],
            }]}],
        }]
    }


def _console(name: str) -> str:
    doc = {
        "name": name,
        "context": {"trace_id": "0x" + "0" * 31 + "1", "span_id": "0x" + "0" * 15 + "1"},
        "kind": "SpanKind.INTERNAL",
        "parent_id": None,
        "start_time": "2025-11-22T10:15:00.000000Z",
        "end_time": "2025-11-22T10:15:01.000000Z",
        "status": {"status_code": "UNSET"},
        "attributes": {"operation.id": OP},
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "ktrdr-api"}},
    }
    return json.dumps(doc, indent=4)


SURROGATE_FILES = {
    "legacy.json": lambda: json.dumps(_doc([_span("1", name=LONE)])),
    "legacy-indent.json": lambda: json.dumps(_doc([_span("1", name=LONE)]), indent=2),
    "otlp.json": lambda: json.dumps(_otlp(LONE)),
    "api_v3.json": lambda: json.dumps({"result": _otlp(LONE)}),
    "lines.jsonl": lambda: json.dumps(_otlp(LONE)) + "\n" + json.dumps(_otlp("other")) + "\n",
    "console.json": lambda: _console(LONE) + "\n" + _console("x"),
}


@pytest.mark.parametrize("name", sorted(SURROGATE_FILES))
def test_a_lone_surrogate_is_replaced_in_every_format(tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_text(SURROGATE_FILES[name](), encoding="ascii")  # json.dumps escapes it
    assert "\\ud800" in path.read_text()
    traces = read_file(path)
    names = {s.name for t in traces for s in t.spans}
    assert REPLACED in names
    assert not any("\ud800" in n for n in names)


def test_surrogates_in_keys_values_and_pairs(tmp_path: Path):
    span = _span("1", name="\U0001f600 ok")  # a valid pair stays a pair
    span["tags"].append({"key": "k\udc00", "type": "string", "value": "\udbff"})
    data = json.dumps(_doc([span])).encode()
    spans = parse_bytes(data, "x")[0].spans
    assert spans[0].name == "\U0001f600 ok"
    assert spans[0].attributes["k\ufffd"] == "\ufffd"


def test_repair_leaves_escaped_backslashes_alone():
    assert repair_surrogates(b'"\\\\ud800"') == b'"\\\\ud800"'  # text "\ud800", no escape
    assert repair_surrogates(b'"\\\\\\ud800"') == b'"\\\\\\ufffd"'
    assert repair_surrogates(b'"\\ud83d\\ude00"') == b'"\\ud83d\\ude00"'
    assert repair_surrogates(b'"\\ude00\\ud83d"') == b'"\\ufffd\\ufffd"'


def test_lone_surrogate_markdown_page_and_flow(tmp_path: Path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_doc([_span("1", name=LONE)])), encoding="ascii")
    assert main(["diagnose", OP, "--traces", str(path)]) == 0
    assert REPLACED in capsys.readouterr().out
    app = create_app(Settings.model_validate({"trace_paths": [str(path)]}))
    client = app.test_client()
    page = client.get(f"/operations/{OP}")
    assert page.status_code == 200 and REPLACED in page.get_data(as_text=True)
    flow = client.get(f"/api/v1/operations/{OP}/flow")
    assert flow.status_code == 200
    assert any(row["span_name"] == REPLACED for row in flow.get_json())


# ---- item 6: compressed and mis-encoded files


def test_json_gz_is_read_by_name_and_in_directories(tmp_path: Path):
    data = orjson.dumps(_doc([_span("1")]))
    (tmp_path / "t.json.gz").write_bytes(gzip.compress(data))
    assert FileSource([tmp_path]).traces_for(OP)
    assert read_file(tmp_path / "t.json.gz")[0].spans[0].name == "POST /backtests/start"


def test_gzip_without_the_suffix_and_in_several_members(tmp_path: Path):
    first = gzip.compress(orjson.dumps(_otlp("one")) + b"\n")
    second = gzip.compress(orjson.dumps(_otlp("two")) + b"\n")
    traces = parse_bytes(first + second, "body")
    assert {s.name for t in traces for s in t.spans} == {"one", "two"}


def test_truncated_gzip_is_named(tmp_path: Path):
    data = gzip.compress(orjson.dumps(_doc([_span("1")])))
    path = tmp_path / "t.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFormatError, match="gzip data that ends early"):
        read_file(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_named(tmp_path: Path, encoding: str):
    path = tmp_path / "t.json"
    path.write_bytes(json.dumps(_doc([_span("1")])).encode(encoding))
    with pytest.raises(TraceFormatError, match="UTF-16") as info:
        read_file(path)
    assert "truncated" not in str(info.value)


def test_invalid_utf8_is_named(tmp_path: Path):
    path = tmp_path / "t.json"
    text = json.dumps(_doc([_span("1", name="café")]), ensure_ascii=False)
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(TraceFormatError, match=r"not UTF-8 text: byte 0xe9 at offset \d+"):
        read_file(path)


def test_binary_garbage_is_not_called_truncated(tmp_path: Path):
    path = tmp_path / "t.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(TraceFormatError) as info:
        read_file(path)
    assert "truncated" not in str(info.value) and "UTF-8" in str(info.value)


# ---- item 7: times out of range


@pytest.mark.parametrize(
    ("start", "duration", "words"),
    [
        (T0, 10**40, "would end after the year 3000"),  # 10^37 ms
        (33_000_000_000_000_000, 1_000, "after the year 3000"),
        (-5_000_000, 1_000, "before 1970"),
    ],
)
def test_times_out_of_range_are_bad_input_for_both_commands(
    tmp_path: Path, start: int, duration: int, words: str
):
    spans = [_span("1"), _span("2", start=start, duration=duration, parent="1")]
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_doc(spans)))
    for command in (["diagnose", OP], ["operations"]):
        done = _cli(*command, "--traces", str(path))
        assert done.returncode == 2, (command, done.stderr)
        assert words in done.stderr and "'2'" in done.stderr, done.stderr


def test_otlp_times_out_of_range(tmp_path: Path):
    doc = _otlp("x")
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["endTimeUnixNano"] = str(10**40)
    with pytest.raises(TraceFormatError, match="endTimeUnixNano out of range"):
        parse_bytes(json.dumps(doc).encode(), "x")


# ---- the same rules for Jaeger's answers


def _reply(body: bytes):
    from opdiag.sources.jaeger_http import Reply

    return Reply("/api/v3/traces", 200, "application/json", body)


def test_a_jaeger_answer_with_a_lone_surrogate_is_read_like_a_file():
    from opdiag.sources.readers import parse_document

    body = json.dumps({"result": _otlp(LONE)}).encode()
    traces = parse_document(_reply(body).json(), "jaeger")
    assert traces[0].spans[0].name == REPLACED


def test_a_gzip_jaeger_answer_without_content_encoding_is_inflated():
    body = gzip.compress(json.dumps({"result": _otlp("x")}).encode())
    assert _reply(body).json()["result"]["resourceSpans"][0]["scopeSpans"]


def test_a_utf16_jaeger_answer_is_named():
    from opdiag.errors import SourceUnavailableError

    body = json.dumps({"result": _otlp("x")}).encode("utf-16")
    with pytest.raises(SourceUnavailableError, match="UTF-16"):
        _reply(body).json()


def _jsonl_lines() -> list[bytes]:
    demo = Path(__file__).resolve().parents[1] / "demo" / "traces" / "trainings.otlp.jsonl"
    lines = [line for line in demo.read_bytes().splitlines() if line.strip()]
    assert len(lines) >= 3
    return lines


def test_a_cut_off_last_line_keeps_the_lines_before_it(tmp_path: Path) -> None:
    """An exporter killed mid-write leaves a half line at the end: the whole lines before
    it are read, and every trace read from the file says the file was cut off."""
    lines = _jsonl_lines()
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"\n".join([*lines[:-1], lines[-1][: len(lines[-1]) // 2]]))
    expected = {t.trace_id: len(t.spans) for t in read_file(whole)}
    got = read_file(cut)
    assert {t.trace_id: len(t.spans) for t in got} == expected
    for trace in got:
        assert any(f"line {len(lines)} of {cut} is cut off" in w for w in trace.warnings)


def test_a_cut_off_line_before_the_end_is_still_an_error(tmp_path: Path) -> None:
    lines = _jsonl_lines()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\n".join([lines[0], lines[1][:50], *lines[2:]]) + b"\n")
    with pytest.raises(TraceFormatError, match="line 2"):
        read_file(broken)


def _otlp_times(**times: object) -> bytes:
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "name": "x", **times}
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("times", "problem"),
    [
        ({"endTimeUnixNano": "1795507260000000000"}, "startTimeUnixNano is missing"),
        ({"startTimeUnixNano": "0", "endTimeUnixNano": "1795507260000000000"},
         "startTimeUnixNano is missing"),
        ({"startTimeUnixNano": "1795507200000000000"}, "endTimeUnixNano is missing"),
        ({"startTimeUnixNano": str(2**70), "endTimeUnixNano": "1795507260000000000"},
         "startTimeUnixNano 1180591620717411303 µs is after the year 3000"),
    ],
)
def test_an_otlp_span_missing_one_time_is_refused(times: dict, problem: str) -> None:
    """Read as 0, one missing time made a span of 56 years (1970 to now) and an operation
    as long; a start past the year 3000 was called a negative duration."""
    with pytest.raises(TraceFormatError, match=problem):
        parse_bytes(_otlp_times(**times), "t.json")


def test_an_otlp_span_with_neither_time_is_read() -> None:
    """Jaeger's own api_v3 fixtures hold spans without times: read at 0, as before."""
    (trace,) = parse_bytes(_otlp_times(), "t.json")
    assert (trace.spans[0].start_us, trace.spans[0].duration_us) == (0, 0)
