"""Response models of the REST API that Grafana's Infinity datasource reads.

These models are the single source of column names and types: the Flask routes build their
rows with them, the OpenAPI document is generated from them, and the dashboards derive every
Infinity / simpod column from them (``dashboards`` imports this module). Rows are flat: only
str, int, float and bool fields; times are epoch milliseconds (``*_ms`` / ``time``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OperationRow(Row):
    """One operation (or one failed dispatch without an operation id) and its verdict."""

    time: int = Field(description="Operation start, epoch ms")
    operation_id: str = Field(description="operation.id, or the trace id when there is none")
    trace_id: str = Field(description="First trace of the operation (32 hex)")
    operation_type: str = Field(description="operation.type, or 'unknown'")
    status: str = Field(
        description="Last known operation status (KTRDR's: pending … cancelled); 'rejected' "
        "or 'answered' for a request that never became an operation, once over ('background' "
        "for a trace that is only a background probe: a health check, an ib.connect); else "
        "'unknown'"
    )
    verdict: str = Field(description="Verdict code")
    severity: str = Field(
        description="How bad the verdict is: critical, error, warning or info (of the rule "
        "that decided it: a healthy data load with missing bars is 'warning'); '' for a "
        "verdict stored before opdiag kept severities and not judged since"
    )
    summary: str = Field(description="One-line diagnosis")
    duration_ms: float = Field(description="Operation duration so far, ms")
    service: str = Field(description="Service of the root-cause span, or the main service")
    root_cause: str = Field(
        description="'service: span' of the root cause (a client span: its method and URL), "
        "or ''"
    )
    bottleneck: str = Field(
        description="Bottleneck span name, or the uninstrumented gap in words, or ''"
    )
    finished: bool = Field(
        description="A terminal transition was seen, or a request that never became an "
        "operation is over"
    )
    diagnosis_url: str = Field(description="opdiag HTML diagnosis page")
    jaeger_url: str = Field(description="Jaeger UI deep link to the key span")


class DiagnosisRow(Row):
    """One operation's diagnosis as a single flat row (stat and text panels)."""

    operation_id: str
    trace_ids: str = Field(description="Comma-separated trace ids")
    operation_type: str
    status: str
    verdict: str
    severity: str = Field(description="critical, error, warning or info: how bad the verdict is")
    summary: str
    time: int = Field(description="Operation start, epoch ms")
    duration_ms: float
    baseline_ms: float = Field(
        description="Baseline for 'slow', else the median of the last good runs compared "
        "against; 0 when there are none"
    )
    root_cause_span: str
    root_cause_service: str
    root_cause_span_id: str
    root_cause_evidence: str = Field(description="key=value pairs that prove the root cause")
    root_cause_trace_id: str = Field(description="Trace of the root-cause span (32 hex), or ''")
    root_cause_neighbour: bool = Field(
        description="The root cause sits in another trace than the operation's own"
    )
    bottleneck_kind: str = Field(description="'span', 'gap' (time no span covers) or ''")
    bottleneck_span: str = Field(description="Bottleneck span name, or the gap in words")
    bottleneck_span_id: str = Field(description="Bottleneck span id; '' for a gap")
    bottleneck_service: str
    bottleneck_after_span: str = Field(description="For a gap: the span it follows")
    bottleneck_self_time_ms: float = Field(description="Self time, or the gap's length")
    bottleneck_share: float = Field(description="Share of the critical path, 0..1")
    evidence_trace_ids: str = Field(
        description="Comma-separated traces outside the operation's own that evidence came from"
    )
    solution: str = Field(description="Solution as Markdown")
    services: str = Field(description="Comma-separated services")
    diagnosis_url: str
    jaeger_url: str
    explore_url: str


class FlowRow(Row):
    """One span of the execution flow."""

    index: int
    trace_id: str
    span_id: str
    parent_id: str
    service: str
    span_name: str
    start_ms: float = Field(description="Offset from the operation start, ms")
    duration_ms: float
    self_time_ms: float
    depth: int
    critical: bool
    error: bool
    root_cause: bool
    bottleneck: bool
    jaeger_url: str


