"""The diagnosis engine beyond single rules: purity, scoping, bottleneck, flow, slow
re-assessment, templates that never evaluate, coercion, large traces."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opdiag.diagnosis.conditions import Condition, check_operand, evaluate
from opdiag.diagnosis.engine import diagnose, not_found
from opdiag.diagnosis.rules import default_rule_pack, load_rules, merge_packs, parse_rule_pack
from opdiag.diagnosis.slow import reassess_slow
from opdiag.diagnosis.templates import fill, fill_command, parse_template
from opdiag.model import CHILD_OF, Reference, Span, build_trace
from opdiag.settings import DiagnosisSettings
from reader_paths import plain
from test_rules_support import BASE_US, build_traces, run_case

RULES = load_rules()
OP = "op_backtesting_20251122_101500_1a2b3c4d"
WORKER = "ktrdr-backtest-worker-ab12cd34"


def backtest_case(**extra: Any) -> dict[str, Any]:
    """CLI → backend dispatch → worker, the worker phases outliving the dispatch call."""
    spans = [
        {
            "id": "cli",
            "name": "cli.backtest",
            "service": "ktrdr-cli",
            "dur": 10_000,
            "attrs": {"operation.id": OP},
        },
        {
            "id": "post",
            "parent": "cli",
            "name": "POST",
            "service": "ktrdr-cli",
            "kind": "client",
            "start": 5,
            "dur": 60,
            "attrs": {
                "http.url": "http://localhost:8000/api/v1/backtests/start",
                "http.status_code": 200,
            },
        },
        {
            "id": "srv",
            "parent": "post",
            "name": "POST /api/v1/backtests/start",
            "kind": "server",
            "start": 10,
            "dur": 50,
            "attrs": {"http.status_code": 200},
        },
        {"parent": "srv", "name": "POST /api/v1/backtests/start http send", "start": 11, "dur": 45},
        {
            "parent": "srv",
            "name": "workers.select",
            "start": 12,
            "dur": 2,
            "attrs": {
                "worker.total_workers": "2",
                "worker.capable_workers": "2",
                "worker.available_workers": "1",
                "worker.selection_status": "success",
            },
        },
        {
            "id": "wpost",
            "parent": "srv",
            "name": "POST",
            "kind": "client",
            "start": 15,
            "dur": 30,
            "attrs": {
                "http.url": "http://backtest-worker-1:5003/backtests/start",
                "http.status_code": 200,
            },
        },
        {
            "id": "w",
            "parent": "wpost",
            "name": "POST /backtests/start",
            "service": WORKER,
            "kind": "server",
            "start": 20,
            "dur": 10,
        },
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": WORKER,
            "start": 21,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "pending",
                "operation.to_status": "running",
            },
        },
        {
            "parent": "w",
            "name": "backtest.data_loading",
            "service": WORKER,
            "start": 30,
            "dur": 1_000,
            "attrs": {"data.symbol": "AAPL", "data.timeframe": "1h"},
        },
        {
            "parent": "w",
            "name": "backtest.feature_compute",
            "service": WORKER,
            "start": 1_030,
            "dur": 7_000,
        },
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": WORKER,
            "start": 8_031,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "running",
                "operation.to_status": "completed",
            },
        },
    ]
    for i in range(50):  # CLI polling: many short GETs, transport noise
        spans.append(
            {
                "parent": "cli",
                "name": "GET",
                "service": "ktrdr-cli",
                "kind": "client",
                "start": 100 + i * 190,
                "dur": 5,
                "attrs": {
                    "http.url": f"http://localhost:8000/api/v1/operations/{OP}",
                    "http.status_code": 200,
                },
            }
        )
    return {"operation_id": OP, "spans": spans, **extra}


def snapshot(traces: list) -> list:
    return [
        (
            t.trace_id,
            [plain(s) for s in t.spans],
            {k: [c.span_id for c in v] for k, v in t.children.items()},
            [r.span_id for r in t.roots],
            list(t.warnings),
        )
        for t in traces
    ]


def test_healthy_backtest_facts_flow_and_bottleneck() -> None:
    d = run_case(backtest_case())
    assert d.verdict == "healthy"
    assert d.status == "completed" and d.finished
    assert d.operation_type == "backtesting"
    assert d.operation_id == OP
    assert d.duration_ms == 10_000
    assert d.services == ["ktrdr-api", "ktrdr-backtest-worker-ab12cd34", "ktrdr-cli"]
    # bottleneck: the worker phase with the most critical-path time, not the longest span
    assert d.bottleneck is not None
    assert d.bottleneck.span_name == "backtest.feature_compute"
    assert 0.5 < d.bottleneck.share <= 1.0
    assert d.bottleneck.self_time_ms == 7_000
    # execution flow: every span, start order, offsets from the operation start
    names = [s.span_name for s in d.execution_flow]
    assert len(names) == 61 and names[0] == "cli.backtest"
    starts = [s.start_ms for s in d.execution_flow]
    assert starts == sorted(starts)
    step = next(s for s in d.execution_flow if s.span_name == "backtest.data_loading")
    assert (step.start_ms, step.duration_ms, step.depth, step.service) == (30, 1_000, 5, WORKER)
    assert step.critical
    assert [s.span_name for s in d.execution_flow if s.bottleneck] == ["backtest.feature_compute"]
    assert d.root_cause is None


def test_noise_is_never_the_bottleneck() -> None:
    case = backtest_case()
    for span in case["spans"]:
        if span["name"] == "GET":
            span["dur"] = 180  # polling dominates the CLI span's time
    d = run_case(case)
    assert d.bottleneck is not None and d.bottleneck.span_name == "backtest.feature_compute"


def test_a_wrapping_root_is_not_the_bottleneck() -> None:
    """Work without spans (the backtest simulation) leaves a gap the CLI root 'owns' on the
    critical path: the root is never the bottleneck; the gap is (SPEC: time no span covers),
    named by the span it follows, on the worker's service."""
    case = backtest_case()
    for span in case["spans"]:
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["start"] = 9_990
        if span["name"] == "backtest.feature_compute":
            span["dur"] = 2_000  # the CLI root now holds ~7 s of gaps on the path
    d = run_case(case)
    b = d.bottleneck
    assert b is not None and b.kind == "gap"
    assert b.after_span_name == "backtest.feature_compute" and b.service == WORKER
    assert b.span_id is None and b.span_name is None
    assert 0.6 < b.share < 0.8 and b.duration_ms == pytest.approx(b.self_time_ms)
    assert b.text == f"uninstrumented work on {WORKER} after backtest.feature_compute"


