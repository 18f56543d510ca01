"""The diagnosis engine: traces of one operation in, one ``Diagnosis`` out.

Pure (no I/O, no clock: ``now_us`` is an argument; the input traces are not modified) and
linear in the number of spans: the scoped spans are walked a fixed number of times, rule
candidates are looked up per distinct span name, and only matching spans are examined further.

Steps: scope the traces to the operation (facts.scoped_walk) → operation facts → timing and
bottleneck (the span with the most time on the critical path, transport noise ignored) →
span rules → operation rules → slow assessment → verdict by priority → root cause, solution,
execution flow. ``reassess_slow`` redoes only the slow assessment once the service knows the
operation type's baseline.

Verdicts without a winning rule fall back to: ``failed`` (error spans or status failed),
``cancelled``, ``stuck``, else ``healthy``. A recent unfinished operation without errors is
``healthy`` with status ``running`` (the default pack's ``operation-running`` rule says
"running: in <phase> for N min"); only finished successful runs are plain healthy.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from opdiag.diagnosis.conditions import evaluate, missing
from opdiag.diagnosis.facts import (
    OperationFacts,
    operation_facts,
    operation_id_of,
    scoped_walk,
)
from opdiag.diagnosis.matching import (
    ExceptionInfo,
    SpanContext,
    exceptions_of,
    match_span,
    span_values,
)
from opdiag.diagnosis.result import (
    SEVERITIES,
    Bottleneck,
    Diagnosis,
    Finding,
    FlowStep,
    RootCause,
    Solution,
)
from opdiag.diagnosis.rules import Globs, Rule, RuleSet, SpanMatch
from opdiag.diagnosis.templates import PLACEHOLDERS, attr_evidence_key, fill
from opdiag.diagnosis.timing import Timing, trace_timing
from opdiag.model import CLIENT, Span, Trace, looks_like_trace_id, normalise_trace_id
from opdiag.settings import DiagnosisSettings

Walks = list[tuple[Trace, list[tuple[Span, int]]]]
_EMPTY: frozenset[tuple[str, ...]] = frozenset()
_NO_IDS: frozenset[int] = frozenset()
_ALWAYS = ("exception.type", "exception.message", "http.url", "http.status")


def minutes_text(us: float) -> str:
    """Minutes as people say them: ``6.1`` under ten, ``42`` above."""
    minutes = us / 60e6
    return f"{minutes:.1f}" if minutes < 10 else f"{minutes:.0f}"


def not_found(ident: str, rules: RuleSet | None = None) -> Diagnosis:
    """The answer when no trace holds ``ident``; the pack's ``found: false`` rule (if any)
    supplies summary and solution."""
    is_trace = looks_like_trace_id(ident)
    diagnosis = Diagnosis(
        operation_id=None if is_trace else ident,
        trace_ids=[normalise_trace_id(ident)] if is_trace else [],
        verdict="not_found",
        summary=f"not found: no trace holds {ident}",
    )
    if rules is None:
        return diagnosis
    facts = {"found": False}
    for rule in rules.rules:
        if rule.match is None and rule.facts and _facts_hold(rule, facts):
            evidence = {"ident": ident}
            diagnosis.findings.append(_finding(rule, None, evidence))
    _conclude(diagnosis, rules, fallback=("not_found", diagnosis.summary))
    return diagnosis


def diagnose(
    traces: Sequence[Trace],
    *,
    ident: str,
    operation_id: str | None = None,
    rules: RuleSet,
    settings: DiagnosisSettings,
    now_us: int,
    baseline_ms: float | None = None,
) -> Diagnosis:
    """Diagnose one operation from all the traces that hold it."""
    walks: Walks = []
    context: set[str] = set()
    for trace in traces:
        walk, ancestors = scoped_walk(trace, operation_id)
        if walk:
            walks.append((trace, walk))
            context.update(ancestors)
    if not walks:
        return not_found(ident, rules)
    op_id = operation_id or _single_operation_id(walks)
    facts = operation_facts(
        walks,
        op_id,
        rules,
        now_us=now_us,
        stuck_after_s=settings.stuck_after_s,
        context=frozenset(context),
    )
    noise = _noise_check(Globs.of(settings.noise_span_patterns))
    timings = [trace_timing(t, noise) for t, _ in walks]
    bottleneck = _bottleneck(walks, timings, noise)
    op_values = _operation_values(facts, bottleneck, ident, now_us)
    by_trace = {t.trace_id: t for t, _ in walks}

    findings: list[Finding] = []
    fact_values = facts.as_dict()
    for rule, span, exc, count in _span_rule_hits(walks, rules, fact_values, bottleneck):
        evidence = _evidence(rule, span, exc, op_values=op_values, by_trace=by_trace, count=count)
        findings.append(_finding(rule, span, evidence))
    for rule in rules.rules:
        if rule.match is not None or rule.uses_slow or not _facts_hold(rule, fact_values):
            continue
        span = _subject(rule.subject, facts, bottleneck, walks)
        exc = _first_exception(span)
        evidence = _evidence(rule, span, exc, op_values=op_values, by_trace=by_trace, count=1)
        findings.append(_finding(rule, span, evidence))

    diagnosis = Diagnosis(
        operation_id=op_id,
        trace_ids=list(dict.fromkeys(t.trace_id for t, _ in walks)),
        verdict="healthy",
        summary="",
        operation_type=facts.operation_type,
        status=facts.status,
        services=facts.services,
        started_at_ms=facts.start_us // 1000,
        ended_at_ms=facts.end_us // 1000,
        duration_ms=_duration_us(facts, now_us) / 1000,
        finished=facts.finished,
        bottleneck=_bottleneck_result(bottleneck),
        findings=findings,
        warnings=[w for t, _ in walks for w in t.warnings],
    )
    diagnosis.execution_flow, diagnosis.execution_flow_truncated = _flow(
        walks, timings, facts.start_us, settings.max_flow_spans
    )
    fallback = _fallback(facts)
    _apply_slow(diagnosis, baseline_ms, rules, settings, fallback=fallback, op_values=op_values)
    return diagnosis


_IN_FLIGHT = frozenset({"pending", "running", "resuming"})


def _duration_us(facts: OperationFacts, now_us: int) -> int:
    """An operation still in flight has lasted until now, not until its last span ended: a
    stuck training that went quiet 42 minutes ago has been running for those minutes too."""
    if not facts.finished and facts.status in _IN_FLIGHT:
        return max(now_us, facts.end_us) - facts.start_us
    return facts.duration_us


def reassess_slow(
    diagnosis: Diagnosis,
    baseline_ms: float | None,
    rules: RuleSet,
    settings: DiagnosisSettings,
    change: str | None = None,
) -> Diagnosis:
    """A copy of ``diagnosis`` with ``slow`` decided against ``baseline_ms`` (the median of
    the type's last good runs; ``None`` = the configured budget). ``change`` names the phase
    that changed most against those runs; it joins the baseline's text (``{baseline}``)."""
    # Shallow is enough: _apply_slow only reassigns fields and appends new findings, and
    # _conclude rebuilds the flow steps; a deep copy cost ~1 s on a 200-operation list.
    out = replace(diagnosis, findings=list(diagnosis.findings))
    kept = [f for f in out.findings if not _is_slow_rule(rules.get(f.rule_id))]
    removed = len(kept) != len(out.findings)
    out.findings = kept
    errors = any(step.error for step in out.execution_flow)
    if out.status == "failed" or errors:
        fallback = ("failed", "failed: error spans without a known cause")
    elif out.status == "cancelled":
        fallback = ("cancelled", "cancelled")
    else:
        fallback = ("healthy", _healthy_text(out.status))
    op_values = {
        "operation.id": out.operation_id,
        "operation.type": out.operation_type,
        "operation.status": out.status,
        "minutes": minutes_text((out.duration_ms or 0) * 1000),
        "trace_count": len(out.trace_ids),
        "ident": out.key,
    }
    if out.bottleneck is not None:
        op_values.update(
            {
                "bottleneck": out.bottleneck.span_name,
                "bottleneck.service": out.bottleneck.service,
                "share": f"{round(out.bottleneck.share * 100)} %",
            }
        )
    _apply_slow(
        out,
        baseline_ms,
        rules,
        settings,
        fallback=fallback,
        op_values=op_values,
        removed=removed,
        change=change,
    )
    return out


# --- slow, verdict, root cause ------------------------------------------------------------


def _is_slow_rule(rule: Rule | None) -> bool:
    return rule is not None and rule.uses_slow


def _apply_slow(
    diagnosis: Diagnosis,
    baseline_ms: float | None,
    rules: RuleSet,
    settings: DiagnosisSettings,
    *,
    fallback: tuple[str, str],
    op_values: dict[str, Any],
    removed: bool = True,
    change: str | None = None,
) -> None:
    """Decide ``slow`` (finished, completed, duration > factor × baseline, or > the type's
    budget without a baseline), add the slow rules' findings, then conclude (unless nothing
    changed: ``removed`` says whether earlier slow findings were dropped)."""
    diagnosis.baseline_ms = baseline_ms
    duration = diagnosis.duration_ms or 0.0
    if baseline_ms is not None and baseline_ms > 0:
        limit = settings.slow_factor * baseline_ms
        reference = f"baseline {minutes_text(baseline_ms * 1000)} min"
        if change:
            reference = f"{reference}; {change}"
    else:
        budget_s = settings.slow_budget_s.get(
            diagnosis.operation_type or "", settings.default_budget_s
        )
        limit = budget_s * 1000
        reference = f"budget {minutes_text(limit * 1000)} min"
    slow = diagnosis.finished and diagnosis.status == "completed" and duration > limit
    facts = {
        "slow": slow,
        "status": diagnosis.status,
        "finished": diagnosis.finished,
        "operation_type": diagnosis.operation_type,
        "trace_count": len(diagnosis.trace_ids),
        "duration_s": duration / 1000,
    }
    values = {**op_values, "baseline": reference}
    b = diagnosis.bottleneck
    for rule in rules.rules:
        if not rule.uses_slow or not _facts_hold(rule, facts):
            continue
        evidence = dict(values)
        span_ref: tuple[str, str, str, str] | None = None
        if b is not None:
            span_ref = (b.trace_id, b.span_id, b.service, b.span_name)
            evidence.update(
                {
                    "span.name": b.span_name,
                    "span.id": b.span_id,
                    "service": b.service,
                    "trace.id": b.trace_id,
                    "duration_ms": b.duration_ms,
                }
            )
        evidence = {k: evidence.get(k) for k in rule.template_keys if evidence.get(k) is not None}
        evidence["operation.duration_ms"] = duration
        evidence["baseline_ms"] = baseline_ms
        evidence["limit_ms"] = limit
        finding = Finding(
            rule_id=rule.id,
            severity=rule.severity,
            summary=fill(rule.summary, evidence),
            verdict=rule.verdict,
            evidence=evidence,
        )
        if span_ref is not None:
            finding.trace_id, finding.span_id, finding.service, finding.span_name = span_ref
        diagnosis.findings.append(finding)
        removed = True
    if removed:
        _conclude(diagnosis, rules, fallback)


def _conclude(diagnosis: Diagnosis, rules: RuleSet, fallback: tuple[str, str]) -> None:
    """Order findings, pick the verdict by priority, fill summary, root cause, solution."""
    order = {r.id: i for i, r in enumerate(rules.rules)}

    def rank(f: Finding) -> tuple[int, int, int]:
        rule = rules.get(f.rule_id)
        priority = rule.priority if rule is not None else 0
        severity = -SEVERITIES.index(f.severity) if f.severity in SEVERITIES else -9
        return (priority, severity, -order.get(f.rule_id, len(order)))

    diagnosis.findings.sort(key=rank, reverse=True)
    winner = next((f for f in diagnosis.findings if f.verdict is not None), None)
    diagnosis.root_cause = None
    diagnosis.solution = None
    if winner is None:
        diagnosis.verdict, diagnosis.summary = fallback
    else:
        diagnosis.verdict = winner.verdict or fallback[0]
        diagnosis.summary = winner.summary
        rule = rules.get(winner.rule_id)
        if rule is not None:
            diagnosis.solution = Solution(
                title=fill(rule.solution.title, winner.evidence),
                steps=[fill(t, winner.evidence) for t in rule.solution.steps],
                commands=[fill(t, winner.evidence) for t in rule.solution.commands],
                rule_id=rule.id,
            )
        if winner.span_id is not None and diagnosis.verdict != "healthy":
            origin = _error_origin(diagnosis, winner)
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
            )
    rc, bn = diagnosis.root_cause, diagnosis.bottleneck
    rc_key = (rc.trace_id, rc.span_id) if rc is not None else None
    bn_key = (bn.trace_id, bn.span_id) if bn is not None else None
    diagnosis.execution_flow = [
        replace(
            step,
            root_cause=rc is not None and (step.trace_id, step.span_id) == rc_key,
            bottleneck=bn is not None and (step.trace_id, step.span_id) == bn_key,
        )
        for step in diagnosis.execution_flow
    ]


