"""Time that no span covers (opdiag.analysis.gaps): the bottleneck of KTRDR's span-less
training loop."""

from __future__ import annotations

from typing import Any

from opdiag.analysis.gaps import largest_gap, largest_gap_of, work_spans
from opdiag.model import CHILD_OF, Reference, Span, build_trace

MS = 1000
T0 = 1_763_800_000_000_000


def spans(*raw: dict[str, Any], trace_id: str = "1" * 32) -> list[Span]:
    ids: dict[str, str] = {}
    out = []
    for i, r in enumerate(raw):
        sid = f"{i + 1:016x}"
        ids[r.get("id", sid)] = sid
        span = Span(
            trace_id,
            sid,
            r["name"],
            r.get("service", "worker"),
            T0 + r["at"] * MS,
            r["dur"] * MS,
            kind=r.get("kind", "internal"),
        )
        if "parent" in r:
            span.references.append(Reference(CHILD_OF, trace_id, ids[r["parent"]]))
        out.append(span)
    return out


def noise(span: Span) -> bool:
    return span.name.startswith("GET /poll")


def test_the_loop_after_data_loading_is_the_gap_on_the_worker() -> None:
    trace = build_trace(
        "1" * 32,
        spans(
            {"id": "cli", "name": "cli.train", "service": "cli", "at": 0, "dur": 10_000},
            {
                "id": "srv",
                "name": "POST /training/start",
                "kind": "server",
                "at": 10,
                "dur": 2,
                "parent": "cli",
            },
            {"name": "training.data_loading", "at": 20, "dur": 200, "parent": "srv"},
            {"name": "GET /poll", "service": "cli", "at": 1000, "dur": 5, "parent": "cli"},
            {"name": "operation.state_transition", "at": 9_900, "dur": 0, "parent": "srv"},
        ),
    )
    groups = work_spans([(trace, trace.walk_list())], noise)
    assert [s.name for s in groups[0]] == [
        "POST /training/start",
        "training.data_loading",
        "operation.state_transition",
    ]  # the waiting root and the poll are not work
    gap = largest_gap_of(groups)
    assert gap is not None and gap.after.name == "training.data_loading"
    assert gap.service == "worker" and gap.duration_us == (9_900 - 220) * MS


def test_another_service_at_work_closes_the_gap() -> None:
    work = spans(
        {"name": "a", "at": 0, "dur": 10},
        {"name": "call", "service": "db", "at": 10, "dur": 80},
        {"name": "b", "at": 100, "dur": 10},
    )
    gap = largest_gap(work)
    assert gap is not None and gap.duration_us == 10 * MS and gap.after.name == "a"


def test_a_gap_is_the_service_busy_up_to_it_when_another_ends_it() -> None:
    """Ctrl-C on ``ktrdr train --follow``: the CLI's cancel ends the worker's silent loop. The
    CLI's own last call (the start) ended before the loop; the worker's data loading ended
    where the gap begins, and the worker answers the cancel: the loop is the worker's (it
    read "uninstrumented work on ktrdr-cli after POST")."""
    work = spans(
        {"name": "POST", "service": "cli", "kind": "client", "at": 0, "dur": 170},
        {"name": "training.data_loading", "service": "worker", "at": 300, "dur": 300},
        {"name": "DELETE", "service": "cli", "kind": "client", "at": 20_000, "dur": 150},
        {"name": "operation.state_transition", "service": "worker", "at": 20_100, "dur": 0},
    )
    gap = largest_gap(work)
    assert gap is not None and (gap.service, gap.after.name) == ("worker", "training.data_loading")
    assert gap.duration_us == 19_400 * MS
    # the service that ended last and never comes back leaves the gap to the one that does
    gone = spans(
        {"name": "POST", "service": "cli", "kind": "client", "at": 0, "dur": 170},
        {"name": "training.data_loading", "service": "worker", "at": 300, "dur": 300},
        {"name": "DELETE", "service": "cli", "kind": "client", "at": 20_000, "dur": 150},
    )
    gap = largest_gap(gone)
    assert gap is not None and (gap.service, gap.after.name) == ("cli", "POST")


def test_a_gap_needs_the_same_service_on_both_sides() -> None:
    """The orphan detector's transition minutes after a worker died is on the backend: no
    service bounds that silence on both sides, so it is no gap."""
    work = spans(
        {"name": "training.data_loading", "service": "worker", "at": 0, "dur": 10},
        {"name": "operation.state_transition", "service": "api", "at": 60_000, "dur": 0},
    )
    assert largest_gap(work) is None