def test_a_real_span_larger_than_any_gap_stays_the_bottleneck() -> None:
    """The gap wins only when it holds more: the same run with the simulation instrumented
    (a long span instead of the gap) names that span."""
    case = backtest_case()
    for span in case["spans"]:
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["start"] = 9_990
        if span["name"] == "backtest.feature_compute":
            span["dur"] = 9_000
    d = run_case(case)
    assert d.bottleneck is not None and d.bottleneck.kind == "span"
    assert d.bottleneck.span_name == "backtest.feature_compute"


def test_engine_leaves_its_input_unchanged() -> None:
    case = backtest_case()
    case["spans"].append(
        {
            "parent": "w",
            "name": "data.load_cache",
            "service": WORKER,
            "start": 40,
            "exc": "DataNotFoundError: none",
        }
    )
    traces = build_traces(case)
    before = snapshot(traces)
    d = diagnose(
        traces,
        ident=OP,
        operation_id=OP,
        rules=RULES,
        settings=DiagnosisSettings(),
        now_us=BASE_US + 20_000_000,
    )
    assert d.verdict == "data_missing"
    assert snapshot(traces) == before
    again = reassess_slow(d, 1.0, RULES, DiagnosisSettings())
    assert again is not d and d.verdict == "data_missing"


def test_reassess_slow_against_a_baseline_both_ways() -> None:
    settings = DiagnosisSettings()
    d = run_case(backtest_case())
    assert d.verdict == "healthy" and d.baseline_ms is None
    slow = reassess_slow(d, 4_999.0, RULES, settings)  # 10 000 > 2 × 4 999
    assert slow.verdict == "slow"
    assert slow.summary == (
        "slow: 70 % of the time in backtest.feature_compute (10.0 s vs baseline 5.0 s)"
    )
    assert slow.root_cause is not None and slow.root_cause.span_name == "backtest.feature_compute"
    assert slow.solution is not None and slow.solution.rule_id == "operation-slow"
    assert [s.span_name for s in slow.execution_flow if s.root_cause] == [
        "backtest.feature_compute"
    ]
    assert d.verdict == "healthy"  # the input diagnosis is not touched
    back = reassess_slow(slow, 5_000.0, RULES, settings)  # 10 000 is not > 2 × 5 000
    assert back.verdict == "healthy" and back.summary == d.summary
    assert [f.rule_id for f in back.findings] == [f.rule_id for f in d.findings]
    assert back.root_cause is None and back.solution is not None


def test_reassess_leaves_unfinished_and_missing_operations_alone() -> None:
    case = backtest_case(now_s=10_000)
    case["spans"] = [
        s for s in case["spans"] if s.get("attrs", {}).get("operation.to_status") != "completed"
    ]
    stuck = run_case(case)
    assert stuck.verdict == "stuck"
    again = reassess_slow(stuck, 1.0, RULES, DiagnosisSettings())
    assert (again.verdict, again.summary, again.baseline_ms) == ("stuck", stuck.summary, 1.0)
    missing = reassess_slow(not_found(OP, RULES), 1.0, RULES, DiagnosisSettings())
    assert missing.verdict == "not_found"


def test_diagnose_with_baseline_equals_reassess() -> None:
    direct = run_case(backtest_case(baseline_ms=4_000))
    later = reassess_slow(run_case(backtest_case()), 4_000, RULES, DiagnosisSettings())
    assert direct.verdict == later.verdict == "slow"
    assert direct.summary == later.summary


def test_root_cause_is_the_deepest_span_with_its_evidence() -> None:
    case = backtest_case()
    case["spans"] = [
        s
        for s in case["spans"]
        if s["name"] != "operation.state_transition"
        or s["attrs"]["operation.to_status"] != "completed"
    ]
    case["spans"] += [
        {
            "id": "ib",
            "parent": "w",
            "name": "POST",
            "service": WORKER,
            "kind": "client",
            "start": 40,
            "dur": 3,
            "status": "error",
            "exc": "ConnectionRefusedError: [Errno 111] Connection refused",
            "attrs": {"http.url": "http://host.docker.internal:5001/data/historical"},
        },
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": WORKER,
            "start": 50,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "running",
                "operation.to_status": "failed",
                "operation.error": "IB refused",
            },
        },
    ]
    d = run_case(case)
    assert d.verdict == "service_unreachable"
    assert d.summary == (
        "service unreachable: IB host service refused the connection (ConnectionRefusedError"
        " at http://host.docker.internal:5001/data/historical)"
    )
    rc = d.root_cause
    assert rc is not None and rc.span_name == "POST" and rc.service == WORKER
    assert rc.exception_type == "ConnectionRefusedError"
    assert rc.evidence["http.url"] == "http://host.docker.internal:5001/data/historical"
    assert rc.exception_message == "[Errno 111] Connection refused"
    assert d.status == "failed"
    rules_fired = {f.rule_id for f in d.fired}
    assert {"ib-host-refused", "operation-failed", "error-spans"} <= rules_fired
    assert d.solution is not None and "cd ib-host-service && ./start.sh" in d.solution.commands
    assert [s.span_id for s in d.execution_flow if s.root_cause] == [rc.span_id]


@pytest.mark.parametrize(
    "hostile", ["{__class__}", "{0.__init__}", "{attr:operation.error}", "{{x}}", "%(x)s {!r}"]
)
def test_hostile_attribute_values_stay_literal(hostile: str) -> None:
    case = {
        "operation_id": OP,
        "spans": [
            {
                "name": "operation.state_transition",
                "attrs": {
                    "operation.id": OP,
                    "operation.from_status": "running",
                    "operation.to_status": "failed",
                    "operation.error": hostile,
                },
            }
        ],
    }
    d = run_case(case)
    assert d.summary == f"failed: {hostile}"
    assert d.root_cause is not None and d.root_cause.evidence["operation.error"] == hostile


