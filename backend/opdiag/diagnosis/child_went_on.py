"""The child operations a finished parent left running.

A parent operation (KTRDR's agent research) starts its children inside its own trace: the
coordinator's ``training.start``, the worker's spans under it, the child's id on them. When
the parent ends first, its children do not always end with it: KTRDR's cancel of a research
(``DELETE /api/v1/operations/{id}``) cancels only the children registered with the research
as their parent, and a training or backtest its coordinator started on a worker is not one;
a restarted backend fails the research and leaves the worker's training alone. The child runs
on for minutes, its worker busy, its result never assessed: the parent's diagnosis read
"cancelled … 1.6 min in" and nothing said the training went on. This says so, with the
child's id, its worker and how far it went, and adds the step to take.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from opdiag.diagnosis.facts import operation_id_of
from opdiag.diagnosis.neighbours import clock_text
from opdiag.diagnosis.result import Diagnosis
from opdiag.model import Span, Trace, lifecycle_status
from opdiag.operations import TERMINAL

__all__ = ["children_went_on", "tell_children_went_on"]


class WentOn(msgspec.Struct, frozen=True):
    """A child that outlived its parent: its id, type, the service that ran it, its last
    status (``running`` when no transition ended it) and when that was said."""

    operation_id: str
    operation_type: str | None
    service: str
    status: str
    at_us: int


def children_went_on(
    traces: Sequence[Trace], operation_id: str, ended_us: int
) -> list[WentOn]:
    """The children of ``operation_id`` in its traces (another id carried below a span that
    carries its id: the research's coordinator above the training it started) that were not
    ended with it at ``ended_us``: no transition of theirs ended them, or one did after
    ``ended_us`` and was no cancel (a cancel that reached the child)."""
    found: dict[str, WentOn] = {}
    for trace in traces:
        by_id = trace.by_id
        own = {s.span_id for s in trace.spans if operation_id_of(s) == operation_id}
        if not own:
            continue
        last: dict[str, Span] = {}  # child id -> its last transition (or its last span)
        kinds: dict[str, str] = {}
        for span in trace.spans:
            child = operation_id_of(span)
            if child is None or child == operation_id or not _under(span, own, by_id):
                continue
            written = span.attributes.get("operation.type")
            if isinstance(written, str) and written and child not in kinds:
                kinds[child] = written
            seen = last.get(child)
            moved = lifecycle_status(span.attributes) is not None
            if seen is None or (moved, span.end_us) > (
                lifecycle_status(seen.attributes) is not None, seen.end_us
            ):
                last[child] = span
        for child, span in last.items():
            status = lifecycle_status(span.attributes) or "running"
            if status not in TERMINAL:
                status = "running"
            elif status == "cancelled" or span.end_us <= ended_us:
                continue
            found[child] = WentOn(child, kinds.get(child), span.service, status, span.end_us)
    return list(found.values())


def tell_children_went_on(diagnosis: Diagnosis, traces: Sequence[Trace]) -> None:
    """When a finished operation left a child running (``children_went_on``), say so in the
    summary and add the step: cancel the child too, or know that its worker was busy."""
    own, ended_ms = diagnosis.operation_id, diagnosis.ended_at_ms
    if own is None or ended_ms is None or not diagnosis.finished:
        return
    went_on = children_went_on(traces, own, ended_ms * 1000)
    if not went_on:
        return
    parent = (diagnosis.operation_type or "operation").replace("_", " ")
    told, steps = [], []
    for child in went_on:
        what = (
            f"{child.operation_type} {child.operation_id}"
            if child.operation_type and child.operation_type not in child.operation_id
            else child.operation_id
        )
        at = clock_text(child.at_us)
        if child.status == "running":
            told.append(f"its child {what} has no end recorded: it was running on "
                        f"{child.service} since {at}")
            steps.append(f"Ending the {parent} does not stop a child it started on a worker: "
                         f"{what} may still hold {child.service}; `ktrdr status "
                         f"{child.operation_id}` says, and `ktrdr cancel {child.operation_id}` "
                         "stops it if its result is not wanted.")
        else:
            told.append(f"its child {what} was not stopped with it and ran on "
                        f"{child.service} until {at} ({child.status})")
            steps.append(f"Ending the {parent} did not stop its child {what}: it held "
                         f"{child.service} until {at} ({child.status}) and its result went "
                         "unused.")
    diagnosis.summary = f"{diagnosis.summary}; {'; '.join(told)}"
    solution = diagnosis.solution
    if solution is not None:  # a copy: a solution may be shared with another diagnosis
        diagnosis.solution = msgspec.structs.replace(solution, steps=[*solution.steps, *steps])


def _under(span: Span, own: set[str], by_id: dict[str, Span]) -> bool:
    """Is ``span`` below one of ``own`` (the spans that carry the operation's id)?"""
    current = by_id.get(span.parent_id) if span.parent_id else None
    seen = 0
    while current is not None and seen < 1000:
        if current.span_id in own:
            return True
        current = by_id.get(current.parent_id) if current.parent_id else None
        seen += 1
    return False