def test_gaps_are_per_trace_and_abandoned_work_is_clipped() -> None:
    first = spans({"name": "a", "at": 0, "dur": 10}, {"name": "b", "at": 50, "dur": 10})
    second = spans({"name": "c", "at": 500, "dur": 10}, trace_id="2" * 32)
    gap = largest_gap_of([first, second])
    assert gap is not None and gap.duration_us == 40 * MS  # not 500-60 across traces
    long_tail = spans(
        {"name": "a", "at": 0, "dur": 1_000},
        {"name": "b", "at": 600, "dur": 10},
    )
    assert largest_gap(long_tail) is None
    clipped = largest_gap(long_tail, {long_tail[0].span_id: T0 + 100 * MS})
    assert clipped is not None and clipped.duration_us == 500 * MS


def test_a_cancel_the_worker_answers_in_its_own_trace_ends_a_gap_across_traces() -> None:
    """ktrdr cancel starts a trace of its own; the worker still training answers it: its
    loop between the two traces is the work (51 s of a 52 s cancelled training)."""
    start = spans(
        {"name": "POST /training/start", "kind": "server", "at": 0, "dur": 5},
        {"name": "training.data_loading", "at": 10, "dur": 230},
    )
    cancel = spans(
        {"name": "DELETE", "kind": "client", "service": "cli", "at": 51_500, "dur": 150},
        {"name": "DELETE /ops", "kind": "server", "service": "api", "at": 51_510, "dur": 120},
        {"name": "DELETE /cancel", "kind": "server", "at": 51_550, "dur": 40},
        trace_id="2" * 32,
    )
    gap = largest_gap_of([start, cancel])
    assert gap is not None
    assert (gap.service, gap.after.name) == ("worker", "training.data_loading")
    assert (gap.start_us, gap.end_us) == (T0 + 240 * MS, T0 + 51_500 * MS)


def test_no_gap_across_traces_without_an_answer_from_the_service_that_went_quiet() -> None:
    """The orphan detector's trace minutes after the worker died (a transition on the
    backend, no request), and a cancel the dead worker never answered: silence, not work."""
    start = spans(
        {"name": "training.start", "service": "api", "at": 0, "dur": 100},
        {"name": "training.data_loading", "at": 10, "dur": 230},
    )
    orphaned = spans(
        {"name": "operation.state_transition", "service": "api", "at": 400_000, "dur": 0},
        trace_id="2" * 32,
    )
    unanswered = spans(
        {"name": "DELETE /operations", "kind": "server", "service": "api", "at": 60_000, "dur": 9},
        {"name": "DELETE", "kind": "client", "service": "api", "at": 60_001, "dur": 5},
        trace_id="3" * 32,
    )
    assert largest_gap_of([start, orphaned]) is None
    # a worker killed before it exported anything: the backend's own spans, then the
    # detector's transition on the backend (no request answered in between)
    dispatch = spans({"name": "training.start", "service": "api", "at": 0, "dur": 100})
    assert largest_gap_of([dispatch, orphaned]) is None
    assert largest_gap_of([start, unanswered]) is None
    # the worker answering a request before the gap (an earlier trace) does not count
    earlier = spans({"name": "GET /status", "kind": "server", "at": 5, "dur": 1}, trace_id="4" * 32)
    assert largest_gap_of([earlier, start, orphaned]) is None


def test_the_wait_between_a_call_and_the_same_call_again_is_no_gap() -> None:
    """KTRDR's CLI retried a 503 after 1.8, 2.3 and 4.8 s: that is its back-off, not code
    without spans on ktrdr-cli; a different call after the wait still bounds a gap."""
    url = {"http.url": "http://127.0.0.1:8000/api/v1/trainings/start"}
    retries = spans(
        {"name": "POST", "kind": "client", "service": "cli", "at": 0, "dur": 10},
        {"name": "POST", "kind": "client", "service": "cli", "at": 1_800, "dur": 10},
        {"name": "POST", "kind": "client", "service": "cli", "at": 4_100, "dur": 10},
    )
    for span in retries:
        span.attributes.update(url)
    assert largest_gap(retries) is None
    other = spans({"name": "GET", "kind": "client", "service": "cli", "at": 9_000, "dur": 5})
    gap = largest_gap([*retries, *other])
    assert gap is not None and gap.duration_us == (9_000 - 4_110) * MS


def test_time_inside_one_trace_is_never_taken_as_a_gap_across_traces() -> None:
    """Across traces, only time followed by another trace's span counts: inside one trace a
    gap needs the same service on both sides (the worker's span, then the backend's is no
    gap of the worker's, even if the worker answers a later request)."""
    first = spans(
        {"name": "training.data_loading", "at": 0, "dur": 10},
        {"name": "training.start", "service": "api", "at": 50, "dur": 10},
    )
    later = spans(
        {"name": "DELETE /cancel", "kind": "server", "at": 100, "dur": 5}, trace_id="2" * 32
    )
    assert largest_gap_of([first, later]) is None