def test_agent_trace_is_scoped_to_the_requested_operation() -> None:
    research = "op_agent_research_20251122_101500_1a2b3c4d"
    child = "op_training_20251122_101600_0a0b0c0d"
    case = {
        "spans": [
            {
                "id": "c",
                "name": "agent.coordinator",
                "dur": 10_000,
                "attrs": {"operation.type": "coordinator"},
            },
            {
                "id": "d",
                "parent": "c",
                "name": "agent.phase.design",
                "start": 1,
                "dur": 100,
                "attrs": {"operation.id": research, "phase": "designing"},
            },
            {
                "id": "p",
                "parent": "c",
                "name": "agent.phase.training",
                "start": 200,
                "dur": 5_000,
                "attrs": {"operation.id": research, "phase": "training"},
            },
            {
                "id": "t",
                "parent": "p",
                "name": "training.indicators",
                "start": 300,
                "dur": 4_000,
                "attrs": {"operation.id": child},
            },
            {"parent": "t", "name": "indicator.calculate", "start": 400, "dur": 10},
            {
                "name": "operation.state_transition",
                "parent": "p",
                "start": 4_400,
                "attrs": {
                    "operation.id": child,
                    "operation.from_status": "running",
                    "operation.to_status": "completed",
                },
            },
        ]
    }
    child_diag = run_case({**case, "operation_id": child})
    names = [s.span_name for s in child_diag.execution_flow]
    assert names == [
        "agent.coordinator",
        "agent.phase.training",
        "training.indicators",
        "indicator.calculate",
        "operation.state_transition",
    ]
    assert child_diag.operation_type == "training" and child_diag.status == "completed"
    research_diag = run_case({**case, "operation_id": research})
    assert len(research_diag.execution_flow) == 6  # its children, the child op included
    assert research_diag.operation_type == "agent_research"
    assert research_diag.status == "running"  # its own transitions only: none yet


def test_flow_is_cut_at_max_flow_spans_and_counts_the_rest() -> None:
    d = run_case(backtest_case(settings={"max_flow_spans": 10}))
    assert len(d.execution_flow) == 10
    assert d.execution_flow_truncated == 51
    assert [s.index for s in d.execution_flow] == list(range(1, 11))


def test_trace_id_ident_without_operation_id() -> None:
    case = backtest_case()
    del case["operation_id"]
    d = run_case(case)
    assert d.operation_id == OP  # the one operation the trace holds
    assert d.verdict == "healthy"


def test_not_found() -> None:
    d = not_found(OP)
    assert (d.verdict, d.operation_id, d.trace_ids, d.key) == ("not_found", OP, [], OP)
    by_trace = not_found("ABCDEF0123456789", RULES)
    assert by_trace.trace_ids == ["0000000000000000abcdef0123456789"]
    assert by_trace.solution is not None and by_trace.solution.steps
    empty = diagnose(
        [], ident=OP, operation_id=OP, rules=RULES, settings=DiagnosisSettings(), now_us=BASE_US
    )
    assert empty.verdict == "not_found"


def test_rule_matching_many_spans_reports_one_finding_with_a_count() -> None:
    spans = [{"name": "workers.select", "start": i, "dur": 200} for i in range(3)]
    d = run_case({"spans": spans})
    slow = [f for f in d.findings if f.rule_id == "worker-selection-slow"]
    assert len(slow) == 1 and slow[0].evidence["matches"] == 3


@pytest.mark.slow
def test_large_trace_is_diagnosed() -> None:
    """100 000 spans: a wide worker fan-out under one dispatch; must finish and be right."""
    trace_id = "ab" * 16
    root = Span(
        trace_id,
        "0" * 15 + "1",
        "POST /backtests/start",
        WORKER,
        BASE_US,
        200_000_000,
        kind="server",
    )
    spans = [root]
    for i in range(2, 100_001):
        spans.append(
            Span(
                trace_id,
                f"{i:016x}",
                "backtest.feature_compute" if i % 2 else "data.load_cache",
                WORKER,
                BASE_US + i * 1_000,
                900,
                attributes={"operation.id": OP, "data.rows": str(i)},
                references=[Reference(CHILD_OF, trace_id, root.span_id)],
            )
        )
    trace = build_trace(trace_id, spans)
    d = diagnose(
        [trace],
        ident=OP,
        operation_id=OP,
        rules=RULES,
        settings=DiagnosisSettings(),
        now_us=BASE_US + 10**9,
    )
    assert d.verdict == "stuck"
    assert len(d.execution_flow) == 2000 and d.execution_flow_truncated == 98_000


# --- without_descendant / without_child --------------------------------------------------------

WITHOUT_PACK = """\
pack: without
rules:
  - id: no-client-below
    description: test rule
    severity: warning
    match:
      span: "outer.*"
      without_descendant: {kind: client, attributes: {http.url: {regex: ':5001'}}}
    summary: "no client below {span.name}"
    solution: {title: t, steps: [s]}
  - id: no-error-child
    description: test rule
    severity: warning
    match:
      span: "outer.*"
      without_child: {error: true}
    summary: "no error child of {span.name}"
    solution: {title: t, steps: [s]}
"""
WITHOUT_RULES = merge_packs([default_rule_pack(), parse_rule_pack(WITHOUT_PACK, "without.yaml")])
HOST = "http://host.docker.internal:5001/data/historical"


def _fired(spans: list[dict[str, Any]]) -> dict[str, list[str]]:
    d = run_case({"spans": spans}, WITHOUT_RULES)
    out: dict[str, list[str]] = {}
    for f in d.findings:
        out.setdefault(f.rule_id, []).append(str(f.span_name))
    return out


def test_without_descendant_looks_at_the_whole_subtree_and_without_child_one_level() -> None:
    spans = [
        {"id": "a", "name": "outer.a", "dur": 100},
        {"id": "mid", "parent": "a", "name": "inner", "start": 1, "dur": 50},
        # a client to :5001 two levels down and an error grandchild
        {
            "parent": "mid",
            "name": "POST",
            "kind": "client",
            "start": 2,
            "attrs": {"http.url": HOST},
        },
        {"parent": "mid", "name": "boom", "start": 3, "status": "error"},
        {"id": "b", "name": "outer.b", "start": 200, "dur": 100},
        # a client elsewhere (not :5001) and an error child
        {
            "parent": "b",
            "name": "GET",
            "kind": "client",
            "start": 201,
            "attrs": {"http.url": "http://w:5003/x"},
        },
        {"parent": "b", "name": "bad", "start": 202, "status": "error"},
    ]
    fired = _fired(spans)
    # outer.a has a matching client below (not a child): only outer.b lacks one
    assert fired["no-client-below"] == ["outer.b"]
    # outer.a's error is a grandchild, so it has no error *child*; outer.b has one
    assert fired["no-error-child"] == ["outer.a"]


def test_without_descendant_is_per_trace_and_ignores_siblings_and_ancestors() -> None:
    spans = [
        {"id": "root", "name": "root", "kind": "client", "dur": 100, "attrs": {"http.url": HOST}},
        {"id": "a", "parent": "root", "name": "outer.a", "start": 1, "dur": 50},
        {
            "parent": "root",
            "name": "POST",
            "kind": "client",
            "start": 60,
            "attrs": {"http.url": HOST},
        },
    ]
    assert _fired(spans)["no-client-below"] == ["outer.a"]


