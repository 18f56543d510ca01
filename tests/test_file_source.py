"""FileSource: directories of trace files served like Jaeger, bad files reported and skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from conftest import JAEGER_FIXTURES
from opdiag.errors import InputError, TraceFormatError
from opdiag.sources.files import FileSource, looks_like_trace_id, trace_files

OP = "op_backtesting_20251122_101500_1a2b3c4d"


def _span(span_id, trace_id, start, parent=None, op=None, process="p1"):
    tags = [{"key": "operation.id", "type": "string", "value": op}] if op else []
    refs = [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": parent}] if parent else []
    return {
        "traceID": trace_id,
        "spanID": span_id,
        "operationName": f"span-{span_id}",
        "references": refs,
        "startTime": start,
        "duration": 100,
        "tags": tags,
        "logs": [],
        "processID": process,
    }


def _envelope(trace_id, spans, service="ktrdr-api"):
    return orjson.dumps(
        {
            "data": [
                {
                    "traceID": trace_id,
                    "spans": spans,
                    "processes": {"p1": {"serviceName": service, "tags": []}},
                }
            ]
        }
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Two traces of one operation in two files (one nested), a third trace, plus noise."""
    root = tmp_path / "traces"
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "dispatch.json").write_bytes(
        _envelope("aaaa", [_span("1", "aaaa", 1_000), _span("2", "aaaa", 1_500, "1")])
    )
    (root / "nested" / "deeper" / "worker.jsonl").write_bytes(
        _envelope("bbbb", [_span("3", "bbbb", 2_000, op=OP)], service="ktrdr-backtest-worker-x")
        + b"\n"
    )
    (root / "nested" / "part2.ndjson").write_bytes(
        _envelope(
            "bbbb", [_span("4", "bbbb", 2_100, "3", op=OP)], service="ktrdr-backtest-worker-x"
        )
    )
    (root / "other.json").write_bytes(_envelope("cccc", [_span("5", "cccc", 9_000)]))
    (root / "broken.json").write_bytes(b'{"data": [')
    (root / ".hidden" / "junk.json").write_bytes(b"junk")
    (root / ".dotfile.json").write_bytes(b"junk")
    (root / "expected.yaml").write_text("verdict: healthy\n")
    (root / "notes.txt").write_text("not a trace")
    return root


def test_directory_with_one_bad_file_serves_the_rest(corpus):
    source = FileSource([corpus])
    source.check()
    assert len(source.problems) == 1
    assert "broken.json" in source.problems[0]
    assert "truncated" in source.problems[0]
    assert source.all_services() == ["ktrdr-api", "ktrdr-backtest-worker-x"]
    assert "3 traces" in source.describe() and "1 file(s) skipped" in source.describe()


def test_file_listing_skips_hidden_and_expected(corpus):
    names = [p.relative_to(corpus).as_posix() for p in trace_files(corpus)]
    assert names == [
        "broken.json",
        "dispatch.json",
        "nested/deeper/worker.jsonl",
        "nested/part2.ndjson",
        "other.json",
    ]


def test_operation_id_finds_the_trace_merged_across_files(corpus):
    source = FileSource([corpus])
    (trace,) = source.traces_for(OP)
    assert trace.trace_id == "bbbb".rjust(32, "0")
    assert trace.by_id["0000000000000004"].parent_id == "0000000000000003"
    assert len(trace.sources) == 2
    assert source.operation_ids() == [OP]
    # part2's span alone had no parent; merged, it has one and nothing warns
    assert trace.warnings == []


def test_a_parent_missing_from_every_file_is_one_warning_of_the_merged_trace(tmp_path):
    """KTRDR's exporters write one file per batch: a request's spans arrive in many files while
    its own span is still open. The merged trace says once how many spans miss which parents,
    not once per file (a data load of run1 listed the same warning 232 times)."""
    for i in range(5):
        span = _span(f"{10 + i}", "dddd", 1_000 + i, parent="ff", op=OP)
        (tmp_path / f"batch{i}.json").write_bytes(_envelope("dddd", [span]))
    (tmp_path / "batch5.json").write_bytes(
        _envelope("dddd", [_span("20", "dddd", 2_000, parent="ee", op=OP)])
    )
    (trace,) = FileSource([tmp_path]).traces_for(OP)
    assert len(trace.spans) == 6
    assert len(trace.warnings) == 1, trace.warnings
    assert trace.warnings[0].startswith("6 span(s) reference 2 parents not in the trace")


def test_trace_id_in_16_and_32_hex(corpus):
    source = FileSource([corpus])
    (t16,) = source.traces_for("000000000000aaaa")
    (t32,) = source.traces_for("AAAA".rjust(32, "0"))
    assert t16 is t32
    assert source.traces_for("000000000000dddd") == []
    assert source.traces_for("op_unknown") == []


