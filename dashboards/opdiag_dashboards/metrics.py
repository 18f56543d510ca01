"""The Prometheus metrics KTRDR really emits (research/ktrdr.md §5), in one table.

Dashboards may only name these; the lint checks every PromQL expression against this table,
including the type (a `_total`-suffixed gauge is still a gauge and is never put in rate()).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One exposed metric family and the series names Prometheus stores for it."""

    name: str
    type: str  # counter | gauge | histogram | info
    labels: tuple[str, ...]
    emitted_by: str
    extra_series: tuple[str, ...] = ()

    def series(self) -> tuple[str, ...]:
        """Names that appear in PromQL: histograms expand to _bucket/_sum/_count."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name, *self.extra_series)


_HTTP = (
    "http_method",
    "http_scheme",
    "http_host",
    "http_flavor",
    "http_server_name",
    "net_host_name",
    "net_host_port",
    "http_status_code",
    "http_target",
)
_SCRAPE = ("job", "instance")

KTRDR_METRICS: tuple[Metric, ...] = (
    Metric("ktrdr_workers_registered_total", "gauge", ("worker_type",), "backend"),
    Metric("ktrdr_workers_available", "gauge", ("worker_type",), "backend"),
    Metric("ktrdr_operations_active", "gauge", (), "backend and workers, per process"),
    Metric(
        "ktrdr_operations_total",
        "counter",
        ("operation_type", "status"),
        "workers, backend",
        ("ktrdr_operations_created",),
    ),
    Metric(
        "ktrdr_operation_duration_seconds",
        "histogram",
        ("operation_type", "status"),
        "workers, backend",
    ),
    Metric("http_server_duration_milliseconds", "histogram", _HTTP, "backend"),
    Metric("http_server_active_requests", "gauge", _HTTP[:5], "backend"),
    Metric("http_server_request_size_bytes", "histogram", _HTTP, "backend"),
    Metric("http_server_response_size_bytes", "histogram", _HTTP, "backend"),
    Metric(
        "http_client_duration_milliseconds",
        "histogram",
        ("http_method", "http_scheme", "http_status_code"),
        "backend",
    ),
    Metric("target_info", "info", ("service_name", "service_version"), "backend"),
    Metric("process_cpu_seconds_total", "counter", (), "backend and workers"),
    Metric("process_resident_memory_bytes", "gauge", (), "backend and workers"),
    Metric("process_virtual_memory_bytes", "gauge", (), "backend and workers"),
    Metric("process_open_fds", "gauge", (), "backend and workers"),
    Metric("process_max_fds", "gauge", (), "backend and workers"),
    Metric("process_start_time_seconds", "gauge", (), "backend and workers"),
    Metric("python_info", "gauge", ("implementation", "version"), "backend and workers"),
    Metric("up", "gauge", (), "Prometheus (synthetic, per scrape target)"),
)

# Every series name a query may use -> its family.
SERIES: dict[str, Metric] = {s: m for m in KTRDR_METRICS for s in m.series()}
# Labels every scraped series carries besides its own.
SCRAPE_LABELS = _SCRAPE
