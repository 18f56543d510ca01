"""Whether a finished operation was slow, decided apart from the rest of its diagnosis.

The engine decides it against what it was given; the service decides it again once it knows
the operation type's baseline (the median of its last good runs), from the diagnosis alone:
the traces are not read again, so a listing of thousands of rows stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opdiag.diagnosis.conclusion import conclude, duration_text, healthy_text, minutes_text
from opdiag.diagnosis.result import Diagnosis, Finding, copied
from opdiag.diagnosis.rules import Rule, RuleSet
from opdiag.diagnosis.span_rules import facts_hold
from opdiag.diagnosis.templates import fill_line
from opdiag.settings import DiagnosisSettings

__all__ = ["Change", "apply_slow", "reassess_changes", "reassess_slow"]

# the phase that changed most against the baseline, or a function that says it when asked
Change = str | Callable[[], str | None] | None


def reassess_slow(
    diagnosis: Diagnosis,
    baseline_ms: float | None,
    rules: RuleSet,
    settings: DiagnosisSettings,
    change: Change = None,
    *,
    basis: str | None = None,
    rushed: str | None = None,
) -> Diagnosis:
    """A copy of ``diagnosis`` with ``slow`` decided against ``baseline_ms`` (the median of
    the type's last good runs; ``None`` = the configured budget). ``change`` names the phase
    that changed most against those runs; it joins the baseline's text (``{baseline}``), as
    ``basis`` does (what the baseline was scaled to: "for its 12,505 data rows"). ``change``
    may be given as a function, asked only when a slow rule holds (a listing's rows do not
    show the comparison it comes from). ``rushed``: what says the run completed too fast
    for its work (``diagnosis.rushed``), when its runs say so."""
    # Shallow is enough: apply_slow only reassigns fields and appends new findings, and
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
    apply_slow(
        out,
        baseline_ms,
        rules,
        settings,
        fallback=fallback,
        op_values=lambda: _known_values(out),
        removed=removed,
        change=change,
        basis=basis,
        rushed=rushed,
    )
    return out


def _known_values(diagnosis: Diagnosis) -> dict[str, Any]:
    """The template values a diagnosis still knows without its traces (``reassess_slow``)."""
    values: dict[str, Any] = {
        "operation.id": diagnosis.operation_id,
        "operation.type": diagnosis.operation_type,
        "operation.status": diagnosis.status,
        "minutes": minutes_text((diagnosis.duration_ms or 0) * 1000),
        "duration": duration_text((diagnosis.duration_ms or 0) * 1000),
        "trace_count": len(diagnosis.trace_ids),
        "ident": diagnosis.key,
    }
    if diagnosis.quiet_ms is not None:  # in flight: how long its work has been quiet
        values["quiet"] = duration_text(diagnosis.quiet_ms * 1000)
    if diagnosis.bottleneck is not None:
        values.update(
            {
                "bottleneck": diagnosis.bottleneck.text,
                "bottleneck.service": diagnosis.bottleneck.service,
                "bottleneck.named": diagnosis.bottleneck.named,
                "share": f"{round(diagnosis.bottleneck.share * 100)} %",
            }
        )
    return values


def _is_slow_rule(rule: Rule | None) -> bool:
    return rule is not None and rule.uses_slow


def apply_slow(
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
    rushed: str | None = None,
) -> None:
    """Decide ``slow`` (finished, completed, duration > factor × baseline, or > the type's
    budget without a baseline) and ``overdue`` (in flight, quiet > factor × baseline), add
    the slow rules' findings, then conclude (unless nothing
    changed: ``removed`` says whether earlier slow findings were dropped). ``op_values``
    may be a function, asked only when a slow rule holds (most runs are not slow).
    ``rushed``: what says the run completed too fast (``diagnosis.rushed``): the fact
    ``rushed`` and the value ``{rushed}``."""
    diagnosis.baseline_ms = baseline_ms
    duration = diagnosis.duration_ms or 0.0
    limit = _slow_limit(diagnosis, baseline_ms, settings)
    if not (baseline_ms is not None and baseline_ms > 0):
        change = None  # (only a baseline names a change)
    facts = _slow_facts(diagnosis, limit, baselined=baseline_ms is not None and baseline_ms > 0)
    facts["rushed"] = rushed is not None and diagnosis.status == "completed"
    values: dict[str, Any] | None = None
    b = diagnosis.bottleneck
    for rule in rules.slow_rules:
        if not facts_hold(rule, facts):
            continue
        if values is None:
            reference = _reference(baseline_ms, limit, basis)
            text = change() if callable(change) else change
            if text:
                reference = f"{reference}; {text}"
            known = op_values() if callable(op_values) else op_values
            values = {**known, "baseline": reference}
            if rushed is not None:
                values["rushed"] = rushed
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


def _reference(baseline_ms: float | None, limit: float, basis: str | None) -> str:
    """What a slow finding's ``{baseline}`` says it was held to; made only when a slow
    rule holds (most runs are not slow)."""
    if baseline_ms is not None and baseline_ms > 0:
        reference = f"baseline {duration_text(baseline_ms * 1000)}"
        return f"{reference} {basis}" if basis else reference
    return f"budget {duration_text(limit * 1000)}"


def _slow_limit(
    diagnosis: Diagnosis, baseline_ms: float | None, settings: DiagnosisSettings
) -> float:
    """Slower than this (ms) is slow: a factor of the baseline, else the type's budget."""
    if baseline_ms is not None and baseline_ms > 0:
        return settings.slow_factor * baseline_ms
    budget_s = settings.slow_budget_s.get(diagnosis.operation_type or "", settings.default_budget_s)
    return budget_s * 1000


def _slow_facts(diagnosis: Diagnosis, limit: float, *, baselined: bool) -> dict[str, Any]:
    """The facts the slow rules test (``rules.SLOW_FACTS``). ``overdue``: in flight, kept
    running only by its worker's answers, and quiet for longer than ``limit``, what its
    earlier runs took in all (``baselined``: the type's budget is the engine's to apply)."""
    duration = diagnosis.duration_ms or 0.0
    quiet = diagnosis.quiet_ms
    return {
        "slow": diagnosis.finished
        and diagnosis.status == "completed"
        and not diagnosis.resumed
        and duration > limit,
        "rushed": False,  # (``apply_slow`` is told)
        "overdue": baselined
        and not diagnosis.finished
        and not diagnosis.resumed
        and quiet is not None
        and quiet > limit,
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
    baselined = baseline_ms is not None and baseline_ms > 0
    limit = _slow_limit(diagnosis, baseline_ms, settings)
    facts = _slow_facts(diagnosis, limit, baselined=baselined)
    return any(facts_hold(rule, facts) for rule in rules.slow_rules)


