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
from typing import Any

from opdiag.analysis.retries import Retry
from opdiag.diagnosis.bottleneck import Choice, find_bottleneck, noise_check
from opdiag.diagnosis.conclusion import (
    conclude,
    fallback_verdict,
    healthy_text,
    minutes_text,
)
from opdiag.diagnosis.facts import (
    OperationFacts,
    operation_facts,
    operation_id_of,
    scoped_walk,
)
from opdiag.diagnosis.matching import ExceptionInfo, exceptions_of, span_values
from opdiag.diagnosis.neighbours import WorkerAssessment, assess_workers, clock_text
from opdiag.diagnosis.op_values import OperationValues, operation_values
from opdiag.diagnosis.recovered import (
    NOTHING_RECOVERED,
    Recovered,
    advisory,
    recovered_attempts,
)
from opdiag.diagnosis.result import Diagnosis, Finding, FlowStep, copied
from opdiag.diagnosis.rules import Rule, RuleSet
from opdiag.diagnosis.span_rules import (
    MAX_EVIDENCE_TRACES,
    facts_hold,
    span_rule_hits,
    when_holds,
)
from opdiag.diagnosis.survey import survey
from opdiag.diagnosis.templates import (
    OPERATION_VALUE_PREFIX,
    PLACEHOLDERS,
    attr_evidence_key,
    fill_line,
)
from opdiag.diagnosis.timing import Timing, trace_timing
from opdiag.globs import Globs
from opdiag.model import (
    SERVER,
    Span,
    Trace,
    http_status,
    lifecycle_status,
    looks_like_trace_id,
    normalise_trace_id,
)
from opdiag.settings import DiagnosisSettings

__all__ = [
    "diagnose",
    "minutes_text",
    "noise_check",
    "not_found",
    "reassess_changes",
    "reassess_slow",
]