_PROVEN_BY_HEALTHY_SPAN = frozenset(
    {"no_workers", "no_capable_workers", "workers_busy", "stuck", "slow", "cancelled", "healthy"}
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
    steps = {(s.trace_id, s.span_id): s for s in diagnosis.execution_flow if s.error}
    if not steps or (winner.trace_id, winner.span_id) in steps:
        return None
    best: tuple[int, float] | None = None
    origin: Finding | None = None
    for finding in diagnosis.findings:
        step = steps.get((finding.trace_id, finding.span_id))
        if step is None:
            continue
        key = (step.depth, step.start_ms)
        if best is None or key > best:
            best, origin = key, finding
    return origin


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _healthy_text(status: str) -> str:
    if status == "completed":
        return "healthy: completed"
    return f"healthy: no errors (status {status})"


def _fallback(facts: OperationFacts) -> tuple[str, str]:
    """The verdict when no rule with a verdict fired."""
    if facts.error_spans or facts.status == "failed":
        return "failed", f"failed: {facts.error_spans} error span(s) without a known cause"
    if facts.status == "cancelled":
        return "cancelled", "cancelled"
    if facts.stuck:
        phase = facts.phase or "an unknown phase"
        return "stuck", f"stuck in {phase} for {minutes_text(facts.idle_us)} min"
    if facts.running:
        return "healthy", f"running: {facts.span_count} spans so far, no errors"
    return "healthy", _healthy_text(facts.status)


# --- rules ---------------------------------------------------------------------------------


def _facts_hold(rule: Rule, facts: dict[str, Any]) -> bool:
    nothing = missing()
    return all(evaluate(c, facts.get(c.key, nothing)) for c in rule.facts)


def _span_rule_hits(
    walks: Walks,
    rules: RuleSet,
    facts: dict[str, Any],
    bottleneck: tuple[Span, int, Timing] | None,
) -> list[tuple[Rule, Span, ExceptionInfo | None, int]]:
    """Evaluate every span rule on every scoped span, once; keep per rule the deepest (then
    latest) matching span and the number of matches."""
    active = [r for r in rules.rules if r.match is not None and _facts_hold(r, facts)]
    withins = list(
        {
            r.match.within.patterns: r.match.within
            for r in active
            if r.match is not None and r.match.within is not None
        }.values()
    )
    # nested ``without_descendant``/``without_child`` matches, by id(): precomputed in one
    # pass over a trace, only once a span of it meets a candidate rule that uses one
    no_desc: dict[int, SpanMatch] = {}
    no_child: dict[int, SpanMatch] = {}
    for r in active:
        if r.match is not None and r.match.without_descendant is not None:
            no_desc[id(r.match.without_descendant)] = r.match.without_descendant
        if r.match is not None and r.match.without_child is not None:
            no_child[id(r.match.without_child)] = r.match.without_child
    # (name, kind, error, has an exception) -> rules that may match, does one use ``within``,
    # does one use ``without_*``
    candidates: dict[tuple[str, str, bool, bool], tuple[list[Rule], bool, bool]] = {}
    own_within: dict[str, frozenset[tuple[str, ...]]] = {}
    best: dict[str, tuple[tuple[int, int], Span, ExceptionInfo | None]] = {}
    counts: dict[str, int] = {}
    b_span = bottleneck[0] if bottleneck else None
    b_share = (
        bottleneck[1] / bottleneck[2].critical_length_us
        if bottleneck and bottleneck[2].critical_length_us
        else 0.0
    )

    def own_within_of(name: str) -> frozenset[tuple[str, ...]]:
        own = own_within.get(name)
        if own is None:
            own = own_within[name] = frozenset(w.patterns for w in withins if w(name))
        return own

    for trace, walk in walks:
        error_below: set[str] = set()
        for span, _ in reversed(walk):
            if (span.error or span.span_id in error_below) and span.parent_id is not None:
                error_below.add(span.parent_id)
        # ``within`` sets are computed only for spans that meet a candidate rule (few), from
        # their ancestors up, and memoised: a scoped walk holds every ancestor of its spans.
        within_of: dict[str, frozenset[tuple[str, ...]]] = {}
        by_id = trace.by_id
        below_sets: tuple[dict[int, set[str]], dict[int, set[str]]] | None = None
        for span, depth in walk:
            name = span.name
            attrs = span.attributes
            has_exc = bool(span.events) or "exception.type" in attrs or "error.type" in attrs
            key = (name, span.kind, span.error, has_exc)
            here = candidates.get(key)
            if here is None:
                maybe = [r for r in active if _may_match(r, name, span.kind, span.error, has_exc)]
                uses_within = any(r.match is not None and r.match.within is not None for r in maybe)
                uses_without = any(_uses_without(r) for r in maybe)
                here = candidates[key] = (maybe, uses_within, uses_without)
            rules_here, uses_within, uses_without = here
            if not rules_here:
                continue
            if uses_without and below_sets is None:
                below_sets = _below(trace, no_desc, no_child)
            with_desc, with_child = below_sets or ({}, {})
            within = _within(span, by_id, within_of, own_within_of) if uses_within else _EMPTY
            below = span.span_id in error_below
            is_bottleneck = span is b_span
            ctx = SpanContext(
                depth=depth,
                within=within,
                error_chain=span.error or below,
                error_origin=span.error and not below,
                bottleneck=is_bottleneck,
                share=b_share if is_bottleneck else 0.0,
                descendants=_holding(with_desc, span.span_id),
                children=_holding(with_child, span.span_id),
            )
            for rule in rules_here:
                assert rule.match is not None
                ok, exc = match_span(rule.match, span, ctx)
                if not ok:
                    continue
                counts[rule.id] = counts.get(rule.id, 0) + 1
                key = (depth, span.start_us)
                current = best.get(rule.id)
                if current is None or key > current[0]:
                    best[rule.id] = (key, span, exc)
    return [
        (rule, best[rule.id][1], best[rule.id][2], counts[rule.id])
        for rule in active
        if rule.id in best
    ]


def _within(
    span: Span,
    by_id: dict[str, Span],
    memo: dict[str, frozenset[tuple[str, ...]]],
    own_within_of: Callable[[str], frozenset[tuple[str, ...]]],
) -> frozenset[tuple[str, ...]]:
    """The ``match.within`` patterns satisfied by the span or one of its ancestors."""
    chain: list[Span] = []
    current: Span | None = span
    found = _EMPTY
    while current is not None:
        known = memo.get(current.span_id)
        if known is not None:
            found = known
            break
        chain.append(current)
        parent_id = current.parent_id
        current = by_id.get(parent_id) if parent_id is not None else None
    for below in reversed(chain):
        own = own_within_of(below.name)
        if own:
            found = found | own
        memo[below.span_id] = found
    return found


def _below(
    trace: Trace, no_desc: dict[int, SpanMatch], no_child: dict[int, SpanMatch]
) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """For each nested ``without_descendant`` (``without_child``) match, the ids of the spans
    that have a matching descendant (direct child). One pass over the whole trace, leaves
    first (reversed pre-order: a span's subtree comes before it), so linear in spans × nested
    matches; the static part of each match is decided once per distinct span shape. The whole
    trace, not the operation's scope: a call counts wherever its spans were attributed."""
    nested = {**no_desc, **no_child}
    with_desc: dict[int, set[str]] = {k: set() for k in no_desc}
    with_child: dict[int, set[str]] = {k: set() for k in no_child}
    shapes: dict[tuple[str, str, bool, bool], tuple[int, ...]] = {}
    bare = SpanContext()
    for span, _ in reversed(trace.walked()):
        parent = span.parent_id
        if parent is None:
            continue
        attrs = span.attributes
        has_exc = bool(span.events) or "exception.type" in attrs or "error.type" in attrs
        shape = (span.name, span.kind, span.error, has_exc)
        maybe = shapes.get(shape)
        if maybe is None:
            maybe = shapes[shape] = tuple(k for k, m in nested.items() if _static_match(m, *shape))
        hits = tuple(k for k in maybe if match_span(nested[k], span, bare)[0]) if maybe else ()
        sid = span.span_id
        for k, ids in with_desc.items():
            if k in hits or sid in ids:
                ids.add(parent)
        for k in hits:
            if k in with_child:
                with_child[k].add(parent)
    return with_desc, with_child


def _uses_without(rule: Rule) -> bool:
    m = rule.match
    return m is not None and (m.without_descendant is not None or m.without_child is not None)


def _holding(sets: dict[int, set[str]], span_id: str) -> frozenset[int]:
    """The nested matches (ids) whose span-id set holds ``span_id``."""
    if not sets:
        return _NO_IDS
    return frozenset(k for k, ids in sets.items() if span_id in ids)


def _may_match(rule: Rule, name: str, kind: str, error: bool, has_exc: bool) -> bool:
    """The static part of a span match (name, kind, error flag, an exception recorded at all),
    decided once per distinct combination so most spans meet no candidate rule."""
    m = rule.match
    if m is None:
        return False
    return _static_match(m, name, kind, error, has_exc)


def _static_match(m: SpanMatch, name: str, kind: str, error: bool, has_exc: bool) -> bool:
    """``_may_match`` for one span match."""
    if m.names is not None and not m.names(name):
        return False
    if m.kinds and kind not in m.kinds:
        return False
    if m.error is not None and m.error is not error:
        return False
    return has_exc or (m.exceptions is None and m.exception_message is None)


def _subject(
    subject: str,
    facts: OperationFacts,
    bottleneck: tuple[Span, int, Timing] | None,
    walks: Walks,
) -> Span | None:
    """The span an operation-level rule points at."""
    if subject == "last_span":
        return facts.last_span
    if subject == "bottleneck" and bottleneck is not None:
        return bottleneck[0]
    if subject == "error_origin" and facts.error_origin is not None:
        return facts.error_origin
    if subject == "last_transition" and facts.last_transition is not None:
        return facts.last_transition
    roots = [span for _, walk in walks for span, depth in walk if depth == 0]
    return min(roots, key=lambda s: s.start_us) if roots else walks[0][1][0][0]


def _first_exception(span: Span | None) -> ExceptionInfo | None:
    if span is None:
        return None
    excs = exceptions_of(span)
    return excs[0] if excs else None


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


def _evidence(
    rule: Rule,
    span: Span | None,
    exc: ExceptionInfo | None,
    *,
    op_values: dict[str, Any],
    by_trace: dict[str, Trace],
    count: int,
) -> dict[str, Any]:
    """Every value the rule's templates read, plus the attributes that proved the match."""
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
        elif key in PLACEHOLDERS:
            value = span_vals.get(key, op_values.get(key))
        else:
            attr_key = key[5:] if key.startswith("attr:") else key
            value = _attr_up(span, attr_key, trace) if span is not None else None
        if value is not None:
            evidence[key] = value
    if count > 1:
        evidence["matches"] = count
    return evidence


def _finding(rule: Rule, span: Span | None, evidence: dict[str, Any]) -> Finding:
    return Finding(
        rule_id=rule.id,
        severity=rule.severity,
        summary=fill(rule.summary, evidence),
        verdict=rule.verdict,
        trace_id=span.trace_id if span is not None else None,
        span_id=span.span_id if span is not None else None,
        service=span.service if span is not None else None,
        span_name=span.name if span is not None else None,
        evidence=evidence,
    )


# --- facts for templates, bottleneck, flow ---------------------------------------------------


def _single_operation_id(walks: Walks) -> str | None:
    """With no id requested (a trace id was), the one operation the traces hold, if one."""
    found: set[str] = set()
    for _, walk in walks:
        for span, _ in walk:
            value = operation_id_of(span)
            if value is not None:
                found.add(value)
                if len(found) > 1:
                    return None
    return next(iter(found), None)


def _operation_values(
    facts: OperationFacts,
    bottleneck: tuple[Span, int, Timing] | None,
    ident: str,
    now_us: int,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "operation.id": facts.operation_id,
        "operation.type": facts.operation_type,
        "operation.status": facts.status,
        "phase": facts.phase,
        "minutes": minutes_text(facts.duration_us),
        "idle_minutes": minutes_text(facts.idle_us),
        "trace_count": facts.trace_count,
        "error_spans": facts.error_spans,
        "ident": ident,
    }
    if facts.phase_span is not None:
        values["phase_minutes"] = minutes_text(max(0, now_us - facts.phase_span.start_us))
    if bottleneck is not None:
        span, critical, timing = bottleneck
        values["bottleneck"] = span.name
        values["bottleneck.service"] = span.service
        if timing.critical_length_us:
            values["share"] = f"{round(critical / timing.critical_length_us * 100)} %"
    return values


def _noise_check(globs: Globs) -> Callable[[Span], bool]:
    """Is a span transport noise? Its name matches a noise pattern, or it is an httpx client
    span (named by the method only) whose ``METHOD /path`` does: the CLI's polling ``GET`` of
    ``/api/v1/operations/{id}``, a ``GET`` of a worker's ``/health``. Memoised per name."""
    by_name: dict[str, bool] = {}
    by_call: dict[tuple[str, str], bool] = {}  # (method, url): a poller repeats one URL

    def check(span: Span) -> bool:
        hit = by_name.get(span.name)
        if hit is None:
            hit = by_name[span.name] = globs(span.name)
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
            hit = by_call[key] = _client_call_is_noise(globs, method, url)
        return hit

    return check


def _client_call_is_noise(globs: Globs, method: Any, url: str) -> bool:
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    return globs(f"{method} {path}")


def _bottleneck(
    walks: Walks, timings: list[Timing], is_noise: Callable[[Span], bool]
) -> tuple[Span, int, Timing] | None:
    """The non-noise span holding the most time on the critical path (ties: more self time).

    A root that has children (``cli.backtest``, a dispatch server span) only waits for them:
    its time on the path is the gaps where no span was recorded, so it is chosen only when
    nothing else is on the path.
    """
    best: tuple[tuple[bool, int, int], Span, int, Timing] | None = None
    for (trace, walk), timing in zip(walks, timings, strict=True):
        critical = timing.critical_us
        for span, depth in walk:
            on_path = critical.get(span.span_id, 0)
            if on_path <= 0 or is_noise(span):
                continue
            real = depth > 0 or span.span_id not in trace.children
            key = (real, on_path, timing.self_us.get(span.span_id, 0))
            if best is None or key > best[0]:
                best = (key, span, on_path, timing)
    return None if best is None else (best[1], best[2], best[3])


def _bottleneck_result(bottleneck: tuple[Span, int, Timing] | None) -> Bottleneck | None:
    if bottleneck is None:
        return None
    span, on_path, timing = bottleneck
    length = timing.critical_length_us
    return Bottleneck(
        trace_id=span.trace_id,
        span_id=span.span_id,
        service=span.service,
        span_name=span.name,
        self_time_ms=timing.self_us.get(span.span_id, 0) / 1000,
        share=on_path / length if length else 0.0,
        duration_ms=span.duration_us / 1000,
    )


def _flow(
    walks: Walks,
    timings: list[Timing],
    start_us: int,
    limit: int,
) -> tuple[list[FlowStep], int]:
    """Every scoped span in start order; cut at ``limit``, counting the rest.

    Only spans starting no later than the ``limit``-th earliest start can be in the cut, so
    a 100k-span operation sorts a few thousand rows, not all of them. Error spans past the
    cut still get a row (at most ``limit`` more): the root cause is chosen among the flow's
    error spans and must be marked in the flow, however late it happened in a huge
    operation."""
    cut = max(0, limit)
    total = sum(len(walk) for _, walk in walks)
    rows: list[tuple[int, int, int, Span, int]] = []
    if cut:
        threshold: int | None = None
        if total > cut:
            starts = [span.start_us for _, walk in walks for span, _ in walk]
            threshold = heapq.nsmallest(cut, starts)[-1]
        rows = [
            (span.start_us, t_index, order, span, depth)
            for t_index, (_, walk) in enumerate(walks)
            for order, (span, depth) in enumerate(walk)
            if threshold is None or span.start_us <= threshold or span.error
        ]
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        # Late error spans sort after every span of the cut: the cut itself is unchanged.
        rows = rows[:cut] + [r for r in rows[cut:] if r[3].error][:cut]
    steps: list[FlowStep] = []
    for index, (_, t_index, _, span, depth) in enumerate(rows):
        timing = timings[t_index]
        steps.append(
            FlowStep(
                index=index + 1,
                trace_id=span.trace_id,
                span_id=span.span_id,
                parent_id=span.parent_id,
                service=span.service,
                span_name=span.name,
                start_ms=(span.start_us - start_us) / 1000,
                duration_ms=span.duration_us / 1000,
                self_time_ms=timing.self_us.get(span.span_id, 0) / 1000,
                depth=depth,
                critical=timing.critical_us.get(span.span_id, 0) > 0,
                error=span.error,
            )
        )
    return steps, max(0, total - len(steps))