def test_without_is_not_computed_when_no_active_rule_uses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import opdiag.diagnosis.span_rules as span_rules

    def boom(*_: Any) -> Any:
        raise AssertionError("precomputed although no rule uses without_*")

    monkeypatch.setattr(span_rules, "_below", boom)
    run_case(backtest_case(), RULES)  # rule 16's facts (status failed) do not hold


def _wide_data_trace(n: int, *, client_at_end: bool) -> Any:
    """One download server span over ``n`` spans in a 10-deep chain of fans; the operation
    failed; optionally one host call as the last, deepest span."""
    op = "op_data_load_20251122_101500_1a2b3c4d"
    trace_id = "cd" * 16
    root = Span(
        trace_id,
        "0" * 15 + "1",
        "POST /api/v1/data/acquire/download",
        "ktrdr-api",
        BASE_US,
        200_000_000,
        kind="server",
    )
    spans = [root]
    parent = root.span_id
    for i in range(2, n + 1):
        sid = f"{i:016x}"
        spans.append(
            Span(
                trace_id,
                sid,
                "data.fetch_chunk",
                "ktrdr-api",
                BASE_US + i * 1_000,
                900,
                attributes={"operation.id": op},
                references=[Reference(CHILD_OF, trace_id, parent)],
            )
        )
        if i % (n // 10) == 0:
            parent = sid  # go one level deeper every n/10 spans
    last = spans[-1].span_id
    transition = {
        "operation.id": op,
        "operation.from_status": "running",
        "operation.to_status": "failed",
        "operation.error": "no data source",
    }
    spans.append(
        Span(
            trace_id,
            f"{n + 1:016x}",
            "operation.state_transition",
            "ktrdr-api",
            BASE_US + (n + 1) * 1_000,
            10,
            attributes=transition,
            references=[Reference(CHILD_OF, trace_id, root.span_id)],
        )
    )
    if client_at_end:
        spans.append(
            Span(
                trace_id,
                f"{n + 2:016x}",
                "POST",
                "ktrdr-api",
                BASE_US + (n + 2) * 1_000,
                10,
                kind="client",
                attributes={"http.url": HOST, "http.status_code": 200},
                references=[Reference(CHILD_OF, trace_id, last)],
            )
        )
    return op, build_trace(trace_id, spans)


@pytest.mark.slow
@pytest.mark.parametrize("client_at_end", [False, True])
def test_large_trace_without_descendant_is_linear(client_at_end: bool) -> None:
    """100 000 spans under a failed download: rule 16 (``without_descendant``) is decided in
    one pass; a single host call at the deepest leaf is seen from the root."""
    op, trace = _wide_data_trace(100_000, client_at_end=client_at_end)
    started = time.perf_counter()
    d = diagnose(
        [trace],
        ident=op,
        operation_id=op,
        rules=RULES,
        settings=DiagnosisSettings(),
        now_us=BASE_US + 10**9,
    )
    elapsed = time.perf_counter() - started
    fired = {f.rule_id for f in d.findings}
    assert ("host-call-not-attempted" in fired) is not client_at_end
    assert d.verdict == "failed"
    assert elapsed < 30, elapsed  # a quadratic walk takes hours here


# --- templates and coercion --------------------------------------------------------------------


def test_template_fill_defaults_and_literals() -> None:
    t = parse_template("{{literal}} {span.name} {attr:x.y|none} {attr:z} {phase}")
    assert fill(t, {"span.name": "a", "z": "{span.name}"}) == "{literal} a none {span.name} n/a"


def test_template_text_only_when_the_value_is_there() -> None:
    """``{name?text $}``: a clause that exists only with its value (no ``n/a`` in a summary,
    no stray words); a default may still hold a '?'."""
    t = parse_template("400{op:strategy?; strategy $}{op:symbol?, symbol $} at {attr:h|?}")
    assert fill(t, {"op:strategy": "no_such"}) == "400; strategy no_such at ?"
    assert fill(t, {"op:symbol": "$X", "op:strategy": ""}) == "400, symbol $X at ?"
    assert fill_command(parse_template("ktrdr x{op:symbol? --symbol $}"), {}) == "ktrdr x"
    with pytest.raises(ValueError, match="unknown placeholder"):
        parse_template("{nothing?text}")
    with pytest.raises(ValueError, match="bad text"):
        parse_template("{op:a?x|y}")


@pytest.mark.parametrize(
    ("op", "rule_value", "actual", "expected"),
    [
        ("eq", 0, "0", True),
        ("eq", 0, "1", False),
        ("eq", 0, 0, True),
        ("eq", 0, "zero", False),
        ("eq", 0, False, False),
        ("gt", 0, "1", True),
        ("gt", 0, "0", False),
        ("gte", 100, 100.0, True),
        ("lt", 5, " 4 ", True),
        ("lte", 5, "nan", False),
        ("eq", False, "false", True),
        ("eq", False, False, True),
        ("eq", True, "yes", False),
        ("eq", "success", "success", True),
        ("ne", "success", "no_workers_available", True),
        ("in", ["failed", "error"], "error", True),
        ("in", ["failed", "error"], "connected", False),
        ("regex", ":5001(/|$)", "http://h:5001/x", True),
        ("regex", ":5001(/|$)", "http://h:50010/x", False),
    ],
)
def test_condition_coercion(op: str, rule_value: Any, actual: Any, expected: bool) -> None:
    cond = Condition("k", op, check_operand(op, rule_value))
    assert evaluate(cond, actual) is expected


def test_absent_and_exists() -> None:
    assert evaluate(Condition("k", "absent", True)) is True
    assert evaluate(Condition("k", "absent", True), "0") is False
    assert evaluate(Condition("k", "exists", True), "0") is True
    assert evaluate(Condition("k", "ne", "x")) is False  # ne needs the value to exist


def _without_completion(case: dict[str, Any]) -> dict[str, Any]:
    case["spans"] = [
        s
        for s in case["spans"]
        if s["name"] != "operation.state_transition"
        or s["attrs"]["operation.to_status"] != "completed"
    ]
    return case


def test_generic_failure_root_cause_is_the_error_span_not_the_transition() -> None:
    """The transition to ``failed`` decides the verdict and carries the message, but the
    exception sits on the phase span: that deepest error span is the root cause, and the
    transition's evidence stays beside the exception's."""
    case = _without_completion(backtest_case())
    for span in case["spans"]:
        if span["name"] == "backtest.feature_compute":
            span.update(
                id="fc",
                status="error",
                exc="RuntimeError: indicator 'rsi_14' produced NaN rows",
            )
    case["spans"].append(
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": WORKER,
            "start": 8_031,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "running",
                "operation.to_status": "failed",
                "operation.error": "indicator 'rsi_14' produced NaN rows",
            },
        }
    )
    d = run_case(case)
    assert d.verdict == "failed"
    rc = d.root_cause
    assert rc is not None and rc.span_name == "backtest.feature_compute"
    assert rc.exception_type == "RuntimeError"
    assert rc.evidence["operation.error"] == "indicator 'rsi_14' produced NaN rows"
    assert [s.span_name for s in d.execution_flow if s.root_cause] == ["backtest.feature_compute"]


