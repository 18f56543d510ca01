"""The assistant tools' answers stay within ``MAX_ANSWER`` characters whatever the traces hold:
hundreds of operations, thousands of spans, kilobyte-long span names and service names, an
error on every span. Lists are cut to the budget with honest ``omitted`` counts; the flow
keeps the marked steps within its limit. Found by fuzzing the tools: the default listing of
the demo answered 12,288 characters and a 300-step flow about 60,000."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REAL_KTRDR
from opdiag.diagnosis.result import Comparison, FlowStep, PhaseChange
from opdiag.errors import InputError
from opdiag.mcp_server import (
    FLOW_MAX,
    MAX_ANSWER,
    MAX_TRACE_LINKS,
    OpdiagTools,
    _flow_steps,
    compact_comparison,
    fit_answer,
)
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.files import FileSource

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "traces"
NOW = "2026-12-04T16:10:00Z"
T0_US = 1_796_400_000_000_000


def _tools(*paths: Path) -> OpdiagTools:
    settings = Settings()
    source = FileSource([str(p) for p in paths], settings.max_trace_file_bytes)
    return OpdiagTools(DiagnosisService(source, settings), settings, file_source=True)


def _json(body: dict[str, Any]) -> str:
    """The tool's own answer as JSON, before the last guard (which must not be needed)."""
    return orjson.dumps(body).decode()


def _trace(n: int, op: str, *, name_len: int = 20, services: int = 1) -> dict[str, Any]:
    """One legacy Jaeger trace of ``n`` spans under a training start, each span in error and
    named by a long unique text, spread over ``services`` services."""
    tid = f"{abs(hash(op)) % 16**32:032x}"
    processes = {f"p{k}": {"serviceName": f"svc-{k}-" + "s" * 300} for k in range(services)}
    spans = []
    for i in range(n):
        tags = [
            {"key": "operation.id", "type": "string", "value": op},
            {"key": "error", "type": "bool", "value": True},
            {"key": "exception.type", "type": "string", "value": f"E{i}" + "x" * name_len},
        ]
        span: dict[str, Any] = {
            "traceID": tid,
            "spanID": f"{i + 1:016x}",
            "operationName": "POST /api/v1/trainings/start"
            if i == 0
            else f"step {i} " + "n" * name_len,
            "references": []
            if i == 0
            else [{"refType": "CHILD_OF", "traceID": tid, "spanID": f"{1:016x}"}],
            "startTime": T0_US + i * 1000,
            "duration": (n - i) * 1000 + 500,
            "tags": tags,
            "logs": [],
            "processID": f"p{i % services}",
        }
        spans.append(span)
    return {"traceID": tid, "spans": spans, "processes": processes}


@pytest.fixture(scope="module")
def many_ops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "many.json"
    ops = [
        _trace(3, f"op_training_20261204_16{i // 60:02d}{i % 60:02d}_{i:08x}") for i in range(400)
    ]
    path.write_bytes(orjson.dumps({"data": ops}))
    return path


