"""What a fired rule shows: the span it points at, the values its templates read and the
attributes that proved the match, as one ``Finding``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opdiag.diagnosis.bottleneck import Choice, call_target
from opdiag.diagnosis.conclusion import duration_text
from opdiag.diagnosis.facts import OperationFacts
from opdiag.diagnosis.matching import ExceptionInfo, exceptions_of, route_param, span_values
from opdiag.diagnosis.neighbours import WorkerAssessment, clock_text
from opdiag.diagnosis.op_values import OperationValues
from opdiag.diagnosis.result import Finding
from opdiag.diagnosis.rules import Rule
from opdiag.diagnosis.templates import (
    ATTR_PREFIX,
    OPERATION_VALUE_PREFIX,
    PLACEHOLDERS,
    attr_evidence_key,
    fill_line,
)
from opdiag.model import Span, Trace, failed, http_method, lifecycle_status

__all__ = ["evidence_of", "finding_of", "first_exception", "reason_below", "subject_span"]

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]
# shown with every finding whose span has them
_ALWAYS = ("exception.type", "exception.message", "http.url", "http.status")
# how far below an error answer its reason is looked for (CLI POST → server span → handler)
_REASON_DEPTH = 6


def subject_span(
    subject: str,
    facts: OperationFacts,
    choice: Choice,
    walks: Walks,
    *,
    workers: WorkerAssessment,
    by_trace: dict[str, Trace],
) -> Span | None:
    """The span an operation-level rule points at."""
    if subject == "last_span":
        return facts.last_span
    if subject == "last_phase":  # where the work was (a CLI poll ended later: not the work)
        return facts.phase_span or facts.last_span
    if subject == "bottleneck" and choice.span is not None:
        return choice.span
    if subject == "worker_probe" and workers.deciding_probe is not None:
        probe = workers.deciding_probe
        trace = by_trace.get(probe.trace_id)
        found = trace.by_id.get(probe.span_id) if trace is not None else None
        if found is not None:
            return found
    if subject == "error_origin" and facts.error_origin is not None:
        return facts.error_origin
    if subject == "last_transition" and facts.last_transition is not None:
        return facts.last_transition
    if subject == "unlinked_call" and facts.unlinked_call is not None:
        return facts.unlinked_call
    roots = [span for _, walk in walks for span, depth in walk if depth == 0]
    return min(roots, key=lambda s: s.start_us) if roots else walks[0][1][0][0]


def first_exception(span: Span | None) -> ExceptionInfo | None:
    if span is None:
        return None
    excs = exceptions_of(span)
    return excs[0] if excs else None


def reason_below(span: Span, trace: Trace | None) -> ExceptionInfo | None:
    """The exception that explains an error answer recorded below it: the nearest one in
    the span's subtree, the earliest at that depth. KTRDR's CLI sees only '400' on its POST,
    the backend's server span only the status; the reason is on ``training.start`` under
    them ('Strategy file not found: …'), and a finding on either span should say so rather
    than 'its reason is not in the traces'. None for a span that did not fail."""
    if trace is None or not failed(span):
        return None
    level = [span]
    for _ in range(_REASON_DEPTH):  # a trace is a tree (build_trace breaks cycles)
        level = sorted(
            (c for s in level for c in trace.children.get(s.span_id, ())),
            key=lambda c: c.start_us,
        )
        for child in level:
            exc = first_exception(child)
            if exc is not None and (exc.message or exc.type):
                return exc
    return None


def _attr_up(span: Span, key: str, trace: Trace | None) -> Any:
    """The span's attribute, else the nearest ancestor's (``data.symbol`` sits on the phase
    span, the exception on a child)."""
    current: Span | None = span
    while current is not None:
        if key in current.attributes:
            return current.attributes[key]
        if trace is None or current.parent_id is None:
            return None
        current = trace.by_id.get(current.parent_id)
    return None


def _route_param_up(span: Span, trace: Trace | None) -> str | None:
    """``route.param`` of the span, else of the nearest ancestor that has one: the backend's
    client call to a worker (``GET …/operations/op_x``) sits under the server span whose
    route names the operation it reads."""
    current: Span | None = span
    seen: set[str] = set()
    while current is not None and current.span_id not in seen:
        seen.add(current.span_id)
        param = route_param(current)
        if param is not None:
            return param
        if trace is None or current.parent_id is None:
            return None
        current = trace.by_id.get(current.parent_id)
    return None


def _request_of(span: Span, trace: Trace | None) -> str:
    """The command or request the span ran under: the highest of its ancestors the trace
    holds (``cli.cancel on ktrdr-cli``; a request sent with curl is its server span). When
    that command also started the operation (its trace holds the move to running), it was
    interrupted while it followed it: ``ktrdr train --follow`` cancels on Ctrl-C."""
    top = span
    seen = {span.span_id}
    while trace is not None and top.parent_id is not None:
        parent = trace.by_id.get(top.parent_id)
        if parent is None or parent.span_id in seen:
            break
        seen.add(parent.span_id)
        top = parent
    if top is not span and trace is not None and _started_in(trace, span):
        return f"{top.name} on {top.service} (interrupted while following)"
    return f"{top.name} on {top.service}"


def _cancel_in(span: Span, trace: Trace | None, start_us: int | None) -> str | None:
    """How long after the operation's start the cancel came: the cancel request above the
    span (``DELETE /api/v1/operations/{id}``, the CLI's call first) when its trace holds
    it, else the span itself (the cancelled transition). The operation's own duration
    runs on after the cancel, to when its worker noticed it and its last span ended."""
    if start_us is None:
        return None
    at_us = span.start_us
    current: Span | None = span
    seen: set[str] = set()
    while current is not None and current.span_id not in seen:
        seen.add(current.span_id)
        if _is_delete(current):
            at_us = min(at_us, current.start_us)
        if trace is None or current.parent_id is None:
            break
        current = trace.by_id.get(current.parent_id)
    return duration_text(max(0, at_us - start_us))


def _is_delete(span: Span) -> bool:
    """A DELETE request's span (OpenTelemetry's http.method, or the name the
    instrumentation gives it: ``DELETE`` for a client, ``DELETE /route`` for a server)."""
    return http_method(span) == "DELETE" or span.name == "DELETE" or span.name.startswith("DELETE ")


def _caller_of(span: Span, trace: Trace | None) -> str | None:
    """The service that called the span: its parent's, when that is another service (a
    server span's client). None when the trace does not hold the parent."""
    if trace is None or span.parent_id is None:
        return None
    parent = trace.by_id.get(span.parent_id)
    if parent is None or parent.service == span.service:
        return None
    return parent.service


