"""Evidence from neighbouring traces: health-check probes, the workers an operation depended
on, and whether they stopped answering (opdiag.diagnosis.neighbour_spec, probes, neighbours)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from opdiag.diagnosis.neighbour_spec import HealthCheck, NeighbourSpec, merge_specs
from opdiag.diagnosis.neighbours import WorkerAssessment, assess_workers, clock_text
from opdiag.diagnosis.probes import WorkerView, address_of, probes_of, same_place
from opdiag.diagnosis.rules import load_rules
from opdiag.model import CHILD_OF, Event, Reference, Span, SpanQuery, Trace, build_trace

S = 1_000_000
T0 = 1_763_800_000 * S
CHECKS = (HealthCheck("ktrdr-api", "GET", re.compile(r"/health$")),)
SPEC = NeighbourSpec(
    health_checks=CHECKS,
    spans=(SpanQuery("ktrdr-ib-host-service", "ib.connect"),),
    workers=(("training", ("ktrdr-training-worker-*",)), ("backtesting", ("bt-*",))),
)
_ids = iter(range(1, 10_000))


def _trace(*spans: dict[str, Any]) -> Trace:
    trace_id = f"{next(_ids):032x}"
    ids: dict[str, str] = {}
    built = []
    for raw in spans:
        sid = f"{next(_ids):016x}"
        ids[raw.get("id", sid)] = sid
        span = Span(
            trace_id=trace_id,
            span_id=sid,
            name=raw["name"],
            service=raw["service"],
            start_us=T0 + int(raw.get("at", 0) * S),
            duration_us=int(raw.get("dur", 0.01) * S),
            kind=raw.get("kind", "internal"),
            attributes=dict(raw.get("attrs", {})),
            status=raw.get("status", "unset"),
        )
        if "parent" in raw:
            span.references.append(Reference(CHILD_OF, trace_id, ids[raw["parent"]]))
        built.append(span)
    return build_trace(trace_id, built)


def probe(at: float, port: int, ok: bool, answered_by: str = "ktrdr-training-worker-aa") -> Trace:
    url = {"http.url": f"http://127.0.0.1:{port}/health"}
    if ok:
        return _trace(
            {
                "id": "p",
                "name": "GET",
                "service": "ktrdr-api",
                "kind": "client",
                "at": at,
                "attrs": {**url, "http.status_code": 200},
            },
            {
                "name": "GET /health",
                "service": answered_by,
                "kind": "server",
                "at": at,
                "parent": "p",
            },
        )
    return _trace(
        {
            "name": "GET",
            "service": "ktrdr-api",
            "kind": "client",
            "at": at,
            "status": "error",
            "attrs": url,
        }
    )


def dispatched_training(port: int = 5005) -> list[tuple[Trace, list[tuple[Span, int]]]]:
    trace = _trace(
        {
            "id": "d",
            "name": "POST",
            "service": "ktrdr-api",
            "kind": "client",
            "at": 0,
            "attrs": {"http.url": f"http://127.0.0.1:{port}/training/start"},
        },
        {
            "name": "POST /training/start",
            "service": "ktrdr-training-worker-aa",
            "kind": "server",
            "at": 0.001,
            "parent": "d",
        },
    )
    return [(trace, trace.walk_list())]


def test_addresses_are_host_and_port_and_loopback_is_one_place() -> None:
    assert address_of("http://127.0.0.1:5003/health") == "127.0.0.1:5003"
    assert address_of("https://Worker-1/health") == "worker-1:443"
    assert address_of("not a url") is None and address_of(42) is None
    assert same_place("localhost:5003") == same_place("127.0.0.1:5003") == "127.0.0.1:5003"
    assert same_place("worker-1:5003") == "worker-1:5003"


def test_probes_are_read_from_health_checks_only() -> None:
    other = _trace(
        {
            "name": "GET",
            "service": "ktrdr-api",
            "kind": "client",
            "attrs": {"http.url": "http://127.0.0.1:5005/api/v1/operations/x"},
        }
    )
    found = probes_of([probe(1, 5005, True), probe(11, 5005, False), other], CHECKS)
    assert [(p.ok, p.address, p.answered_by) for p in found] == [
        (True, "127.0.0.1:5005", "ktrdr-training-worker-aa"),
        (False, "127.0.0.1:5005", None),
    ]


def test_silence_is_the_failing_run_that_nothing_answered_after() -> None:
    view = WorkerView.of(
        probes_of([probe(0, 5005, True), probe(10, 5005, False), probe(20, 5005, False)], CHECKS)
    )
    silence = view.silent("localhost:5005", T0, T0 + 30 * S)
    assert silence is not None and silence.failed == 2
    assert silence.since.time_us == T0 + 10 * S and silence.last_ok_us == T0
    # judged before the first failure: nothing is silent yet
    assert view.silent("127.0.0.1:5005", T0, T0 + 5 * S) is None
    # a probe answered after the failures clears the silence
    back = WorkerView.of(probes_of([probe(10, 5005, False), probe(20, 5005, True)], CHECKS))
    assert back.silent("127.0.0.1:5005", T0, T0 + 30 * S) is None


def test_dead_at_a_moment_needs_the_last_probe_failed_and_no_answer_right_after() -> None:
    view = WorkerView.of(
        probes_of(
            [probe(0, 5003, True, "bt-1"), probe(10, 5003, False), probe(20, 5003, False)], CHECKS
        )
    )
    assert view.dead_at("127.0.0.1:5003", T0 + 15 * S, 10 * S) is not None
    # the probe just before the moment answered: alive (busy), whatever follows
    assert view.dead_at("127.0.0.1:5003", T0 + 5 * S, 10 * S) is None
    flaky = WorkerView.of(
        probes_of([probe(10, 5003, False), probe(20, 5003, True, "bt-1")], CHECKS)
    )
    assert flaky.dead_at("127.0.0.1:5003", T0 + 15 * S, 10 * S) is None


def _training_judged_at_a_minute(around: list[Trace]) -> WorkerAssessment:
    """The dispatched training's workers, judged a minute in with ``around`` as neighbours."""
    return assess_workers(
        dispatched_training(),
        around,
        SPEC,
        operation_type="training",
        start_us=T0,
        judge_until_us=T0 + 60 * S,
        now_us=T0 + 60 * S,
        settled=False,
    )


