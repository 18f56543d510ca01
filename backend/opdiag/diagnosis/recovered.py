"""Failed attempts a retry made good (``analysis.retries``), as the engine treats them.

Their spans stay in the flow (marked ``recovered``) and the rules still look at them, but
what fires on them cannot decide the verdict: the findings of one attempt become a single
advisory finding (the highest-ranked one, the others in its ``also``), which says the attempt
failed and when the same call succeeded. Their error spans are not the operation's
(``operation_facts(recovered=…)``) and their calls do not say which worker ran it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec.structs import replace

from opdiag.analysis.retries import Retry, recovered_ids, retries
from opdiag.diagnosis.neighbours import clock_text
from opdiag.diagnosis.result import SEVERITIES, Finding
from opdiag.diagnosis.rules import RuleSet
from opdiag.model import Span, Trace

Walks = Sequence[tuple[Trace, Sequence[tuple[Span, int]]]]


class Recovered(msgspec.Struct):
    """The spans of the operation's failed attempts that a retry made good."""

    ids: dict[str, set[str]]  # trace id -> span ids (the attempts and everything below them)
    attempt: dict[tuple[str, str], Retry]  # (trace id, span id) -> the attempt it belongs to

    def __bool__(self) -> bool:
        return bool(self.attempt)

    def of(self, span: Span) -> Retry | None:
        return self.attempt.get((span.trace_id, span.span_id))


def recovered_attempts(walks: Walks) -> Recovered:
    """Every failed attempt of the operation's walks that a later identical call made good."""
    ids: dict[str, set[str]] = {}
    attempt: dict[tuple[str, str], Retry] = {}
    for trace, walk in walks:
        for retry in retries(trace, walk):
            below = recovered_ids(trace, [retry.failed])
            ids.setdefault(trace.trace_id, set()).update(below)
            for sid in below:
                attempt.setdefault((trace.trace_id, sid), retry)
    return Recovered(ids, attempt)


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
        ),
        evidence=evidence,
    )


NOTHING_RECOVERED = Recovered({}, {})
