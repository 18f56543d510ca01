"""Every PromQL expression of the dashboards, one function each (mixin style).

Rules kept by all of them (and checked by the lint): rate windows are ``$__rate_interval``,
totals over the dashboard range use ``increase(...[$__range])``, ``_total`` counters appear
only inside rate/increase, and the counter-named gauge ``ktrdr_workers_registered_total`` is
read as the gauge it is.
"""

from __future__ import annotations

from opdiag.settings import Settings

from opdiag_dashboards.queries import selectors as sel

HTTP = "http_server_duration_milliseconds"
OPS = "ktrdr_operations_total"
DURATION = "ktrdr_operation_duration_seconds"


# --- System Overview ---------------------------------------------------------------------


def services_up(s: Settings) -> str:
    """Scrape targets answering now (0 when all are down, not empty)."""
    return f"sum(up{{{sel.services(s)}}})"


def services_down(s: Settings) -> str:
    """Scrape targets failing now: 0 when healthy."""
    return f"count(up{{{sel.services(s)}}} == 0) or vector(0)"


def request_rate(s: Settings) -> str:
    """HTTP requests per second (the backend is the only service exporting HTTP metrics)."""
    return f"sum(rate({HTTP}_count{{{sel.services(s)}}}[$__rate_interval]))"


def error_ratio_percent(s: Settings) -> str:
    """5xx share in %: 0 (not empty) while traffic flows without errors."""
    errors = (
        f'sum(rate({HTTP}_count{{{sel.services(s)}, http_status_code=~"5.."}}[$__rate_interval]))'
    )
    return f"({errors} or vector(0)) / {request_rate(s)} * 100"


def latency_quantile(s: Settings, q: float) -> str:
    """HTTP server latency quantile in ms."""
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(rate({HTTP}_bucket{{{sel.services(s)}}}[$__rate_interval])))"
    )


def request_rate_by_service(s: Settings) -> str:
    """Requests per second per service and endpoint."""
    return f"sum by (job, http_target) (rate({HTTP}_count{{{sel.services(s)}}}[$__rate_interval]))"


def errors_by_status(s: Settings) -> str:
    """4xx/5xx responses per second per status code."""
    return (
        f"sum by (http_status_code) (rate({HTTP}_count"
        f'{{{sel.services(s)}, http_status_code=~"[45].."}}[$__rate_interval]))'
    )


def service_status(s: Settings) -> str:
    """One row per scrape target: 1 up, 0 down."""
    return f"up{{{sel.services(s)}}}"


def cpu_percent_by_service(s: Settings) -> str:
    """CPU use per service instance in % of one core (backend included)."""
    return (
        "sum by (job, instance) "
        f"(rate(process_cpu_seconds_total{{{sel.services(s)}}}[$__rate_interval])) * 100"
    )


def memory_by_service(s: Settings) -> str:
    """Resident memory per service instance."""
    return f"sum by (job, instance) (process_resident_memory_bytes{{{sel.services(s)}}})"


# --- Worker Status -------------------------------------------------------------------------


def workers_registered(s: Settings) -> str:
    """Registered workers (a gauge despite its `_total` name)."""
    return f"sum(ktrdr_workers_registered_total{{{sel.registry(s)}}})"


def workers_available(s: Settings) -> str:
    """Workers ready for a new operation."""
    return f"sum(ktrdr_workers_available{{{sel.registry(s)}}})"


def workers_unavailable(s: Settings) -> str:
    """Registered but not available (busy or failing health checks)."""
    return f"{workers_registered(s)} - {workers_available(s)}"


def workers_registered_by_type(s: Settings) -> str:
    """Registered workers per type."""
    return f"sum by (worker_type) (ktrdr_workers_registered_total{{{sel.registry(s)}}})"


def workers_available_by_type(s: Settings) -> str:
    """Available workers per type."""
    return f"sum by (worker_type) (ktrdr_workers_available{{{sel.registry(s)}}})"


