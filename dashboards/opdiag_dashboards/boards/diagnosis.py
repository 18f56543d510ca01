"""Operation Diagnosis: the drill-down target of every operation link (`operation_id` variable).

Verdict, summary, root cause with evidence, bottleneck, execution flow, findings, solution from
opdiag, and the trace itself in Grafana's trace view through the Jaeger datasource (one panel
per trace of the operation, repeated over the `trace_id` variable fed by opdiag).
"""

from __future__ import annotations

from opdiag.settings import Settings

from opdiag_dashboards import fields, links, panels, targets, variables, verdicts
from opdiag_dashboards.board import Board
from opdiag_dashboards.queries import opdiag as oq
from opdiag_dashboards.queries import selectors as sel

TITLE = "Operation Diagnosis"
SUMMARY = ("summary", "services", "trace_ids", "operation_id", links.ROW_PAGE_COLUMN)
ROOT_CAUSE = (
    "root_cause_service",
    "root_cause_span",
    "root_cause_evidence",
    "root_cause_span_id",
    "root_cause_trace_id",
    "jaeger_url",
)
BOTTLENECK = (
    "bottleneck_kind",
    "bottleneck_span",
    "bottleneck_service",
    "bottleneck_self_time_ms",
    "bottleneck_share",
    "bottleneck_span_id",
)
COMPARISON = (
    "phase",
    "kind",
    "status",
    "this_ms",
    "baseline_ms",
    "change_ms",
    "change_pct",
    "share_of_change",
    "expected_ms",
    "note",
    "baseline_runs",
    "index",
)
FLOW = (
    "index",
    "service",
    "span_name",
    "start_ms",
    "duration_ms",
    "self_time_ms",
    "critical",
    "error",
    "root_cause",
    "bottleneck",
    "trace_id",
    "span_id",
)


def _blank_when_zero(field: str, display: str, unit: str, width: int) -> dict[str, object]:
    """A comparison column whose 0 means 'not measured' (a run that stopped has no change,
    a run without a size no expected time): shown blank, not as 0 ms."""
    return fields.by_name(
        field, display=display, unit=unit, mappings=verdicts.blank_zero_mappings(), width=width
    )