def test_a_worker_that_ran_the_operation_and_went_silent_is_lost() -> None:
    around = [probe(-5, 5005, True), probe(5, 5005, False), probe(15, 5005, False)]
    found = _training_judged_at_a_minute(around)
    assert found.ran and found.lost is not None and found.capable_lost is None
    assert found.worker is not None and found.worker.service == "ktrdr-training-worker-aa"
    values = found.values("training")
    assert values["worker.address"] == "127.0.0.1:5005" and values["worker.failed_checks"] == 2
    assert values["worker.since"].endswith("UTC")


def test_a_settled_operation_loses_no_worker() -> None:
    around = [probe(5, 5005, False)]
    found = assess_workers(
        dispatched_training(),
        around,
        SPEC,
        operation_type="training",
        start_us=T0,
        judge_until_us=T0 + 60 * S,
        now_us=T0 + 60 * S,
        settled=True,
    )
    assert found.ran and found.lost is None


def test_a_request_that_reached_no_worker_is_judged_on_the_capable_workers() -> None:
    request = _trace(
        {
            "name": "POST /api/v1/backtests/start",
            "service": "ktrdr-api",
            "kind": "server",
            "at": 30,
            "attrs": {"http.status_code": 503},
        }
    )
    own = [(request, request.walk_list())]
    dead = [probe(5, 5003, True, "bt-1"), probe(15, 5003, False), probe(25, 5003, False)]
    found = assess_workers(
        own,
        dead,
        SPEC,
        operation_type="backtesting",
        start_us=T0 + 30 * S,
        judge_until_us=T0 + 30 * S,
        now_us=T0 + 60 * S,
        settled=False,
    )
    assert not found.ran and found.capable_lost is not None
    assert found.worker is not None and found.worker.service == "bt-1"
    alive = [probe(25, 5003, True, "bt-1")]
    busy = assess_workers(
        own,
        alive,
        SPEC,
        operation_type="backtesting",
        start_us=T0 + 30 * S,
        judge_until_us=T0 + 30 * S,
        now_us=T0 + 60 * S,
        settled=False,
    )
    assert busy.capable_lost is None and busy.capable == ("127.0.0.1:5003",)
    # a dead worker of another type does not count
    other = [probe(5, 5005, True), probe(25, 5005, False)]
    none = assess_workers(
        own,
        other,
        SPEC,
        operation_type="backtesting",
        start_us=T0 + 30 * S,
        judge_until_us=T0 + 30 * S,
        now_us=T0 + 60 * S,
        settled=False,
    )
    assert none.capable_lost is None and none.capable == ()