def worker_status(s: Settings) -> str:
    """One row / lane per worker instance: 1 up, 0 down (every port, no regex on ports)."""
    return f"up{{{sel.workers(s)}}}"


def cpu_percent_by_worker(s: Settings) -> str:
    """CPU use per worker instance in % of one core."""
    return (
        "sum by (instance) "
        f"(rate(process_cpu_seconds_total{{{sel.workers(s)}}}[$__rate_interval])) * 100"
    )


def memory_by_worker(s: Settings) -> str:
    """Resident memory per worker instance."""
    return f"sum by (instance) (process_resident_memory_bytes{{{sel.workers(s)}}})"


# --- Operations ---------------------------------------------------------------------------


def finished_in_range(s: Settings) -> str:
    """Operations that reached a terminal state in the dashboard range."""
    return f"sum(increase({OPS}{{{sel.operations(s)}}}[$__range]))"


def failed_in_range(s: Settings) -> str:
    """Operations that failed in the range: 0, not empty, when none did."""
    return f'sum(increase({OPS}{{{sel.operations(s)}, status="failed"}}[$__range])) or vector(0)'


def success_rate_percent(s: Settings) -> str:
    """Completed / finished in the range, in %.

    0 % when everything failed (the numerator falls back to 0), no data when nothing finished
    (the denominator is filtered to > 0) - never KTRDR's ``or vector(100)``.
    """
    completed = f'sum(increase({OPS}{{{sel.operations(s)}, status="completed"}}[$__range]))'
    return f"({completed} or vector(0)) / ({finished_in_range(s)} > 0) * 100"


def finished_by_type_and_status(s: Settings) -> str:
    """Finished operations per type and terminal status over the range (instant, table)."""
    return f"sum by (operation_type, status) (increase({OPS}{{{sel.operations(s)}}}[$__range]))"


def finished_rate_by_status(s: Settings) -> str:
    """Operations finishing per second, per terminal status."""
    return f"sum by (status) (rate({OPS}{{{sel.operations(s)}}}[$__rate_interval]))"


def duration_quantile(s: Settings, q: float) -> str:
    """Operation run time quantile (seconds) per type from the duration histogram."""
    return (
        f"histogram_quantile({q}, sum by (le, operation_type) "
        f"(rate({DURATION}_bucket{{{sel.operations(s)}}}[$__rate_interval])))"
    )


def duration_quantile_in_range(s: Settings, q: float) -> str:
    """Operation run time quantile (seconds) over the whole range, all selected types."""
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(increase({DURATION}_bucket{{{sel.operations(s)}}}[$__range])))"
    )


def active_operations(s: Settings) -> str:
    """Operations in progress, summed over processes (each process counts its own)."""
    return f'sum(ktrdr_operations_active{{{sel.environment(s)}, job=~"${sel.JOB}"}})'


# --- Variables ------------------------------------------------------------------------------


def environments(s: Settings) -> str:
    """Values of the environment label on KTRDR targets."""
    d = s.dashboards
    return f'label_values(up{{job=~"{d.service_job_regex}"}}, {d.environment_label})'


def jobs(s: Settings) -> str:
    """KTRDR scrape jobs in the selected environment."""
    return f'label_values(up{{{sel.environment(s)}, job=~"{s.dashboards.service_job_regex}"}}, job)'


def instances(s: Settings) -> str:
    """Instances of the selected jobs."""
    return f'label_values(up{{{sel.environment(s)}, job=~"${sel.JOB}"}}, instance)'


def worker_jobs(s: Settings) -> str:
    """Scrape jobs that hold workers."""
    return f'label_values(up{{{sel.environment(s)}, job=~"{s.dashboards.worker_job_regex}"}}, job)'


def worker_instances(s: Settings) -> str:
    """Worker instances of the selected worker jobs."""
    return f'label_values(up{{{sel.environment(s)}, job=~"${sel.WORKER_JOB}"}}, instance)'


def worker_types(s: Settings) -> str:
    """Worker types the registry exports."""
    return f"label_values(ktrdr_workers_available{{{sel.environment(s)}}}, worker_type)"
