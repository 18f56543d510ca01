"""Grouping traces into operations: multi-trace, multi-operation, failed dispatch, noise."""

from __future__ import annotations

from opdiag.model import CHILD_OF, CLIENT, SERVER, Reference, Span, Trace, build_trace
from opdiag.operations import (
    find_operation,
    group_operations,
    is_noise_span,
    last_status,
    operation_id_of,
    operation_read,
    operation_route,
    type_from_id,
)

OP_BT = "op_backtesting_20251122_101500_1a2b3c4d"
OP_TR = "op_training_20251122_101600_aaaabbbb"
OP_AGENT = "op_agent_research_20251122_090000_cafebabe"
T0 = 1_763_806_500_000_000


def span(
    trace: str,
    sid: str,
    name: str,
    service: str = "ktrdr-api",
    *,
    parent: str | None = None,
    start: int = 0,
    dur: int = 1_000,
    kind: str = "internal",
    **attrs: object,
) -> Span:
    refs = [Reference(CHILD_OF, trace, parent)] if parent else []
    return Span(
        trace_id=trace,
        span_id=sid,
        name=name,
        service=service,
        start_us=T0 + start,
        duration_us=dur,
        kind=kind,
        attributes=dict(attrs),
        references=refs,
    )


def trace(tid: str, *spans: Span) -> Trace:
    return build_trace(tid, list(spans))


def keys(groups) -> list[str]:
    return sorted(g.key for g in groups)


def cli_trace(tid: str = "a" * 32) -> Trace:
    return trace(
        tid,
        span(tid, "c1", "cli.backtest", "ktrdr-cli", dur=5_000, **{"operation.id": OP_BT}),
        span(tid, "c2", "POST", "ktrdr-cli", parent="c1", kind=CLIENT, dur=900),
        span(tid, "c3", "POST /api/v1/backtests/start", parent="c2", kind=SERVER, dur=800,
             **{"http.status_code": 200}),
    )


def worker_trace(tid: str = "b" * 32, start: int = 10_000) -> Trace:
    svc = "ktrdr-backtest-worker-1a2b"
    return trace(
        tid,
        span(tid, "w1", "POST /backtests/start", svc, kind=SERVER, start=start, dur=100),
        span(tid, "w2", "operations.create", svc, parent="w1", start=start + 10,
             **{"operation.id": OP_BT}),
        span(tid, "w3", "backtest.data_loading", svc, parent="w1", start=start + 50,
             dur=40_000),
    )


def test_one_operation_across_cli_and_worker_traces():
    groups = group_operations([cli_trace(), worker_trace()])
    assert keys(groups) == [OP_BT]
    (group,) = groups
    assert group.operation_id == OP_BT
    assert group.trace_ids == ["a" * 32, "b" * 32]  # in start order
    assert group.operation_type == "backtesting"  # from the id pattern
    assert group.start_us == T0
    assert group.end_us == T0 + 10_050 + 40_000
    assert group.alone


def test_coordinator_trace_belongs_to_every_operation_it_holds():
    tid = "c" * 32
    coordinator = trace(
        tid,
        span(tid, "r", "agent.coordinator", dur=100_000, **{"operation.type": "coordinator"}),
        span(tid, "p1", "agent.phase.training", parent="r", **{"operation.id": OP_AGENT}),
        span(tid, "t1", "training.data_loading", "ktrdr-training-worker-9", parent="p1",
             **{"operation.id": OP_TR, "operation.type": "training"}),
    )
    groups = group_operations([coordinator])
    assert keys(groups) == sorted([OP_AGENT, OP_TR])
    by_key = {g.key: g for g in groups}
    assert by_key[OP_TR].operation_type == "training"
    assert by_key[OP_AGENT].operation_type == "agent_research"
    assert all(g.trace_ids == [tid] for g in groups)
    assert not any(g.alone for g in groups)  # they share a trace


def test_failed_dispatch_without_operation_id_is_keyed_by_trace():
    tid = "d" * 32
    dispatch = trace(
        tid,
        span(tid, "s1", "POST /api/v1/backtests/start", kind=SERVER,
             **{"http.status_code": 503}),
        span(tid, "s2", "workers.select", parent="s1",
             **{"worker.type": "backtesting", "worker.total_workers": "0",
                "worker.capable_workers": "0", "worker.available_workers": "0",
                "worker.selection_status": "no_workers_available"}),
    )
    (group,) = group_operations([dispatch])
    assert group.key == tid
    assert group.operation_id is None
    assert group.operation_type == "backtesting"