def test_a_dispatch_that_never_arrived_names_the_worker_but_is_left_to_the_rules() -> None:
    refused = _trace(
        {
            "name": "POST",
            "service": "ktrdr-api",
            "kind": "client",
            "at": 0,
            "status": "error",
            "attrs": {"http.url": "http://127.0.0.1:5003/backtests/start"},
        }
    )
    own = [(refused, refused.walk_list())]
    around = [probe(-5, 5003, True, "bt-1"), probe(5, 5003, False)]
    found = assess_workers(
        own,
        around,
        SPEC,
        operation_type="backtesting",
        start_us=T0,
        judge_until_us=T0 + 1 * S,
        now_us=T0 + 60 * S,
        settled=False,
    )
    assert found.worker is not None and found.worker.service == "bt-1"
    assert not found.ran and found.lost is None and found.capable_lost is None


def test_the_window_never_reaches_past_now_and_specs_merge() -> None:
    lo, hi = SPEC.window(T0, T0 + 10 * S, T0 + 20 * S)
    assert lo == T0 - int(SPEC.before_s * S) and hi == T0 + 20 * S + 1
    pack = NeighbourSpec(margins=(("before_s", 420.0), ("after_s", 5.0)), health_checks=CHECKS)
    user = NeighbourSpec(margins=(("before_s", 30.0),), workers=(("training", ("gpu-*",)),))
    merged = merge_specs([SPEC, pack, user])
    assert (merged.before_s, merged.after_s, merged.max_traces) == (30, 5, 500)
    assert merged.worker_globs("training") == ("ktrdr-training-worker-*", "gpu-*")
    assert {(q.service, q.span) for q in merged.queries} == {
        ("ktrdr-api", "GET"),
        ("ktrdr-ib-host-service", "ib.connect"),
    }


def failed_probe(at: float, port: int, error: str) -> Trace:
    """A probe that failed with ``error`` (an exception type, e.g. ``httpx.ConnectError``)."""
    trace = probe(at, port, False)
    trace.spans[0].events.append(
        Event(
            time_us=trace.spans[0].start_us, name="exception", attributes={"exception.type": error}
        )
    )
    return trace


def _assess(around: list[Trace], *, until: float = 60, settled: bool = False) -> WorkerAssessment:
    return assess_workers(
        dispatched_training(),
        around,
        SPEC,
        operation_type="training",
        start_us=T0,
        judge_until_us=T0 + int(until * S),
        now_us=T0 + int(until * S),
        settled=settled,
    )


def test_a_worker_whose_address_answers_as_another_instance_was_replaced() -> None:
    """A restarted KTRDR worker gets a new random id (service name): the process that held
    the operation is gone although its address answers again."""
    around = [
        probe(-5, 5005, True),
        failed_probe(5, 5005, "httpx.ConnectError"),
        probe(15, 5005, True, "ktrdr-training-worker-bb"),
    ]
    found = _assess(around)
    assert found.lost is None and found.replaced is not None
    assert found.replaced.by == "ktrdr-training-worker-bb" and found.replaced.failed == 1
    assert found.first_sign is not None and found.first_sign.time_us == T0 + 5 * S
    values = found.values("training")
    assert values["worker.replaced_by"] == "ktrdr-training-worker-bb"
    # even without a failed probe between (restarted within one health-check interval)
    quick = _assess([probe(-5, 5005, True), probe(15, 5005, True, "ktrdr-training-worker-bb")])
    assert quick.replaced is not None and quick.replaced.since.time_us == T0 + 15 * S