class FindingRow(Row):
    """One rule that fired."""

    rule_id: str
    severity: str
    verdict: str
    summary: str
    trace_id: str
    span_id: str
    service: str
    span_name: str
    evidence: str = Field(description="key=value pairs")
    neighbour: bool = Field(description="Built from a trace outside the operation's own")
    time: int = Field(description="Start of the finding's span (else the operation's), epoch ms")


class SolutionRow(Row):
    """One step or command of the solution."""

    index: int
    kind: str = Field(description="'step' or 'command'")
    text: str
    rule_id: str


class ComparisonRow(Row):
    """One phase of the operation against the median of its last good runs (first row: the
    total, with what the comparison makes of it: its note and the time expected for its
    data). Phases that explain most of the change come first."""

    index: int = Field(description="0 for the total, then 1.. in order of the change explained")
    phase: str = Field(description="Span name, 'after X' (no span open), 'before the worker'…")
    kind: str = Field(description="'total', 'span', 'gap' or 'outside'")
    status: str = Field(
        description="'slower', 'faster', 'same', 'new', 'missing' or 'no baseline'; for a run "
        "that did not complete, 'stopped' (the total, and the phase it stopped in), 'in "
        "progress' (a run in flight) and 'not reached'; the total also 'as expected' (within "
        "the time expected for its data) and 'not comparable' (the runs do not judge its "
        "speed: another strategy)"
    )
    this_ms: float = Field(description="Time in this phase in this run, ms")
    baseline_ms: float = Field(description="Median over the baseline runs, ms (0 when absent)")
    change_ms: float = Field(
        description="this_ms - baseline_ms (0 for the total of a run that did not complete)"
    )
    change_pct: float = Field(
        description="Change in % of the baseline (0 when there is none: a baseline under 1 ms, "
        "the same time, a run that did not complete)"
    )
    share_of_change: float = Field(description="Share of the total change, 0..1 (0 when none)")
    baseline_runs: str = Field(description="Comma-separated ids of the baseline runs")
    expected_ms: float = Field(
        description="Total row: the time expected for this run's data (the runs' time per "
        "data row), ms; 0 when none is (sizes unknown, another strategy, a run that did not "
        "complete)"
    )
    judges_speed: bool = Field(
        description="The baseline runs may call this run slow (false: runs of another "
        "strategy, shown side by side only)"
    )
    note: str = Field(description="Total row: what the comparison cannot judge, and why; or ''")


class VerdictCountRow(Row):
    """Operations per verdict in one time bucket."""

    time: int = Field(description="Bucket start, epoch ms")
    verdict: str
    count: int


class VariableRow(Row):
    """One value of a Grafana template variable."""

    text: str
    value: str


class AnnotationRow(Row):
    """One operation with a problem verdict as a dashboard annotation (Grafana reads the
    fields ``time``, ``time_end``, ``title``, ``text`` and ``tags``)."""

    time: int = Field(description="Operation start, epoch ms")
    time_end: int = Field(description="Operation end (or now, while unfinished), epoch ms")
    title: str = Field(description="'verdict: operation type operation id'")
    text: str = Field(description="The summary and a link to the diagnosis (HTML, escaped)")
    tags: str = Field(description="Comma-separated: opdiag, the verdict, the operation type")
    verdict: str
    operation_type: str
    operation_id: str
    diagnosis_url: str


class ErrorBody(BaseModel):
    """Every error answer: a message a Grafana panel can show."""

    error: str
    field: str | None = None


ROW_MODELS: dict[str, type[Row]] = {
    "operations": OperationRow,
    "diagnosis": DiagnosisRow,
    "flow": FlowRow,
    "findings": FindingRow,
    "solution": SolutionRow,
    "comparison": ComparisonRow,
    "verdict_counts": VerdictCountRow,
    "variables": VariableRow,
    "annotations": AnnotationRow,
}
