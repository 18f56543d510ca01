"""Failed attempts that did not decide the operation's outcome, as the engine treats them.

Two kinds: a call a retry made good (``analysis.retries``), and a status poll of an operation
that then completed (KTRDR's CLI gives up following when the backend stops answering, while
the worker finishes the work). A poll only reads; the caller that gave up because of it (the
CLI command, in error in the same service) gave up on watching, not on the work.

Their spans stay in the flow (marked ``recovered``) and the rules still look at them, but
what fires on them cannot decide the verdict: the findings of one attempt become a single
advisory finding (the highest-ranked one, the others in its ``also``), which says the attempt
failed and what made it good. Their error spans are not the operation's
(``operation_facts(recovered=…)``) and their calls do not say which worker ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from msgspec.structs import replace

from opdiag.analysis.retries import Retry, retries
from opdiag.diagnosis.neighbours import clock_text
from opdiag.diagnosis.result import SEVERITIES, Finding
from opdiag.diagnosis.rules import RuleSet
from opdiag.model import CLIENT, Span, Trace, below

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


class Recovered(msgspec.Struct):
    """The spans of the operation's failed attempts that did not decide its outcome."""

    # (trace id, span id) -> the attempt it belongs to (the attempt, everything below it,
    # and the callers that gave up because of it)
    attempt: dict[tuple[str, str], Retry]

    def __bool__(self) -> bool:
        return bool(self.attempt)

    def of(self, span: Span) -> Retry | None:
        return self.attempt.get((span.trace_id, span.span_id))

    @property
    def ids(self) -> dict[str, set[str]]:
        """Trace id -> the span ids of its recovered spans (``operation_facts(recovered=…)``)."""
        out: dict[str, set[str]] = {}
        for trace_id, span_id in self.attempt:
            out.setdefault(trace_id, set()).add(span_id)
        return out


def recovered_attempts(
    walks: Walks,
    *,
    completed: Span | None = None,
    is_poll: Callable[[Span], bool] | None = None,
) -> Recovered:
    """Every failed attempt of the operation's walks that a later identical call made good;
    with ``completed`` (the transition to completed) and ``is_poll``, also every failed
    poll that ended before it, and the callers in error that gave up because of them."""
    attempt: dict[tuple[str, str], Retry] = {}
    for trace, walk in walks:
        found = retries(trace, walk)
        if completed is not None and is_poll is not None:
            made_good = {r.failed.span_id for r in found}
            found += [
                Retry(span, completed)
                for span in abandoned_polls(walk, completed.start_us, is_poll)
                if span.span_id not in made_good
            ]
        in_trace: set[str] = set()
        for retry in found:
            for sid in below(trace.children, [retry.failed.span_id]) - in_trace:
                in_trace.add(sid)
                attempt[(trace.trace_id, sid)] = retry
        for retry in found:  # then the callers that failed only because of them
            for sid in _gave_up(trace, retry.failed, in_trace):
                attempt.setdefault((trace.trace_id, sid), retry)
    return Recovered(attempt)


def abandoned_polls(
    walk: Sequence[tuple[Span, int]], before_us: int, is_poll: Callable[[Span], bool]
) -> list[Span]:
    """Failed status polls (client calls the noise check calls polling) that ended before
    ``before_us``."""
    return [
        span
        for span, _ in walk
        if span.error
        and span.kind == CLIENT
        and span.start_us + span.duration_us <= before_us
        and is_poll(span)
    ]


def _gave_up(trace: Trace, failed: Span, recovered: set[str]) -> list[str]:
    """The ancestors of ``failed`` in its own service that are in error and whose every
    child in error is recovered: the caller that stopped because that call failed. Each
    one found joins ``recovered`` (its own caller is judged with it there)."""
    out: list[str] = []
    parent_id = failed.parent_id
    while parent_id is not None:
        parent = trace.by_id.get(parent_id)
        if parent is None or not parent.error or parent.service != failed.service:
            break
        kids = trace.children.get(parent_id, ())
        if any(k.error and k.span_id not in recovered for k in kids):
            break
        out.append(parent_id)
        recovered.add(parent_id)
        parent_id = parent.parent_id
    return out


def advisory(findings: Sequence[Finding], retry: Retry, rules: RuleSet) -> Finding:
    """One failed attempt's findings as the single advisory finding that stays: the
    highest-ranked one (priority, then severity), no verdict, the others in ``also``."""

    def rank(f: Finding) -> tuple[int, int]:
        rule = rules.get(f.rule_id)
        severity = -SEVERITIES.index(f.severity) if f.severity in SEVERITIES else -9
        return (rule.priority if rule is not None else 0, severity)

    ordered = sorted(findings, key=rank, reverse=True)
    top = ordered[0]
    also: list[dict[str, Any]] = [
        {
            "rule_id": f.rule_id,
            "verdict": f.verdict,
            "summary": f.summary,
            "service": f.service,
            "span_name": f.span_name,
            "trace_id": f.trace_id,
            "span_id": f.span_id,
        }
        for f in ordered[1:]
    ]
    ok = retry.retry
    again = ok.kind == CLIENT and ok.name == retry.failed.name
    evidence: dict[str, Any] = {
        **top.evidence,
        "recovered_from": top.verdict,
        "retry.span_id": ok.span_id,
        "retry.time": clock_text(ok.start_us),
    }
    if also:
        evidence["also"] = also
    return replace(
        top,
        verdict=None,
        severity="warning",
        summary=(
            f"recovered: {top.summary} — the same call ({ok.name} on {ok.service}) "
            f"was made again at {clock_text(ok.start_us)} and succeeded"
            if again
            else f"recovered: {top.summary} — a status read only; the operation completed "
            f"at {clock_text(ok.start_us)} ({ok.name} on {ok.service})"
        ),
        evidence=evidence,
    )


NOTHING_RECOVERED = Recovered({})