@pytest.fixture(scope="module")
def huge_op(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp") / "huge.json"
    op = _trace(2000, "op_training_20261204_160000_0000beef", name_len=3000, services=300)
    path.write_bytes(orjson.dumps({"data": [op]}))
    return path


def test_the_default_listing_of_the_demo_fits_and_counts_what_it_left_out():
    tools = _tools(DEMO)
    body = tools.list_operations(now=NOW)
    text = _json(body)
    assert len(text) <= MAX_ANSWER
    assert body["operations"] and len(body["operations"]) + body["omitted"] == body["total"]


def test_a_listing_of_hundreds_of_operations_is_cut_to_the_budget(many_ops: Path):
    body = _tools(many_ops).list_operations(limit=200, now=NOW)
    assert len(_json(body)) <= MAX_ANSWER
    assert 0 < len(body["operations"]) < 200
    assert body["total"] == 400
    assert body["omitted"] == 200 - len(body["operations"])  # cut for size, of the 200 asked


def test_a_long_flow_of_long_names_fits_with_its_marked_steps(huge_op: Path):
    tools = _tools(huge_op)
    flow = tools.execution_flow(operation_id="op_training_20261204_160000_0000beef", limit=300)
    text = _json(flow)
    assert len(text) <= MAX_ANSWER
    steps = flow["steps"]
    assert 0 < len(steps) <= 300
    assert all(len(s["span"]) <= 120 and len(s["service"]) <= 80 for s in steps)
    assert flow["omitted"] >= 2000 - len(steps) - flow["noise_hidden"]
    diagnosis = tools.diagnose(operation_id="op_training_20261204_160000_0000beef", now=NOW)
    assert len(_json(diagnosis)) <= MAX_ANSWER
    assert len(diagnosis["services"]) <= 24
    assert diagnosis["key"] == "op_training_20261204_160000_0000beef"


def _step(i: int, **marks: bool) -> FlowStep:
    return FlowStep(
        index=i,
        trace_id="t",
        span_id=f"s{i}",
        parent_id=None,
        service="api",
        span_name=f"n{i}",
        start_ms=float(i),
        duration_ms=1.0,
        self_time_ms=1.0,
        depth=0,
        critical=False,
        error=marks.get("error", False),
        root_cause=marks.get("root_cause", False),
        bottleneck=marks.get("bottleneck", False),
    )


def test_the_flow_limit_counts_the_marked_steps_and_keeps_the_root_cause_first():
    steps = [_step(i) for i in range(100)]
    for i in range(50, 90):
        steps[i] = _step(i, error=True)
    steps[95] = _step(95, root_cause=True)
    chosen = _flow_steps(steps, 10)
    assert len(chosen) == 10
    assert [s.index for s in chosen[:5]] == [0, 1, 2, 3, 4]
    assert 95 in [s.index for s in chosen]  # the root cause before 40 earlier errors
    assert [s.index for s in chosen] == sorted(s.index for s in chosen)
    assert _flow_steps(steps, 1) == steps[:1]
    assert _flow_steps(steps[:5], 10) == steps[:5]


def test_the_last_guard_shortens_what_no_tool_foresaw():
    body = {
        "key": "k" * 50_000,
        "services": ["s" * 500] * 1000,
        "nested": {"x" * 900: ["y" * 900] * 90},
    }
    text = fit_answer(body)
    assert len(text) <= MAX_ANSWER
    assert orjson.loads(text)["shortened"] is True
    small = {"key": "op_1", "verdict": "healthy"}
    assert orjson.loads(fit_answer(small)) == small


def test_pages_of_a_long_listing_cover_every_operation_once(many_ops: Path):
    tools = _tools(many_ops)
    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        body = tools.list_operations(limit=200, offset=offset, now=NOW)
        assert len(_json(body)) <= MAX_ANSWER and body["total"] == 400
        assert body["omitted"] == min(200, 400 - offset) - len(body["operations"])
        seen += [row["key"] for row in body["operations"]]
        offset = body["next_offset"]
        pages += 1
    assert pages > 2
    assert len(seen) == len(set(seen)) == 400
    assert seen == [row["key"] for row in _all_rows(tools)]
    past = tools.list_operations(offset=1000, now=NOW)
    assert past["operations"] == [] and past["next_offset"] is None


def _all_rows(tools: OpdiagTools) -> list[dict[str, Any]]:
    """Every row in listing order, a page of 10 at a time (small pages always fit)."""
    rows: list[dict[str, Any]] = []
    while True:
        body = tools.list_operations(limit=10, offset=len(rows), now=NOW)
        rows += body["operations"]
        if body["next_offset"] is None:
            return rows


def test_a_negative_offset_is_bad_input(many_ops: Path):
    from opdiag.errors import InputError

    with pytest.raises(InputError) as info:
        _tools(many_ops).list_operations(offset=-1, now=NOW)
    assert info.value.field == "offset"


REAL = REAL_KTRDR / "run1" / "traces"
REAL_NOW_S = 1_796_400_600  # 2026-12-04T16:10:00Z, after run1's last operation


@pytest.fixture(scope="module")
def real() -> OpdiagTools:
    return _tools(REAL)


def _refusal(call: Callable[[], Any]) -> InputError:
    with pytest.raises(InputError) as info:
        call()
    return info.value


def test_times_in_epoch_seconds_are_not_read_as_milliseconds(real: OpdiagTools):
    """now:"1796400600" was read as epoch ms (1970-01-21): two of run1's lost workers were
    listed workers_busy. The CLI's forms (RFC 3339, epoch seconds) mean what they mean there,
    epoch ms are told from seconds by magnitude, JSON numbers are times too."""
    expected = real.list_operations(now=NOW, verdict="worker_lost")
    assert expected["total"] == 6
    for now in (str(REAL_NOW_S), REAL_NOW_S, REAL_NOW_S * 1000, str(REAL_NOW_S * 1000),
                "2026-12-04T16:10:00", "2026-12-04 16:10:00Z"):
        assert real.list_operations(now=now, verdict="worker_lost") == expected, now
    bounded = real.list_operations(since=REAL_NOW_S - 3600, until=str(REAL_NOW_S * 1000))
    assert bounded["total"] == real.list_operations(since="2026-12-04T15:10:00Z")["total"] > 0


@pytest.mark.parametrize(
    ("arguments", "field", "words"),
    [
        ({"now": "0"}, "now", "1970-01-01T00:00:00Z, before 2000"),
        ({"now": REAL_NOW_S * 1_000_000}, "now", "epoch µs or ns?"),  # µs read as ms
        ({"now": "946684799"}, "now", "before 2000"),
        ({"since": "1999-12-31T23:59:59Z"}, "since", "before 2000"),
        ({"until": 99_999_999_999}, "until", "past 2199"),  # seconds, year 5138
        ({"since": True}, "since", "expected a time"),
        ({"until": "yesterday"}, "until", "cannot parse"),
    ],
)
def test_a_clock_before_2000_or_absurd_is_bad_input_naming_the_argument(
    real: OpdiagTools, arguments: dict[str, Any], field: str, words: str
):
    refused = _refusal(lambda: real.list_operations(**arguments))
    assert refused.field == field and words in refused.message, refused.message
    assert refused.message.startswith(f"{field}: ")


def test_omitted_counts_only_rows_cut_for_size_not_those_before_offset(real: OpdiagTools):
    """limit 3, offset 20 of run1's 22 answered 2 rows and 'omitted 20': those were skipped
    by the offset, not left out of the answer."""
    body = real.list_operations(limit=3, offset=20, now=NOW)
    assert body["total"] == 22 and len(body["operations"]) == 2
    assert body["omitted"] == 0 and body["next_offset"] is None
    first = real.list_operations(limit=3, now=NOW)
    assert (len(first["operations"]), first["omitted"], first["next_offset"]) == (3, 0, 3)


def test_a_flow_asked_for_more_steps_never_answers_fewer_and_counts_them(real: OpdiagTools):
    """limit 60 with noise on run1's IB data load (1,185 steps) answered 24 steps, 'shortened'
    and 'omitted 1130': the steps were sized against a 600-character reserve while its links
    alone were 1,222, so the last guard cut them after 'omitted' was counted."""
    shown = []
    for limit in (40, 60, FLOW_MAX):
        body = real.execution_flow(
            operation_id="op_data_load_20261204_154455_734c9af6", limit=limit, include_noise=True
        )
        text = fit_answer(body)
        assert text == _json(body)  # the tool fitted it: the last guard had nothing to do
        assert len(body["steps"]) + body["omitted"] == 1185
        shown.append(len(body["steps"]))
    assert shown[0] == 40 and shown == sorted(shown) and shown[1] > 40


def test_many_traces_leave_the_flow_room_and_are_counted(real: OpdiagTools):
    """An operation of 41 traces: the links of the first 12, the rest counted."""
    op = "op_training_20261204_154749_b37ed832"
    flow = real.execution_flow(operation_id=op, limit=FLOW_MAX, include_noise=True)
    diagnosis = real.diagnose(operation_id=op, now=NOW)
    for links in (flow["links"], diagnosis["links"]):
        assert len(links["traces"]) == MAX_TRACE_LINKS and links["traces_omitted"] == 29
    assert fit_answer(flow) == _json(flow)


def test_the_compact_comparison_shows_the_largest_changes_whatever_their_sign(
    real: OpdiagTools,
):
    """run1's cancelled backtest is slower in all: ordered by the signed change, its compact
    comparison showed 'POST /backtests/start -2.2 ms' and cut 'after
    operation.state_transition -878 ms', and counted the unchanged phases as omitted too."""
    op = "op_backtesting_20261204_160009_05b7bec2"
    c = real.diagnose(operation_id=op, now=NOW)["comparison"]
    whole = real.service.diagnose(op).comparison
    phases = c["phases"]
    assert phases[0]["status"] == "stopped"  # where it stopped leads, whatever the change
    sizes = [abs(p["change_ms"]) for p in phases[1:]]
    assert sizes == sorted(sizes, reverse=True)
    assert ("after operation.state_transition", -877.9) in [
        (p["phase"], p["change_ms"]) for p in phases
    ]
    assert min(sizes) > 2.2
    assert c["phases_unchanged"] == sum(p.status == "same" for p in whole.phases) == 2
    assert len(phases) + c["phases_unchanged"] + c["phases_omitted"] == len(whole.phases)


def _phase(name: str, change: float, status: str) -> PhaseChange:
    return PhaseChange(name, "span", 100 + change, 100, change, change, status)


def test_phases_the_comparison_cut_are_counted_unchanged_when_it_kept_an_unchanged_one():
    """The comparison orders 'same' rows last: the rows it cut after one are 'same' too."""
    changed = [_phase("a", 50, "slower"), _phase("b", -70, "faster"), _phase("c", 5, "new")]
    same = [_phase("d", 0.1, "same")]
    with_same = compact_comparison(
        Comparison(runs=[], wanted_runs=5, this_ms=1, phases=changed + same, phases_omitted=4),
        rows=2,
    )
    assert [p["phase"] for p in with_same["phases"]] == ["b", "a"]
    assert (with_same["phases_unchanged"], with_same["phases_omitted"]) == (5, 1)
    without = compact_comparison(
        Comparison(runs=[], wanted_runs=5, this_ms=1, phases=changed, phases_omitted=4), rows=2
    )
    assert (without["phases_unchanged"], without["phases_omitted"]) == (0, 5)


def test_compact_comparisons_say_how_much_data_each_run_covered(real: OpdiagTools):
    """-74 % against a run of four times the data: the sizes (data rows), the time expected
    for this run's size and the note travel with the compact comparison."""
    compared = real.compare_operations(
        operation_id="op_backtesting_20261204_154358_5d955ea3",
        against="op_backtesting_20261204_155230_0250c475",
        now=NOW,
    )["comparison"]
    assert compared["change_pct"] == -74.0 and compared["size"] == 3120
    assert [r["size"] for r in compared["baseline_runs"]] == [12505]
    longer = real.diagnose(operation_id="op_backtesting_20261204_155230_0250c475", now=NOW)
    assert longer["comparison"]["size"] == 12505
    assert longer["comparison"]["expected_ms"] == 20938.7
    assert longer["comparison"]["status"] == "as expected"
    # a run its worker's death stopped has no time expected of it, only its size
    stopped = real.diagnose(operation_id="op_backtesting_20261204_155333_db0629d4", now=NOW)
    assert stopped["comparison"]["expected_ms"] is None
    assert sorted(r["size"] for r in stopped["comparison"]["baseline_runs"]) == [3120, 12505]
    paced = real.diagnose(operation_id="op_training_20261204_155512_6652e327", now=NOW)
    assert "do not decide whether it is slow" in paced["comparison"]["note"]


def test_an_unknown_operation_type_is_refused_listing_the_types_seen(real: OpdiagTools):
    """'trainng' answered an empty list, as if run1 had no such operations; 'Training' too."""
    assert real.list_operations(operation_type="Training", now=NOW)["total"] == 10
    assert real.list_operations(operation_type="training", now=NOW)["total"] == 10
    assert real.list_operations(operation_type="fuzzy_analysis", now=NOW)["total"] == 0  # known
    refused = _refusal(lambda: real.list_operations(operation_type="trainng", now=NOW))
    assert refused.field == "operation_type"
    assert "seen: backtesting, data_load, training;" in refused.message


def test_a_type_only_the_traces_name_is_listed(tmp_path: Path):
    """Types are open-ended: one no pack or setting names but an operation has is a filter."""
    trace = _trace(2, "op_custom_1")
    for span in trace["spans"]:
        span["tags"].append({"key": "operation.type", "type": "string", "value": "rebalance"})
    path = tmp_path / "custom.json"
    path.write_bytes(orjson.dumps({"data": [trace]}))
    tools = _tools(path)
    for spelled in ("rebalance", "Rebalance"):
        (row,) = tools.list_operations(operation_type=spelled, now=NOW)["operations"]
        assert (row["key"], row["operation_type"]) == ("op_custom_1", "rebalance")


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("{not json", (None, -32700)),
        ("42", (None, -32600)),
        ('{"foo": 1}', (None, -32600)),
        ('{"jsonrpc": "1.0", "id": 77, "method": "ping"}', (77, -32600)),
        ('{"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": "x"}', ("a", -32602)),
        ('{"jsonrpc": "2.0", "id": true, "method": "ping", "params": [1]}', (None, -32602)),
        ('{"jsonrpc": "2.0", "method": "notifications/x", "params": [1]}', None),
        ('{"jsonrpc": "2.0", "id": 3, "result": 1}', None),
    ],
)
def test_a_line_that_is_not_a_message_gets_the_reply_json_rpc_asks_for(line: str, reply: Any):
    """Parse error or invalid request with the id when one can be read (a boolean is not
    one), invalid params for params that are not an object; no reply to a notification or a
    response."""
    import mcp_types
    from opdiag.mcp_protocol import reply_to_unreadable
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    answer = reply_to_unreadable(info.value)
    got = None if answer is None else (answer["id"], answer["error"]["code"])
    assert got == reply
    if answer is not None:
        assert answer["error"]["message"] and "Invalid request parameters" not in str(answer)


