"""Every PromQL expression of the dashboards, one function each (mixin style).

Rules kept by all of them (and checked by the lint): rate windows are ``$__rate_interval``,
totals over the dashboard range go through :func:`increase_in_range` (never a bare
``increase(...[$__range])``), counts per graph step go through :func:`increase_in_interval`,
``_total`` counters appear only inside rate/increase or those two helpers, and the
counter-named gauge ``ktrdr_workers_registered_total`` is read as the gauge it is. Panels
that show errors or failures return 0, never nothing and never NaN.
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
    """5xx share in %: 0 (not empty) without errors, and 0 (not NaN = 0/0) without traffic.

    No request means no failed request; the Requests/sec stat beside it shows the silence.
    """
    errors = (
        f'sum(rate({HTTP}_count{{{sel.services(s)}, http_status_code=~"5.."}}[$__rate_interval]))'
    )
    return f"({errors} or vector(0)) / ({request_rate(s)} > 0) * 100 or vector(0)"


def latency_quantile(s: Settings, q: float) -> str:
    """HTTP server latency quantile in ms; nothing (not NaN) in a window without traffic.

    Without a request in the rate window every bucket rate is 0 and histogram_quantile()
    returns NaN, which a stat shows as "NaN" (a graph as an empty point). ``>= 0`` keeps
    every real quantile (+Inf included) and drops only NaN, so the stat shows its no-value
    text and the graph a gap.
    """
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(rate({HTTP}_bucket{{{sel.services(s)}}}[$__rate_interval]))) >= 0"
    )


def request_rate_by_service(s: Settings) -> str:
    """Requests per second per service and endpoint."""
    return f"sum by (job, http_target) (rate({HTTP}_count{{{sel.services(s)}}}[$__rate_interval]))"


NO_ERRORS = "none"


def errors_by_status(s: Settings) -> str:
    """4xx/5xx responses per second per status code; one 0 series labelled ``none`` while no
    4xx/5xx series exists (OTel creates a status code's series at its first response).

    ``or on()`` adds the zero only when the left side is empty (a plain ``or`` would add it
    beside every real code, since its label set never matches theirs).
    """
    errors = (
        f"sum by (http_status_code) (rate({HTTP}_count"
        f'{{{sel.services(s)}, http_status_code=~"[45].."}}[$__rate_interval]))'
    )
    return f'{errors} or on() label_replace(vector(0), "http_status_code", "{NO_ERRORS}", "", "")'


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


def increase_in_range(series: str) -> str:
    """Per-series increase of a counter (or histogram bucket) over the dashboard range.

    The one way every "over the range" count is written. KTRDR's prometheus_client creates a
    label set at its first increment, so a series is first scraped at 1 (no 0 sample) and
    increase() never counts that first operation. Series that existed at the range start
    (``offset $__range`` finds them) use increase(), which also handles counter resets;
    series born inside the range count their whole last value (``last_over_time``, so a
    process that stopped inside the range still counts). Limits: a series born in the range
    and reset again in it counts only since the reset; a series that existed at the start
    but has fewer than two samples in the range counts 0.
    """
    at_start = f"{series} offset $__range"
    return (
        f"(increase({series}[$__range]) and {at_start}) "
        f"or (last_over_time({series}[$__range]) unless {at_start})"
    )


def increase_in_interval(series: str) -> str:
    """Per-series increase of a counter in each graph step ``(t - $__interval, t]``.

    The step-by-step analogue of :func:`increase_in_range`, for time series: Grafana queries
    with step = ``$__interval``, so the windows tile the range exactly and nothing is
    extrapolated (a step's value is a whole number of operations). The value at the end of
    the step minus the last value before it (``last_over_time`` over the dashboard range,
    which also bridges a failed scrape's staleness marker) is the increase; a series with no
    sample in the range before the step was born in it and counts its whole value (its first
    increment included); a counter that went down was reset and counts its new value. An
    ``increase(S[$__interval])`` would not do: with one sample per step it returns nothing and
    it loses the increments between steps. Limits: a reset whose new value passes the old one
    within one step counts only the difference; a series unseen for longer than the range
    counts its whole value when it comes back; each step reads the series over the range
    (``last_over_time``), dearer than rate() on very long ranges.
    """
    before = f"last_over_time({series}[$__range] offset $__interval)"
    return f"(({series} - {before}) >= 0) or {series}"


def _ops(s: Settings, status: str = "") -> str:
    """ktrdr_operations_total of the selected operations, optionally one terminal status."""
    extra = f', status="{status}"' if status else ""
    return f"{OPS}{{{sel.operations(s)}{extra}}}"


def finished_in_range(s: Settings) -> str:
    """Operations that reached a terminal state in the dashboard range."""
    return f"sum({increase_in_range(_ops(s))})"


def failed_in_range(s: Settings) -> str:
    """Operations that failed in the range: 0, not empty, when none did."""
    return f"sum({increase_in_range(_ops(s, 'failed'))}) or vector(0)"


def success_rate_percent(s: Settings) -> str:
    """Completed / finished in the range, in %.

    0 % when everything failed (the numerator falls back to 0), no data when nothing finished
    (the denominator is filtered to > 0) - never KTRDR's ``or vector(100)``.
    """
    completed = f"sum({increase_in_range(_ops(s, 'completed'))})"
    return f"({completed} or vector(0)) / ({finished_in_range(s)} > 0) * 100"


def finished_by_type_and_status(s: Settings) -> str:
    """Finished operations per type and terminal status over the range (instant, table)."""
    return f"sum by (operation_type, status) ({increase_in_range(_ops(s))})"


def finished_rate_by_status(s: Settings) -> str:
    """Operations finishing per second, per terminal status, averaged over each graph step.

    rate() never sees a series' first increment (KTRDR creates the series at 1), so the count
    per step comes from :func:`increase_in_interval` and is divided by the step in seconds
    (``$__interval_ms`` is the step Grafana queries with). Summed over the steps, the graph
    holds exactly the operations that finished in the range.
    """
    return f"sum by (status) ({increase_in_interval(_ops(s))}) / ($__interval_ms / 1000)"


def _duration_quantile(s: Settings, q: float, by: str) -> str:
    """Run time quantile (seconds) of the operations finished in the range, grouped ``by``."""
    buckets = increase_in_range(f"{DURATION}_bucket{{{sel.operations(s)}}}")
    return f"histogram_quantile({q}, sum by ({by}) ({buckets}))"


def duration_quantile_in_range(s: Settings, q: float) -> str:
    """Operation run time quantile (seconds) over the whole range, all selected types."""
    return _duration_quantile(s, q, "le")


def duration_quantile_by_type_in_range(s: Settings, q: float) -> str:
    """Operation run time quantile (seconds) per type over the range (one table row each)."""
    return _duration_quantile(s, q, "le, operation_type")


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