def test_documented_selection_dialect_without_error_is_a_failed_dispatch():
    tid = "e" * 32
    dispatch = trace(
        tid,
        span(tid, "s1", "worker_registry.select_worker",
             **{"worker_registry.available_workers": 0,
                "worker_registry.selection_status": "NO_CAPABLE_WORKERS"}),
    )
    assert keys(group_operations([dispatch])) == [tid]


def test_failed_cli_command_without_id_is_an_operation():
    tid = "f" * 32
    failed = trace(
        tid,
        span(tid, "c1", "cli.train", "ktrdr-cli", **{"otel.status_code": "ERROR"}),
        span(tid, "c2", "POST", "ktrdr-cli", parent="c1", kind=CLIENT,
             **{"http.url": "http://backend:8000/api/v1/trainings/start", "error": True}),
    )
    (group,) = group_operations([failed])
    assert group.key == tid
    assert group.operation_type == "training"


def test_successful_request_without_id_is_not_an_operation():
    tid = "1" * 32
    ok = trace(tid, span(tid, "x", "GET /api/v1/data/{symbol}/{timeframe}", kind=SERVER,
                         **{"http.status_code": 200}))
    assert group_operations([ok]) == []


def test_noise_traces_are_not_operations():
    t1, t2, t3, t4 = ("2" * 32, "3" * 32, "4" * 32, "5" * 32)
    health = trace(t1, span(t1, "h", "GET /health", "ktrdr-backtest-worker-1", kind=SERVER),
                   span(t1, "h2", "operations.list", "ktrdr-backtest-worker-1", parent="h"))
    metrics = trace(t2, span(t2, "m", "GET /metrics/", kind=SERVER))
    # Polling names the operation, but polling is not activity of the operation.
    poll = trace(
        t3,
        span(t3, "p", "GET /api/v1/operations/{operation_id}", kind=SERVER),
        span(t3, "p2", "GET", parent="p", kind=CLIENT,
             **{"http.url": "http://w:5003/api/v1/operations/" + OP_BT}),
        span(t3, "p3", "operations.get", "ktrdr-backtest-worker-1", parent="p2",
             **{"operation.id": OP_BT}),
    )
    probe = trace(t4, span(t4, "g", "GET", kind=CLIENT, **{"http.url": "http://w:5003/health",
                                                           "error": True}))
    assert group_operations([health, metrics, poll, probe]) == []


def test_polling_does_not_extend_the_operation():
    poll_tid = "6" * 32
    poll = trace(
        poll_tid,
        span(poll_tid, "p", "cli.status", "ktrdr-cli", start=900_000_000,
             **{"operation.id": OP_BT}),
    )
    (group,) = group_operations([worker_trace(), poll])
    assert poll_tid not in group.trace_ids


def test_ktrdr_none_string_is_not_an_operation_id():
    tid = "7" * 32
    s = span(tid, "x", "operations.create", **{"operation.id": "None"})
    assert operation_id_of(s) is None
    assert group_operations([trace(tid, s)]) == []


def test_type_guess_from_ids():
    assert type_from_id(OP_BT) == "backtesting"
    assert type_from_id("op_agent_research_20251122_090000_cafebabe") == "agent_research"
    assert type_from_id("op_x_data_load_20251122_090000_cafebabe") == "data_load"
    assert type_from_id("worker_training_0123456789ab") == "training"
    assert type_from_id("something-else") is None


def test_noise_span_patterns():
    tid = "8" * 32
    assert is_noise_span(span(tid, "a", "POST /api/v1/backtests/start http send"))
    assert is_noise_span(span(tid, "b", "GET", kind=CLIENT,
                              **{"http.url": "http://x:8000/api/v1/operations/op_1"}))
    assert not is_noise_span(span(tid, "c", "backtest.data_loading"))
    assert is_noise_span(span(tid, "d", "my.poll"), extra_patterns=["my.*"])