def test_worker_verdicts_keep_the_selection_span_even_beside_a_503() -> None:
    case = backtest_case()
    case["spans"] = [s for s in case["spans"] if s.get("parent") not in {"srv", "w", "wpost"}]
    for span in case["spans"]:
        if span.get("id") == "srv":
            span["attrs"] = {"http.status_code": 503}
            span["status"] = "error"
    case["spans"].append(
        {
            "parent": "srv",
            "name": "workers.select",
            "start": 12,
            "dur": 2,
            "attrs": {
                "worker.total_workers": "0",
                "worker.capable_workers": "0",
                "worker.available_workers": "0",
                "worker.selection_status": "no_workers_available",
            },
        }
    )
    d = run_case(case)
    assert d.verdict == "no_workers"
    assert d.root_cause is not None and d.root_cause.span_name == "workers.select"


def test_an_operation_in_flight_has_lasted_until_now() -> None:
    case = _without_completion(backtest_case())
    quiet = run_case({**case, "now_s": 60})  # last span ends near 10 s
    assert quiet.finished is False and quiet.status == "running"
    assert quiet.duration_ms == pytest.approx(60_000, abs=1)
    done = run_case(backtest_case(now_s=60))
    assert done.finished and done.duration_ms == pytest.approx(10_000, abs=1)


def test_a_late_error_past_the_flow_cut_is_still_the_marked_root_cause() -> None:
    """In a huge operation the error can come after the first ``max_flow_spans`` spans; the
    root cause must still be that error span, and the flow must carry it, marked."""
    # 3: fewer rows than the work spans before the error (the polls give way first)
    case = _without_completion(backtest_case(settings={"max_flow_spans": 3}))
    for span in case["spans"]:
        if span["name"] == "backtest.feature_compute":
            span.update(status="error", exc="RuntimeError: boom late")
    case["spans"].append(
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": WORKER,
            "start": 8_031,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "running",
                "operation.to_status": "failed",
                "operation.error": "boom late",
            },
        }
    )
    d = run_case(case)
    assert d.verdict == "failed"
    assert d.root_cause is not None and d.root_cause.span_name == "backtest.feature_compute"
    marked = [s for s in d.execution_flow if s.root_cause]
    assert [s.span_name for s in marked] == ["backtest.feature_compute"]
    assert len(d.execution_flow) == 4  # the cut, and the late error beyond it
    assert d.execution_flow[-1].span_name == "backtest.feature_compute"
    assert d.execution_flow_truncated == len(case["spans"]) - 4
    assert [s.index for s in d.execution_flow] == list(range(1, 5))


def test_a_stuck_operation_is_in_flight_and_its_length_runs_to_now() -> None:
    """Started, never finished: the same operation read before and after the stuck
    threshold is running both times, and it lasts longer the later it is judged (it read
    'unknown', 5 s, once stuck: shorter than the 4 min it had lasted a minute before)."""
    case = backtest_case()
    case["spans"] = [s for s in case["spans"] if "operation.to_status" not in s.get("attrs", {})]
    before = run_case({**case, "now_s": 200})
    after = run_case({**case, "now_s": 900})
    assert (before.verdict, after.verdict) == ("healthy", "stuck")
    assert before.status == after.status == "running"
    assert before.duration_ms == 200_000 and after.duration_ms == 900_000


@pytest.mark.parametrize(
    ("key", "value", "status", "verdict"),
    [
        ("operation.status", "COMPLETED", "completed", "healthy"),  # the documented dialect
        ("operation.status", "FAILED", "failed", "failed"),
        ("operation.to_status", "COMPLETED", "completed", "healthy"),
        ("operation.to_status", "completed", "completed", "healthy"),  # the real one
    ],
)
def test_both_dialects_of_the_lifecycle_are_read(key, value, status, verdict) -> None:
    """The skill documents ``operation.status`` = PENDING/RUNNING/COMPLETED/FAILED; the real
    KTRDR writes ``operation.to_status`` in lower case. Either says where the operation
    ended (the documented one was read as no transition at all: stuck once quiet)."""
    case = backtest_case()
    for span in case["spans"]:
        attrs = span.get("attrs", {})
        if attrs.get("operation.to_status") == "completed":
            del attrs["operation.to_status"]
            attrs[key] = value
    d = run_case({**case, "now_s": 3_600})
    assert (d.status, d.finished, d.verdict) == (status, True, verdict), d.summary


def _created_then(*after: dict[str, object]) -> dict[str, object]:
    """A worker that took a backtest and raised while creating it, then ``after``."""
    op = "op_backtesting_20261204_154358_5d955ea3"
    worker = "ktrdr-backtest-worker-ab12cd34"
    return {
        "operation_id": op,
        "spans": [
            {"id": "w", "name": "POST /backtests/start", "service": worker, "kind": "server"},
            {
                "parent": "w",
                "name": "operations.create",
                "service": worker,
                "start": 1,
                "dur": 6,
                "status": "error",
                "attrs": {"operation.id": op},
                "exc": "KeyError: 'backtest'",
            },
            *after,
        ],
        "now_s": 3_600,
    }


def test_an_operation_that_failed_before_its_first_transition_is_over() -> None:
    """No transition ever came and its error is the last thing its worker did for it: it
    failed when it raised, an hour ago; it is neither running since nor stuck."""
    d = run_case(_created_then())
    assert (d.status, d.finished, d.verdict) == ("failed", True, "failed"), d.summary
    assert d.duration_ms == 7


def test_an_error_the_worker_went_on_after_leaves_the_operation_in_flight() -> None:
    registered = {
        "name": "operation.register",
        "service": "ktrdr-backtest-worker-ab12cd34",
        "start": 9,
        "attrs": {"operation.id": "op_backtesting_20261204_154358_5d955ea3"},
    }
    d = run_case({**_created_then(registered), "now_s": 60})
    assert (d.status, d.finished) == ("running", False), d.summary