Walks = list[tuple[Trace, list[tuple[Span, int]]]]
# the phase that changed most against the baseline, or a function that says it when asked
Change = str | Callable[[], str | None] | None
_ALWAYS = ("exception.type", "exception.message", "http.url", "http.status")
# Whatever a completed operation's worker did afterwards is not its story. A cancelled one is
# judged up to the cancel: a user often cancels what its dead worker left hanging.
_SETTLED = frozenset({"completed"})


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
        if rule.match is None and rule.facts and facts_hold(rule, facts):
            evidence = {"ident": ident}
            diagnosis.fired.append(_finding(rule, None, evidence))
    conclude(diagnosis, rules, fallback=("not_found", diagnosis.summary))
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
    neighbours: Sequence[Trace] = (),
) -> Diagnosis:
    """Diagnose one operation from all the traces that hold it. ``neighbours``: other traces
    of the same source around the operation's time (the pack's ``neighbours`` section says
    which); only those inside its window are read."""
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

    def facts_of(recovered: dict[str, set[str]] | None = None) -> OperationFacts:
        return operation_facts(
            walks,
            op_id,
            rules,
            now_us=now_us,
            stuck_after_s=settings.stuck_after_s,
            context=frozenset(context),
            recovered=recovered,
        )

    facts = facts_of()
    refused: list[str] = []
    if facts.resumed:  # only then can a refused resume be among its traces (a rare look)
        walks, refused = _without_refused_resumes(walks)
        if refused:
            facts = facts_of()
    # what the operation's window holds around it (its extent and lifecycle do not change
    # with what is recovered below, only its error count)
    until_us = _judged_until(facts, now_us)
    near = _near(
        walks, neighbours, rules, start_us=facts.start_us, until_us=until_us, now_us=now_us
    )
    # A failed operation's errors are all its story; otherwise a failed attempt that a
    # retry made good is history (diagnosis.recovered).
    made_good = NOTHING_RECOVERED
    is_noise = noise_check(Globs.of(settings.noise_span_patterns))
    if facts.error_spans and facts.status != "failed":
        completed = facts.last_transition if facts.status == "completed" else None
        made_good = recovered_attempts(
            walks,
            completed=completed,
            is_poll=is_noise,
            around=near,
            lives_on=facts.last_transition.service if facts.last_transition else None,
        )
        if made_good:
            facts = facts_of(made_good.ids)
    found = survey(walks, rules, is_noise, rules.neighbours.worker_globs())
    noisy: dict[str, set[str]] = {}
    for (trace, _), ids in zip(walks, found.noisy, strict=True):
        noisy[trace.trace_id] = noisy[trace.trace_id] | ids if trace.trace_id in noisy else ids

    def noise(span: Span) -> bool:
        return span.span_id in noisy[span.trace_id]

    timings = [trace_timing(t, noisy=ids) for (t, _), ids in zip(walks, found.noisy, strict=True)]
    choice = find_bottleneck(
        walks,
        timings,
        noise,
        extent_us=facts.duration_us,
        clipped_ends=facts.clipped_ends,
        work=found.work,
    )
    workers = assess_workers(
        walks,
        near,
        rules.neighbours,
        operation_type=facts.operation_type,
        start_us=facts.start_us,
        judge_until_us=until_us,
        now_us=now_us,
        settled=facts.status in _SETTLED,
        calls=[c for c in found.calls if made_good.of(c) is None] if made_good else found.calls,
        worker_ends=found.worker_ends,
    )
    op_values = operation_values(
        facts, choice, ident, now_us, workers=workers, valued=found.valued, declared=rules.values
    )
    by_trace = {t.trace_id: t for t, _ in (*walks, *((t, ()) for t in near))}

    fired: list[Finding] = []
    fact_values = {
        **facts.as_dict(),
        "worker_ran": workers.ran,
        "worker_lost": workers.lost is not None,
        "worker_replaced": workers.replaced is not None,
        "capable_workers_lost": workers.capable_lost is not None,
        "capable_workers_unseen": workers.unregistered is not None,
        "workers_unseen": workers.no_workers is not None,
    }
    inapplicable = {r.id for r in rules.with_when if not when_holds(r, found.held)}
    b_span = choice.span if choice.is_span else None
    hits = span_rule_hits(
        walks,
        rules.own_index,
        fact_values,
        meeting=found.meeting,
        withins=rules.withins,
        nested=rules.nested_index,
        inapplicable=inapplicable,
        bottleneck=b_span,
        bottleneck_share=choice.span_share,
    )
    near_traces: dict[str, dict[str, None]] = {}
    if near:
        near_walks = [(t, t.walked()) for t in near]
        hits += span_rule_hits(
            near_walks,
            rules.near_index,
            fact_values,
            withins=rules.withins,
            nested=rules.nested_index,
            inapplicable=inapplicable,
            traces=near_traces,
        )
    attempts: dict[int, tuple[Retry, list[Finding]]] = {}
    for rule, span, exc, count in hits:
        evidence = _evidence(rule, span, exc, op_values=op_values, by_trace=by_trace, count=count)
        if "worker.service" in evidence:  # the worker this call reached, not the one that ran
            elsewhere, called = workers.service_called(span)
            if elsewhere and called is not None:
                evidence["worker.service"] = called
            elif elsewhere:  # not known by name: the template's default says "the worker"
                del evidence["worker.service"]
        finding = _finding(rule, span, evidence, neighbour=rule.scope == "neighbours")
        if finding.neighbour and len(near_traces.get(rule.id, ())) > 1:
            finding.other_trace_ids = [t for t in near_traces[rule.id] if t != span.trace_id]
        retry = made_good.of(span) if made_good and rule.scope != "neighbours" else None
        if retry is None:
            fired.append(finding)
        else:
            attempts.setdefault(id(retry), (retry, []))[1].append(finding)
    fired.extend(advisory(found_, retry, rules) for retry, found_ in attempts.values())
    for rule in _operation_rules_holding(rules, fact_values):
        if rule.id in inapplicable:
            continue
        span = _subject(rule.subject, facts, choice, walks, workers=workers, by_trace=by_trace)
        exc = _first_exception(span)
        evidence = _evidence(rule, span, exc, op_values=op_values, by_trace=by_trace, count=1)
        own = span is None or any(span.trace_id == t.trace_id for t, _ in walks)
        finding = _finding(rule, span, evidence, neighbour=not own)
        silence = workers.silence
        if rule.subject == "worker_probe" and silence is not None and not own:
            # every failed health check is evidence, each in its own trace
            finding.other_trace_ids = [
                t for t in silence.trace_ids[:MAX_EVIDENCE_TRACES] if t != finding.trace_id
            ]
        fired.append(finding)

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
        bottleneck=choice.result,
        fired=fired,
        warnings=[*(w for t, _ in walks for w in t.warnings), *refused],
        resumed=facts.resumed,
    )
    diagnosis.execution_flow, diagnosis.execution_flow_truncated = _flow(
        walks, timings, facts.start_us, settings.max_flow_spans, made_good
    )
    fallback = fallback_verdict(facts)
    _apply_slow(
        diagnosis, baseline_ms, rules, settings, fallback=fallback, op_values=op_values.full
    )
    return diagnosis


