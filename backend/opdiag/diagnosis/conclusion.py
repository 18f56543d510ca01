"""From what fired to the answer: verdict by priority, one finding per fact, root cause.

Several rules often say the same thing about one failure (the IB host service timed out: a
host-service rule, a generic "no answer" rule, a connection-error rule and KTRDR's own
failed transition). The winner is the highest-priority verdict rule; every other verdict
finding is folded into its evidence (``also``: rule id, summary, span), so each rule that
fired stays visible without six findings repeating one fact. A finding whose verdict is
``healthy`` under another verdict is dropped: a slow operation does not list "healthy:
completed". Advisory findings (no verdict) stay findings of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from msgspec.structs import replace

from opdiag.diagnosis.facts import OperationFacts
from opdiag.diagnosis.result import (
    SEVERITIES,
    WARNING_OR_WORSE,
    Diagnosis,
    Finding,
    FlowStep,
    RootCause,
    Solution,
    verdict_severity,
)
from opdiag.diagnosis.rules import Rule, RuleSet
from opdiag.diagnosis.templates import fill, fill_commands, listed_step
from opdiag.durations import human_ms

_HEALTHY = "healthy"


def minutes_text(us: float) -> str:
    """Minutes as people say them: ``6.1`` under ten, ``42`` above."""
    minutes = us / 60e6
    return f"{minutes:.1f}" if minutes < 10 else f"{minutes:.0f}"


def duration_text(us: float) -> str:
    """A length in the unit people say it in (``durations.human_ms``: ``239 ms``, ``5.2 s``,
    ``4.1 min``, ``1 h 5 min``): a 5 s backtest "completed in 0.1 min" said nothing."""
    return human_ms(max(0.0, us) / 1000)


def fold(fired: Sequence[Finding], winner: Finding | None) -> list[Finding]:
    """The findings to show: the winner (with the other verdict findings in its evidence's
    ``also``) and the advisory ones, in rank order."""
    if winner is None:
        return list(fired)
    also: list[dict[str, Any]] = []
    out: list[Finding] = []
    for finding in fired:
        if finding is winner or finding.verdict is None:
            out.append(finding)
        elif finding.verdict == _HEALTHY and winner.verdict != _HEALTHY:
            continue
        else:
            also.append(
                {
                    "rule_id": finding.rule_id,
                    "verdict": finding.verdict,
                    "summary": finding.summary,
                    "service": finding.service,
                    "span_name": finding.span_name,
                    "trace_id": finding.trace_id,
                    "span_id": finding.span_id,
                }
            )
    if also:
        shown = replace(winner, evidence={**winner.evidence, "also": also})
        out = [shown if f is winner else f for f in out]
    return out


def conclude(diagnosis: Diagnosis, rules: RuleSet, fallback: tuple[str, str]) -> None:
    """Order what fired, pick the verdict by priority, fold the rest into the winner, fill
    summary, root cause, solution."""
    order = rules.order

    def rank(f: Finding) -> tuple[int, int, int]:
        rule = rules.get(f.rule_id)
        priority = rule.priority if rule is not None else 0
        severity = -SEVERITIES.index(f.severity) if f.severity in SEVERITIES else -9
        return (priority, severity, -order.get(f.rule_id, len(order)))

    if len(diagnosis.fired) > 1:  # (most operations fire one rule)
        diagnosis.fired.sort(key=rank, reverse=True)
    winner = next((f for f in diagnosis.fired if f.verdict is not None), None)
    diagnosis.root_cause = None
    diagnosis.solution = None
    diagnosis.findings = fold(diagnosis.fired, winner)
    if winner is None:
        diagnosis.verdict, diagnosis.summary = fallback
        diagnosis.severity = verdict_severity(diagnosis.verdict)
    else:
        diagnosis.verdict = winner.verdict or fallback[0]
        diagnosis.summary = winner.summary
        diagnosis.severity = winner.severity
        rule = rules.get(winner.rule_id)
        if rule is not None:
            diagnosis.solution = Solution(
                title=fill(rule.solution.title, winner.evidence),
                steps=_steps(rule, winner.evidence),
                commands=fill_commands(rule.solution.commands, winner.evidence),
                rule_id=rule.id,
            )
        if rule is not None and rule.bottleneck == "none":
            diagnosis.bottleneck = None
        # time no span covers has no span to blame: the span it follows took 0.2 s of a
        # training whose loop ran slow (the bottleneck says where the time went)
        in_gap = (
            rule is not None
            and rule.subject == "bottleneck"
            and diagnosis.bottleneck is not None
            and diagnosis.bottleneck.kind == "gap"
        )
        # a healthy verdict has no root cause, unless its rule warns: then the span it warns
        # about (a data load KTRDR completed with some of its IB requests failed); nor has
        # one whose rule says so (``cause: none``: a user's cancel, someone decided it and
        # nothing broke; the finding keeps the cancel's span, the flow shows it)
        warns = diagnosis.verdict != _HEALTHY or winner.severity in WARNING_OR_WORSE
        blamed = warns and (rule is None or rule.cause != "none")
        if winner.span_id is not None and blamed and not in_gap:
            keep = winner.neighbour or (rule is not None and rule.cause == "matched")
            origin = None if keep else _error_origin(diagnosis, winner)
            evidence = {**winner.evidence, **origin.evidence} if origin else dict(winner.evidence)
            cause = origin or winner
            diagnosis.root_cause = RootCause(
                trace_id=cause.trace_id or "",
                span_id=cause.span_id or "",
                service=cause.service or "",
                span_name=cause.span_name or "",
                evidence=evidence,
                exception_type=_text_or_none(evidence.get("exception.type")),
                exception_message=_text_or_none(evidence.get("exception.message")),
                neighbour=cause.neighbour,
                time_ms=cause.time_ms,
                target=cause.target,
            )
    rc, bn = diagnosis.root_cause, diagnosis.bottleneck
    rc_key = (rc.trace_id, rc.span_id) if rc is not None else None
    bn_key = (bn.trace_id, bn.span_id) if bn is not None and bn.kind == "span" else None
    used: list[str] = []
    for f in diagnosis.findings:
        if f.neighbour and f.trace_id:
            used.append(f.trace_id)
            used.extend(f.other_trace_ids)
    if rc is not None and rc.neighbour:
        used.insert(0, rc.trace_id)
    diagnosis.evidence_trace_ids = list(dict.fromkeys(used))
    # Steps are shared with the diagnosis this one was copied from (reassess_slow): only a
    # step whose marks change is replaced.
    flow = diagnosis.execution_flow
    for i, step in enumerate(flow):
        key = (step.trace_id, step.span_id)
        is_rc, is_bn = key == rc_key, key == bn_key
        if step.root_cause is not is_rc or step.bottleneck is not is_bn:
            if flow is diagnosis.execution_flow:
                flow = list(flow)
            flow[i] = _marked(step, is_rc, is_bn)
    diagnosis.execution_flow = flow


def _steps(rule: Rule, evidence: dict[str, Any]) -> list[str]:
    """The rule's steps filled (a step made only of a value that is missing says nothing:
    left out), then why its commands come once for each of several values, if they do."""
    steps = [s for s in (fill(t, evidence) for t in rule.solution.steps) if s]
    listed = listed_step(rule.solution.commands, evidence)
    if listed is not None:
        steps.append(listed)
    return steps


def _marked(step: FlowStep, root_cause: bool, bottleneck: bool) -> FlowStep:
    """The step marked (a copy: steps may be shared with a cached diagnosis)."""
    return replace(step, root_cause=root_cause, bottleneck=bottleneck)


_PROVEN_BY_HEALTHY_SPAN = frozenset(
    {
        "no_workers",
        "no_capable_workers",
        "workers_busy",
        "worker_lost",
        "stuck",
        "slow",
        "cancelled",
        "healthy",
    }
)


def _error_origin(diagnosis: Diagnosis, winner: Finding) -> Finding | None:
    """The root cause is the deepest span of the error chain (SPEC). A verdict can be decided
    on a span that is not itself in error (``operation.state_transition`` to ``failed``
    carries the message; the exception sits on the phase span below it): then the deepest
    error span that another finding points at is the root cause, and the winner's evidence
    is kept beside it. Verdicts proven by a healthy span (worker counts, stuck, slow) keep
    their span."""
    if diagnosis.verdict in _PROVEN_BY_HEALTHY_SPAN:
        return None
    steps = {
        (s.trace_id, s.span_id): s for s in diagnosis.execution_flow if s.error and not s.recovered
    }
    if not steps or (winner.trace_id, winner.span_id) in steps:
        return None
    best: tuple[int, float] | None = None
    origin: Finding | None = None
    for finding in diagnosis.fired:
        step = steps.get((finding.trace_id, finding.span_id))
        if step is None:
            continue
        key = (step.depth, step.start_ms)
        if best is None or key > best:
            best, origin = key, finding
    return origin


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def healthy_text(status: str) -> str:
    if status == "completed":
        return "healthy: completed"
    return f"healthy: no errors (status {status})"


def fallback_verdict(facts: OperationFacts) -> tuple[str, str]:
    """The verdict when no rule with a verdict fired."""
    if facts.error_spans or facts.status == "failed":
        return "failed", f"failed: {facts.error_spans} error span(s) without a known cause"
    if facts.status == "cancelled":
        return "cancelled", "cancelled"
    if facts.stuck:
        phase = facts.phase or "an unknown phase"
        return "stuck", f"stuck in {phase}, quiet for {duration_text(facts.idle_us)}"
    if facts.running:
        return "healthy", f"running: {facts.span_count} spans so far, no errors"
    return "healthy", healthy_text(facts.status)