def test_refused_then_answered_by_the_same_id_is_a_restart_but_a_timeout_is_not() -> None:
    restarted = _assess([failed_probe(5, 5005, "httpx.ConnectError"), probe(15, 5005, True)])
    assert restarted.replaced is not None and restarted.replaced.by is None
    busy = _assess([failed_probe(5, 5005, "httpx.ReadTimeout"), probe(15, 5005, True)])
    assert busy.replaced is None and busy.lost is None
    # judged before the answer: still silent (lost), not replaced
    silent = _assess([failed_probe(5, 5005, "httpx.ConnectError"), probe(15, 5005, True)], until=10)
    assert silent.lost is not None and silent.replaced is None
    # a completed or cancelled operation keeps no worker story
    assert (
        _assess([probe(15, 5005, True, "ktrdr-training-worker-bb")], settled=True).replaced is None
    )


def test_a_worker_that_reported_on_the_operation_after_the_refusal_was_not_replaced() -> None:
    ((trace, walk),) = dispatched_training()
    late = _trace(
        {"name": "training.data_loading", "service": "ktrdr-training-worker-aa", "at": 30}
    )
    found = assess_workers(
        [(trace, walk), (late, late.walk_list())],
        [failed_probe(5, 5005, "httpx.ConnectError"), probe(15, 5005, True)],
        SPEC,
        operation_type="training",
        start_us=T0,
        judge_until_us=T0 + 60 * S,
        now_us=T0 + 60 * S,
        settled=False,
    )
    assert found.replaced is None


def test_every_check_that_shares_a_span_name_is_tried() -> None:
    """The backend's health checks and its reads of operations from a worker are both ``GET``
    client spans of ktrdr-api: a read that fails to connect is a failed probe too."""
    checks = (
        HealthCheck("ktrdr-api", "GET", re.compile(r"/health$")),
        HealthCheck("ktrdr-api", "GET", re.compile(r"/api/v1/operations/[^/]+(/metrics)?$")),
    )
    read = _trace(
        {
            "name": "GET",
            "service": "ktrdr-api",
            "kind": "client",
            "at": 5,
            "status": "error",
            "attrs": {"http.url": "http://127.0.0.1:5006/api/v1/operations/op_training_1"},
        }
    )
    other = _trace(
        {
            "name": "GET",
            "service": "ktrdr-api",
            "kind": "client",
            "attrs": {"http.url": "http://127.0.0.1:5006/api/v1/workers", "http.status_code": 200},
        }
    )
    found = probes_of([probe(0, 5006, True), read, other], checks)
    assert [(p.ok, p.address) for p in found] == [
        (True, "127.0.0.1:5006"),
        (False, "127.0.0.1:5006"),
    ]


def test_timeouts_make_a_silence_only_from_the_threshold_refusals_at_once() -> None:
    """KTRDR marks a worker unavailable after 3 failed checks: a busy worker may miss one
    (a ReadTimeout), a process that is gone refuses the very first."""
    late = [failed_probe(5, 5005, "httpx.ReadTimeout"), failed_probe(15, 5005, "httpx.ReadTimeout")]
    view = WorkerView.of(probes_of(late, CHECKS), timeouts_to_lose=3)
    assert view.silent("127.0.0.1:5005", T0, T0 + 20 * S) is None
    third = WorkerView.of(
        probes_of([*late, failed_probe(25, 5005, "httpx.ReadTimeout")], CHECKS), timeouts_to_lose=3
    )
    silence = third.silent("127.0.0.1:5005", T0, T0 + 30 * S)
    assert silence is not None and silence.failed == 3 and silence.since.time_us == T0 + 5 * S
    refused_once = WorkerView.of(
        probes_of([failed_probe(5, 5005, "httpx.ConnectError")], CHECKS), timeouts_to_lose=3
    )
    assert refused_once.silent("127.0.0.1:5005", T0, T0 + 10 * S) is not None
    # a connect timeout is not an answer that came late: nothing listens there
    connect = WorkerView.of(
        probes_of([failed_probe(5, 5005, "httpx.ConnectTimeout")], CHECKS), timeouts_to_lose=3
    )
    assert connect.silent("127.0.0.1:5005", T0, T0 + 10 * S) is not None
    # the default pack sets KTRDR's threshold
    spec = load_rules([]).neighbours
    assert spec.timeouts_to_lose == 3


