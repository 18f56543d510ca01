"""KTRDR Worker Status: registry counts, every worker instance, and worker-selection failures.

Fixes KTRDR's version: instances come from the worker jobs (no `500[35]` port regex hiding
workers 2..n), rates use $__rate_interval, the `_total`-named registry gauge is read as a
gauge, and opdiag lists the operations that found no (capable, available) worker.
"""

from __future__ import annotations

from functools import partial

from opdiag.settings import Settings

from opdiag_dashboards import panels, targets, variables, verdicts
from opdiag_dashboards.board import Board
from opdiag_dashboards.boards.opdiag_tables import operations_table
from opdiag_dashboards.boards.scrape_status import up_down_table
from opdiag_dashboards.queries import opdiag as oq
from opdiag_dashboards.queries import promql as pq

TITLE = "KTRDR Worker Status"


def build(settings: Settings, json_datasource: str) -> Board:
    """Assemble the panels."""
    s = settings
    prom = partial(targets.prometheus, s)

    registered = panels.stat(
        "Registered Workers",
        "Workers registered with the backend (selected types; busy and failing ones included).",
        [prom(pq.workers_registered(s))],
        thresholds=panels.steps("red", (1, "green")),
    )
    available = panels.stat(
        "Available Workers",
        "Registered workers ready to take an operation now.",
        [prom(pq.workers_available(s))],
        thresholds=panels.steps("red", (1, "green")),
    )
    unavailable = panels.stat(
        "Busy or Unhealthy",
        "Registered workers that cannot take an operation now (busy or failing health checks).",
        [prom(pq.workers_unavailable(s))],
        thresholds=panels.steps("green", (1, "yellow")),
    )
    by_type = panels.timeseries(
        "Workers by Type",
        "Registered and available workers per worker type.",
        [
            prom(pq.workers_registered_by_type(s), "registered {{worker_type}}", "A"),
            prom(pq.workers_available_by_type(s), "available {{worker_type}}", "B"),
        ],
        unit="none",
    )
    matrix = up_down_table(
        "Worker Health Matrix",
        "Every worker instance of the selected worker jobs and whether its scrape succeeds.",
        prom(pq.worker_status(s), instant=True, table=True),
        rename={"instance": "Worker", "job": "Job"},
    )
    timeline = panels.state_timeline(
        "Worker Availability Timeline",
        "Up/down history of every worker instance over the dashboard range.",
        [prom(pq.worker_status(s), "{{instance}}")],
        mappings=verdicts.up_down_mappings(),
        thresholds=panels.steps("red", (1, "green")),
    )
    cpu = panels.timeseries(
        "Worker CPU Usage",
        "CPU time per worker instance in % of one core.",
        [prom(pq.cpu_percent_by_worker(s), "{{instance}}")],
        unit="percent",
    )
    mem = panels.timeseries(
        "Worker Memory Usage",
        "Resident memory per worker instance.",
        [prom(pq.memory_by_worker(s), "{{instance}}")],
        unit="bytes",
    )
    failures = operations_table(
        s,
        json_datasource,
        "Worker Selection Failures",
        "Operations opdiag diagnosed as no_workers, no_capable_workers or workers_busy in the "
        "range. Click an operation for its diagnosis, a trace to open it in Jaeger.",
        oq.worker_selection_failures(s),
    )
    return Board(
        uid=s.dashboards.worker_status_uid,
        title=TITLE,
        description="Status of KTRDR workers including health, resources, and availability",
        tags=["workers"],
        variables=[
            variables.environment(s),
            variables.worker_type(s),
            variables.worker_job(s),
            variables.worker_instance(s),
            variables.operation_type(s, json_datasource),
        ],
        panels=panels.layout(
            [
                [(registered, 8, 4), (available, 8, 4), (unavailable, 8, 4)],
                [(by_type, 24, 8)],
                [(matrix, 24, 6)],
                [(timeline, 24, 7)],
                [(cpu, 12, 8), (mem, 12, 8)],
                [(failures, 24, 9)],
            ]
        ),
    )
