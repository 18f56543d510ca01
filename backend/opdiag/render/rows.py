"""A diagnosis flattened into the API's row models (``opdiag.api.schemas``).

The Flask routes and the simpod frames serve exactly these rows, and the dashboards derive
their columns from the same models, so this is the one place where a ``Diagnosis`` becomes
flat str/int/float/bool columns. Absent values become ``""`` / ``0`` (Grafana tables do not
like mixed null types).
"""

from __future__ import annotations

from html import escape
from operator import is_
from typing import Any
from urllib.parse import quote

from msgspec.structs import replace

from opdiag.api.schemas import (
    AnnotationRow,
    ComparisonRow,
    DiagnosisRow,
    FindingRow,
    FlowRow,
    OperationRow,
    SolutionRow,
    VariableRow,
    VerdictCountRow,
)
from opdiag.diagnosis.comparison import total_status
from opdiag.diagnosis.result import Diagnosis
from opdiag.render.json_render import dumps
from opdiag.render.links import build_links, ui_span_id
from opdiag.render.markdown import solution_markdown
from opdiag.settings import LinkSettings

_MAX_EVIDENCE = 2000


def evidence_text(evidence: dict[str, Any]) -> str:
    """``key=value`` pairs, sorted, one string (capped: a table cell, not a dump). A list
    or map value is JSON; ``also`` (the other rules that fired) is their ids and verdicts."""
    text = ", ".join(f"{k}={evidence_value(k, v)}" for k, v in sorted(evidence.items()))
    return text if len(text) <= _MAX_EVIDENCE else text[: _MAX_EVIDENCE - 1] + "…"


def evidence_value(key: str, value: Any) -> str:
    """One evidence value as a table shows it (the page's findings too)."""
    if key == "also" and isinstance(value, list):
        return "; ".join(
            f"{a.get('rule_id')} ({a.get('verdict') or 'advisory'})"
            if isinstance(a, dict)
            else str(a)
            for a in value
        )
    if isinstance(value, dict | list):
        return dumps(value, indent=False)
    return str(value)


def _span_link(d: Diagnosis, trace_id: str, span_id: str) -> str:
    """Jaeger UI deep link to one span, from the diagnosis' already-encoded trace links."""
    base = d.links.traces.get(trace_id)
    if not base or not span_id:
        return base or ""
    return f"{base}?uiFind={quote(ui_span_id(span_id), safe='')}"


def _main_service(d: Diagnosis) -> str:
    if d.root_cause is not None:
        return d.root_cause.service
    if d.bottleneck is not None:
        return d.bottleneck.service
    if d.execution_flow:
        return d.execution_flow[0].service
    return d.services[0] if d.services else ""


def _linked(d: Diagnosis, settings: Any) -> Diagnosis:
    """The diagnosis with links; built from ``settings`` (a ``Settings`` or its ``links``)
    only when the service did not fill them already."""
    if settings is None or d.links.diagnosis_page is not None:
        return d
    links_settings = getattr(settings, "links", settings)
    if not isinstance(links_settings, LinkSettings):
        return d
    return replace(d, links=build_links(d, links_settings))


def operation_row(d: Diagnosis, settings: Any = None) -> OperationRow:
    """One line of the operations table."""
    return OperationRow(**_operation_values(_linked(d, settings)))


def _operation_values(d: Diagnosis) -> dict[str, Any]:
    """An ``OperationRow``'s fields, in the model's order."""
    rc = d.root_cause
    return {
        "time": int(d.started_at_ms or 0),
        "operation_id": d.key,
        "trace_id": d.trace_ids[0] if d.trace_ids else "",
        "operation_type": d.operation_type or "unknown",
        "status": d.status,
        "verdict": d.verdict,
        "severity": d.severity,
        "summary": d.summary,
        "duration_ms": float(d.duration_ms or 0.0),
        "service": _main_service(d),
        "root_cause": f"{rc.service}: {rc.target or rc.span_name}" if rc is not None else "",
        "bottleneck": d.bottleneck.text if d.bottleneck is not None else "",
        "finished": d.finished,
        "diagnosis_url": d.links.diagnosis_page or "",
        "jaeger_url": d.links.jaeger or "",
    }


# The exact type of each OperationRow field, in order (all plain: str, int, float, bool).
_OPERATION_TYPES: tuple[type, ...] = tuple(
    f.annotation for f in OperationRow.model_fields.values()  # type: ignore[misc]
)


def operation_row_dict(d: Diagnosis) -> dict[str, Any]:
    """``operation_row(d).model_dump()`` without building the model when every value
    already has its field's exact type (the model would pass it through unchanged): a
    listing of 200k operations writes 200k of these."""
    values = _operation_values(d)
    # (every value's class against its field's, without a generator: 200k rows)
    if len(values) == len(_OPERATION_TYPES) and all(
        map(is_, map(type, values.values()), _OPERATION_TYPES)
    ):
        return values
    return OperationRow(**values).model_dump()