def test_an_id_is_refused_or_not_found_as_the_http_api_says(real: OpdiagTools):
    """An operation id from a trace may be anything printable: "'; DROP TABLE x" is an id no
    trace holds (404 from the API, not_found here), one with a control character or a space
    at an end is refused (400, bad_input), never looked up."""
    from urllib.parse import quote

    from opdiag.api.app import create_app
    from opdiag.errors import NotFoundError

    app = create_app(real.settings, service=real.service)
    client = app.test_client()
    for ident, status, error in [
        ("'; DROP TABLE x", 404, NotFoundError),
        (" op_x", 400, InputError),
        ("op\x01x", 400, InputError),
    ]:
        assert client.get(f"/api/v1/operations/{quote(ident, safe='')}").status_code == status
        with pytest.raises(error):
            real.diagnose(operation_id=ident, now=NOW)


def test_a_bottleneck_of_several_attempts_says_what_was_called_and_how_often(
    real: OpdiagTools,
):
    """run1's IB data load spent 94 % in four timed-out calls to the host service: the
    assistant is told the call and the count, not a bare "POST"."""
    body = real.diagnose(operation_id="op_data_load_20261204_154455_734c9af6",
                         now=REAL_NOW_S)
    b = body["bottleneck"]
    assert (b["span"], b["attempts"]) == ("POST", 4), b
    assert b["calls"] == "POST http://localhost:5001/data/validate"
    assert b["share"] > 0.9 and 119_000 < b["duration_ms"] < 121_000