def build(settings: Settings, json_datasource: str) -> Board:
    """Assemble the panels."""
    s = settings

    def diag(columns: tuple[str, ...]) -> dict[str, object]:
        return targets.opdiag(s, json_datasource, oq.diagnosis(s), "diagnosis", columns)

    def field_stat(title: str, description: str, column: str, **kw: object) -> object:
        return panels.stat(
            title,
            description,
            [diag((column,))],
            fields=f"/^{column}$/",
            no_value="-",
            **kw,  # type: ignore[arg-type]
        )

    verdict = field_stat(
        "Verdict",
        "opdiag's verdict for the selected operation.",
        "verdict",
        mappings=verdicts.verdict_mappings(),
        color_mode="background",
    )
    severity = field_stat(
        "Severity",
        "How bad the verdict is, as the rule that decided it rates it: a healthy operation "
        "with a warning (a data load completed with missing bars) is not a clean one.",
        "severity",
        mappings=verdicts.color_mappings(verdicts.SEVERITY_COLORS),
        color_mode="background",
    )
    status = field_stat(
        "Status",
        "Last known operation status; 'rejected' or 'answered' for a request that never "
        "became an operation.",
        "status",
    )
    op_type = field_stat("Type", "Operation type.", "operation_type")
    duration = field_stat(
        "Duration",
        "Total duration of the operation (so far, if unfinished).",
        "duration_ms",
        unit="ms",
    )
    baseline = field_stat(
        "Baseline",
        "What 'slow' judged the run against (the time expected for its data, the median of "
        "its last good runs, or the type's budget), else the median of the last good runs it "
        "was compared with; '-' when there are none (the API's 0).",
        "baseline_ms",
        unit="ms",
        mappings=verdicts.dash_zero_mappings(),
    )
    summary = panels.table(
        "Summary",
        "The one-line diagnosis, the services involved and the operation's traces.",
        [diag(SUMMARY)],
        transformations=[fields.select("diagnosis", SUMMARY)],
        overrides=[
            fields.by_name("summary", display="Summary"),
            fields.by_name("services", display="Services"),
            fields.by_name("trace_ids", display="Traces"),
            fields.by_name("operation_id", display="Operation", links=links.operation_id_links(s)),
            fields.by_name(links.ROW_PAGE_COLUMN, hidden=True),
        ],
    )
    summary.links = [links.selected_operation_page(s)]
    root_cause = panels.table(
        "Root Cause",
        "The span where the problem originates and the attribute values that prove it; it may "
        "sit in another trace than the operation's own (a failed health check of its worker, "
        "a refused ib.connect of the IB host service).",
        [diag(ROOT_CAUSE)],
        transformations=[fields.select("diagnosis", ROOT_CAUSE)],
        overrides=[
            fields.by_name("root_cause_service", display="Service", width=180),
            fields.by_name("root_cause_span", display="Span", width=220),
            fields.by_name("root_cause_evidence", display="Evidence"),
            fields.by_name("root_cause_span_id", display="Span id", width=160),
            fields.by_name(
                "root_cause_trace_id", display="Trace", links=links.trace_id_links(s), width=160
            ),
            fields.by_name(
                "jaeger_url", display="Jaeger", links=[links.url_link("Open in Jaeger UI")]
            ),
        ],
    )
    bottleneck = panels.table(
        "Bottleneck",
        "Where the critical path spends most of its time: a span (most time on the path, "
        "transport noise ignored) or a gap (uninstrumented work no span covers, e.g. a "
        "training loop, named by the span it follows).",
        [diag(BOTTLENECK)],
        transformations=[fields.select("diagnosis", BOTTLENECK)],
        overrides=[
            fields.by_name("bottleneck_kind", display="Kind", width=70),
            fields.by_name("bottleneck_span", display="Where"),
            fields.by_name("bottleneck_service", display="Service"),
            fields.by_name("bottleneck_self_time_ms", display="Time", unit="ms"),
            fields.by_name(
                "bottleneck_share", display="Share of critical path", unit="percentunit"
            ),
            fields.by_name("bottleneck_span_id", display="Span id"),
        ],
    )
    flow = panels.table(
        "Execution Flow",
        "Spans in time order with service, start offset, duration and self time; critical "
        "path, errors, root cause and bottleneck marked. A trace id opens the trace in Jaeger.",
        [
            targets.opdiag(
                s,
                json_datasource,
                oq.flow(s),
                "flow",
                FLOW,
            )
        ],
        overrides=[
            fields.by_name("index", display="#", width=50),
            fields.by_name("service", display="Service", width=200),
            fields.by_name("span_name", display="Span"),
            fields.by_name("start_ms", display="Start", unit="ms", width=90),
            fields.by_name("duration_ms", display="Duration", unit="ms", width=100),
            fields.by_name("self_time_ms", display="Self time", unit="ms", width=100),
            fields.by_name(
                "critical",
                display="Critical",
                mappings=verdicts.bool_mappings("critical", "blue"),
                cell="color-text",
                width=80,
            ),
            fields.by_name(
                "error",
                display="Error",
                mappings=verdicts.bool_mappings("error", "red"),
                cell="color-text",
                width=70,
            ),
            fields.by_name(
                "root_cause",
                display="Root cause",
                mappings=verdicts.bool_mappings("root cause", "dark-red"),
                cell="color-background",
                width=100,
            ),
            fields.by_name(
                "bottleneck",
                display="Bottleneck",
                mappings=verdicts.bool_mappings("bottleneck", "orange"),
                cell="color-background",
                width=100,
            ),
            fields.by_name("trace_id", display="Trace", links=links.trace_id_links(s), width=160),
            fields.by_name("span_id", display="Span id", width=150),
        ],
        transformations=[fields.select("flow", FLOW)],
        sort_by="#",
        descending=False,
    )
    comparison = panels.table(
        "What Changed Since the Last Good Runs",
        "The total, then each phase (span name on the worker side, repeated spans summed; "
        "'after X' is time in which no span was open after X ended) against the median of the "
        "last good runs of this type, named in the last column. Largest changes first. The "
        "total's status is what the comparison can judge: 'stopped' for a run that did not "
        "complete, 'not comparable' beside runs of another strategy, 'as expected' within the "
        "time expected for its data (Expected); the note says why.",
        [targets.opdiag(s, json_datasource, oq.comparison(s), "comparison", COMPARISON)],
        overrides=[
            fields.by_name("phase", display="Phase"),
            fields.by_name("kind", display="Kind", width=80),
            fields.by_name(
                "status",
                display="Status",
                mappings=verdicts.color_mappings(verdicts.CHANGE_COLORS),
                cell="color-text",
                width=100,
            ),
            fields.by_name("this_ms", display="This run", unit="ms", width=110),
            fields.by_name("baseline_ms", display="Baseline median", unit="ms", width=130),
            _blank_when_zero("change_ms", "Change", "ms", 110),
            _blank_when_zero("change_pct", "Change %", "percent", 100),
            fields.by_name(
                "share_of_change", display="Share of change", unit="percentunit", width=130
            ),
            _blank_when_zero("expected_ms", "Expected", "ms", 110),
            fields.by_name("note", display="Note"),
            fields.by_name("baseline_runs", display="Baseline runs"),
            fields.by_name("index", display="#", width=50),
        ],
        transformations=[fields.select("comparison", COMPARISON)],
        sort_by="#",
        descending=False,
    )
    findings = panels.table(
        "Findings",
        "One finding per fact, with its severity and evidence (other rules that said the same "
        "are in its evidence); 'Other trace' marks evidence from outside the operation's "
        "traces, with the trace and time it came from.",
        [targets.opdiag(s, json_datasource, oq.findings(s), "findings")],
        overrides=[
            fields.by_name("rule_id", display="Rule"),
            verdicts.severity_column(),
            verdicts.verdict_column(),
            fields.by_name("summary", display="Summary"),
            fields.by_name("trace_id", display="Trace", links=links.trace_id_links(s)),
            fields.by_name("span_id", display="Span id"),
            fields.by_name("service", display="Service"),
            fields.by_name("span_name", display="Span"),
            fields.by_name("evidence", display="Evidence"),
            fields.by_name(
                "neighbour",
                display="Other trace",
                mappings=verdicts.bool_mappings("other trace", "purple"),
                cell="color-text",
                width=100,
            ),
            fields.by_name("time", display="Time", unit="dateTimeAsIso", width=170),
        ],
    )
    solution = panels.table(
        "Solution",
        "What to do: steps and commands from the rule pack.",
        [targets.opdiag(s, json_datasource, oq.solution(s), "solution")],
        overrides=[
            fields.by_name("index", display="#", width=50),
            fields.by_name("kind", display="Kind", width=90),
            fields.by_name("text", display="Step"),
            fields.by_name("rule_id", display="Rule", width=200),
        ],
        sort_by="#",
        descending=False,
    )
    trace = panels.traces(
        "Trace ${trace_id}",
        "The operation's trace from Jaeger (one panel per trace of the operation).",
        targets.jaeger_trace(s, f"${{{sel.TRACE_ID}}}"),
        repeat=sel.TRACE_ID,
    )
    return Board(
        uid=s.links.diagnosis_dashboard_uid,
        title=TITLE,
        description="opdiag's diagnosis of one operation, with its execution flow and traces",
        tags=["operations", "diagnosis"],
        variables=[
            variables.operation_id(s, json_datasource),
            variables.trace_id(s, json_datasource),
        ],
        panels=panels.layout(
            [
                [
                    (verdict, 6, 4),
                    (severity, 3, 4),
                    (status, 4, 4),
                    (op_type, 3, 4),
                    (duration, 4, 4),
                    (baseline, 4, 4),
                ],
                [(summary, 24, 4)],
                [(root_cause, 14, 6), (bottleneck, 10, 6)],
                [(comparison, 24, 9)],
                [(flow, 24, 12)],
                [(findings, 24, 7)],
                [(solution, 24, 7)],
                [(trace, 24, 16)],
            ]
        ),
    )
