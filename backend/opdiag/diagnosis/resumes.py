"""A refused ``ktrdr resume`` left out of the operation it failed to resume."""

from __future__ import annotations

from collections.abc import Sequence

from opdiag.diagnosis.neighbours import clock_text
from opdiag.model import SERVER, Span, Trace, http_status, lifecycle_status

__all__ = ["without_refused_resumes"]

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


def without_refused_resumes(walks: Walks) -> tuple[Walks, list[str]]:
    """The walks without the requests that resumed the operation and were then refused, and
    a warning for each. KTRDR's resume endpoint moves a failed or cancelled operation to
    ``resuming`` (a transition span) before it looks for a checkpoint; finding none, it sets
    the operation back to failed without a span and answers 404. Such a request changed
    nothing: read with it, the operation would stay ``resuming`` for ever, then ``stuck``."""
    kept: list[tuple[Trace, Sequence[tuple[Span, int]]]] = []
    refused: list[str] = []
    for trace, walk in walks:
        answer = _refused_resume(trace, walk)
        if answer is None:
            kept.append((trace, walk))
            continue
        server, status = answer
        refused.append(
            f"a resume at {clock_text(server.start_us)} was refused ({server.name} answered "
            f"{status}, trace {trace.trace_id}): the operation is read as it was before it"
        )
    return (kept, refused) if kept else (walks, [])


def _refused_resume(trace: Trace, walk: Sequence[tuple[Span, int]]) -> tuple[Span, int] | None:
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