def _resumed(answer: int) -> dict[str, object]:
    """The backtest, failed, then ``ktrdr resume`` of it: the backend moves it to resuming
    and answers ``answer`` (KTRDR: 404 when no checkpoint exists, having set it back to
    failed without a span)."""
    case = backtest_case()
    for span in case["spans"]:
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["attrs"]["operation.to_status"] = "failed"
            span["attrs"]["operation.error"] = "No data found in cache for AAPL 1h"
    resume = [
        {"id": "c", "name": "cli.resume", "service": "ktrdr-cli", "start": 60_000, "dur": 30},
        {
            "id": "r",
            "parent": "c",
            "name": "POST /api/v1/operations/{operation_id}/resume",
            "service": "ktrdr-api",
            "kind": "server",
            "start": 60_005,
            "dur": 20,
            "attrs": {"http.status_code": answer},
        },
        {
            "parent": "r",
            "name": "operation.state_transition",
            "service": "ktrdr-api",
            "start": 60_010,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "failed",
                "operation.to_status": "resuming",
                "operation.resumed": True,
            },
        },
    ]
    return {"operation_id": OP, "traces": [{"spans": case["spans"]}, {"spans": resume}]}


def test_a_refused_resume_leaves_the_operation_as_it_was() -> None:
    """Without the refused request's trace the operation stays failed, not resuming for ever
    (then stuck); a warning says a resume was refused."""
    d = run_case({**_resumed(404), "now_s": 3_600})
    assert (d.status, d.finished, d.verdict) == ("failed", True, "data_missing"), d.summary
    assert any("resume" in w and "404" in w for w in d.warnings), d.warnings
    accepted = run_case({**_resumed(200), "now_s": 61})
    assert (accepted.status, accepted.finished) == ("resuming", False)


def _resume_conflict(*, with_cli: bool, running: bool = False) -> dict[str, object]:
    """The backtest (completed, or still running), then ``ktrdr resume`` of it: KTRDR answers
    409 "already completed" / "already running" and changes nothing, no transition; the CLI's
    call is in error (httpx marks a 4xx), with curl only the server span holds the 409."""
    case = backtest_case()
    spans = case["spans"]
    if running:
        spans = [s for s in spans if s.get("attrs", {}).get("operation.to_status") != "completed"]
    url = f"http://127.0.0.1:8000/api/v1/operations/{OP}/resume"
    server = {
        "id": "r",
        "name": "POST /api/v1/operations/{operation_id}/resume",
        "kind": "server",
        "start": 60_005,
        "dur": 20,
        "attrs": {"http.status_code": 409, "http.target": f"/api/v1/operations/{OP}/resume"},
    }
    resume: list[dict[str, object]] = [server]
    if with_cli:
        server["parent"] = "p"
        resume = [
            {
                "id": "c",
                "name": "cli.resume",
                "service": "ktrdr-cli",
                "start": 60_000,
                "dur": 30,
                "status": "error",
                "exc": "click.exceptions.Exit: 1",
                "attrs": {"operation.id": OP},
            },
            {
                "id": "p",
                "parent": "c",
                "name": "POST",
                "service": "ktrdr-cli",
                "kind": "client",
                "start": 60_002,
                "dur": 25,
                "status": "error",
                "attrs": {"http.method": "POST", "http.url": url, "http.status_code": 409},
            },
            server,
        ]
    return {"operation_id": OP, "traces": [{"spans": spans}, {"spans": resume}]}


@pytest.mark.parametrize("with_cli", [True, False], ids=["cli", "curl"])
def test_a_resume_refused_with_409_changes_nothing(with_cli: bool) -> None:
    """Resuming what completed or still runs: the CLI's call in error is not the operation's."""
    done = run_case({**_resume_conflict(with_cli=with_cli), "now_s": 3_600})
    assert (done.status, done.verdict) == ("completed", "healthy"), done.summary
    assert any("resume" in w and "409" in w for w in done.warnings), done.warnings
    running = run_case({**_resume_conflict(with_cli=with_cli, running=True), "now_s": 61})
    assert (running.status, running.verdict) == ("running", "healthy"), running.summary


def _killed_then_resumed(*, done: bool) -> dict[str, object]:
    """The backtest, its worker killed mid-run (its spans stop), KTRDR's orphan detector
    failing it a few minutes later in a one-span trace, then ``ktrdr resume``: the backend
    moves it to resuming and dispatches it to another worker, which runs it to the end (or
    is still running it)."""
    case = backtest_case()
    first = [s for s in case["spans"] if s.get("attrs", {}).get("operation.to_status") not in
             ("completed",) and float(s.get("start", 0)) < 2_000]
    other = "ktrdr-backtest-worker-ef56ab78"
    orphaned = {
        "name": "operation.state_transition",
        "start": 300_000,
        "attrs": {
            "operation.id": OP,
            "operation.from_status": "running",
            "operation.to_status": "failed",
            "operation.error": "Operation was RUNNING but no worker claimed it",
        },
    }
    resume: list[dict[str, object]] = [
        {"id": "c", "name": "cli.resume", "service": "ktrdr-cli", "start": 600_000, "dur": 40},
        {
            "id": "r",
            "parent": "c",
            "name": "POST /api/v1/operations/{operation_id}/resume",
            "kind": "server",
            "start": 600_005,
            "dur": 30,
            "attrs": {"http.status_code": 200},
        },
        {
            "parent": "r",
            "name": "operation.state_transition",
            "start": 600_010,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "failed",
                "operation.to_status": "resuming",
                "operation.resumed": True,
            },
        },
        {
            "id": "p",
            "parent": "r",
            "name": "POST",
            "kind": "client",
            "start": 600_015,
            "dur": 10,
            "attrs": {
                "http.url": "http://127.0.0.1:5004/backtests/resume",
                "http.status_code": 200,
            },
        },
        {
            "id": "w",
            "parent": "p",
            "name": "POST /backtests/resume",
            "service": other,
            "kind": "server",
            "start": 600_017,
            "dur": 5,
        },
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": other,
            "start": 600_020,
            "attrs": {"operation.id": OP, "operation.from_status": "resuming",
                      "operation.to_status": "running"},
        },
        {"parent": "w", "name": "backtest.feature_compute", "service": other, "start": 600_100,
         "dur": 2_000},
    ]
    if done:
        resume.append(
            {
                "parent": "w",
                "name": "operation.state_transition",
                "service": other,
                "start": 603_000,
                "attrs": {"operation.id": OP, "operation.from_status": "running",
                          "operation.to_status": "completed"},
            }
        )
    return {
        "operation_id": OP,
        "traces": [{"spans": first}, {"spans": [orphaned]}, {"spans": resume}],
    }


