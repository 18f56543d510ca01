"""Time that no span covers: the uninstrumented stretches of an operation.

KTRDR's training loop, 99 % of a training, emits no span: the worker ends
``training.data_loading`` and, 43 s later, records the transition to completed. Between the
two, only the CLI's root span (waiting) and transport noise (its status polls) are open. The
critical path then runs through the waiting root, and the span with the most time on it is a
1 % phase: the wrong answer. The honest one is "the time is in code after
``training.data_loading`` that has no span".

A *work span* is a span of the operation that is neither transport noise (nor below it) nor a
root that has children (a root with children only waits for them: ``cli.train``). A *gap* is
an interval inside one trace in which no work span of that trace is open on any service, and
that one service bounds on both sides: its last span before the gap, its next span after it
(the worker's ``training.data_loading``, then its transition to completed). When the span that
ended last before the gap is of a service that has a span after it, the gap is that
service's: the CLI interrupted with Ctrl-C sends its cancel after the worker's silent loop,
and its own last call (the start) ended long before the loop; the loop is the worker's.

Time between traces is a gap only when the service whose span ended last before it answers
a request (a server span) in another of the operation's traces after it: ``ktrdr cancel``
starts a trace of its own, and the worker still training when it arrives answers it (its
51 s loop is the work). KTRDR's orphan detector also writes its own trace (a transition, no
request), minutes after a worker died, and the worker never answers again: that silence is a
lost worker, not slow code. Leading or trailing time is no gap either (an unfinished
operation's silence is judged as stuck or lost, not as a bottleneck).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec

from opdiag.model import CLIENT, SERVER, Span, Trace, url_of


class Gap(msgspec.Struct, frozen=True):
    """One uninstrumented interval, and the span it follows."""

    service: str
    after: Span
    start_us: int
    end_us: int

    @property
    def duration_us(self) -> int:
        return self.end_us - self.start_us


def work_spans(
    walks: Sequence[tuple[Trace, Sequence[tuple[Span, int]]]],
    is_noise: Callable[[Span], bool],
) -> list[list[Span]]:
    """The operation's spans that stand for work (see the module docstring), per trace."""
    out: list[list[Span]] = []
    for trace, walk in walks:
        children = trace.children
        noisy: set[str] = set()
        work: list[Span] = []
        for span, depth in walk:
            parent = span.parent_id
            if (parent is not None and parent in noisy) or is_noise(span):
                noisy.add(span.span_id)
                continue
            if depth == 0 and children.get(span.span_id):
                continue
            work.append(span)
        out.append(work)
    return out


def largest_gap_of(
    groups: Sequence[Sequence[Span]], ends: Mapping[str, int] | None = None
) -> Gap | None:
    """The longest gap of any trace's work spans, or between traces (see the module
    docstring; ties: the earlier trace, then a gap inside a trace)."""
    best: Gap | None = None
    for spans in groups:
        gap = largest_gap(spans, ends)
        if gap is not None and (best is None or gap.duration_us > best.duration_us):
            best = gap
    if sum(1 for spans in groups if spans) > 1:
        across = _gap_across(groups, ends or {})
        if across is not None and (best is None or across.duration_us > best.duration_us):
            best = across
    return best


def _gap_across(groups: Sequence[Sequence[Span]], ends: Mapping[str, int]) -> Gap | None:
    """The longest interval between traces in which no work span of any trace is open, owned
    by the span that ended last before it, whose service answers a request (a server span)
    after it in another trace."""

    def end_of(span: Span) -> int:
        limit = ends.get(span.span_id)
        return span.end_us if limit is None else min(span.end_us, limit)

    ordered = sorted(
        (
            (span.start_us, -end_of(span), i, span)
            for i, spans in enumerate(groups)
            for span in spans
        ),
        key=lambda item: item[:3],
    )
    # per service, its latest server span in each of the two traces where it answers latest:
    # enough to ask whether it answers after a time in a trace other than a given one
    latest: dict[str, list[tuple[int, int]]] = {}
    for start, _, i, span in ordered:
        if span.kind == SERVER:
            found = latest.setdefault(span.service, [])
            found[:] = sorted([(at, j) for at, j in found if j != i] + [(start, i)], reverse=True)[
                :2
            ]
    best: Gap | None = None
    _, neg_end, last_i, last = ordered[0]
    reach = -neg_end
    for start, neg_end, i, span in ordered[1:]:
        if start > reach and i != last_i:
            length = start - reach
            if (best is None or length > best.duration_us) and any(
                at >= start and j != last_i for at, j in latest.get(last.service, ())
            ):
                best = Gap(last.service, last, reach, start)
        if -neg_end > reach:
            reach, last, last_i = -neg_end, span, i
    return best


def _retry_wait(before: Span, after: Span) -> bool:
    """The time between a call and the same call made again (KTRDR's CLI retrying a 503
    after 1.8, 2.3 and 4.8 s) is the caller's back-off, not code without spans."""
    if before.kind != CLIENT or after.kind != CLIENT or before.name != after.name:
        return False
    url = url_of(before)
    return url is not None and url == url_of(after)


def largest_gap(
    spans: Sequence[Span],
    ends: Mapping[str, int] | None = None,
    *,
    min_us: int = 1,
) -> Gap | None:
    """The longest interval in which none of ``spans`` is open, between two of them on one
    service (its last span before, its next span after).

    ``ends`` overrides a span's end (by span id): the extent of work a caller abandoned
    stops where the caller gave up. Ties go to the earlier gap."""
    if len(spans) < 2:
        return None
    clip = ends or {}

    def end_of(span: Span) -> int:
        limit = clip.get(span.span_id)
        return span.end_us if limit is None else min(span.end_us, limit)

    ordered = sorted(spans, key=lambda s: (s.start_us, -end_of(s)))
    latest_start: dict[str, int] = {}  # per service, when its last span starts
    for span in ordered:
        latest_start[span.service] = span.start_us
    best: Gap | None = None
    reach = end_of(ordered[0])
    reached_by = ordered[0]  # the span that ended last so far
    last_on: dict[str, Span] = {ordered[0].service: ordered[0]}
    for span in ordered[1:]:
        if span.start_us > reach:
            length = span.start_us - reach
            if latest_start[reached_by.service] >= span.start_us:
                before: Span | None = reached_by  # it was busy up to the gap, and goes on
            else:
                before = last_on.get(span.service)
            if (
                before is not None
                and length >= min_us
                and (best is None or length > best.duration_us)
                and not _retry_wait(before, span)
            ):
                best = Gap(before.service, before, reach, span.start_us)
        end = end_of(span)
        if end > reach:
            reach, reached_by = end, span
        known = last_on.get(span.service)
        if known is None or end >= end_of(known):
            last_on[span.service] = span
    return best
