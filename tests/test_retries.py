"""Failed attempts a retry made good (``analysis.retries``, ``diagnosis.recovered``): KTRDR's
CLI retries a dispatch answered 500/503 and polls again after a poll timed out. When the
same call then succeeds, the earlier failure is history: the operation that ran and completed
is healthy, and the failed attempt stays visible as an advisory finding."""

from __future__ import annotations

import copy
from typing import Any

from opdiag.analysis.retries import retries
from opdiag.model import below
from test_engine import OP, WORKER, backtest_case
from test_rules_support import build_traces, run_case

START_URL = "http://localhost:8000/api/v1/backtests/start"
DEAD_WORKER_URL = "http://backtest-worker-2:5004/backtests/start"


def failed_dispatch(start: float = 0.5, *, url: str = START_URL) -> list[dict[str, Any]]:
    """The CLI's first POST: the backend picked a worker that is gone (ConnectError) and
    answered 500; no operation id exists yet."""
    return [
        {
            "id": "post0",
            "parent": "cli",
            "name": "POST",
            "service": "ktrdr-cli",
            "kind": "client",
            "start": start,
            "dur": 3,
            "status": "error",
            "attrs": {"http.url": url, "http.method": "POST", "http.status_code": 500},
        },
        {
            "id": "srv0",
            "parent": "post0",
            "name": "POST /api/v1/backtests/start",
            "kind": "server",
            "start": start + 0.2,
            "dur": 2.5,
            "status": "error",
            "attrs": {"http.status_code": 500},
        },
        {
            "parent": "srv0",
            "name": "POST",
            "kind": "client",
            "start": start + 0.5,
            "dur": 1,
            "status": "error",
            "attrs": {"http.url": DEAD_WORKER_URL, "http.method": "POST"},
            "exc": "httpx.ConnectError: All connection attempts failed",
        },
    ]


