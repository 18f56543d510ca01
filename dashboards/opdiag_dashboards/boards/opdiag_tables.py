"""The recent-operations table shared by the Operations and Worker Status dashboards."""

from __future__ import annotations

from opdiag.settings import Settings

from opdiag_dashboards import fields, links, panels, targets, verdicts

# Columns shown, in order (names are OperationRow fields; types come from the model).
OPERATION_COLUMNS = (
    "time",
    "operation_id",
    "operation_type",
    "status",
    "verdict",
    "severity",
    "summary",
    "duration_ms",
    "service",
    "trace_id",
    links.ROW_PAGE_COLUMN,  # hidden: the target of the page links
)


def operation_overrides(settings: Settings) -> list[dict[str, object]]:
    """Headers, units, verdict colours and links of the operations columns."""
    return [
        fields.by_name("time", display="Time", width=170),
        fields.by_name(
            "operation_id", display="Operation", links=links.operation_id_links(settings)
        ),
        fields.by_name("operation_type", display="Type", width=110),
        fields.by_name("status", display="Status", width=100),
        verdicts.verdict_column(),
        verdicts.severity_column(),
        fields.by_name("summary", display="Summary"),
        fields.by_name("duration_ms", display="Duration", unit="ms", width=100),
        fields.by_name("service", display="Service", width=160),
        fields.by_name(
            "trace_id", display="Trace", links=links.trace_id_links(settings, row_page=True)
        ),
        fields.by_name(links.ROW_PAGE_COLUMN, hidden=True),
    ]


def operations_table(
    settings: Settings, json_datasource: str, title: str, description: str, url: str
) -> object:
    """A table of OperationRow rows from ``url``, newest first."""
    return panels.table(
        title,
        description,
        [targets.opdiag(settings, json_datasource, url, "operations", OPERATION_COLUMNS)],
        overrides=operation_overrides(settings),
        transformations=[fields.select("operations", OPERATION_COLUMNS)],
        sort_by="Time",
    )