def _training_request(probes: list[Trace], spec: NeighbourSpec = SPEC) -> WorkerAssessment:
    request = _trace(
        {
            "name": "POST /api/v1/trainings/start",
            "service": "ktrdr-api",
            "kind": "server",
            "at": 60,
            "attrs": {"http.status_code": 503},
        }
    )
    return assess_workers(
        [(request, request.walk_list())],
        probes,
        spec,
        operation_type="training",
        start_us=T0 + 60 * S,
        judge_until_us=T0 + 60 * S,
        now_us=T0 + 90 * S,
        settled=False,
    )


def test_no_worker_of_the_type_is_registered_when_rounds_of_probes_reach_only_others() -> None:
    """KTRDR probes every registered worker each round: rounds that reach only a backtest
    worker mean no training worker is registered (its 503 reads the same as busy)."""
    rounds = [probe(t, 5003, True, "bt-1") for t in (10, 20, 30, 40, 50)]
    found = _training_request(rounds)
    assert found.unregistered is not None
    assert found.unregistered.others == ("bt-1",) and found.unregistered.checks == 5
    values = found.values("training")
    assert values["worker.others"] == "bt-1" and values["worker.checks"] == 5
    # a training worker answering in the same rounds: registered (busy), not unseen
    busy = _training_request([*rounds, probe(35, 5005, True)])
    assert busy.unregistered is None and busy.capable == ("127.0.0.1:5005",)


def test_too_little_evidence_leaves_the_registry_unknown() -> None:
    """One round only, no probes at all, or an address nobody answered for (maybe a dead
    worker of the type): nothing tells that none is registered."""
    assert _training_request([probe(50, 5003, True, "bt-1")]).unregistered is None
    assert _training_request([]).unregistered is None
    unknown = [probe(t, 5003, True, "bt-1") for t in (10, 20, 30)] + [probe(25, 5006, False)]
    assert _training_request(unknown).unregistered is None
    # probes after the request do not count
    late = [probe(t, 5003, True, "bt-1") for t in (70, 80)]
    assert _training_request(late).unregistered is None


def test_a_backend_that_ran_for_rounds_and_probed_nothing_has_no_worker() -> None:
    """The prober's heartbeats (KTRDR's orphan detector, every 15 s) show it running; with no
    probe at all in more than two health-check rounds, no worker of any type is registered."""
    beats = NeighbourSpec(
        health_checks=CHECKS,
        workers=SPEC.workers,
        heartbeats=(SpanQuery("ktrdr-api", "operations.list"),),
    )
    assert ("ktrdr-api", "operations.list") in {(q.service, q.span) for q in beats.queries}
    merged = merge_specs([SPEC, beats])
    assert merged.heartbeats == beats.heartbeats

    def beat(at: float) -> Trace:
        return _trace({"name": "operations.list", "service": "ktrdr-api", "at": at})

    def judged(around: list[Trace]) -> WorkerAssessment:
        return _training_request(around, merged)

    nobody = judged([beat(15), beat(30), beat(45)])
    assert nobody.no_workers is not None and nobody.unregistered is None
    assert nobody.values("training")["worker.checked_since"] == clock_text(T0 + 15 * S)
    assert judged([beat(45), beat(55)]).no_workers is None  # under two rounds: cannot tell
    assert judged([beat(15), beat(45), probe(30, 5003, True, "bt-1")]).no_workers is None
    assert judged([beat(15), beat(45), probe(40, 5003, False)]).no_workers is None
    # probes after the request do not hide that nothing was probed before it
    assert judged([beat(15), beat(45), probe(70, 5003, True, "bt-1")]).no_workers is not None


def test_a_silence_names_the_trace_of_every_failed_check() -> None:
    probes = probes_of(
        [probe(1, 5005, True), probe(2, 5005, False), probe(3, 5005, True)]
        + [probe(4 + i, 5005, False) for i in range(3)],
        CHECKS,
    )
    view = WorkerView.of(probes)
    silence = view.silent("127.0.0.1:5005", T0, T0 + 10 * S)
    assert silence is not None and silence.failed == 3
    # the run after the last answer, oldest first; the failure before that answer is not in it
    assert silence.trace_ids == tuple(p.trace_id for p in probes[-3:])