def with_retry(case: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """The backtest case with a failed first dispatch before its successful one."""
    out = copy.deepcopy(case)
    for span in out["spans"]:
        if span.get("id") == "post":
            span.setdefault("attrs", {})["http.method"] = "POST"
    out["spans"] = out["spans"][:1] + failed_dispatch(**kw) + out["spans"][1:]
    return out


def test_a_failed_call_followed_by_the_same_successful_call_is_a_retry() -> None:
    (trace,) = build_traces(with_retry(backtest_case()))
    found = retries(trace, trace.walked())
    assert len(found) == 1
    failed, ok = found[0].failed, found[0].retry
    assert (failed.name, failed.service, failed.attributes["http.status_code"]) == (
        "POST",
        "ktrdr-cli",
        500,
    )
    assert ok.attributes["http.status_code"] == 200 and ok.start_us >= failed.end_us
    below_it = below(trace.children, [failed.span_id])
    assert {trace.by_id[s].name for s in below_it} == {"POST", "POST /api/v1/backtests/start"}
    assert len(below_it) == 3


def test_what_is_not_a_retry() -> None:
    # another URL (the backend sending work elsewhere is its own decision)
    (trace,) = build_traces(with_retry(backtest_case(), url="http://localhost:8000/other"))
    assert retries(trace, trace.walked()) == []
    # a second call that failed too
    case = with_retry(backtest_case())
    for span in case["spans"]:
        if span.get("id") == "post":
            span["status"] = "error"
            span["attrs"]["http.status_code"] = 503
    (trace,) = build_traces(case)
    assert retries(trace, trace.walked()) == []
    # a call that started before the failed one ended is not its retry
    (trace,) = build_traces(with_retry(backtest_case(), start=4))
    assert retries(trace, trace.walked()) == []
    # the same URL is not the same call: another method, span name or service
    for field, value in (("method", "GET"), ("name", "POST retried"), ("service", "other")):
        case = with_retry(backtest_case())
        for span in case["spans"]:
            if span.get("id") == "post":
                if field == "method":
                    span["attrs"]["http.method"] = value
                else:
                    span[field] = value
        (trace,) = build_traces(case)
        assert retries(trace, trace.walked()) == [], field


def test_a_completed_operation_with_a_retried_dispatch_is_healthy() -> None:
    d = run_case(with_retry(backtest_case()))
    assert d.verdict == "healthy", (d.verdict, d.summary)
    assert d.status == "completed" and d.root_cause is None
    advisory = [f for f in d.findings if f.summary.startswith("recovered: ")]
    assert len(advisory) == 1, [f.summary for f in d.findings]
    finding = advisory[0]
    assert finding.verdict is None and finding.severity == "warning"
    assert finding.evidence["recovered_from"] in {"worker_lost", "service_unreachable"}
    assert "succeeded" in finding.summary
    # the dead worker it called is not the one the operation then ran on
    assert "backtest-worker-2:5004" in finding.summary and WORKER not in finding.summary
    # the attempt stays in the flow, marked; the successful dispatch is not marked
    marked = [s for s in d.execution_flow if s.recovered]
    assert len(marked) == 3 and all(s.start_ms < 4 for s in marked)
    assert any(s.error for s in marked)
    assert not any(s.recovered for s in d.execution_flow if s.start_ms >= 5)


def test_without_the_retry_the_same_failure_decides() -> None:
    """The mechanism, not the rules, makes the difference: the failed attempt alone (no
    successful call after it) still decides the verdict."""
    case = with_retry(backtest_case())
    case["spans"] = [s for s in case["spans"] if s.get("id") != "post"]
    for span in case["spans"]:
        if span.get("parent") == "post":
            span["parent"] = "cli"
    d = run_case(case)
    assert d.verdict != "healthy"
    assert not any(s.recovered for s in d.execution_flow)


def test_a_failed_operation_keeps_every_error() -> None:
    """A failed operation's errors are all its story: no attempt is taken as recovered."""
    case = with_retry(backtest_case())
    for span in case["spans"]:
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["attrs"]["operation.to_status"] = "failed"
    d = run_case(case)
    assert d.status == "failed" and d.verdict != "healthy"
    assert not any(s.recovered for s in d.execution_flow)
    assert not any(f.summary.startswith("recovered: ") for f in d.findings)


def test_a_poll_that_timed_out_then_answered_is_not_the_verdict() -> None:
    case = backtest_case()
    for span in case["spans"]:
        if span["name"] == "GET" and span["start"] == 100:
            span["status"] = "error"
            span["attrs"].pop("http.status_code")
            span["exc"] = "httpx.ReadTimeout: timed out"
    d = run_case(case)
    assert d.verdict == "healthy", (d.verdict, d.summary)
    (finding,) = [f for f in d.findings if f.summary.startswith("recovered: ")]
    assert finding.span_name == "GET" and finding.service == "ktrdr-cli"
    assert f"/api/v1/operations/{OP}" in finding.summary


def _cli_gave_up(case: dict[str, Any]) -> dict[str, Any]:
    """The CLI's poll at 1.2 s could not connect (the backend was restarting); the CLI
    stopped following (its command in error, no poll after it). The worker went on."""
    out = copy.deepcopy(case)
    kept = []
    for span in out["spans"]:
        if span["name"] == "GET" and span["start"] > 1_240:
            continue  # no poll after the failed one
        if span["name"] == "GET" and span["start"] == 1_240:
            span["status"] = "error"
            span["attrs"].pop("http.status_code")
            span["exc"] = "httpx.ConnectError: All connection attempts failed"
        if span.get("id") == "cli":
            span["status"] = "error"
            span["exc"] = "httpx.ConnectError: All connection attempts failed"
        kept.append(span)
    out["spans"] = kept
    return out


def test_a_completed_operation_whose_follower_gave_up_is_healthy() -> None:
    """A poll only reads: the CLI giving up on watching is not the operation failing, once
    the worker's own transition says it completed."""
    d = run_case(_cli_gave_up(backtest_case()))
    assert (d.verdict, d.status) == ("healthy", "completed"), d.summary
    (finding,) = [f for f in d.findings if f.summary.startswith("recovered: ")]
    assert "a status read only; the operation completed at" in finding.summary
    marked = {s.span_name for s in d.execution_flow if s.recovered}
    assert marked == {"GET", "cli.backtest"}  # the poll, and the command that gave up


def test_a_follower_that_gave_up_on_an_unfinished_operation_still_decides() -> None:
    case = _cli_gave_up(backtest_case())
    for span in case["spans"]:
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["attrs"]["operation.to_status"] = "running"
    d = run_case({**case, "now_s": 60})
    assert d.verdict != "healthy" and not any(s.recovered for s in d.execution_flow)


def _backend_restarted(*, back: bool) -> dict[str, Any]:
    """The unfinished backtest whose follower gave up at 1.24 s; the polls before it got
    through to the backend (ktrdr-api at localhost:8000 answered them). ``back``: a health
    round of the restarted backend at 3 s, in a trace of its own."""
    case = _cli_gave_up(backtest_case())
    for span in case["spans"]:
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["attrs"]["operation.to_status"] = "running"
    polls = [s for s in case["spans"] if s["name"] == "GET" and s["start"] < 1_240]
    for i, poll in enumerate(polls):
        poll["id"] = f"poll{i}"
        case["spans"].append(
            {
                "parent": f"poll{i}",
                "name": "GET /api/v1/operations/{operation_id}",
                "service": "ktrdr-api",
                "kind": "server",
                "start": poll["start"] + 1,
                "dur": 3,
                "attrs": {"http.status_code": 200},
            }
        )
    if back:
        probe = {
            "name": "GET",
            "service": "ktrdr-api",
            "kind": "client",
            "start": 3_000,
            "dur": 2,
            "attrs": {"http.url": "http://backtest-worker-1:5003/health", "http.status_code": 200},
        }
        case["neighbours"] = [{"spans": [probe]}]
    return {**case, "now_s": 60}


def test_a_follower_that_gave_up_while_the_backend_restarted_is_not_the_verdict() -> None:
    """KTRDR's backend restarted under a running backtest: the CLI's polls were refused and
    it stopped following; the restarted backend's health round at 3 s shows it is back. The
    operation runs on: the refused poll is history, not its verdict."""
    d = run_case(_backend_restarted(back=True))
    assert (d.verdict, d.status) == ("healthy", "running"), d.summary
    (finding,) = [f for f in d.findings if f.summary.startswith("recovered: ")]
    assert "a status read only; ktrdr-api was up again at" in finding.summary
    assert "GET http://backtest-worker-1:5003/health" in finding.summary
    assert {s.span_name for s in d.execution_flow if s.recovered} == {"GET", "cli.backtest"}


def test_a_restarted_backend_has_lost_the_work_it_ran_itself() -> None:
    """KTRDR's backend runs a data load itself (its transitions are the backend's): a new
    backend process answering says the work is gone, not that it went on."""
    case = _backend_restarted(back=True)
    for span in case["spans"]:
        if span["name"] == "operation.state_transition":
            span["service"] = "ktrdr-api"
    d = run_case(case)
    assert d.verdict == "service_unreachable", d.summary
    assert not any(s.recovered for s in d.execution_flow)


def test_a_backend_that_did_not_come_back_still_decides() -> None:
    d = run_case(_backend_restarted(back=False))
    assert d.verdict == "service_unreachable", d.summary
    assert not any(s.recovered for s in d.execution_flow)


def test_the_renderers_show_a_recovered_attempt_as_such() -> None:
    """Markdown's status is OK for a healthy run whose only errors were recovered, and each
    renderer marks the attempt's steps: the flow, the page's waterfall, the MCP steps."""
    from opdiag.mcp_server import _step
    from opdiag.render.markdown import render_markdown
    from opdiag.web.waterfall import _classes

    d = run_case(with_retry(backtest_case()))
    text = render_markdown(d)
    assert "- Status: OK (verdict healthy" in text
    assert "[error, recovered]" in text
    step = next(s for s in d.execution_flow if s.recovered and s.error)
    assert "recovered" in _classes(step).split()
    assert "recovered" in _step(step)["marks"]
    alone = with_retry(backtest_case())  # the attempt without its retry: not recovered
    alone["spans"] = [s for s in alone["spans"] if s.get("id") != "post"]
    for span in alone["spans"]:
        if span.get("parent") == "post":
            span["parent"] = "cli"
    assert "- Status: ERROR" in render_markdown(run_case(alone))


def test_many_failed_calls_under_one_caller_are_grouped_once(monkeypatch) -> None:
    """Ten thousand failed polls under one command: each sibling's call is read once, not
    once per failed call before it (that was quadratic: minutes at 10k)."""
    import opdiag.analysis.retries as module

    n = 3_000
    case = backtest_case()
    case["spans"] = [s for s in case["spans"] if s["name"] != "GET"]
    for i in range(n):
        case["spans"].append(
            {
                "parent": "cli",
                "name": "GET",
                "service": "ktrdr-cli",
                "kind": "client",
                "start": 100 + i * 2,
                "dur": 1,
                "status": "error" if i < n - 1 else "unset",
                "attrs": {"http.url": f"http://localhost:8000/api/v1/operations/{OP}"},
            }
        )
    (trace,) = build_traces(case)
    calls = 0
    real = module.call_key

    def counted(span):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return real(span)

    monkeypatch.setattr(module, "call_key", counted)
    found = retries(trace, trace.walked())
    assert len(found) == n - 1 and all(r.retry is found[0].retry for r in found)
    assert calls <= 2 * (n + 10)


def test_thousands_of_refused_polls_gather_the_polled_service_once(monkeypatch) -> None:
    """A follower that failed every poll while the backend was down: the backend's spans
    are gathered once, not once per failed poll (quadratic on a long outage)."""
    import opdiag.diagnosis.recovered as module

    case = _backend_restarted(back=True)
    refused = next(s for s in case["spans"] if s["name"] == "GET" and s.get("exc"))
    case["spans"].extend(
        {**refused, "id": f"again{i}", "start": refused["start"] + 2 * (i + 1)} for i in range(500)
    )
    gathered = 0
    real = module.chain

    def counted(*parts):  # type: ignore[no-untyped-def]
        nonlocal gathered
        gathered += 1
        return real(*parts)

    monkeypatch.setattr(module, "chain", counted)
    d = run_case(case)
    assert (d.verdict, d.status) == ("healthy", "running"), d.summary
    assert gathered == 1
