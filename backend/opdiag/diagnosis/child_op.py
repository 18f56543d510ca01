"""The child operation a root cause belongs to.

A parent operation (KTRDR's agent research) starts its children inside its own trace: the
coordinator's ``training.start``, the dispatch under it and the worker's spans, the child's
id on the worker's ``operation.register``. When the child fails, the parent fails with it
("Training failed: No data found in cache for ZZZZ 1h") and the deepest error is the child's
(``training.data_loading``): the parent's diagnosis then read exactly like the child's,
without saying which operation failed, and its steps stopped at fixing the child, never
saying to run the parent again. This names the child in the summary and adds that step.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from opdiag.diagnosis.facts import operation_id_of
from opdiag.diagnosis.result import Diagnosis
from opdiag.model import Span, Trace

__all__ = ["child_of", "name_child"]

_TYPE = "operation.type"


def child_of(trace: Trace, span_id: str, operation_id: str) -> tuple[str, str | None] | None:
    """(id, type) of the one other operation whose work holds ``span_id``: the nearest
    ancestor (or the span itself) whose subtree carries other operation ids, and not
    ``operation_id``. None when the span is the operation's own (an ancestor carries its id,
    or the subtree mixes it with others: the coordinator level)."""
    span = trace.by_id.get(span_id)
    while span is not None:
        if operation_id_of(span) == operation_id:
            return None
        ids, kind = _ids_below(trace, span)
        if operation_id in ids:
            return None
        if len(ids) == 1:
            (child,) = ids
            return child, kind
        if ids:  # several others: not one child's
            return None
        span = trace.by_id.get(span.parent_id) if span.parent_id else None
    return None


def _ids_below(trace: Trace, top: Span) -> tuple[set[str], str | None]:
    """The operation ids in ``top``'s subtree, and an ``operation.type`` written beside them."""
    ids: set[str] = set()
    kind: str | None = None
    todo = [top]
    while todo:
        span = todo.pop()
        value = operation_id_of(span)
        if value is not None:
            ids.add(value)
            written = span.attributes.get(_TYPE)
            if kind is None and isinstance(written, str) and written:
                kind = written
        todo.extend(trace.children.get(span.span_id, ()))
    return ids, kind


def name_child(diagnosis: Diagnosis, traces: Sequence[Trace]) -> None:
    """When the root cause lies in a child operation's work, say so in the summary (the
    child's id and type) and add the parent's way out: fix the child, run the parent again."""
    rc, own = diagnosis.root_cause, diagnosis.operation_id
    if rc is None or own is None or rc.neighbour:
        return
    trace = next((t for t in traces if t.trace_id == rc.trace_id), None)
    found = child_of(trace, rc.span_id, own) if trace is not None else None
    if found is None:
        return
    child, kind = found
    what = f"{kind} {child}" if kind and kind not in child else child
    parent = (diagnosis.operation_type or "operation").replace("_", " ")
    head, sep, rest = diagnosis.summary.partition(": ")
    told = f"its child {what} failed on {rc.service}"
    diagnosis.summary = f"{head}: {told}: {rest}" if sep else f"{diagnosis.summary} ({told})"
    solution = diagnosis.solution
    if solution is not None:  # a copy: a solution may be shared with another diagnosis
        step = (
            f"The {parent} {own} failed because its child {what} did: fix what the child "
            f"met (below; diagnose {child} for its own story), then start the {parent} again."
        )
        diagnosis.solution = msgspec.structs.replace(solution, steps=[step, *solution.steps])