def test_a_diagnosis_names_every_neighbouring_trace_it_used() -> None:
    """SPEC: a diagnosis names every trace of evidence it used. The data load whose IB
    Gateway refused the host service 10 times while it ran names those 10 ib.connect traces
    (4 more came after it had failed: not its evidence); the training
    whose worker died names the trace of each of its 30 failed health checks."""
    from pathlib import Path

    from opdiag.service import DiagnosisService
    from opdiag.settings import Settings
    from opdiag.sources.files import FileSource

    demo = Path(__file__).resolve().parents[1] / "demo" / "traces"
    service = DiagnosisService(FileSource([demo]), Settings(trace_paths=[demo]))
    now = 1_795_509_960 * S
    d = service.diagnose("op_data_load_20261124_080400_1259b041", now_us=now)
    assert d.verdict == "service_unreachable"
    assert len(d.evidence_trace_ids) == 10 == len(set(d.evidence_trace_ids))
    source = FileSource([demo])
    starts = [source.traces_for(t)[0].start_us for t in d.evidence_trace_ids]
    assert d.ended_at_ms is not None and max(starts) <= d.ended_at_ms * 1000
    assert not set(d.evidence_trace_ids) & set(d.trace_ids)
    d = service.diagnose("op_training_20261124_080530_943c8505", now_us=now)
    assert d.verdict == "worker_lost"
    assert len(d.evidence_trace_ids) == 30 == len(set(d.evidence_trace_ids))
    assert set(d.evidence_trace_ids) <= set(d.links.traces)  # each one linked in Jaeger


@pytest.mark.parametrize(
    ("errors", "failure", "state"),
    [
        (["httpx.ConnectError"] * 3, "refused: the process is gone", "the process is gone"),
        (["httpx.ReadTimeout"] * 3, "timed out: the process hangs", "SIGSTOP"),
        (["httpx.ConnectTimeout"] * 3, "unreachable: its host does not answer", "host is down"),
        # it thrashed (one check timed out) before it was killed: it is gone now
        (["httpx.ReadTimeout", "httpx.ConnectError", "httpx.ConnectError"], "refused: t", "gone"),
        # a failure not known as either: no label, the step's general sentence
        (["RuntimeError"] * 3, None, "the process died or hangs"),
    ],
)
def test_a_lost_worker_says_whether_it_refused_or_hung(errors, failure: str | None, state: str):
    """A refused check means nothing listens (restart it); one that connected and timed out
    means the process is there but stuck (SIGSTOP, a deadlock): kill it first; one that
    could not even connect in time, that its host is gone. The newest check says it."""
    failed = [failed_probe(t, 5005, e) for t, e in zip((5, 15, 25), errors, strict=True)]
    around = [probe(-5, 5005, True), *failed]
    found = _training_judged_at_a_minute(around)
    values = found.values("training")
    assert found.lost is not None and state in values["worker.state"]
    if failure is None:
        assert values["worker.failure"] is None
    else:
        assert values["worker.failure"].startswith(failure)


def _call(url: str) -> Span:
    (span,) = _trace({"name": "POST", "service": "ktrdr-cli", "kind": "client",
                      "attrs": {"http.url": url}}).spans
    return span


def test_a_call_names_another_worker_only_at_an_address_the_health_checks_reach() -> None:
    """The CLI's call to the backend is no call to another worker (the lost worker's name
    was dropped from its summary); a dispatch to another probed worker names that one; with
    no health checks at all, another address is another, unknown, worker."""
    around = [probe(-5, 5005, True), probe(-4, 5006, True, "ktrdr-training-worker-bb")]
    found = _training_judged_at_a_minute(around)
    assert found.service_called(_call("http://127.0.0.1:8000/api/v1/trainings/start")) == (
        False,
        None,
    )
    other = _call("http://127.0.0.1:5006/training/start")
    assert found.service_called(other) == (True, "ktrdr-training-worker-bb")
    assert found.service_called(_call("http://127.0.0.1:5005/training/start")) == (False, None)
    blind = _training_judged_at_a_minute([])
    assert blind.service_called(_call("http://127.0.0.1:8000/api/v1/x")) == (True, None)


