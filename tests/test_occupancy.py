"""What the capable workers were doing when a request found none free (diagnosis.occupancy)."""

from __future__ import annotations

import hashlib
from typing import Any

from opdiag.diagnosis.occupancy import Held, holdings, occupancy
from opdiag.globs import Globs
from opdiag.model import Span, Trace, build_trace

T0 = 1_796_399_000_000_000  # 2026-12-04T15:43:20Z
S = 1_000_000
WORKER = "ktrdr-training-worker-ab12cd34"
CAPABLE = Globs.of(["ktrdr-training-worker-*"])


def _transitions(op: str, *steps: tuple[float, str], service: str = WORKER) -> Trace:
    tid = hashlib.md5(f"{op} {service}".encode()).hexdigest()
    spans = [
        Span(
            tid,
            f"{i + 1:016x}",
            "operation.state_transition",
            service,
            T0 + int(at * S),
            0,
            attributes={"operation.id": op, "operation.to_status": status},
        )
        for i, (at, status) in enumerate(steps)
    ]
    return build_trace(tid, spans)


def _at(seconds: float) -> int:
    return T0 + int(seconds * S)


def test_the_run_that_holds_the_worker_is_named_with_its_start() -> None:
    held = _transitions("op_training_a", (0, "pending"), (1, "running"))
    assert occupancy([held], CAPABLE, _at(60)) == (
        f"{WORKER} runs op_training_a (since 15:43:21 UTC)"
    )


def test_a_worker_that_finished_just_before_is_said_stale_not_busy() -> None:
    """run1: a backtest completed at 15:52:49.7, the next request at 15:52:54.1 got 503."""
    done = _transitions("op_training_a", (1, "running"), (50, "completed"))
    text = occupancy([done], CAPABLE, _at(54.4))
    assert text == (
        f"{WORKER} finished op_training_a 4.4 s before (at 15:44:10 UTC); "
        "KTRDR's registry had not seen it free yet"
    )
    # long after, it says nothing: the registry had seen it free, something else holds it
    assert occupancy([done], CAPABLE, _at(50 + 31)) is None


def test_a_run_its_follower_read_finished_is_not_said_to_run() -> None:
    """Its worker died within its export batch after finishing: the last transition that
    arrived says running, the command following it read it completed at 50 s."""
    held = _transitions("op_training_a", (1, "running"))
    ended = {"op_training_a": _at(50)}.get
    assert occupancy([held], CAPABLE, _at(54.4), ended=ended) == (
        f"{WORKER} finished op_training_a 4.4 s before (at 15:44:10 UTC); "
        "KTRDR's registry had not seen it free yet"
    )
    # read finished after the request: it still ran then
    assert occupancy([held], CAPABLE, _at(40), ended=ended) == (
        f"{WORKER} runs op_training_a (since 15:43:21 UTC)"
    )


def test_only_capable_workers_other_runs_and_the_past_count() -> None:
    other_type = _transitions("op_b", (1, "running"), service="ktrdr-backtest-worker-1")
    own = _transitions("op_self", (1, "running"))
    later = _transitions("op_c", (100, "running"))
    found: list[Any] = [other_type, own, later]
    assert occupancy(found, CAPABLE, _at(60), own_id="op_self") is None
    # a run that finished, then another that started on the same worker: the second holds it
    again = _transitions("op_d", (1, "running"), (30, "completed"))
    next_one = _transitions("op_e", (40, "running"))
    assert occupancy([again, next_one], CAPABLE, _at(45)) == (
        f"{WORKER} runs op_e (since 15:44:00 UTC)"
    )


def test_the_workers_runs_are_searched_only_for_a_request_that_never_started() -> None:
    """Every unfinished operation's neighbours are searched; the workers' runs (one search
    per worker service on Jaeger) only for a request that never became an operation."""
    from opdiag.diagnosis.rules import load_rules

    spec = load_rules().neighbours
    wanted = ("*worker*", "operation.state_transition")
    assert wanted in {(q.service, q.span) for q in spec.queries_for(started=False)}
    assert wanted not in {(q.service, q.span) for q in spec.queries_for(started=True)}
    assert spec.queries_for(started=True) == spec.queries


def test_holdings_say_which_run_each_worker_holds_running_ones_first() -> None:
    """The diagnosis names the run to cancel to free a worker (``worker.busy_op``): the
    holdings keep the run and whether it still runs, not only the words."""
    other = "ktrdr-training-worker-ef56ab78"
    done = _transitions("op_training_done", (0, "running"), (50, "completed"), service=other)
    held = _transitions("op_training_a", (0, "pending"), (1, "running"))
    assert holdings([done, held], CAPABLE, _at(54.4)) == [
        Held(WORKER, "op_training_a", True, _at(1)),
        Held(other, "op_training_done", False, _at(50)),
    ]
    assert holdings([done, held], CAPABLE, _at(54.4), own_id="op_training_a") == [
        Held(other, "op_training_done", False, _at(50)),
    ]
