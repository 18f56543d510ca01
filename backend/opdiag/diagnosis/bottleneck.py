"""The bottleneck: where the operation's critical path spends most of its time.

Two candidates compete. The span with the most time on the critical path, transport noise
ignored (never simply the longest span: that is always the root). And the longest
uninstrumented gap (``opdiag.analysis.gaps``): time in which no span of the operation is
open on any service, KTRDR's span-less training loop. The gap wins when it holds a larger
share of the operation than the span holds of its critical path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from opdiag.analysis.gaps import Gap, largest_gap_of, work_spans
from opdiag.analysis.retries import CallKey, call_key
from opdiag.diagnosis.result import Bottleneck
from opdiag.diagnosis.timing import Timing
from opdiag.globs import Globs
from opdiag.model import CLIENT, Span, Trace, failed

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


class Choice(msgspec.Struct, frozen=True):
    """The bottleneck as the engine uses it: the result, the span rules and templates point
    at (the span itself, or the span a gap follows), and for a span its share of the path
    (``bottleneck``/``bottleneck_share`` rule conditions apply to spans only)."""

    result: Bottleneck | None = None
    span: Span | None = None
    span_share: float = 0.0
    gap: Gap | None = None

    @property
    def is_span(self) -> bool:
        return self.result is not None and self.result.kind == "span"


def find_bottleneck(
    walks: Walks,
    timings: Sequence[Timing],
    is_noise: Callable[[Span], bool],
    *,
    extent_us: int,
    clipped_ends: dict[str, int] | None = None,
    work: Sequence[Sequence[Span]] | None = None,
    open_tail: Gap | None = None,
) -> Choice:
    """The span or gap holding the largest share (see the module docstring). A span that
    kept working for a caller that had already given up (``clipped_ends``) counts until
    then (the timings' paths stop it there). ``work``: ``work_spans(walks, is_noise)``
    when the caller has them (``diagnosis.survey``). ``open_tail``: for an operation in
    flight, the time since its last work span ended (``open_tail_of``), a gap candidate."""
    clipped = clipped_ends or {}
    # (the timings' paths stop clipped spans where their caller gave up: what is left on the
    # path is time the operation waited for them)
    best = _span_bottleneck(walks, list(timings), is_noise)
    span_share = 0.0
    if best is not None:
        _, on_path, timing, _ = best
        # a path that runs on through work a caller gave up on (the host service answering
        # four timed-out calls minutes later) is longer than the operation: not its time
        length = timing.critical_length_us
        if clipped and 0 < extent_us < length:
            length = extent_us
        span_share = min(1.0, on_path / length) if length else 0.0
    gap = largest_gap_of(work if work is not None else work_spans(walks, is_noise), clipped)
    if open_tail is not None and (gap is None or open_tail.duration_us > gap.duration_us):
        gap = open_tail
    gap_share = min(1.0, gap.duration_us / extent_us) if gap is not None and extent_us > 0 else 0.0
    if gap is not None and gap_share > span_share:
        return Choice(
            Bottleneck(
                trace_id=gap.after.trace_id,
                span_id=None,
                service=gap.service,
                span_name=None,
                self_time_ms=gap.duration_us / 1000,
                share=gap_share,
                duration_ms=gap.duration_us / 1000,
                kind="gap",
                after_span_id=gap.after.span_id,
                after_span_name=gap.after.name,
                start_ms=gap.start_us / 1000,
            ),
            gap.after,
            0.0,
            gap,
        )
    if best is None:
        return Choice()
    span, _, timing, attempts = best
    return Choice(
        Bottleneck(
            trace_id=span.trace_id,
            span_id=span.span_id,
            service=span.service,
            span_name=span.name,
            self_time_ms=sum(timing.self_us.get(a.span_id, 0) for a in attempts) / 1000,
            share=span_share,
            duration_ms=sum(a.duration_us for a in attempts) / 1000,
            attempts=len(attempts),
            target=call_target(span),
            failed_attempts=sum(1 for a in attempts if failed(a)) if len(attempts) > 1 else 0,
        ),
        span,
        span_share,
    )


def open_tail_of(work: Sequence[Sequence[Span]], until_us: int) -> Gap | None:
    """The time from the end of the operation's last work span before ``until_us`` (now, or
    when its lost worker last answered) until then: in flight, KTRDR's training loop emits no
    span, and four minutes into it the bottleneck was the 0.3 s data loading before it."""
    last: Span | None = None
    for spans in work:
        for span in spans:
            if span.end_us <= until_us and (last is None or span.end_us > last.end_us):
                last = span
    if last is None or until_us <= last.end_us:
        return None
    return Gap(last.service, last, last.end_us, until_us)


_CHECKS: dict[Globs, Callable[[Span], bool]] = {}
_MAX_MEMO = 8192


def noise_check(globs: Globs) -> Callable[[Span], bool]:
    """Is a span transport noise? Its name matches a noise pattern, or it is an httpx client
    span (named by the method only) whose ``METHOD /path`` does: the CLI's polling ``GET`` of
    ``/api/v1/operations/{id}``, a ``GET`` of a worker's ``/health``. Memoised per name and
    call (bounded), one checker per pattern list: a listing asks once per operation."""
    found = _CHECKS.get(globs)
    if found is None:
        found = _CHECKS[globs] = _noise_check(globs)
    return found


def _noise_check(globs: Globs) -> Callable[[Span], bool]:
    # names are remembered with the globs (``Globs.known``: grouping asks the same); the
    # memo is read here first, without a call, for the 100k spans of a big trace
    seen, by_name = globs.seen, globs.known
    by_call: dict[tuple[str, str], bool] = {}  # (method, url): a poller repeats one URL

    def check(span: Span) -> bool:
        hit = seen.get(span.name)
        if hit is None:
            hit = by_name(span.name)
        if hit or span.kind != CLIENT:
            return hit
        url = span.attributes.get("http.url") or span.attributes.get("url.full")
        if not isinstance(url, str):
            return False
        method = span.attributes.get("http.method") or span.name
        if method.__class__ is not str:
            return _client_call_is_noise(globs, method, url)
        key = (method, url)
        hit = by_call.get(key)
        if hit is None:
            if len(by_call) >= _MAX_MEMO:
                by_call.clear()
            hit = by_call[key] = _client_call_is_noise(globs, method, url)
        return hit

    return check


def _client_call_is_noise(globs: Globs, method: Any, url: str) -> bool:
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    return globs(f"{method} {path}")


def _span_bottleneck(
    walks: Walks, timings: list[Timing], is_noise: Callable[[Span], bool]
) -> tuple[Span, int, Timing, list[Span]] | None:
    """The non-noise span holding the most time on the critical path (ties: more self time,
    then the first in walk order), with its attempts.

    The attempts of one call (``retries.call_key``: the same caller, method and URL) count
    together: the IB data load's four 30 s timeouts to the host service were 24 % each, the
    operation 94 % (the span named is the attempt with the most time on the path). A root
    that has children (``cli.backtest``, a dispatch server span) only waits for them: its
    time on the path is the gaps where no span was recorded, so it is chosen only when
    nothing else is on the path. Self times are computed only to break a tie.
    """
    best: tuple[Span, int, Timing, list[Span]] | None = None
    best_key = (False, 0)
    best_self: int | None = None
    for (trace, walk), timing in zip(walks, timings, strict=True):
        critical = timing.critical_us
        if not critical:
            continue
        children = trace.children
        calls: dict[tuple[str | None, CallKey], list[tuple[Span, int]]] = {}
        for span, depth in walk:
            on_path = critical.get(span.span_id, 0)
            if on_path <= 0 or is_noise(span):
                continue
            if span.kind == CLIENT and (call := call_key(span)) is not None:
                calls.setdefault((span.parent_id, call), []).append((span, depth))
                continue
            candidate = (span, on_path, timing, [span])
            key_ = (depth > 0 or span.span_id not in children, on_path)
            best, best_key, best_self = _better(best, best_key, best_self, candidate, key_)
        for seen in calls.values():
            first, depth = seen[0]
            if len(seen) == 1:
                candidate = (first, critical[first.span_id], timing, [first])
            else:  # the attempts and everything they waited for
                attempts = _all_attempts(trace, first)
                held = {a.span_id: _held(trace, a, critical) for a in attempts}
                top = max(attempts, key=lambda a: held[a.span_id])
                candidate = (top, sum(held.values()), timing, attempts)
            key_ = (depth > 0 or first.span_id not in children, candidate[1])
            best, best_key, best_self = _better(best, best_key, best_self, candidate, key_)
    return best


def call_target(span: Span) -> str | None:
    """What a client span called, ``POST http://localhost:5001/data/validate`` (its name is
    only the method): how the bottleneck, the root cause and the flow name such a span."""
    if span.kind != CLIENT or (call := call_key(span)) is None:
        return None
    return f"{call[2] or span.name} {call[3]}"[:_MAX_TARGET]


_MAX_TARGET = 200


def _held(trace: Trace, span: Span, critical: dict[str, int]) -> int:
    """Time on the critical path of ``span`` and the spans below it."""
    total = 0
    stack = [span]
    children = trace.children
    while stack:
        below = stack.pop()
        total += critical.get(below.span_id, 0)
        stack.extend(children.get(below.span_id, ()))
    return total


_Candidate = tuple[Span, int, Timing, list[Span]]


def _better(
    best: _Candidate | None,
    best_key: tuple[bool, int],
    best_self: int | None,
    candidate: _Candidate,
    key: tuple[bool, int],
) -> tuple[_Candidate | None, tuple[bool, int], int | None]:
    """The larger of two candidates by ``key``, ties to more self time, then the first."""
    if best is not None and key < best_key:
        return best, best_key, best_self
    if best is not None and key == best_key:
        if best_self is None:
            best_self = _self_of(best)
        own = _self_of(candidate)
        if own <= best_self:
            return best, best_key, best_self
        return candidate, key, own
    return candidate, key, None


def _self_of(candidate: _Candidate) -> int:
    _, _, timing, attempts = candidate
    return sum(timing.self_us.get(a.span_id, 0) for a in attempts)


def _all_attempts(trace: Trace, first: Span) -> list[Span]:
    """Every attempt of the call ``first`` is an attempt of, off the path too (a last
    timeout after the caller's caller gave up), in start order."""
    siblings = trace.children.get(first.parent_id, ()) if first.parent_id else trace.roots
    key = call_key(first)
    return sorted(
        (s for s in siblings if s.kind == CLIENT and call_key(s) == key), key=lambda s: s.start_us
    )