def _operation_rules_holding(rules: RuleSet, facts: dict[str, Any]) -> tuple[Rule, ...]:
    """The operation rules whose ``facts`` hold, in rule order. Decided once per distinct
    combination of the facts they test (values and their types): the operations of a
    listing share a handful. Rules that test a measured time are decided every time."""
    keys = rules.operation_fact_keys
    if keys is None:
        return tuple(r for r in rules.operation_rules if facts_hold(r, facts))
    values = tuple(map(facts.get, keys))
    key = (values, tuple(v.__class__ for v in values))
    try:
        found = rules.holding.get(key)
    except TypeError:  # an unhashable value: not kept
        return tuple(r for r in rules.operation_rules if facts_hold(r, facts))
    if found is None:
        found = tuple(r for r in rules.operation_rules if facts_hold(r, facts))
        if len(rules.holding) >= _MAX_HOLDING:
            rules.holding.clear()
        rules.holding[key] = found
    return found


_MAX_HOLDING = 1024


def _judged_until(facts: OperationFacts, now_us: int) -> int:
    """Up to when the operation needed its worker: its terminal transition; now while it
    is in flight; the end of the request for one that never became an operation (a 503)."""
    if facts.finished:  # no transition: it failed before its first (facts._died_unregistered)
        last = facts.last_transition
        return last.start_us if last is not None else facts.end_us
    if facts.has_lifecycle:
        return max(now_us, facts.start_us)
    return facts.end_us


def _near(
    walks: Walks,
    neighbours: Sequence[Trace],
    rules: RuleSet,
    *,
    start_us: int,
    until_us: int,
    now_us: int,
) -> list[Trace]:
    """The neighbouring traces inside the operation's window, its own left out, oldest
    first, at most the pack's ``max_traces``."""
    if not neighbours or not rules.neighbours.active:
        return []
    own = {t.trace_id for t, _ in walks}
    lo, hi = rules.neighbours.window(start_us, until_us, now_us)
    near = [t for t in neighbours if t.trace_id not in own and t.start_us < hi and t.end_us >= lo]
    near.sort(key=lambda t: (t.start_us, t.trace_id))
    return near[: rules.neighbours.max_traces]


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
    change: Change = None,
    *,
    basis: str | None = None,
) -> Diagnosis:
    """A copy of ``diagnosis`` with ``slow`` decided against ``baseline_ms`` (the median of
    the type's last good runs; ``None`` = the configured budget). ``change`` names the phase
    that changed most against those runs; it joins the baseline's text (``{baseline}``), as
    ``basis`` does (what the baseline was scaled to: "for its 12,505 data rows"). ``change``
    may be given as a function, asked only when a slow rule holds (a listing's rows do not
    show the comparison it comes from)."""
    # Shallow is enough: _apply_slow only reassigns fields and appends new findings, and
    # conclude rebuilds the flow steps; a deep copy cost ~1 s on a 200-operation list.
    out = copied(diagnosis, fired=list(diagnosis.fired))
    kept = [f for f in out.fired if not _is_slow_rule(rules.get(f.rule_id))]
    removed = len(kept) != len(out.fired)
    out.fired = kept
    errors = any(step.error and not step.recovered for step in out.execution_flow)
    if out.status == "failed" or errors:
        fallback = ("failed", "failed: error spans without a known cause")
    elif out.status == "cancelled":
        fallback = ("cancelled", "cancelled")
    else:
        fallback = ("healthy", healthy_text(out.status))
    _apply_slow(
        out,
        baseline_ms,
        rules,
        settings,
        fallback=fallback,
        op_values=lambda: _known_values(out),
        removed=removed,
        change=change,
        basis=basis,
    )
    return out


