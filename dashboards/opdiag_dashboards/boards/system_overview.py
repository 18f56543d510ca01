"""KTRDR System Overview: health, traffic, errors, latency and resources of every service.

Fixes KTRDR's version: the backend is matched whatever its job is called (the job variable's
"All" is the configured regex), rates use $__rate_interval, the error rate and the errors by
status are 0 (not empty, not NaN) when healthy or idle.
"""

from __future__ import annotations

from functools import partial

from opdiag.settings import Settings

from opdiag_dashboards import panels, targets, variables
from opdiag_dashboards.annotations import verdict_annotations
from opdiag_dashboards.board import Board
from opdiag_dashboards.boards.scrape_status import up_down_table
from opdiag_dashboards.queries import promql as pq

TITLE = "KTRDR System Overview"


def build(settings: Settings, json_datasource: str) -> Board:
    """Assemble the panels."""
    s = settings
    prom = partial(targets.prometheus, s)

    up = panels.stat(
        "Services Up",
        "Scrape targets of the selected KTRDR jobs answering now (backend and workers).",
        [prom(pq.services_up(s))],
        thresholds=panels.steps("red", (1, "green")),
        no_value="No targets",
    )
    down = panels.stat(
        "Services Down",
        "Scrape targets of the selected jobs that fail their scrape; 0 when all are healthy.",
        [prom(pq.services_down(s))],
        thresholds=panels.steps("green", (1, "red")),
    )
    rps = panels.stat(
        "Requests/sec",
        "HTTP requests per second served by KTRDR (only the backend exports HTTP metrics).",
        [prom(pq.request_rate(s))],
        unit="reqps",
        graph=True,
    )
    err = panels.stat(
        "Error Rate",
        "Share of HTTP responses with a 5xx status; 0 % when no request failed, also when "
        "there was no traffic at all (Requests/sec shows 0 then).",
        [prom(pq.error_ratio_percent(s))],
        unit="percent",
        thresholds=panels.steps("green", (1, "yellow"), (5, "red")),
    )
    p95 = panels.stat(
        "P95 Latency",
        "95th percentile of HTTP server latency now (over the last rate interval); 'No "
        "traffic' (not NaN, not an older value) when there was no request in it.",
        # Instant: over a range, lastNotNull would show the last window that had traffic.
        [prom(pq.latency_quantile(s, 0.95), instant=True)],
        unit="ms",
        thresholds=panels.steps("green", (100, "yellow"), (500, "red")),
        no_value="No traffic",
    )
    by_service = panels.timeseries(
        "Request Rate by Service",
        "Requests per second per service and endpoint.",
        [prom(pq.request_rate_by_service(s), "{{job}} {{http_target}}")],
        unit="reqps",
    )
    percentiles = panels.timeseries(
        "Response Time Percentiles",
        "HTTP server latency: median, 95th and 99th percentile; a gap (not NaN) where there "
        "was no traffic.",
        [
            prom(pq.latency_quantile(s, 0.5), "P50", "A"),
            prom(pq.latency_quantile(s, 0.95), "P95", "B"),
            prom(pq.latency_quantile(s, 0.99), "P99", "C"),
        ],
        unit="ms",
    )
    by_status = panels.timeseries(
        "Errors by Status Code",
        "4xx and 5xx responses per second, per status code; a 0 line named 'none' while "
        "there has been no 4xx/5xx response.",
        [prom(pq.errors_by_status(s), "{{http_status_code}}")],
        unit="reqps",
        stacked=True,
    )
    active = up_down_table(
        "Active Services",
        "Every scrape target of the selected jobs and whether it answers now.",
        prom(pq.service_status(s), instant=True, table=True),
        rename={"job": "Service", "instance": "Instance"},
    )
    cpu = panels.timeseries(
        "CPU Usage by Service",
        "CPU time per service instance in % of one core, backend included.",
        [prom(pq.cpu_percent_by_service(s), "{{job}} - {{instance}}")],
        unit="percent",
        thresholds=panels.steps("green", (50, "yellow"), (80, "red")),
    )
    mem = panels.timeseries(
        "Memory Usage by Service",
        "Resident memory per service instance, backend included.",
        [prom(pq.memory_by_service(s), "{{job}} - {{instance}}")],
        unit="bytes",
    )
    return Board(
        uid=s.dashboards.system_overview_uid,
        title=TITLE,
        description="Overview of KTRDR system health, request rates, and response times",
        tags=["overview"],
        variables=[variables.environment(s), variables.job(s), variables.instance(s)],
        annotations=[verdict_annotations(s, json_datasource, by_type=False)],
        panels=panels.layout(
            [
                [(up, 4, 4), (down, 4, 4), (rps, 6, 4), (err, 5, 4), (p95, 5, 4)],
                [(by_service, 24, 8)],
                [(percentiles, 12, 8), (by_status, 12, 8)],
                [(active, 24, 6)],
                [(cpu, 12, 8), (mem, 12, 8)],
            ]
        ),
    )