def test_a_probed_address_that_never_answered_is_still_another_workers() -> None:
    """Its checks all failed in the window (it died before): it was probed, so it is a
    worker's address, and the operation's own worker must not be named for it."""
    around = [probe(-5, 5005, True), probe(-4, 5006, False), probe(6, 5006, False)]
    found = _training_judged_at_a_minute(around)
    assert found.service_called(_call("http://127.0.0.1:5006/training/start")) == (True, None)


def test_one_failed_check_is_said_in_the_singular() -> None:
    found = _training_judged_at_a_minute([probe(-5, 5005, True), probe(5, 5005, False)])
    assert found.values("training")["worker.failed_checks_text"] == "1 failed check"
    two = _training_judged_at_a_minute(
        [probe(-5, 5005, True), probe(5, 5005, False), probe(15, 5005, False)]
    )
    assert two.values("training")["worker.failed_checks_text"] == "2 failed checks"


def test_standby_workers_are_other_addresses_of_the_type_answering_after_the_silence() -> None:
    """Who can take the run again: another address, answered by a worker of the type, after
    the lost one went silent; not the lost address answering as a new process (a restart is
    judged as a replacement), not an answer from before, not a worker of another type."""
    from opdiag.diagnosis.neighbours import _standby
    from opdiag.diagnosis.probes import Probe, Silence

    def p(at: float, port: int, ok: bool, by: str | None = None) -> Probe:
        return Probe(int(at * S), ok, f"127.0.0.1:{port}", "t", "s", "GET", "ktrdr-api", by)

    probes = [
        p(0, 5003, True, "ktrdr-training-worker-a"),
        p(5, 5004, True, "ktrdr-training-worker-b"),  # before the silence
        p(10, 5003, False),
        p(20, 5004, True, "ktrdr-training-worker-b"),
        p(25, 5005, True, "ktrdr-backtest-worker-c"),  # another type
        p(30, 5003, True, "ktrdr-training-worker-d"),  # the lost address, a new process
    ]
    lost = Silence("127.0.0.1:5003", probes[2], 1, 0)
    found = _standby(WorkerView.of(probes), ("ktrdr-training-worker-*",), lost, int(60 * S))
    assert found == (("ktrdr-training-worker-b", "127.0.0.1:5004", int(20 * S)),)
    # an answer after the clock judged by is not one yet
    assert _standby(WorkerView.of(probes), ("ktrdr-training-worker-*",), lost, int(15 * S)) == ()


def test_standby_workers_are_judged_again_on_the_health_checks_up_to_now() -> None:
    """A lost worker's run was said to be able to go to another worker of its type that had
    answered inside the neighbour window; judged later, the health checks after the window
    say which of them still answer (with their newest answer) and which went silent since
    (with their first failed check: run1's other training worker, killed at 16:01)."""
    from opdiag.diagnosis.neighbours import _still_standing
    from opdiag.diagnosis.probes import Probe

    def p(at: float, port: int, ok: bool, by: str | None = None, sid: str = "s") -> Probe:
        return Probe(int(at * S), ok, f"127.0.0.1:{port}", f"t{at}", sid, "GET", "ktrdr-api", by)

    window = [p(20, 5004, True, "w-b"), p(20, 5006, True, "w-c")]
    standby = (("w-b", "127.0.0.1:5004", int(20 * S)), ("w-c", "127.0.0.1:5006", int(20 * S)))
    later = [
        p(20, 5004, True, "w-b"),  # the window's own probe, found again: counted once
        p(40, 5004, True, "w-b"),
        p(40, 5006, False),  # refused: the process is gone
        p(50, 5006, False),
        p(90, 5004, True, "w-b"),  # after the clock judged by: not yet
    ]
    up, down = _still_standing(WorkerView.of(window), later, standby, int(60 * S))
    assert up == (("w-b", "127.0.0.1:5004", int(40 * S)),)
    assert down == (("w-c", "127.0.0.1:5006", int(40 * S)),)
    # no check after the window: the standby stands as the window saw it
    assert _still_standing(WorkerView.of(window), [], standby, int(60 * S)) == (standby, ())
    # one that failed and answered again by now still stands
    again = [*later[:4], p(55, 5006, True, "w-c")]
    up, down = _still_standing(WorkerView.of(window), again, standby, int(60 * S))
    assert [a for _, a, _ in up] == ["127.0.0.1:5004", "127.0.0.1:5006"] and down == ()