def test_newest_first_and_find_operation_by_trace_id():
    other = worker_trace("9" * 32, start=50_000_000)
    other.spans[1].attributes["operation.id"] = OP_TR
    groups = group_operations([cli_trace(), worker_trace(), build_trace("9" * 32, other.spans)])
    assert [g.key for g in groups] == [OP_TR, OP_BT]
    assert find_operation(groups, OP_BT).key == OP_BT
    assert find_operation(groups, "b" * 32).key == OP_BT  # a trace of a one-operation trace
    assert find_operation(groups, "0" * 32) is None


def test_last_status_is_the_latest_own_transition():
    tid = "a" * 32
    tr = trace(
        tid,
        span(tid, "1", "operation.state_transition", start=10,
             **{"operation.id": OP_BT, "operation.to_status": "running"}),
        span(tid, "2", "operation.state_transition", start=20,
             **{"operation.id": OP_BT, "operation.to_status": "completed"}),
        span(tid, "3", "operation.state_transition", start=30,
             **{"operation.id": OP_TR, "operation.to_status": "failed"}),
    )
    by_key = {g.key: g for g in group_operations([tr])}
    assert last_status(by_key[OP_BT]) == "completed"
    assert last_status(by_key[OP_TR]) == "failed"


def _refused_resume(tid: str, op_id: str) -> Trace:
    """``ktrdr resume`` answered 409: ``cli.resume`` carries no id and no transition came."""
    url = f"http://127.0.0.1:8000/api/v1/operations/{op_id}/resume"
    return trace(
        tid,
        span(tid, "r1", "cli.resume", "ktrdr-cli", start=90_000, dur=400),
        span(tid, "r2", "POST", "ktrdr-cli", parent="r1", kind=CLIENT, start=90_010, dur=300,
             **{"http.url": url, "http.status_code": 409, "error": True}),
        span(tid, "r3", "POST /api/v1/operations/{operation_id}/resume", parent="r2",
             kind=SERVER, start=90_020, dur=200,
             **{"http.url": url, "http.status_code": 409}),
    )


def test_a_refused_call_that_names_an_operation_in_its_url_is_that_operations():
    """Not a failed dispatch of its own in the list: the engine leaves it out of the
    operation with a warning (diagnosis.resumes)."""
    groups = group_operations([cli_trace(), _refused_resume("b" * 32, OP_BT)])
    assert keys(groups) == [OP_BT]
    assert {t.trace_id for t in groups[0].traces} == {"a" * 32, "b" * 32}
    alone = group_operations([_refused_resume("c" * 32, "not_an_operation_id")])
    assert keys(alone) == ["c" * 32]  # a failed dispatch of its own, as before


def test_a_refused_resume_without_its_operations_traces_is_a_row_of_its_own():
    """The operation completed before the listing's window: the refusal alone must not turn
    its row into a failure; it stays a failed request keyed by its trace, as before."""
    alone = group_operations([_refused_resume("d" * 32, OP_BT)])
    assert keys(alone) == ["d" * 32]
    both = group_operations([_refused_resume("e" * 32, OP_BT), cli_trace()])  # either order
    assert keys(both) == [OP_BT]


def test_operation_route_names_the_id_and_the_route_below_it() -> None:
    """One parse of an operation's path for its three readers: a status read is the id
    alone, a resume names ``/resume``, the backend's reads from a worker take any route."""
    op = "op_training_20261204_154305_f6579e1a"
    assert operation_route(f"/api/v1/operations/{op}") == (op, "")
    assert operation_route(f"/api/v1/operations/{op}/") == (op, "")
    assert operation_route(f"/api/v1/operations/{op}/resume") == (op, "/resume")
    assert operation_route(f"http://127.0.0.1:5003/api/v1/operations/{op}/metrics?x=1") == (
        op,
        "/metrics",
    )
    assert operation_route("/api/v1/operations/") is None
    assert operation_route("/api/v1/health") is None
    # what reads and resumes make of the route
    def server(path: str) -> Span:
        return Span("t", "s", "GET", "ktrdr-api", 0, 1, SERVER, {"http.target": path})

    assert operation_read(server(f"/api/v1/operations/{op}")) == op
    assert operation_read(server(f"/api/v1/operations/{op}/metrics")) is None
    assert operation_read(server("/api/v1/operations/not-an-id")) is None