def test_recent_traces_window_newest_first_and_limit(corpus):
    source = FileSource([corpus])
    assert [t.trace_id[-4:] for t in source.recent_traces(0, 10_000)] == ["cccc", "bbbb", "aaaa"]
    # [start, end): a span starting exactly at end is out, one at start is in
    assert [t.trace_id[-4:] for t in source.recent_traces(1_500, 2_000)] == ["aaaa"]
    assert [t.trace_id[-4:] for t in source.recent_traces(2_000, 2_001)] == ["bbbb"]
    assert [t.trace_id[-4:] for t in source.recent_traces(0, 10_000, limit=1)] == ["cccc"]
    assert source.recent_traces(10_000, 20_000) == []


def test_loaded_lazily_once(corpus):
    source = FileSource([corpus])
    assert source.describe() == f"files {corpus}"
    (corpus / "late.json").write_bytes(_envelope("dddd", [_span("6", "dddd", 5_000)]))
    assert source.traces_for("000000000000dddd")  # first use: the late file is there
    (corpus / "later.json").write_bytes(_envelope("eeee", [_span("7", "eeee", 5_000)]))
    assert source.traces_for("000000000000eeee") == []  # loaded once


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file or directory") as info:
        FileSource([tmp_path / "nope"])
    assert str(tmp_path / "nope") in str(info.value)


def test_explicit_bad_file_raises(corpus):
    source = FileSource([corpus / "broken.json"])
    with pytest.raises(TraceFormatError, match=r"broken\.json"):
        source.check()


def test_no_valid_trace_at_all_is_an_input_error(tmp_path):
    (tmp_path / "a.json").write_bytes(b"[1, 2")
    (tmp_path / "b.json").write_bytes(b'{"services": ["x"]}')
    with pytest.raises(InputError, match="no traces found") as info:
        FileSource([tmp_path]).check()
    assert "a.json" in str(info.value) and "b.json" in str(info.value)


def test_reference_directory_as_a_source(tmp_path):
    shutil.copytree(JAEGER_FIXTURES, tmp_path / "jaeger")
    source = FileSource([tmp_path / "jaeger"])
    source.check()
    skipped = sorted(Path(p.split(":")[0]).name for p in source.problems)
    assert skipped == [
        "jaeger-ui__small.json",
        "jaeger__FindTraceSummaries.json",
        "jaeger__GetOperations.json",
        "jaeger__GetServices.json",
    ]
    assert "service-x" in source.all_services()


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("0123456789abcdef", True),
        ("0123456789ABCDEF0123456789abcdef", True),
        ("0123456789abcde", False),
        ("op_training_20251113_123456_1a2b3c4d", False),
        ("0123456789abcdeg", False),
    ],
)
def test_looks_like_trace_id(ident, expected):
    assert looks_like_trace_id(ident) is expected


def test_neighbour_traces_on_a_fresh_source(corpus):
    """The first call loads the files (it used to size its search before loading: nothing)."""
    from opdiag.sources.base import SpanQuery

    source = FileSource([corpus])
    found = source.neighbour_traces(0, 10_000, [SpanQuery("ktrdr-api", "span-5")], limit=10)
    assert [t.trace_id for t in found] == ["0000000000000000000000000000cccc"]


@pytest.mark.parametrize("which", ["real", "demo"])
def test_neighbour_traces_are_the_traces_with_a_span_a_query_asks_for(which):
    """The index by span name answers what testing every query on every span answers: the
    pack's queries, and queries sharing a span name with other services or a glob."""
    from conftest import DEMO_TRACES, REAL_KTRDR
    from opdiag.diagnosis.rules import load_rules
    from opdiag.sources.base import SpanQuery

    spec = load_rules().neighbours
    pack = [*spec.spans, *spec.heartbeats, *spec.health_checks]
    assert pack
    extra = [SpanQuery("ktrdr-*", pack[0].span), SpanQuery("nobody", pack[0].span)]
    extra += [SpanQuery("*", "GET"), SpanQuery("ktrdr-api", "no such span")]
    source = FileSource([REAL_KTRDR / "run1" / "traces" if which == "real" else DEMO_TRACES])
    traces = source.all_traces()
    starts = sorted(s.start_us for t in traces for s in t.spans)
    thirds = (starts[len(starts) // 3], starts[2 * len(starts) // 3])
    for queries in ([*pack], extra, [*pack, *extra], extra[:1], extra[1:2]):
        for lo, hi in [(starts[0], starts[-1] + 1), thirds]:
            got = source.neighbour_traces(lo, hi, queries, limit=10_000)
            want = {
                t.trace_id
                for t in traces
                if any(
                    lo <= s.start_us < hi and any(q.matches(s.service, s.name) for q in queries)
                    for s in t.spans
                )
            }
            assert {t.trace_id for t in got} == want
            assert len(got) == len(want)