def _known_values(diagnosis: Diagnosis) -> dict[str, Any]:
    """The template values a diagnosis still knows without its traces (``reassess_slow``)."""
    values: dict[str, Any] = {
        "operation.id": diagnosis.operation_id,
        "operation.type": diagnosis.operation_type,
        "operation.status": diagnosis.status,
        "minutes": minutes_text((diagnosis.duration_ms or 0) * 1000),
        "trace_count": len(diagnosis.trace_ids),
        "ident": diagnosis.key,
    }
    if diagnosis.bottleneck is not None:
        values.update(
            {
                "bottleneck": diagnosis.bottleneck.text,
                "bottleneck.service": diagnosis.bottleneck.service,
                "share": f"{round(diagnosis.bottleneck.share * 100)} %",
            }
        )
    return values


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
    op_values: dict[str, Any] | Callable[[], dict[str, Any]],
    removed: bool = True,
    change: Change = None,
    basis: str | None = None,
) -> None:
    """Decide ``slow`` (finished, completed, duration > factor × baseline, or > the type's
    budget without a baseline), add the slow rules' findings, then conclude (unless nothing
    changed: ``removed`` says whether earlier slow findings were dropped). ``op_values``
    may be a function, asked only when a slow rule holds (most runs are not slow)."""
    diagnosis.baseline_ms = baseline_ms
    duration = diagnosis.duration_ms or 0.0
    limit = _slow_limit(diagnosis, baseline_ms, settings)
    if baseline_ms is not None and baseline_ms > 0:
        reference = f"baseline {minutes_text(baseline_ms * 1000)} min"
        if basis:
            reference = f"{reference} {basis}"
    else:
        change = None  # (only a baseline names a change)
        reference = f"budget {minutes_text(limit * 1000)} min"
    facts = _slow_facts(diagnosis, limit)
    values: dict[str, Any] | None = None
    b = diagnosis.bottleneck
    for rule in rules.slow_rules:
        if not facts_hold(rule, facts):
            continue
        if values is None:
            text = change() if callable(change) else change
            if text:
                reference = f"{reference}; {text}"
            known = op_values() if callable(op_values) else op_values
            values = {**known, "baseline": reference}
        evidence = dict(values)
        span_ref: tuple[str, str, str, str] | None = None
        if b is not None:
            # a gap points at the span it follows
            span_id = b.span_id if b.kind == "span" else b.after_span_id
            span_name = b.span_name if b.kind == "span" else b.after_span_name
            span_ref = (b.trace_id, span_id or "", b.service, span_name or "")
            evidence.update(
                {
                    "span.name": span_name,
                    "span.id": span_id,
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
            summary=fill_line(rule.summary, evidence),
            verdict=rule.verdict,
            evidence=evidence,
        )
        if span_ref is not None:
            finding.trace_id, finding.span_id, finding.service, finding.span_name = span_ref
        diagnosis.fired.append(finding)
        removed = True
    if removed:
        conclude(diagnosis, rules, fallback)


def _slow_limit(
    diagnosis: Diagnosis, baseline_ms: float | None, settings: DiagnosisSettings
) -> float:
    """Slower than this (ms) is slow: a factor of the baseline, else the type's budget."""
    if baseline_ms is not None and baseline_ms > 0:
        return settings.slow_factor * baseline_ms
    budget_s = settings.slow_budget_s.get(diagnosis.operation_type or "", settings.default_budget_s)
    return budget_s * 1000


def _slow_facts(diagnosis: Diagnosis, limit: float) -> dict[str, Any]:
    """The facts the slow rules test (``rules.SLOW_FACTS``)."""
    duration = diagnosis.duration_ms or 0.0
    return {
        "slow": diagnosis.finished
        and diagnosis.status == "completed"
        and not diagnosis.resumed
        and duration > limit,
        "status": diagnosis.status,
        "finished": diagnosis.finished,
        "operation_type": diagnosis.operation_type,
        "trace_count": len(diagnosis.trace_ids),
        "duration_s": duration / 1000,
    }


def reassess_changes(
    diagnosis: Diagnosis, baseline_ms: float | None, rules: RuleSet, settings: DiagnosisSettings
) -> bool:
    """Whether ``reassess_slow(diagnosis, baseline_ms, …)`` changes more than
    ``baseline_ms``: a slow finding to drop, or a slow rule that holds against this
    baseline. Otherwise a row of the operations list is the diagnosis' own."""
    if any(_is_slow_rule(rules.get(f.rule_id)) for f in diagnosis.fired):
        return True
    facts = _slow_facts(diagnosis, _slow_limit(diagnosis, baseline_ms, settings))
    return any(facts_hold(rule, facts) for rule in rules.slow_rules)


# --- rules ---------------------------------------------------------------------------------


def _subject(
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
    if subject == "bottleneck" and choice.span is not None:
        return choice.span
    if subject == "worker_probe" and workers.first_sign is not None:
        probe = workers.first_sign
        trace = by_trace.get(probe.trace_id)
        found = trace.by_id.get(probe.span_id) if trace is not None else None
        if found is not None:
            return found
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
    op_values: OperationValues,
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
        elif key == "time":
            value = clock_text(span.start_us) if span is not None else None
        elif key.startswith(OPERATION_VALUE_PREFIX):
            value = op_values.get(key)
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


def _finding(
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
    )


def _without_refused_resumes(walks: Walks) -> tuple[Walks, list[str]]:
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


def _flow(
    walks: Walks,
    timings: list[Timing],
    start_us: int,
    limit: int,
    made_good: Recovered = NOTHING_RECOVERED,
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
                recovered=bool(made_good) and made_good.of(span) is not None,
            )
        )
    return steps, max(0, total - len(steps))