def _started_in(trace: Trace, span: Span) -> bool:
    """Did ``trace`` move the operation to running before ``span``?"""
    return any(
        other.start_us < span.start_us and lifecycle_status(other.attributes) == "running"
        for other in trace.spans
        if other.name == span.name
    )


def _attr(span: Span | None, key: str) -> Any:
    return span.attributes.get(key) if span is not None else None


def evidence_of(
    rule: Rule,
    span: Span | None,
    exc: ExceptionInfo | None,
    *,
    op_values: OperationValues,
    by_trace: dict[str, Trace],
    count: int,
    first_us: int | None = None,
) -> dict[str, Any]:
    """Every value the rule's templates read, plus the attributes that proved the match.
    ``first_us``: when the rule's first match started (``{first_time}``, said only when it
    matched more than once, before the span kept)."""
    span_vals = span_values(span, exc) if span is not None else {}
    trace = by_trace.get(span.trace_id) if span is not None else None
    evidence: dict[str, Any] = {}
    for key in _ALWAYS:
        if span_vals.get(key) is not None:
            evidence[key] = span_vals[key]
    if span is not None and rule.match is not None:
        for cond in rule.match.attributes:
            if cond.key in span.attributes:
                evidence[attr_evidence_key(cond.key)] = span.attributes[cond.key]
    if span is not None:
        for key in rule.evidence:
            value = _attr_up(span, key, trace)
            if value is not None:
                evidence[attr_evidence_key(key)] = value
    for key in rule.template_keys:
        if key in evidence:
            continue
        if key == "matches":
            value: Any = count
        elif key == "time":
            value = clock_text(span.start_us) if span is not None else None
        elif key == "first_time":
            value = None
            if first_us is not None and span is not None and first_us < span.start_us:
                value = clock_text(first_us) if count > 1 else None
        elif key == "request":
            value = _request_of(span, trace) if span is not None else None
        elif key == "cancel_in":
            value = _cancel_in(span, trace, op_values.start_us) if span is not None else None
        elif key == "caller":
            value = _caller_of(span, trace) if span is not None else None
        elif key.startswith(OPERATION_VALUE_PREFIX):
            said = exc.message if exc is not None else _attr(span, "operation.error")
            value = op_values.for_span(key, span, said if isinstance(said, str) else None)
        elif key == "route.param":
            value = _route_param_up(span, trace) if span is not None else None
        elif key in PLACEHOLDERS:
            value = span_vals.get(key, op_values.get(key))
        else:
            attr_key = key.removeprefix(ATTR_PREFIX)
            value = _attr_up(span, attr_key, trace) if span is not None else None
        if value is not None:
            evidence[key] = value
    if count > 1:
        evidence["matches"] = count
    return evidence


def finding_of(
    rule: Rule, span: Span | None, evidence: dict[str, Any], *, neighbour: bool = False
) -> Finding:
    """A fired rule, with when its span started (for one built from a neighbouring trace,
    that is what names the evidence: trace, span and time)."""
    return Finding(
        rule_id=rule.id,
        severity=rule.severity,
        summary=fill_line(rule.summary, evidence),
        verdict=rule.verdict,
        trace_id=span.trace_id if span is not None else None,
        span_id=span.span_id if span is not None else None,
        service=span.service if span is not None else None,
        span_name=span.name if span is not None else None,
        evidence=evidence,
        neighbour=neighbour and span is not None,
        time_ms=span.start_us / 1000 if span is not None else None,
        target=call_target(span) if span is not None else None,
    )