def test_a_run_resumed_after_its_worker_died_is_judged_from_its_resume() -> None:
    """Killed, failed by the orphan detector, resumed on another worker: the lost worker is
    the first attempt's story. The run since the resume is judged (its length, its worker),
    and a warning says what was left out."""
    done = run_case({**_killed_then_resumed(done=True), "now_s": 700})
    assert (done.verdict, done.status) == ("healthy", "completed"), done.summary
    assert done.duration_ms == 3_001  # from the resume request to the last transition
    assert any(w.startswith("resumed at") and "from failed" in w for w in done.warnings)
    running = run_case({**_killed_then_resumed(done=False), "now_s": 603})
    assert (running.verdict, running.status) == ("healthy", "running"), running.summary
    assert "ktrdr-backtest-worker-ef56ab78" in running.summary


def test_a_resumed_run_is_not_judged_slow() -> None:
    """A run cancelled, resumed and completed lasts its first attempt, the pause and the rest:
    KTRDR restarts its clock at the resume, so that length says nothing about its speed."""
    plain = run_case({**backtest_case(), "baseline_ms": 1_000})
    assert plain.verdict == "slow", plain.summary
    case = backtest_case(baseline_ms=1_000)
    case["spans"].append(
        {
            "parent": "w",
            "name": "operation.state_transition",
            "service": WORKER,
            "start": 4_000,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "cancelled",
                "operation.to_status": "resuming",
                "operation.resumed": True,
            },
        }
    )
    d = run_case(case)
    assert (d.status, d.verdict) == ("completed", "healthy"), d.summary
    assert "resumed" not in d.to_dict()  # the engine's working state, not the contract


def test_a_followed_operation_is_not_stuck_while_its_follower_polls() -> None:
    """README (OPDIAG_STUCK_AFTER_S): a long span-less phase reads stuck after the threshold,
    unless ``--follow`` polls it: the polls count as activity."""
    case = backtest_case()
    case["spans"] = [
        s for s in case["spans"] if s.get("attrs", {}).get("operation.to_status") != "completed"
    ]
    polls = [s for s in case["spans"] if s["name"] == "GET"]
    case["spans"] = [s for s in case["spans"] if s["name"] != "GET"]
    for i in range(200):  # every 2 s for 400 s
        case["spans"].append({**polls[0], "start": 100 + i * 2_000})
    followed = run_case({**case, "now_s": 420})
    assert (followed.status, followed.verdict) == ("running", "healthy"), followed.summary
    case["spans"] = [s for s in case["spans"] if s["name"] != "GET"]
    alone = run_case({**case, "now_s": 420})
    assert alone.verdict == "stuck", alone.summary


def _shifted(case: dict[str, object], service: str, by_ms: float) -> dict[str, object]:
    for trace in case["traces"]:  # type: ignore[union-attr]
        for span in trace["spans"]:
            if span.get("service") == service:
                span["start"] = float(span.get("start", 0)) + by_ms
    return case


def test_a_resume_is_judged_whole_whatever_the_clocks_say() -> None:
    """The resuming worker's clock half a second behind the backend's: its first spans start
    before the resume request did, and are the resumed run all the same."""
    case = _shifted(_killed_then_resumed(done=True), "ktrdr-backtest-worker-ef56ab78", -500)
    d = run_case({**case, "now_s": 700})
    assert (d.verdict, d.status) == ("healthy", "completed"), d.summary
    assert "backtest.feature_compute" in [s.span_name for s in d.execution_flow]


def test_a_resume_made_inside_a_long_lived_trace_cuts_from_the_request() -> None:
    """The resume request hangs under a span that started before the first attempt (a
    session, a coordinator): the cut starts at the request, not at that span."""
    case = _killed_then_resumed(done=True)
    resume = case["traces"][2]["spans"]  # type: ignore[index]
    resume.insert(0, {"id": "sess", "name": "agent.session", "start": 0, "dur": 700_000})
    resume[1]["parent"] = "sess"
    d = run_case({**case, "now_s": 700})
    assert (d.verdict, d.status) == ("healthy", "completed"), d.summary
    assert any(w.startswith("resumed at") for w in d.warnings), d.warnings


def test_an_operation_resumed_twice_is_judged_from_the_last_resume() -> None:
    case = _killed_then_resumed(done=True)
    again = [
        {**s, "start": float(s.get("start", 0)) + 100_000}
        for s in case["traces"][2]["spans"]  # type: ignore[index]
    ]
    for s in again:
        if s.get("attrs", {}).get("operation.to_status") == "resuming":
            s["attrs"] = {**s["attrs"], "operation.from_status": "cancelled"}
    case["traces"].append({"spans": again})  # type: ignore[union-attr]
    d = run_case({**case, "now_s": 800})
    assert d.status == "completed" and d.duration_ms == 3_001, (d.summary, d.duration_ms)
    assert any("from cancelled" in w for w in d.warnings), d.warnings


def test_a_resumed_run_is_no_baseline_for_others() -> None:
    """Its length is the rest of a run from a checkpoint: beside whole runs it would make
    them look slow."""
    from opdiag.diagnosis.baseline import is_healthy_run as _is_healthy_run

    done = run_case({**_killed_then_resumed(done=True), "now_s": 700})
    assert done.resumed and done.verdict == "healthy"
    assert not _is_healthy_run(done)
    assert _is_healthy_run(run_case(backtest_case()))


def test_a_flow_cut_keeps_the_work_before_the_polls() -> None:
    """A followed 4-minute training had 2,000 rows of the CLI's polls before its completion:
    the cut keeps every work span first, then the earliest noise."""
    op = "op_training_20251122_101500_1a2b3c4d"
    spans: list[dict[str, Any]] = [
        {"id": "c", "name": "cli.train", "service": "ktrdr-cli", "dur": 100_000},
        {"id": "w", "parent": "c", "name": "POST /training/start", "kind": "server",
         "service": "ktrdr-training-worker-1", "start": 1, "dur": 5},
        {"parent": "w", "name": "operation.state_transition", "service": "ktrdr-training-worker-1",
         "start": 2, "attrs": {"operation.id": op, "operation.to_status": "running"}},
    ]
    spans += [
        {"parent": "c", "name": "GET", "kind": "client", "service": "ktrdr-cli",
         "start": 10 + i * 100, "dur": 3,
         "attrs": {"http.url": f"http://127.0.0.1:8000/api/v1/operations/{op}",
                   "http.status_code": 200}}
        for i in range(40)
    ]
    spans.append(
        {"parent": "w", "name": "operation.state_transition", "service": "ktrdr-training-worker-1",
         "start": 99_000, "attrs": {"operation.id": op, "operation.to_status": "completed"}}
    )
    d = run_case({"operation_id": op, "spans": spans, "settings": {"max_flow_spans": 10}})
    names = [(s.span_name, s.start_ms) for s in d.execution_flow]
    assert len(names) == 10 and d.execution_flow_truncated == len(spans) - 10
    assert ("operation.state_transition", 99_000.0) in names
    assert [n for n, _ in names].count("GET") == 6  # the earliest polls fill the rest
    assert [s.start_ms for s in d.execution_flow] == sorted(s.start_ms for s in d.execution_flow)


