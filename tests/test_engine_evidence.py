"""Engine behaviour the real KTRDR asked for: one finding per fact, evidence named by trace
and time when it comes from another trace, an extent that abandoned work does not stretch,
and "after <span>" for an operation whose last phase has ended."""

from __future__ import annotations

from opdiag.render.links import build_links
from opdiag.render.markdown import render_markdown
from opdiag.settings import LinkSettings
from test_rules_support import BASE_US, run_case

OP = "op_data_load_20251122_082640_1a2b3c4d"
TIMEOUT = "httpx.ReadTimeout: "


def ib_case() -> dict:
    """KTRDR's data load with the IB Gateway down: four 30 s timeouts to the host service,
    whose server spans outlive them; its ib.connect loop in separate one-span traces."""
    spans = [
        {
            "id": "s",
            "name": "data.download",
            "service": "ktrdr-api",
            "dur": 100,
            "attrs": {"operation.id": OP},
        },
        {
            "parent": "s",
            "name": "operation.state_transition",
            "service": "ktrdr-api",
            "start": 1,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "pending",
                "operation.to_status": "running",
            },
        },
    ]
    for i in range(4):
        spans += [
            {
                "id": f"c{i}",
                "parent": "s",
                "name": "POST",
                "kind": "client",
                "service": "ktrdr-api",
                "start": 2 + i * 30_000,
                "dur": 30_000,
                "status": "error",
                "exc": TIMEOUT,
                "attrs": {"http.url": "http://localhost:5001/data/validate"},
            },
            {
                "parent": f"c{i}",
                "name": "POST /data/validate",
                "kind": "server",
                "service": "ktrdr-ib-host-service",
                "start": 3 + i * 30_000,
                "dur": 250_000,
            },
        ]
    spans.append(
        {
            "parent": "s",
            "name": "operation.state_transition",
            "service": "ktrdr-api",
            "start": 120_100,
            "attrs": {
                "operation.id": OP,
                "operation.from_status": "running",
                "operation.to_status": "failed",
                "operation.error": "Host service timeout: 4 attempts",
            },
        }
    )
    refused = {
        "name": "ib.connect",
        "service": "ktrdr-ib-host-service",
        "dur": 5,
        "status": "error",
        "exc": "ConnectionRefusedError: refused",
        "attrs": {
            "ib.host": "127.0.0.1",
            "ib.port": 4002,
            "connection.client_id": 1,
            "connection.status": "error",
        },
    }
    return {
        "operation_id": OP,
        "now_s": 600,
        "spans": spans,
        "neighbours": [{"spans": [{**refused, "start": 10_000 * k}]} for k in (1, 2, 3)],
    }


def test_one_finding_per_fact_with_the_others_in_its_evidence() -> None:
    d = run_case(ib_case())
    assert d.verdict == "service_unreachable"
    verdict_findings = [f for f in d.findings if f.verdict is not None]
    assert [f.rule_id for f in verdict_findings] == ["ib-gateway-refused"]
    also = {a["rule_id"] for a in verdict_findings[0].evidence["also"]}
    assert {
        "ib-host-unreachable",
        "client-no-response",
        "connection-error",
        "operation-failed",
        "error-spans",
    } <= also
    assert {f.rule_id for f in d.fired} >= also  # every rule that fired is still known


def test_evidence_from_another_trace_names_trace_span_and_time() -> None:
    d = run_case(ib_case())
    rc = d.root_cause
    assert rc is not None and rc.neighbour and rc.span_name == "ib.connect"
    assert rc.service == "ktrdr-ib-host-service" and rc.trace_id not in d.trace_ids
    assert rc.time_ms == (BASE_US + 30_000_000) / 1000  # the last refused attempt
    assert d.evidence_trace_ids[0] == rc.trace_id
    finding = d.findings[0]
    assert finding.neighbour and finding.trace_id == rc.trace_id and finding.time_ms
    assert "Gateway at 127.0.0.1:4002" in d.summary and "3 failed ib.connect" in d.summary
    links = build_links(d, LinkSettings())
    assert rc.trace_id in links.traces and rc.span_id in (links.jaeger or "")
    text = render_markdown(d)
    assert f"trace {rc.trace_id}" in text and "outside the operation's traces" in text


def test_work_a_caller_gave_up_on_does_not_stretch_the_operation() -> None:
    d = run_case(ib_case())
    # the failed transition at 120.1 s ends it, not the host service's 250 s server spans
    assert d.duration_ms is not None and 120_000 < d.duration_ms < 121_000


def test_a_bottleneck_share_is_of_the_operation_not_of_work_a_caller_gave_up_on() -> None:
    """The host service answered the four timed-out calls minutes after the data load had
    failed: the four attempts of one call are the operation's 120 s, not 9 % each of a path
    that runs on through that abandoned work (nor 24 % each: run1's load read "POST, 30 s
    (self time 5 ms), 24 %" for time that was all in the four)."""
    d = run_case(ib_case())
    b = d.bottleneck
    assert b is not None and (b.span_name, b.attempts) == ("POST", 4)
    assert b.target == "POST http://localhost:5001/data/validate"
    assert 0.99 < b.share <= 1.0
    assert 119_000 < b.duration_ms < 121_000  # the attempts' own time, not the server spans'
    text = render_markdown(d)
    assert "POST http://localhost:5001/data/validate (ktrdr-api), 4 attempts" in text


