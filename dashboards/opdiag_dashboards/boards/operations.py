"""KTRDR Operations Dashboard: what finished, how well, how long, and opdiag's verdicts.

Fixes KTRDR's version: counts are over the dashboard range (``increase_in_range``, which also
counts each series' first operation), the success rate is 0 % when everything failed and "no
data" when nothing finished, durations come from ktrdr_operation_duration_seconds (not the
dispatch HTTP call), and operation types are the operation_type label (not HTTP endpoints).
"""

from __future__ import annotations

from functools import partial

from opdiag.settings import Settings

from opdiag_dashboards import fields, panels, targets, variables
from opdiag_dashboards.annotations import verdict_annotations
from opdiag_dashboards.board import Board
from opdiag_dashboards.boards.opdiag_tables import operations_table
from opdiag_dashboards.queries import opdiag as oq
from opdiag_dashboards.queries import promql as pq
from opdiag_dashboards.verdicts import VERDICT_COLORS

TITLE = "KTRDR Operations Dashboard"


def _verdict_colors() -> list[dict[str, object]]:
    """Fixed series colours per verdict in the counts chart (matched by series name)."""
    return [
        {
            "matcher": {"id": "byName", "options": code},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}}],
        }
        for code, color in VERDICT_COLORS.items()
    ]


def build(settings: Settings, json_datasource: str) -> Board:
    """Assemble the panels."""
    s = settings
    prom = partial(targets.prometheus, s)

    finished = panels.stat(
        "Finished Operations",
        "Operations that completed, failed or were cancelled in the dashboard range.",
        [prom(pq.finished_in_range(s), instant=True)],
    )
    failed = panels.stat(
        "Failed Operations",
        "Operations that failed in the dashboard range.",
        [prom(pq.failed_in_range(s), instant=True)],
        thresholds=panels.steps("green", (1, "red")),
    )
    success = panels.stat(
        "Success Rate",
        "Completed / finished operations in the range: 0 % when all failed, no data when none "
        "finished.",
        [prom(pq.success_rate_percent(s), instant=True)],
        unit="percent",
        thresholds=panels.steps("red", (80, "yellow"), (95, "green")),
        no_value="No finished operations",
    )
    active = panels.stat(
        "Active Operations",
        "Operations in progress now, summed over the backend and the workers (each process "
        "counts the operations it runs).",
        [prom(pq.active_operations(s))],
        graph=True,
    )
    median = panels.stat(
        "Median Duration",
        "Median run time of operations finished in the range (duration histogram).",
        [prom(pq.duration_quantile_in_range(s, 0.5), instant=True)],
        unit="s",
        no_value="No finished operations",
    )
    by_type_status = panels.table(
        "Finished by Type and Status",
        "Operations finished in the dashboard range per operation type and terminal status.",
        [prom(pq.finished_by_type_and_status(s), instant=True, table=True)],
        transformations=[
            fields.organize(
                exclude=["Time"],
                rename={"operation_type": "Type", "status": "Status", "Value": "Operations"},
            )
        ],
        overrides=[fields.by_name("Value", unit="none", display="Operations")],
        sort_by="Operations",
    )
    finishing = panels.timeseries(
        "Finishing Rate by Status",
        "Operations reaching a terminal state per second, per status: the operations that "
        "finished in each graph step (the first of each type and status included) divided by "
        "the step.",
        [prom(pq.finished_rate_by_status(s), "{{status}}")],
        unit="ops",
        stacked=True,
    )
    # A table over the range, not a rate() time series: operations finish minutes apart, so
    # per-rate-interval quantiles are NaN nearly everywhere, and rate() never sees the first
    # operation of a type (its series is born at 1).
    durations = panels.table(
        "Operation Duration Percentiles",
        "Run time of the operations finished in the dashboard range, per operation type "
        "(ktrdr_operation_duration_seconds).",
        [
            prom(pq.duration_quantile_by_type_in_range(s, q), "", ref, instant=True, table=True)
            for q, ref in ((0.5, "A"), (0.95, "B"), (0.99, "C"))
        ],
        transformations=[
            {"id": "merge", "options": {}},
            fields.organize(
                exclude=["Time"],
                rename={
                    "operation_type": "Type",
                    "Value #A": "P50",
                    "Value #B": "P95",
                    "Value #C": "P99",
                },
            ),
        ],
        unit="s",
        sort_by="P95",
    )
    recent = operations_table(
        s,
        json_datasource,
        "Recent Operations",
        "Every operation opdiag found in the range with its verdict. Click an operation for "
        "its diagnosis, a trace to open it in Jaeger.",
        oq.recent_operations(s),
    )
    counts = panels.timeseries(
        "Verdicts over Time",
        "Operations per verdict per interval, from opdiag's diagnoses.",
        [targets.opdiag(s, json_datasource, oq.verdict_counts(s), "verdict_counts")],
        unit="none",
        bars=True,
        stacked=True,
        overrides=_verdict_colors(),
        transformations=[fields.partition("verdict")],
        display_name="${__field.labels.verdict}",
    )
    return Board(
        uid=s.dashboards.operations_uid,
        title=TITLE,
        description=(
            "Tracking of KTRDR operations including backtests, training, and data downloads"
        ),
        tags=["operations", "monitoring"],
        variables=[
            variables.environment(s),
            variables.job(s),
            variables.operation_type(s, json_datasource),
            variables.verdict(s, json_datasource),
        ],
        annotations=[verdict_annotations(s, json_datasource, by_type=True)],
        panels=panels.layout(
            [
                [(finished, 5, 4), (failed, 5, 4), (success, 5, 4), (median, 5, 4), (active, 4, 4)],
                [(recent, 24, 10)],
                [(counts, 12, 8), (by_type_status, 12, 8)],
                [(finishing, 12, 8), (durations, 12, 8)],
            ]
        ),
    )
