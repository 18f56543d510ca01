"""analysis.phases: an operation cut into phases on the worker side, gaps and outside time.

    time (s)   0    1    2    3    4    5    6    7    8    9    10
    cli        |==================================================|   cli.train 0..10
    worker          |-A-|         |--B--|  |B|                        A 1..2, B 4..5.5 and 6..6.5
                    .   .  gap    .     .gap                           gaps: after A 2..4,
    outside    |----|              after A    after B                        after B 5.5..6
                                                 |--------------------|  after the worker 6.5..10
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from opdiag.analysis.phases import (
    AFTER_LAST_ANSWER,
    AFTER_WORKER,
    BEFORE_WORKER,
    GAP,
    OUTSIDE,
    SPAN,
    phase_key,
    phase_profile,
)
from opdiag.model import Span

S = 1_000_000
WORKER = "ktrdr-training-worker-ab12"


def sp(name: str, start: float, end: float, service: str = WORKER) -> Span:
    return Span(
        trace_id="0" * 32,
        span_id=f"{abs(hash((name, start))) % 10**16:016x}",
        name=name,
        service=service,
        start_us=int(start * S),
        duration_us=int((end - start) * S),
    )


def is_worker(service: str) -> bool:
    return fnmatchcase(service, "*-worker-*")


def no_noise(span: Span) -> bool:
    return span.name.startswith("GET /api/v1/operations")


SPANS = [
    sp("cli.train", 0, 10, "ktrdr-cli"),
    sp("A", 1, 2),
    sp("B", 4, 5.5),
    sp("B", 6, 6.5),
    sp("GET /api/v1/operations/{operation_id}", 7, 7.1),  # polling on the worker: noise
]


def times(profile) -> dict[str, tuple[int, int]]:
    return {k: (p.total_us, p.count) for k, p in profile.phases.items()}


def test_phases_gaps_and_outside_time():
    profile = phase_profile(SPANS, is_worker=is_worker, is_noise=no_noise)
    assert profile.duration_us == 10 * S
    assert profile.worker_services == [WORKER]
    assert times(profile) == {
        phase_key(OUTSIDE, BEFORE_WORKER): (1 * S, 1),
        phase_key(SPAN, "A"): (1 * S, 1),
        phase_key(GAP, "after A"): (2 * S, 1),
        phase_key(SPAN, "B"): (2 * S, 2),  # repeated spans summed
        phase_key(GAP, "after B"): (S // 2, 1),
        phase_key(OUTSIDE, AFTER_WORKER): (int(3.5 * S), 1),
    }
    # In the order they first started.
    assert [p.name for p in profile.phases.values()] == [
        BEFORE_WORKER, "A", "after A", "B", "after B", AFTER_WORKER,
    ]
    gap = profile.phases[phase_key(GAP, "after A")]
    assert gap.after == "A" and gap.service == WORKER


def test_coverage_plus_gaps_plus_outside_is_the_whole_operation():
    profile = phase_profile(SPANS, is_worker=is_worker, is_noise=no_noise)
    not_spans = sum(p.total_us for p in profile.phases.values() if p.kind != SPAN)
    covered = 1 * S + 2 * S  # A, then B twice (no overlap in this picture)
    assert covered + not_spans == profile.duration_us


def test_short_gaps_are_not_phases():
    profile = phase_profile(SPANS, is_worker=is_worker, is_noise=no_noise, min_gap_us=S)
    assert phase_key(GAP, "after B") not in profile.phases  # 0.5 s < 1 s
    assert phase_key(GAP, "after A") in profile.phases


def test_nested_spans_cover_the_gap_and_name_the_outer_span():
    spans = [sp("outer", 0, 4), sp("inner", 1, 4), sp("next", 6, 7)]
    profile = phase_profile(spans, is_worker=is_worker, is_noise=no_noise)
    assert times(profile)[phase_key(GAP, "after outer")] == (2 * S, 1)
    assert phase_key(OUTSIDE, BEFORE_WORKER) not in profile.phases


def test_without_worker_spans_the_whole_operation_is_the_worker_side():
    spans = [sp("data.download", 0, 1, "ktrdr-api"), sp("POST", 3, 4, "ktrdr-api")]
    profile = phase_profile(spans, is_worker=is_worker, is_noise=no_noise)
    assert profile.worker_services == ["ktrdr-api"]
    assert times(profile)[phase_key(GAP, "after data.download")] == (2 * S, 1)
    assert not any(p.kind == OUTSIDE for p in profile.phases.values())


def test_open_work_runs_to_the_worker_s_last_answer_the_rest_is_a_phase_of_its_own():
    """A worker that did not close the run: the time after its last span is its open work
    up to ``open_until_us``. In flight (until now, the run's end) that is all of it; a lost
    worker (run1: killed 10 s into a backtest, failed by KTRDR's orphan detector 6 min later)
    worked until its last answer, and the rest is after that answer, not its work."""
    in_flight = phase_profile(SPANS, is_worker=is_worker, is_noise=no_noise, open_until_us=10 * S)
    assert times(in_flight)[phase_key(GAP, "after B")] == (S // 2 + int(3.5 * S), 2)
    assert phase_key(OUTSIDE, AFTER_LAST_ANSWER) not in in_flight.phases
    lost = phase_profile(SPANS, is_worker=is_worker, is_noise=no_noise, open_until_us=7 * S)
    assert times(lost)[phase_key(GAP, "after B")] == (S // 2 + S // 2, 2)  # 5.5..6, 6.5..7
    assert times(lost)[phase_key(OUTSIDE, AFTER_LAST_ANSWER)] == (3 * S, 1)  # 7..10
    assert phase_key(OUTSIDE, AFTER_WORKER) not in lost.phases
    # its last answer before its last span ended: no open work, the rest after that span
    early = phase_profile(SPANS, is_worker=is_worker, is_noise=no_noise, open_until_us=6 * S)
    assert times(early)[phase_key(GAP, "after B")] == (S // 2, 1)
    assert times(early)[phase_key(OUTSIDE, AFTER_LAST_ANSWER)] == (int(3.5 * S), 1)


def test_empty_and_noise_only():
    assert phase_profile([], is_worker=is_worker, is_noise=no_noise).phases == {}
    noise = [sp("GET /api/v1/operations/{operation_id}", 0, 1)]
    assert phase_profile(noise, is_worker=is_worker, is_noise=no_noise).phases == {}


def test_input_is_not_modified():
    spans = list(SPANS)
    before = [(s.name, s.start_us, s.duration_us) for s in spans]
    phase_profile(spans, is_worker=is_worker, is_noise=no_noise)
    assert [(s.name, s.start_us, s.duration_us) for s in spans] == before
    assert spans == SPANS