def _moves(*steps: tuple[str, str] | tuple[str, str, bool]) -> list[Span]:
    """Transitions in time order, each (from, to[, resumed])."""
    out = []
    for i, step in enumerate(steps):
        attrs: dict[str, Any] = {"operation.from_status": step[0], "operation.to_status": step[1]}
        if len(step) > 2:
            attrs["operation.resumed"] = step[2]
        out.append(Span("t", f"{i:016x}", "operation.state_transition", "svc", i, 1,
                        attributes=attrs))
    return out


@pytest.mark.parametrize(
    ("steps", "went_on"),
    [
        ((("pending", "running"), ("running", "failed"), ("failed", "failed")), True),
        ((("pending", "running"), ("running", "failed"), ("running", "completed")), True),
        # the worker and the backend each record the cancel: one end said twice
        ((("pending", "running"), ("running", "cancelled"), ("running", "cancelled")), False),
        # a resume starts a new run, whether its transition says resuming or resumed
        ((("running", "failed"), ("failed", "resuming"), ("resuming", "running")), False),
        ((("running", "cancelled"), ("cancelled", "running", True)), False),
        ((("pending", "running"), ("running", "completed")), False),
    ],
)
def test_an_operation_went_on_after_an_end(steps: tuple[Any, ...], went_on: bool) -> None:
    from opdiag.diagnosis.facts import _ended_before

    assert _ended_before(_moves(*steps), [step[1] for step in steps]) is went_on


def _followed_then(cancel_in_own_trace: bool) -> dict[str, Any]:
    """``ktrdr train --follow``: the start, the worker's data loading, a 20 s silent loop,
    then a cancel: Ctrl-C sends it from the following command (same trace), ``ktrdr cancel``
    from a trace of its own."""
    op = "op_training_20251122_101500_1a2b3c4d"
    worker = "ktrdr-training-worker-ab12"
    start = [
        {"id": "cli", "name": "cli.train", "service": "ktrdr-cli", "dur": 21_000},
        {"id": "p", "parent": "cli", "name": "POST", "service": "ktrdr-cli", "kind": "client",
         "start": 1, "dur": 170, "attrs": {"http.url": "http://localhost:8000/api/v1/trainings/start"}},
        {"id": "w", "parent": "p", "name": "POST /training/start", "service": worker,
         "kind": "server", "start": 10, "dur": 3},
        {"parent": "w", "name": "operation.state_transition", "service": worker, "start": 12,
         "attrs": {"operation.id": op, "operation.from_status": "pending",
                   "operation.to_status": "running"}},
        {"parent": "w", "name": "training.data_loading", "service": worker, "start": 300,
         "dur": 300},
    ]
    cancel = [
        {"id": "d", "name": "DELETE", "service": "ktrdr-cli", "kind": "client", "start": 20_000,
         "dur": 150, "attrs": {"http.url": f"http://localhost:8000/api/v1/operations/{op}"}},
        {"id": "c", "parent": "d", "name": "DELETE /api/v1/operations/{operation_id}/cancel",
         "service": worker, "kind": "server", "start": 20_050, "dur": 40},
        {"parent": "c", "name": "operation.state_transition", "service": worker, "start": 20_060,
         "attrs": {"operation.id": op, "operation.from_status": "running",
                   "operation.to_status": "cancelled"}},
    ]
    if cancel_in_own_trace:
        return {"operation_id": op, "traces": [{"spans": start}, {"spans": cancel}]}
    cancel[0]["parent"] = "cli"
    return {"operation_id": op, "traces": [{"spans": start + cancel}]}


@pytest.mark.parametrize("interrupted", [True, False], ids=["ctrl-c", "ktrdr-cancel"])
def test_a_cancel_says_who_sent_it_and_leaves_the_loop_to_the_worker(interrupted: bool) -> None:
    d = run_case(_followed_then(cancel_in_own_trace=not interrupted))
    assert d.verdict == "cancelled", d.summary
    b = d.bottleneck
    assert b is not None and (b.kind, b.service, b.after_span_name) == (
        "gap", "ktrdr-training-worker-ab12", "training.data_loading"
    ), b
    said = "(interrupted while following)"
    assert (said in d.summary) is interrupted, d.summary


def test_a_value_that_ends_its_sentence_takes_the_template_s_full_stop() -> None:
    """KTRDR's messages often end with a full stop: '…may need to be retrained..' read a
    step that quotes one. Only the value's own stop stays; an ellipsis, a missing value's
    'n/a' and a command keep the template's text as it is."""
    step = parse_template("The worker said: {attr:operation.error}.")
    said = fill(step, {"operation.error": "Model may need to be retrained."})
    assert said == "The worker said: Model may need to be retrained."
    assert fill(step, {"operation.error": "no stop"}) == "The worker said: no stop."
    assert fill(step, {}) == "The worker said: n/a."
    assert fill(parse_template("a.{phase}.b"), {"phase": "v."}) == "a.v.b"
    command = parse_template("ktrdr status {operation.id}.")
    assert fill_command(command, {"operation.id": "op_x."}) == "ktrdr status op_x.."


def test_no_bottleneck_is_named_under_a_millisecond() -> None:
    """A span under a millisecond is not where an operation's time went, whatever its share
    (a worker killed 60 ms after the dispatch left a 0 ms transition as '100 %' of the time
    it worked); a millisecond and more is named."""
    from test_rules_support import run_case

    short = run_case({"spans": [{"name": "backtest.run", "dur": 0.4}]})
    assert short.bottleneck is None
    named = run_case({"spans": [{"name": "backtest.run", "dur": 2}]})
    assert named.bottleneck is not None and named.bottleneck.span_name == "backtest.run"
