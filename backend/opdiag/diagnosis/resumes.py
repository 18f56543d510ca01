"""A refused ``ktrdr resume`` left out of the operation it failed to resume.

KTRDR's resume endpoint (``POST /api/v1/operations/{id}/resume``) refuses in two ways, and
neither changes the operation:

* 409 when the operation is running, resuming or completed: no transition at all, but the
  CLI's call is in error, and read with it a completed training read "failed";
* after moving a failed or cancelled operation to ``resuming`` (a transition span): 404 when
  no checkpoint is found (it then marks the operation failed, without a span), 503 when no
  worker can take it and 502 when the worker refuses it (marked cancelled, without a span).
  Read with it, the operation would stay ``resuming`` for ever, then ``stuck``.

A resume that was accepted starts a new attempt, often on another worker: the operation is
judged from it on (``since_last_resume``).
"""

from __future__ import annotations

from collections.abc import Sequence

from opdiag.diagnosis.facts import operation_id_of
from opdiag.diagnosis.neighbours import clock_text
from opdiag.model import (
    CLIENT,
    SERVER,
    Span,
    Trace,
    http_status,
    lifecycle_status,
    subtree,
    url_of,
    url_path,
)

__all__ = ["since_last_resume", "without_refused_resumes"]

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]
# how deep a resume request's answer sits: the CLI's command span, its call, the server span
_REQUEST_DEPTH = 3
_CONFLICT = 409
# a command span starts this close before the request it makes (the CLI: milliseconds)
_COMMAND_LEAD_US = 10_000_000
# what KTRDR did to the operation after refusing, without a span
_AFTER = {
    404: " (KTRDR found no checkpoint and marked it failed)",
    502: " (the worker refused it; KTRDR marked it cancelled)",
    503: " (no worker could take it; KTRDR marked it cancelled)",
}


def without_refused_resumes(
    walks: Walks, operation_id: str | None, *, resumed: bool
) -> tuple[Walks, list[str]]:
    """The walks without the resume requests KTRDR refused, and a warning for each (all of
    them kept when nothing else would be left). ``resumed``: a transition to ``resuming``
    is among the operation's own (only then is the longer look for the second kind made)."""
    kept: list[tuple[Trace, Sequence[tuple[Span, int]]]] = []
    refused: list[str] = []
    for trace, walk in walks:
        answer = _refused_outright(trace, operation_id)
        if answer is None and resumed:
            answer = _refused_after_resuming(trace, walk)
        if answer is None:
            kept.append((trace, walk))
            continue
        span, status = answer
        name = span.name if span.kind == SERVER else f"{span.name} {url_of(span)}"
        refused.append(
            f"a resume at {clock_text(span.start_us)} was refused ({name} answered "
            f"{status}, trace {trace.trace_id}): the operation is read as it was before it"
            f"{_AFTER.get(status, '')}"
        )
    return (kept, refused) if kept else (walks, [])


def _refused_outright(trace: Trace, operation_id: str | None) -> tuple[Span, int] | None:
    """The resume of this operation answered 409 near the top of a request's trace (the
    CLI's command, its call, the backend's server span; with curl the server span is the
    root)."""
    level = list(trace.roots)
    for _ in range(_REQUEST_DEPTH):
        for span in level:
            if (
                _is_resume_call(span)
                and http_status(span) == _CONFLICT
                and _names(span, operation_id)
            ):
                return span, _CONFLICT
        level = [child for span in level for child in trace.children.get(span.span_id, ())]
        if not level:
            break
    return None


def _names(span: Span, operation_id: str | None) -> bool:
    """Whether the call's path names the operation, when one is asked for."""
    return operation_id is None or operation_id in url_path(span)


def _is_resume_call(span: Span) -> bool:
    if span.kind == SERVER:
        return span.name.startswith("POST ") and span.name.endswith("/resume")
    return span.kind == CLIENT and url_path(span).rstrip("/").endswith("/resume")


def _refused_after_resuming(
    trace: Trace, walk: Sequence[tuple[Span, int]]
) -> tuple[Span, int] | None:
    """The server span (and its status) that answered >= 400 around a transition to
    ``resuming`` in this walk, if there is one."""
    for span, _ in walk:
        if lifecycle_status(span.attributes) != "resuming":
            continue
        parent_id = span.parent_id
        while parent_id is not None:
            parent = trace.by_id.get(parent_id)
            if parent is None:
                break
            status = http_status(parent)
            if parent.kind == SERVER and status is not None:
                return (parent, status) if status >= 400 else None
            parent_id = parent.parent_id
    return None


def since_last_resume(walks: Walks, operation_id: str | None) -> tuple[Walks, str | None]:
    """The walks cut to the run since the operation's last accepted resume, and a warning
    saying what was left out. A resumed run is a new attempt, often on another worker: the
    first attempt's lost worker, its pause and its length are history, not this run's story
    (a training killed, failed by KTRDR's orphan detector, then resumed and completed read
    ``worker_lost``). The resume request (its server span, the call and the command above
    it) is kept whole whatever its clocks say; the other spans are kept from its start on."""
    latest: tuple[Span, Trace] | None = None
    for trace, walk in walks:
        for span, _ in walk:
            if lifecycle_status(span.attributes) != "resuming":
                continue
            if operation_id is not None and operation_id_of(span) != operation_id:
                continue
            if latest is None or span.start_us > latest[0].start_us:
                latest = (span, trace)
    if latest is None:
        return walks, None
    resumed, trace = latest
    top = _resume_request(resumed, trace)
    since = top.start_us
    request = {s.span_id for s, _ in subtree(trace, top)}
    kept: list[tuple[Trace, Sequence[tuple[Span, int]]]] = []
    first: int | None = None
    left = 0
    for t, walk in walks:
        mine = request if t is trace else None
        part = [
            (s, d)
            for s, d in walk
            if s.start_us >= since or (mine is not None and s.span_id in mine)
        ]
        if len(part) < len(walk):
            left += len(walk) - len(part)
            earliest = min(s.start_us for s, _ in walk)
            first = earliest if first is None else min(first, earliest)
        if part:
            kept.append((t, part))
    if not left or first is None:
        return walks, None
    was = resumed.attributes.get("operation.from_status")
    return kept, (
        f"resumed at {clock_text(resumed.start_us)}"
        f"{f' from {was}' if isinstance(was, str) and was else ''}: the run since is judged; "
        f"the attempt before it (from {clock_text(first)}, {left} span(s)) is left out"
    )


def _resume_request(transition: Span, trace: Trace) -> Span:
    """The top of the request that moved the operation to ``resuming``: the backend's server
    span, the call that reached it and the command that made the call (no higher: a resume
    made inside a long-lived trace must not reach back to its start)."""
    by_id = trace.by_id
    current = transition
    while current.kind != SERVER:
        parent = by_id.get(current.parent_id) if current.parent_id is not None else None
        if parent is None:
            return current
        current = parent
    server = current
    for _ in range(2):  # the client call, the command span that made it (just before)
        parent = by_id.get(current.parent_id) if current.parent_id is not None else None
        if parent is None or parent.kind == SERVER:
            break
        if server.start_us - parent.start_us > _COMMAND_LEAD_US:
            break  # a session or coordinator around the request, not its command
        current = parent
    return current
