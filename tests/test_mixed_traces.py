"""Operations whose own spans do not tell their story alone.

Several operations in one trace: KTRDR's agent research puts its child training into the
trace of ``ktrdr research`` (the trigger request, then the coordinator task), with no parent
link but the trace. The shapes follow KTRDR's code at the recorded commit
(research_worker.py, agent_service.py, operations_service.py): the child's ids sit on the
worker's ``operations.create`` and transitions, its phase spans carry none; the coordinator
carries the research's id and is exported only when no research is left.

An operation quiet in work that emits no span (the training loop), told apart from a stuck
one by its worker's answers to the backend's health checks."""

from __future__ import annotations

from typing import Any

from opdiag.diagnosis.engine import diagnose
from opdiag.diagnosis.rules import load_rules
from opdiag.settings import DiagnosisSettings
from test_engine import snapshot
from test_rules_support import BASE_US, build_traces, run_case

RULES = load_rules()
RESEARCH = "op_agent_research_20261204_162000_c386bbc4"
CHILD = "op_training_20261204_162035_05805975"
WORKER = "ktrdr-training-worker-d97729bc"


def _transition(ident: str, sid: str, parent: str, start: float, to: str, **attrs: Any) -> dict:
    frm = {"running": "pending", "completed": "running", "failed": "running"}[to]
    return {
        "id": sid,
        "parent": parent,
        "name": "operation.state_transition",
        "service": WORKER if ident == CHILD else "ktrdr-api",
        "start": start,
        "attrs": {
            "operation.id": ident,
            "operation.from_status": frm,
            "operation.to_status": to,
            **attrs,
        },
    }


def _child(parent: str | None, *, exc: str | None = None) -> list[dict[str, Any]]:
    """The backend's ``training.start`` under ``parent`` and the worker's whole subtree:
    44.3 s from the dispatch to the last transition, 43 s of it the span-less loop."""
    ts: dict[str, Any] = {"id": "ts", "name": "training.start", "start": 35_000, "dur": 140}
    if parent is not None:
        ts["parent"] = parent
    load: dict[str, Any] = {
        "id": "load",
        "parent": "srv",
        "name": "training.data_loading",
        "service": WORKER,
        "start": 36_000,
        "dur": 235,
        "attrs": {"data.symbol": "ZZZZ" if exc else "EURUSD", "data.timeframes": "1h"},
    }
    end: dict[str, Any] = (
        _transition(CHILD, "wend", "srv", 36_300, "failed", **{"operation.error": exc})
        if exc
        else _transition(CHILD, "wend", "srv", 79_300, "completed")
    )
    if exc:
        load["exc"] = f"DataNotFoundError: {exc}"
        load["status"] = "error"
    return [
        ts,
        {"id": "wl", "parent": "ts", "name": "workers.list", "start": 35_040},
        {
            "id": "post",
            "parent": "ts",
            "name": "POST",
            "kind": "client",
            "start": 35_100,
            "dur": 6,
            "attrs": {"http.url": "http://127.0.0.1:5005/training/start", "http.status_code": 200},
        },
        {
            "id": "srv",
            "parent": "post",
            "name": "POST /training/start",
            "service": WORKER,
            "kind": "server",
            "start": 35_102,
            "dur": 2,
            "attrs": {"http.status_code": 200},
        },
        {
            "id": "wcreate",
            "parent": "srv",
            "name": "operations.create",
            "service": WORKER,
            "start": 35_103,
            "dur": 170,
            "attrs": {"operation.id": CHILD},
        },
        _transition(CHILD, "wrun", "srv", 35_300, "running"),
        load,
        end,
    ]


def _trigger(root: str | None) -> list[dict[str, Any]]:
    trig: dict[str, Any] = {"id": "trig", "name": "agent.trigger", "start": 100, "dur": 80}
    if root is not None:
        trig["parent"] = root
    return [
        trig,
        {"id": "create", "parent": "trig", "name": "operations.create", "start": 110, "dur": 3},
        {
            "id": "reg",
            "parent": "create",
            "name": "operation.register",
            "start": 111,
            "attrs": {"operation.id": RESEARCH, "operation.type": "agent_research"},
        },
        _transition(RESEARCH, "rrun", "trig", 150, "running"),
    ]


