"""The diagnosis engine: traces of one operation in, one ``Diagnosis`` out.

Pure (no I/O, no clock: ``now_us`` is an argument; the input traces are not modified) and
linear in the number of spans: the scoped spans are walked a fixed number of times, rule
candidates are looked up per distinct span name, and only matching spans are examined further.

Steps: scope the traces to the operation (facts.scoped_walk) → operation facts → leave out
the resumes KTRDR refused and what came before the last one it accepted (resumes) → timing
and bottleneck (the span with the most time on the critical path, transport noise ignored) →
the workers it needed; a quiet operation is alive while its worker answers or its trace moves,
up to its type's budget → span rules → operation rules → slow assessment → verdict by
priority → root cause, solution, execution flow. ``slow.reassess_slow`` redoes only the
slow assessment once the service knows the operation type's baseline.

Verdicts without a winning rule fall back to: ``failed`` (error spans or status failed),
``cancelled``, ``stuck``, else ``healthy``. A recent unfinished operation without errors is
``healthy`` with status ``running`` (the default pack's ``operation-running`` rule says
"running: in <phase> for N min"); only finished successful runs are plain healthy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from opdiag.analysis.gaps import Gap
from opdiag.analysis.retries import Retry
from opdiag.diagnosis.answered_again import answered_again_us
from opdiag.diagnosis.bottleneck import find_bottleneck, noise_check, open_tail_of
from opdiag.diagnosis.child_op import name_child
from opdiag.diagnosis.child_went_on import tell_children_went_on
from opdiag.diagnosis.conclusion import conclude, fallback_verdict, minutes_text
from opdiag.diagnosis.evidence import (
    evidence_of,
    finding_of,
    first_exception,
    reason_below,
    subject_span,
)
from opdiag.diagnosis.facts import (
    TERMINAL,
    OperationFacts,
    followed_end,
    operation_facts,
    operation_id_of,
    quiet_too_long,
    scoped_walk,
)
from opdiag.diagnosis.flow import execution_flow
from opdiag.diagnosis.neighbours import WorkerAssessment, assess_workers
from opdiag.diagnosis.occupancy import Held, holdings
from opdiag.diagnosis.op_values import operation_values
from opdiag.diagnosis.probe_trace import BACKGROUND, is_background, probe_values
from opdiag.diagnosis.probes import Silence
from opdiag.diagnosis.recovered import (
    NOTHING_RECOVERED,
    Recovered,
    advisory,
    recovered_attempts,
)
from opdiag.diagnosis.result import (
    IN_FLIGHT,
    REQUEST_STATUSES,
    Bottleneck,
    Diagnosis,
    Finding,
)
from opdiag.diagnosis.resumes import since_last_resume, without_refused_resumes
from opdiag.diagnosis.rules import Rule, RuleSet
from opdiag.diagnosis.slow import apply_slow
from opdiag.diagnosis.span_rules import (
    MAX_EVIDENCE_TRACES,
    facts_hold,
    part_of_whole,
    span_rule_hits,
    when_holds,
)
from opdiag.diagnosis.survey import survey
from opdiag.diagnosis.timing import trace_timing
from opdiag.globs import Globs
from opdiag.model import (
    Span,
    Trace,
    lifecycle_status,
    looks_like_trace_id,
    normalise_trace_id,
    subtrees,
)
from opdiag.operations import operation_answered
from opdiag.settings import DiagnosisSettings

__all__ = [
    "diagnose",
    "minutes_text",
    "noise_check",
    "not_found",
]

Walks = list[tuple[Trace, list[tuple[Span, int]]]]
# Whatever a completed operation's worker did afterwards is not its story. A cancelled one is
# judged up to the cancel: a user often cancels what its dead worker left hanging.
_SETTLED = frozenset({"completed"})


# A span or gap shorter than this is not where an operation's time went, whatever its share
MIN_BOTTLENECK_MS = 1.0

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
            diagnosis.fired.append(finding_of(rule, None, evidence))
    conclude(diagnosis, rules, fallback=("not_found", diagnosis.summary))
    return diagnosis


def _lives_on(
    facts: OperationFacts, walks: Walks, rules: RuleSet, operation_id: str | None
) -> str | None:
    """The service the operation's work lives on: its last transition's; with none seen
    yet, for a type no worker of the pack runs (KTRDR's data loads run in the backend), the
    service that answers reads of it."""
    if facts.last_transition is not None:
        return facts.last_transition.service
    spec = rules.neighbours
    if operation_id is None or not spec.worker_globs() or spec.worker_globs(
        facts.operation_type
    ):
        return None
    return next(
        (s.service for _, walk in walks for s, _ in walk
         if operation_answered(s) == operation_id),
        None,
    )


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
    later: Sequence[Trace] | None = (),
    rushed: str | None = None,
) -> Diagnosis:
    """Diagnose one operation from all the traces that hold it. ``neighbours``: other traces
    of the same source around the operation's time (the pack's ``neighbours`` section says
    which); only those inside its window are read. ``later``: the health checks after that
    window up to now (whether the workers a lost one's run could go to still answer); None
    when the caller has not fetched them yet (the diagnosis then says whether it needs
    them: ``Diagnosis.standby_unchecked``). ``rushed``: what says it completed too fast for
    its work, when its runs say so (``diagnosis.rushed``; with ``baseline_ms``)."""
    walks: Walks = []
    context: dict[str, frozenset[str]] = {}  # per trace: the ancestors that are context
    # the latest end of any span in a trace the scope cut: the rest of a research's trace is
    # its coordinator at work, whose own span is exported only when every research is over
    live_until_us = 0
    for trace in traces:
        walk, ancestors = scoped_walk(trace, operation_id)
        if walk:
            walks.append((trace, walk))
            if ancestors:
                context[trace.trace_id] = ancestors
            if len(walk) < len(trace.spans):
                live_until_us = max(live_until_us, trace.end_us)
    if not walks:
        return not_found(ident, rules)
    op_id = operation_id or _single_operation_id(walks)

    # the trace asked about is itself a background probe (a health check, a status read,
    # an ib.connect): no request was made, and it is its own evidence among the others
    background = op_id is None and is_background(walks, rules.neighbours)

    def facts_of(recovered: dict[str, set[str]] | None = None) -> OperationFacts:
        made = operation_facts(
            walks,
            op_id,
            rules,
            now_us=now_us,
            stuck_after_s=settings.stuck_after_s,
            context=context,
            recovered=recovered,
            live_until_us=live_until_us,
        )
        if background and made.status in REQUEST_STATUSES:
            made = msgspec.structs.replace(made, status=BACKGROUND)
        return made

    facts = facts_of()
    refused: list[str] = []
    if facts.resumed or len(walks) > 1:  # a refused resume is a request trace of its own
        walks, refused = without_refused_resumes(walks, op_id, resumed=facts.resumed)
        if refused:
            facts = facts_of()
    if facts.resumed:  # a resumed run is judged from its resume on
        walks, cut = since_last_resume(walks, op_id)
        if cut is not None:
            refused.append(cut)
            facts = facts_of()
    # what the operation's window holds around it (its extent and lifecycle do not change
    # with what is recovered below, only its error count)
    until_us = _judged_until(facts, now_us)
    near = _near(
        walks, neighbours, rules, start_us=facts.start_us, until_us=until_us, now_us=now_us
    )
    if background:  # counted with the other probes and background spans, not left out
        near = sorted([*(t for t, _ in walks), *near], key=lambda t: (t.start_us, t.trace_id))
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
            lives_on=_lives_on(facts, walks, rules, op_id),
        )
        if made_good:
            facts = facts_of(made_good.ids)
    found = survey(walks, rules, is_noise, rules.neighbours.worker_globs())
    noisy: dict[str, set[str]] = {}
    for (trace, _), ids in zip(walks, found.noisy, strict=True):
        noisy[trace.trace_id] = noisy[trace.trace_id] | ids if trace.trace_id in noisy else ids

    if context:  # other operations' spans above this one's are not its work
        found.work = [
            [s for s in spans if s.span_id not in context.get(t.trace_id, ())]
            for (t, _), spans in zip(walks, found.work, strict=True)
        ]
    if facts.finished and facts.status == "failed" and _went_on(found.work, facts):
        # failed, and its work still going on: KTRDR's orphan detector fails the data loads
        # its backend runs a minute in, and they go on (the later outcome decides)
        stuck = quiet_too_long(facts.idle_us, settings.stuck_after_s)
        facts = msgspec.structs.replace(
            facts, finished=False, status="running", stuck=stuck, running=not stuck,
            ended_before=True,
        )

    def noise(span: Span) -> bool:
        return span.span_id in noisy[span.trace_id]

    timings = [
        trace_timing(
            _own_part(t, walk, context.get(t.trace_id, frozenset())),
            noisy=ids,
            ends=facts.clipped_ends,
        )
        for (t, walk), ids in zip(walks, found.noisy, strict=True)
    ]
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
        later=later,
    )
    tail = _open_tail(found.work, facts, workers, now_us)
    if facts.stuck and _worker_answers(workers, facts, now_us, settings):
        facts = msgspec.structs.replace(facts, stuck=False, running=True)
    elif facts.running and live_until_us and now_us - facts.end_us > _quiet_limit_us(
        facts, settings
    ):  # the rest of its trace moves, but it has been quiet for longer than a run may take
        idle = now_us - facts.end_us
        facts = msgspec.structs.replace(facts, stuck=True, running=False, idle_us=idle)
    elif facts.running and tail is not None and tail.duration_us > _quiet_limit_us(
        facts, settings
    ):  # followed: the worker answers the CLI's polls, but its work has been quiet for
        # longer than a run may take
        facts = msgspec.structs.replace(
            facts, stuck=True, running=False, idle_us=tail.duration_us
        )
    choice = find_bottleneck(
        walks,
        timings,
        noise,
        # a lost worker's share is of the time it worked, not of its silence since
        extent_us=facts.duration_us if tail is None else tail.end_us - facts.start_us,
        clipped_ends=facts.clipped_ends,
        work=found.work,
        open_tail=tail,
    )
    if choice.result is not None and not _holds_time(choice.result, facts, settings):
        choice = msgspec.structs.replace(choice, result=None)  # the span stays for rules
    quiet_since = _quiet_everywhere_since(facts, near, now_us, settings)
    quiet_ms = _kept_alive_ms(facts, tail, settings)
    op_values = operation_values(
        facts,
        choice,
        ident,
        now_us,
        workers=workers,
        valued=found.valued,
        declared=rules.values,
        quiet_since_us=quiet_since,
        quiet_ms=quiet_ms,
        held=_held(facts, near, rules, op_id),
        probe=probe_values([t for t, _ in walks], near, rules.neighbours) if background else None,
        answered_again_us=answered_again_us(walks, op_id),
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
        "system_quiet": quiet_since is not None,
    }
    inapplicable = _inapplicable(rules, found.held)
    b_span = choice.span if choice.is_span else None
    firsts: dict[str, int] = {}  # rule id -> when its first match started
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
        firsts=firsts,
    )
    wholes: dict[str, int] = {}  # rule id -> how many spans match its ``out_of``
    if any(rule.out_of is not None or rule.only_errors for rule, *_ in hits):
        hits = _counted(hits, walks, context, made_good, wholes)
    near_traces: dict[str, dict[str, None]] = {}
    if near:
        # a finished operation's evidence is what happened up to its end: the Gateway's
        # refusals in the minute after a data load failed are not its story (13 were counted,
        # "the last at" a time after it had failed; 10 came while it ran)
        near_walks = [
            (t, _upto(t, until_us) if facts.finished and t.end_us > until_us else t.walked())
            for t in near
        ]
        hits += span_rule_hits(
            near_walks,
            rules.near_index,
            fact_values,
            withins=rules.withins,
            nested=rules.nested_index,
            inapplicable=inapplicable,
            traces=near_traces,
            firsts=firsts,
        )
    attempts: dict[int, tuple[Retry, list[Finding]]] = {}
    own_ids = {t.trace_id for t, _ in walks}
    for rule, hit, matched, count in hits:
        probe = _deciding_probe(rule, workers, by_trace)
        span = hit if probe is None else probe  # it matched here; the probe proves it
        if probe is not None:
            exc = first_exception(probe)
        else:  # an error answer without its own exception: the reason recorded below it
            exc = matched or reason_below(span, by_trace.get(span.trace_id))
        evidence = evidence_of(
            rule, span, exc, op_values=op_values, by_trace=by_trace, count=count,
            first_us=firsts.get(rule.id) if probe is None else None,
        )
        if rule.id in wholes:  # ``out_of`` is only for own spans (pack_yaml)
            evidence["out_of"] = wholes[rule.id]
        if "worker.service" in evidence:  # the worker this call reached, not the one that ran
            elsewhere, called = workers.service_called(span)
            if elsewhere and called is not None:
                evidence["worker.service"] = called
            elif elsewhere:  # not known by name: the template's default says "the worker"
                del evidence["worker.service"]
        outside = (rule.scope == "neighbours" or probe is not None) and (
            span.trace_id not in own_ids
        )
        finding = finding_of(rule, span, evidence, neighbour=outside)
        if finding.neighbour and len(near_traces.get(rule.id, ())) > 1:
            finding.other_trace_ids = [t for t in near_traces[rule.id] if t != span.trace_id]
        elif finding.neighbour and probe is not None and workers.silence is not None:
            finding.other_trace_ids = [
                t for t in workers.silence.trace_ids[-MAX_EVIDENCE_TRACES:] if t != span.trace_id
            ]
        retry = made_good.of(hit) if made_good and rule.scope != "neighbours" else None
        if retry is None:
            fired.append(finding)
        else:
            attempts.setdefault(id(retry), (retry, []))[1].append(finding)
    fired.extend(advisory(found_, retry, rules) for retry, found_ in attempts.values())
    for rule in _operation_rules_holding(rules, fact_values):
        if rule.id in inapplicable:
            continue
        span = subject_span(rule.subject, facts, choice, walks, workers=workers, by_trace=by_trace)
        exc = first_exception(span)
        evidence = evidence_of(rule, span, exc, op_values=op_values, by_trace=by_trace, count=1)
        own = span is None or any(span.trace_id == t.trace_id for t, _ in walks)
        finding = finding_of(rule, span, evidence, neighbour=not own)
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
        # a request refused before it became an operation did no work to speed up: "training.start
        # 59.1ms, 70 %" beside a 503 read as a lead (the rules still read the choice)
        bottleneck=None if facts.status == "rejected" else choice.result,
        fired=fired,
        warnings=[*(w for t, _ in walks for w in t.warnings), *refused],
        resumed=facts.resumed,
        worked_until_ms=_worked_until_us(workers.lost) / 1000 if workers.lost else None,
        quiet_ms=quiet_ms,
        standby_unchecked=workers.standby_unchecked,
    )
    diagnosis.execution_flow, diagnosis.execution_flow_truncated = execution_flow(
        walks, timings, facts.start_us, settings.max_flow_spans, made_good=made_good, noisy=noisy
    )
    fallback = fallback_verdict(facts)
    apply_slow(
        diagnosis, baseline_ms, rules, settings, fallback=fallback, op_values=op_values.full,
        rushed=rushed,
    )
    name_child(diagnosis, [t for t, _ in walks])
    tell_children_went_on(diagnosis, [t for t, _ in walks])
    return diagnosis


def _deciding_probe(
    rule: Rule, workers: WorkerAssessment, by_trace: dict[str, Trace]
) -> Span | None:
    """For a span rule with ``subject: worker_probe``: the failed check that shows the
    worker gone (``WorkerAssessment.deciding_probe``), which its finding points at rather
    than the span it matched (``workers.select``'s "0 available" reads the same for a busy
    worker as for a dead one); None for other rules, or when there is no such check."""
    if rule.subject != "worker_probe" or rule.match is None:
        return None
    probe = workers.deciding_probe
    trace = by_trace.get(probe.trace_id) if probe is not None else None
    return trace.by_id.get(probe.span_id) if trace is not None and probe is not None else None


def _counted(
    hits: list[tuple[Rule, Span, Any, int]],
    walks: Walks,
    context: dict[str, frozenset[str]],
    made_good: Recovered,
    wholes: dict[str, int],
) -> list[tuple[Rule, Span, Any, int]]:
    """The hits of rules with ``out_of`` or ``only_errors`` that still hold once their
    spans are counted (``span_rules.part_of_whole``), with their count of matches; the
    others as they were. ``wholes`` gets, per rule with ``out_of``, how many spans match it.
    Context above the operation and failed attempts a retry made good are not counted:
    neither is among its error spans."""

    def left_out(span: Span) -> bool:
        return span.span_id in context.get(span.trace_id, ()) or made_good.of(span) is not None

    kept: list[tuple[Rule, Span, Any, int]] = []
    for rule, span, matched, count in hits:
        if rule.out_of is None and not rule.only_errors:
            kept.append((rule, span, matched, count))
            continue
        counted = part_of_whole(rule, walks, left_out)
        if counted is None:
            continue
        part, whole = counted
        if rule.out_of is not None:
            wholes[rule.id] = whole
        kept.append((rule, span, matched, part))
    return kept


def _worker_answers(
    workers: WorkerAssessment, facts: OperationFacts, now_us: int, settings: DiagnosisSettings
) -> bool:
    """Whether the worker running a quiet operation still answers its health checks: it
    went quiet in work that emits no span (KTRDR's training loop), not stuck, up to
    ``_quiet_limit_us``. Followed with ``--follow``, the worker's answers to the polls say
    the same; without, only these."""
    # an answer before it went quiet is older than the stuck threshold (it is stuck), so
    # a recent one is after it
    answered = workers.answered_us
    return (
        answered is not None
        and now_us - answered <= settings.stuck_after_s * 1e6
        and facts.idle_us <= _quiet_limit_us(facts, settings)
    )


def _kept_alive_ms(
    facts: OperationFacts, tail: Gap | None, settings: DiagnosisSettings
) -> float | None:
    """How long a running operation's work (``tail``: since its last work span, the
    follower's polls left out) has been quiet, when that is past the stuck threshold: only
    its worker's answers (to health checks, to the polls) keep it running, up to its type's
    budget (``_quiet_limit_us``); a baseline may say sooner that it hangs (``overdue``)."""
    if not facts.running or facts.finished or tail is None:
        return None
    quiet_us = tail.duration_us
    return quiet_us / 1000 if quiet_too_long(quiet_us, settings.stuck_after_s) else None


def _open_tail(
    work: Sequence[Sequence[Span]], facts: OperationFacts, workers: WorkerAssessment, now_us: int
) -> Gap | None:
    """In flight, its open time since its last work span counts too; a lost worker worked
    until it last answered (``bottleneck.open_tail_of``)."""
    lost = workers.lost
    if lost is None and (facts.finished or not facts.has_lifecycle):
        return None
    return open_tail_of(work, now_us if lost is None else _worked_until_us(lost))


def _worked_until_us(lost: Silence) -> int:
    """When the lost worker last answered (else when it went silent): its work ended there."""
    return lost.last_ok_us or lost.since.time_us


def _upto(trace: Trace, until_us: int) -> list[tuple[Span, int]]:
    return [(span, depth) for span, depth in trace.walked() if span.start_us <= until_us]


def _held(
    facts: OperationFacts, near: Sequence[Trace], rules: RuleSet, op_id: str | None
) -> list[Held]:
    """For a request that never became an operation (a 503), what its type's workers were
    doing then (``occupancy.holdings``)."""
    if facts.has_lifecycle or not near or not facts.operation_type:
        return []
    globs = rules.neighbours.worker_globs(facts.operation_type)
    if not globs:
        return []

    def ended(run: str) -> int | None:
        """When a command following ``run`` read it finished (its worker's own transition
        may have died with it)."""
        for trace in near:
            if not any(operation_answered(s) == run for s in trace.spans):
                continue
            seen = followed_end([(trace, trace.walk_list())], run, rules)
            if seen is not None and seen[2] in TERMINAL:
                return seen[1].start_us + seen[1].duration_us
        return None

    return holdings(near, Globs.of(globs), facts.start_us, op_id, ended)


def _holds_time(result: Bottleneck, facts: OperationFacts, settings: DiagnosisSettings) -> bool:
    """Whether the bottleneck found is where the operation's time went, or nothing held it:
    a share under ``min_bottleneck_share`` (a refused request's CLI waited between its
    retries: its calls were 1 %), a span or gap under a millisecond (a worker killed 60 ms
    after the dispatch left a 0 ms transition as "100 %" of the time it worked), or an
    operation no span of whose work names it (known only through reads of it and one-span
    records: "the orphan detector's transition, 0.0 ms, 100 %")."""
    return not (
        result.share < settings.min_bottleneck_share
        or result.duration_ms < MIN_BOTTLENECK_MS
        or (facts.has_lifecycle and facts.no_work)
    )


def _quiet_everywhere_since(
    facts: OperationFacts, near: Sequence[Trace], now_us: int, settings: DiagnosisSettings
) -> int | None:
    """When the last span of any service ended, for a stuck operation whose neighbouring
    traces (the backend's health checks every 10 s, the orphan detector's rounds every 15 s)
    went quiet too: then nothing was exported at all, and the backend or the trace pipeline
    stopped, not only this operation. None when something else still moves, or when there
    is no neighbouring trace to tell (a source or pack without them)."""
    if not facts.stuck or not near:
        return None
    latest = max(facts.end_us, *(t.end_us for t in near))
    return latest if now_us - latest > settings.stuck_after_s * 1e6 else None


def _quiet_limit_us(facts: OperationFacts, settings: DiagnosisSettings) -> float:
    """How long an operation may be quiet while something else says it is alive (its
    worker's answers, the rest of its trace): its type's budget. A loop that hangs while
    the worker's API answers, a child whose research coordinator keeps polling, look alive;
    quiet for longer than a whole run may take, they are stuck."""
    budget_s = settings.slow_budget_s.get(facts.operation_type or "", settings.default_budget_s)
    return max(budget_s, settings.stuck_after_s) * 1e6


def _own_part(
    trace: Trace, walk: Sequence[tuple[Span, int]], context: frozenset[str]
) -> Trace:
    """The trace, or, when the operation's walk is only part of it (its scope among other
    operations, its run since a resume), a trace of the operation's own spans: the critical
    path of a research's whole trace runs through its coordinator, not through the child
    training's phases."""
    if len(walk) == len(trace.spans):
        return trace
    return subtrees(trace, (s for s, _ in walk if s.span_id not in context))


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


def _inapplicable(rules: RuleSet, held: frozenset[int]) -> frozenset[str]:
    """The ids of the rules whose ``when`` fails: none of its matches is ``held`` (the
    ``when`` matches the operation's spans hold). Decided once per distinct ``held`` and kept
    with the rule set (its matches' ids are stable while it lives)."""
    found = rules.inapplicable.get(held)
    if found is None:
        found = frozenset(r.id for r in rules.with_when if not when_holds(r, held))
        if len(rules.inapplicable) >= _MAX_HOLDING:
            rules.inapplicable.clear()
        rules.inapplicable[held] = found
    return found


# How long after a failure work may still start and be the failure's own (clocks of the
# backend and a worker differ; a retry already under way when the failure was recorded).
_AFTER_END_US = 1_000_000


def _went_on(work: Sequence[Sequence[Span]], facts: OperationFacts) -> bool:
    """Did work of the operation start after its failure? Then the failure was not its end."""
    last = facts.last_transition
    if last is None:
        return False
    after = last.start_us + _AFTER_END_US
    return any(
        span.start_us > after and lifecycle_status(span.attributes) is None
        for spans in work
        for span in spans
    )


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


def _duration_us(facts: OperationFacts, now_us: int) -> int:
    """An operation still in flight has lasted until now, not until its last span ended: a
    stuck training that went quiet 42 minutes ago has been running for those minutes too."""
    if not facts.finished and facts.status in IN_FLIGHT:
        return max(now_us, facts.end_us) - facts.start_us
    return facts.duration_us


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