def test_only_attempts_of_the_same_call_count_together() -> None:
    """A call to another path is another call: three attempts of /data/validate, not four."""
    case = ib_case()
    for span in case["spans"]:
        if span.get("id") == "c1":
            span["attrs"] = {"http.url": "http://localhost:5001/data/other"}
    d = run_case(case)
    b = d.bottleneck
    assert b is not None and b.attempts == 3 and b.target.endswith("/data/validate")
    assert 0.7 < b.share < 0.8


def test_no_healthy_finding_under_another_verdict() -> None:
    case = {
        "operation_id": "op_backtesting_20251122_082640_1a2b3c4d",
        "baseline_ms": 1_000,
        "spans": [
            {
                "id": "w",
                "name": "POST /backtests/start",
                "kind": "server",
                "service": "ktrdr-backtest-worker-ab",
                "dur": 2,
            },
            {
                "parent": "w",
                "name": "backtest.simulation",
                "service": "ktrdr-backtest-worker-ab",
                "start": 3,
                "dur": 9_000,
            },
            {
                "parent": "w",
                "name": "operation.state_transition",
                "service": "ktrdr-backtest-worker-ab",
                "start": 9_500,
                "attrs": {
                    "operation.id": "op_backtesting_20251122_082640_1a2b3c4d",
                    "operation.from_status": "running",
                    "operation.to_status": "completed",
                },
            },
        ],
    }
    d = run_case(case)
    assert d.verdict == "slow"
    assert all(f.verdict != "healthy" for f in d.findings)
    assert "operation-completed" in {f.rule_id for f in d.fired}


def test_an_operation_whose_last_phase_ended_is_after_it() -> None:
    case = {
        "operation_id": "op_training_20251122_082640_1a2b3c4d",
        "now_s": 400,
        "spans": [
            {
                "id": "w",
                "name": "POST /training/start",
                "kind": "server",
                "service": "ktrdr-training-worker-ab",
                "dur": 2,
            },
            {
                "parent": "w",
                "name": "operation.state_transition",
                "service": "ktrdr-training-worker-ab",
                "start": 3,
                "attrs": {
                    "operation.id": "op_training_20251122_082640_1a2b3c4d",
                    "operation.from_status": "pending",
                    "operation.to_status": "running",
                },
            },
            {
                "parent": "w",
                "name": "training.data_loading",
                "service": "ktrdr-training-worker-ab",
                "start": 10,
                "dur": 200,
            },
        ],
    }
    d = run_case(case)
    assert d.verdict == "stuck"
    # the worker that runs it is named (its address too when a span or a probe gives it)
    assert d.summary == (
        "stuck after training.data_loading on ktrdr-training-worker-ab, quiet for 6.7 min"
    )
    assert "in training.data_loading" not in d.summary


def _rejected_start(server_status: int, exc: str | None) -> dict:
    """``ktrdr train`` of a strategy file that does not exist (run1 802fbf6a): the CLI's POST
    and the backend's server span answer 400 and carry no exception; ``training.start`` under
    them does."""
    handler: dict = {"parent": "srv", "name": "training.start", "service": "ktrdr-api",
                     "start": 2, "dur": 5, "attrs": {"strategy.name": "no_such_strategy"}}
    if exc is not None:
        handler.update(status="error", exc=exc)
    spans = [
        {"id": "cli", "name": "cli.train", "service": "ktrdr-cli", "dur": 40},
        {"id": "post", "parent": "cli", "name": "POST", "kind": "client", "service": "ktrdr-cli",
         "start": 1, "dur": 30, "status": "error",
         "attrs": {"http.method": "POST", "http.url": "http://127.0.0.1:8000/api/v1/trainings/start",
                   "http.status_code": server_status}},
        {"id": "srv", "parent": "post", "name": "POST /api/v1/trainings/start", "kind": "server",
         "service": "ktrdr-api", "start": 1, "dur": 20,
         "attrs": {"http.status_code": server_status}},
        handler,
    ]
    return {"spans": spans}


def test_a_rejected_request_says_the_reason_recorded_below_it() -> None:
    """Every finding on the POSTs named the reason the handler under them recorded; they
    said 'its reason is not in the traces' beside a root cause that quoted it."""
    why = "ktrdr.errors.exceptions.ValidationError: Strategy file not found: no_such_strategy.yaml"
    d = run_case(_rejected_start(400, why))
    assert d.verdict == "invalid_input"
    texts = [d.summary, *(a["summary"] for f in d.findings for a in f.evidence.get("also", ()))]
    said = {f.rule_id: f.summary for f in d.fired}
    for rule in ("start-rejected", "start-rejected-by-backend", "dispatch-refused"):
        assert "(Strategy file not found: no_such_strategy.yaml)" in said[rule], said
    assert not any("not in the traces" in t for t in texts), texts


def test_without_a_recorded_reason_the_finding_says_so() -> None:
    """A 400 from backtests/start leaves no exception anywhere (run1 130b9d9f)."""
    d = run_case(_rejected_start(400, None))
    assert d.verdict == "invalid_input" and "its reason is not in the traces" in d.summary


def test_the_reason_below_is_only_looked_for_under_an_error_answer() -> None:
    from opdiag.diagnosis.evidence import reason_below
    from test_rules_support import build_traces

    (trace,) = build_traces(_rejected_start(200, "ValueError: retried and recovered"))
    server = next(s for s in trace.spans if s.name == "POST /api/v1/trainings/start")
    assert reason_below(server, trace) is None  # answered 200: what failed below was handled
    (trace,) = build_traces(_rejected_start(400, "ValueError: bad dates"))
    server = next(s for s in trace.spans if s.name == "POST /api/v1/trainings/start")
    found = reason_below(server, trace)
    assert found is not None and found.message == "bad dates"