def _finished(exc: str | None = None) -> dict[str, Any]:
    """A research that is over: the CLI's span, the trigger, the exported coordinator."""
    done = 46_000 if exc else 124_000
    return {
        "spans": [
            {"id": "cli", "name": "cli.research", "service": "ktrdr-cli", "dur": done + 1_000},
            *_trigger("cli"),
            {
                "id": "coord",
                "parent": "trig",
                "name": "agent.coordinator",
                "start": 170,
                "dur": done + 500,
                "attrs": {"operation.type": "coordinator", "operation.id": RESEARCH},
            },
            *_child("coord", exc=exc),
            _transition(RESEARCH, "rend", "coord", done, "failed" if exc else "completed"),
        ]
    }


def test_a_child_training_is_its_dispatch_and_the_workers_spans_not_the_research() -> None:
    d = run_case({**_finished(), "operation_id": CHILD})
    assert d.verdict == "healthy" and d.status == "completed"
    assert d.duration_ms == 44_301  # training.start to its last transition, not 124 s
    names = [s.span_name for s in d.execution_flow]
    # the worker's phase carries no id: it is the child's all the same
    assert "training.data_loading" in names and "workers.list" in names
    assert d.services == ["ktrdr-api", WORKER]  # not the CLI that started the research
    b = d.bottleneck
    assert b is not None and b.kind == "gap" and b.after_span_name == "training.data_loading"
    assert b.service == WORKER


def test_a_child_that_failed_points_at_its_phase() -> None:
    d = run_case({**_finished(exc="No data found in cache for ZZZZ 1h"), "operation_id": CHILD})
    assert d.verdict == "data_missing"
    assert d.root_cause is not None and d.root_cause.span_name == "training.data_loading"
    assert d.duration_ms == 1_301