def diagnosis_row(d: Diagnosis, settings: Any = None) -> DiagnosisRow:
    """The whole diagnosis as one flat row (stat and text panels)."""
    d = _linked(d, settings)
    rc = d.root_cause
    b = d.bottleneck
    return DiagnosisRow(
        operation_id=d.key,
        trace_ids=",".join(d.trace_ids),
        operation_type=d.operation_type or "unknown",
        status=d.status,
        verdict=d.verdict,
        severity=d.severity,
        summary=d.summary,
        time=int(d.started_at_ms or 0),
        duration_ms=float(d.duration_ms or 0.0),
        # the baseline slow was judged on, else what the comparison measured against (a
        # failed run is not judged slow, yet its last good runs took a known time)
        baseline_ms=float(
            d.baseline_ms or (d.comparison.baseline_ms if d.comparison is not None else 0) or 0
        ),
        root_cause_span=rc.span_name if rc else "",
        root_cause_service=rc.service if rc else "",
        root_cause_span_id=rc.span_id if rc else "",
        root_cause_evidence=evidence_text(rc.evidence) if rc else "",
        root_cause_trace_id=rc.trace_id if rc else "",
        root_cause_neighbour=bool(rc and rc.neighbour),
        bottleneck_kind=b.kind if b else "",
        bottleneck_span=b.text if b else "",
        bottleneck_span_id=(b.span_id or "") if b else "",
        bottleneck_service=b.service if b else "",
        bottleneck_after_span=(b.after_span_name or "") if b else "",
        bottleneck_self_time_ms=float(b.self_time_ms) if b else 0.0,
        bottleneck_share=float(b.share) if b else 0.0,
        evidence_trace_ids=",".join(d.evidence_trace_ids),
        solution=solution_markdown(d.solution),
        services=",".join(d.services),
        diagnosis_url=d.links.diagnosis_page or "",
        jaeger_url=d.links.jaeger or "",
        explore_url=d.links.grafana_explore or "",
    )


def flow_rows(d: Diagnosis, settings: Any = None) -> list[FlowRow]:
    """The execution flow, one row per span, in start order."""
    d = _linked(d, settings)
    return [
        FlowRow(
            index=s.index,
            trace_id=s.trace_id,
            span_id=s.span_id,
            parent_id=s.parent_id or "",
            service=s.service,
            span_name=s.span_name,
            start_ms=float(s.start_ms),
            duration_ms=float(s.duration_ms),
            self_time_ms=float(s.self_time_ms),
            depth=s.depth,
            critical=s.critical,
            error=s.error,
            root_cause=s.root_cause,
            bottleneck=s.bottleneck,
            jaeger_url=_span_link(d, s.trace_id, s.span_id),
        )
        for s in d.execution_flow
    ]


def finding_rows(d: Diagnosis, settings: Any = None) -> list[FindingRow]:
    """Every rule that fired (``settings`` accepted for a uniform signature)."""
    return [
        FindingRow(
            rule_id=f.rule_id,
            severity=f.severity,
            verdict=f.verdict or "",
            summary=f.summary,
            trace_id=f.trace_id or "",
            span_id=f.span_id or "",
            service=f.service or "",
            span_name=f.span_name or "",
            evidence=evidence_text(f.evidence),
            neighbour=f.neighbour,
            time=int(f.time_ms or d.started_at_ms or 0),
        )
        for f in d.findings
    ]


def solution_rows(d: Diagnosis, settings: Any = None) -> list[SolutionRow]:
    """Steps, then commands, numbered from 1 (``settings`` accepted, unused)."""
    if d.solution is None:
        return []
    rule_id = d.solution.rule_id or ""
    items = [("step", s) for s in d.solution.steps] + [("command", c) for c in d.solution.commands]
    return [
        SolutionRow(index=i, kind=kind, text=str(text), rule_id=rule_id)
        for i, (kind, text) in enumerate(items, start=1)
    ]


def comparison_rows(d: Diagnosis, settings: Any = None) -> list[ComparisonRow]:
    """The comparison with the last good runs: the total, then one row per phase (none for
    an unfinished operation; ``settings`` accepted, unused)."""
    c = d.comparison
    if c is None:
        return []
    runs = ",".join(r.key for r in c.runs)
    total = ComparisonRow(
        index=0,
        phase="total",
        kind="total",
        status=total_status(c),
        this_ms=float(c.this_ms),
        baseline_ms=float(c.baseline_ms or 0.0),
        change_ms=float(c.change_ms or 0.0),
        change_pct=float(c.change_pct or 0.0),
        share_of_change=1.0 if c.change_ms else 0.0,
        baseline_runs=runs,
        expected_ms=float(c.expected_ms or 0.0),
        judges_speed=c.judges_speed,
        note=c.note,
    )
    return [total] + [
        ComparisonRow(
            index=i,
            phase=p.name,
            kind=p.kind,
            status=p.status,
            this_ms=float(p.this_ms),
            baseline_ms=float(p.baseline_ms),
            change_ms=float(p.change_ms),
            change_pct=float(p.change_pct or 0.0),
            share_of_change=float(p.share_of_change or 0.0),
            baseline_runs=runs,
            expected_ms=0.0,
            judges_speed=c.judges_speed,
            note="",
        )
        for i, p in enumerate(c.phases, start=1)
    ]



def annotation_row(row: OperationRow) -> AnnotationRow:
    """An operation row as a dashboard annotation: where it ran, its verdict, its summary
    and a link to its diagnosis (text from traces is escaped: Grafana renders it as HTML)."""
    link = (
        f' <a href="{escape(row.diagnosis_url, quote=True)}" target="_blank">diagnosis</a>'
        if row.diagnosis_url
        else ""
    )
    return AnnotationRow(
        time=row.time,
        time_end=row.time + round(row.duration_ms),
        title=f"{row.verdict}: {row.operation_type} {row.operation_id}",
        text=f"<b>{escape(row.verdict)}</b>: {escape(row.summary)}{link}",
        tags=f"opdiag,{row.verdict},{row.operation_type}",
        verdict=row.verdict,
        operation_type=row.operation_type,
        operation_id=row.operation_id,
        diagnosis_url=row.diagnosis_url,
    )


def verdict_count_row(time_ms: int, verdict: str, count: int) -> VerdictCountRow:
    return VerdictCountRow(time=time_ms, verdict=verdict, count=count)


def variable_row(value: str, text: str | None = None) -> VariableRow:
    return VariableRow(text=text if text is not None else value, value=value)