def test_the_research_holds_its_child_and_its_coordinator() -> None:
    d = run_case({**_finished(), "operation_id": RESEARCH})
    assert d.verdict == "healthy" and d.status == "completed"
    assert d.operation_type == "agent_research"
    # from its creation: the trigger and the CLI's span above it hold the child too
    assert d.started_at_ms == (BASE_US // 1000) + 110
    assert "training.data_loading" in [s.span_name for s in d.execution_flow]


def test_a_research_is_not_stuck_while_its_trace_moves() -> None:
    """In flight, the coordinator is not exported: its polls and the child's dispatch hang
    from a parent the trace does not hold, and the research's own spans end at the trigger."""
    polls = [
        {"name": "operations.list", "start": 5_000 * i + 200, "attrs": {}} for i in range(1, 85)
    ]
    case = {"spans": [*_trigger(None), *_child(None)[:-1], *polls], "operation_id": RESEARCH}
    moving = run_case({**case, "now_s": 425})
    assert moving.verdict == "healthy" and moving.status == "running"
    quiet = run_case({**case, "now_s": 1_000})  # nothing since 420 s
    assert quiet.verdict == "stuck"
    child = run_case({**case, "operation_id": CHILD, "now_s": 425})
    assert child.verdict == "healthy" and child.status == "running"
    assert "after training.data_loading" in child.summary


def test_diagnosing_one_operation_of_a_trace_leaves_it_as_it_was() -> None:
    """A listing diagnoses every operation of a shared trace from the same objects: the
    child's own part of the trace must not re-parent the research's spans."""
    traces = build_traces(_finished())
    before = snapshot(traces)
    now = max(t.end_us for t in traces) + 1_000_000

    def one(ident: str) -> Any:
        return diagnose(
            traces,
            ident=ident,
            operation_id=ident,
            rules=RULES,
            settings=DiagnosisSettings(),
            now_us=now,
        )

    research = one(RESEARCH)
    one(CHILD)
    assert snapshot(traces) == before
    again = one(RESEARCH)
    assert again.started_at_ms == research.started_at_ms
    assert again.duration_ms == research.duration_ms
    assert [s.span_id for s in again.execution_flow] == [s.span_id for s in research.execution_flow]


# --- a quiet operation whose worker answers -------------------------------------------------


def _unfollowed_training(probes_until_s: int) -> dict[str, Any]:
    """``ktrdr train`` without ``--follow``: the dispatch, then the worker's spans until its
    span-less loop (after 1.3 s nothing of the operation), and the backend's health checks
    of the worker every 10 s up to ``probes_until_s``."""
    spans = [s for s in _child(None) if s["id"] != "wend"]
    for s in spans:  # 35 s earlier: the dispatch at 0
        s["start"] = float(s.get("start", 0)) - 35_000
    checks = []
    for i in range(1, probes_until_s // 10 + 1):
        checks.append(
            {
                "spans": [
                    {
                        "id": "g",
                        "name": "GET",
                        "kind": "client",
                        "start": i * 10_000,
                        "dur": 3,
                        "attrs": {
                            "http.url": "http://127.0.0.1:5005/health",
                            "http.status_code": 200,
                        },
                    },
                    {
                        "parent": "g",
                        "name": "GET /health",
                        "service": WORKER,
                        "kind": "server",
                        "start": i * 10_000 + 1,
                        "dur": 1,
                    },
                ]
            }
        )
    return {"operation_id": CHILD, "spans": spans, "neighbours": checks}


def test_a_quiet_training_whose_worker_answers_is_running_not_stuck() -> None:
    """KTRDR's training loop emits no span: quiet for 6.6 min is a long training, not a stuck
    one, while its worker answers the health checks. Once nothing answers for the stuck
    threshold (the recording, or the worker's answers, stopped), or once it has been quiet
    for longer than a training may take, it is stuck."""
    alive = run_case({**_unfollowed_training(400), "now_s": 400})
    assert (alive.verdict, alive.status) == ("healthy", "running"), alive.summary
    assert "after training.data_loading" in alive.summary and WORKER in alive.summary
    unwatched = run_case({**_unfollowed_training(0), "now_s": 400})
    assert unwatched.verdict == "stuck", unwatched.summary
    stopped = run_case({**_unfollowed_training(90), "now_s": 400})  # last answer 310 s ago
    assert stopped.verdict == "stuck", stopped.summary
    # quiet for longer than a training may take (its budget, 1 h): a loop that hangs while
    # the worker's API answers
    hung = run_case({**_unfollowed_training(3_700), "now_s": 3_700})
    assert hung.verdict == "stuck", hung.summary
    assert run_case({**_unfollowed_training(3_500), "now_s": 3_500}).verdict == "healthy"


def test_a_child_quiet_past_its_budget_is_stuck_though_its_research_polls_on() -> None:
    """The coordinator polls for as long as it waits: that keeps a quiet child running only
    up to its type's budget (training: 1 h), as its worker's answers do."""
    polls = [
        {"name": "operations.list", "start": 5_000 * i + 200, "attrs": {}} for i in range(1, 2_200)
    ]
    case = {"spans": [*_trigger(None), *_child(None)[:-1], *polls], "operation_id": CHILD}
    assert run_case({**case, "now_s": 3_000}).verdict == "healthy"
    hung = run_case({**case, "now_s": 10_900})
    assert hung.verdict == "stuck", hung.summary


def test_context_is_told_apart_per_trace() -> None:
    """Span ids are unique within a trace only: a context span of one trace must not hide
    the span of another trace that shares its id (here the child's completion)."""
    finished = _finished()
    finished["spans"] = [s for s in finished["spans"] if s["id"] not in ("wend", "rend")]
    done = _transition(CHILD, "wend", "x", 79_300, "completed")
    del done["parent"]
    case = {"traces": [finished, {"spans": [done]}], "operation_id": CHILD}
    d = run_case({**case, "now_s": 200})
    assert (d.verdict, d.status) == ("healthy", "completed"), d.summary
