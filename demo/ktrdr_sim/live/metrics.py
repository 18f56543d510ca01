"""One KTRDR process's Prometheus registry, with the names and labels of ``ktrdr.md`` §5.

- Backend: the worker-registry gauges, the HTTP server histogram from OTel's FastAPI
  instrumentation (exposed through PrometheusMetricReader as
  ``http_server_duration_milliseconds`` with ``http_target`` = route template), and the
  operation metrics for backend-local operations.
- Workers: only the operation metrics and the default process collectors. They have no
  MeterProvider, so no HTTP metrics.
- IB host service: only the default process collectors.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from ktrdr_sim.runtime import KTRDR_VERSION

OPERATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# OTel SDK default explicit buckets for http.server.duration (ms).
HTTP_BUCKETS = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)
HTTP_LABELS = ("http_method", "http_scheme", "http_host", "http_flavor", "http_server_name",
               "net_host_name", "net_host_port", "http_status_code", "http_target")
EXPORTED_WORKER_TYPES = ("backtesting", "training")  # update_worker_metrics skips the others

Event = tuple[object, ...]


class KtrdrMetrics:
    """The registry of one simulated process and how events update it.

    Roles: ``backend`` (everything), ``worker`` (operation metrics), ``host`` (the IB host
    service: process metrics only, KTRDR exports nothing else there).
    """

    def __init__(self, role: str, host: str, port: int, service_name: str = "") -> None:
        self.role = role
        self.host = host
        self.port = port
        reg = CollectorRegistry(auto_describe=True)
        self.registry = reg
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        self.operations: Counter | None = None
        self.duration: Histogram | None = None
        self.active: Gauge | None = None
        self.registered: Gauge | None = None
        self.available: Gauge | None = None
        self.http: Histogram | None = None
        if role != "host":
            self._operation_metrics(reg)
        if role == "backend":
            self._backend_metrics(reg, service_name)

    def _operation_metrics(self, reg: CollectorRegistry) -> None:
        self.operations = Counter(
            "ktrdr_operations", "Total operations by type and terminal status",
            ["operation_type", "status"], registry=reg)
        self.duration = Histogram(
            "ktrdr_operation_duration_seconds", "Operation duration from start to terminal",
            ["operation_type", "status"], buckets=OPERATION_BUCKETS, registry=reg)
        self.active = Gauge("ktrdr_operations_active", "Operations currently active",
                            registry=reg)

    def _backend_metrics(self, reg: CollectorRegistry, service_name: str) -> None:
        self.registered = Gauge("ktrdr_workers_registered_total",
                                "Registered workers by type", ["worker_type"], registry=reg)
        self.available = Gauge("ktrdr_workers_available", "Available workers by type",
                               ["worker_type"], registry=reg)
        self.http = Histogram("http_server_duration_milliseconds",
                              "Duration of HTTP server requests.", list(HTTP_LABELS),
                              buckets=HTTP_BUCKETS, registry=reg)
        info = Info("target", "Target metadata", registry=reg)
        info.info({"service_name": service_name or "ktrdr-api", "service_version": KTRDR_VERSION,
                   "deployment_environment": "development",
                   "telemetry_sdk_language": "python",
                   "telemetry_sdk_name": "opentelemetry",
                   "telemetry_sdk_version": "1.38.0"})

    def apply(self, event: Event) -> None:
        """Update the registry from one event of the simulated process."""
        kind = event[0]
        if kind == "created" and self.active is not None:
            self.active.inc()
        elif kind == "terminal" and self.operations is not None:
            _, operation_type, status, seconds = event
            self.operations.labels(str(operation_type), str(status)).inc()
            if self.active is not None:
                self.active.dec()
            if isinstance(seconds, int | float) and self.duration is not None:
                self.duration.labels(str(operation_type), str(status)).observe(seconds)
        elif kind == "registry" and self.registered is not None and self.available is not None:
            counts = event[1]
            assert isinstance(counts, Mapping)
            for worker_type in EXPORTED_WORKER_TYPES:
                registered, available = counts.get(worker_type, (0, 0))
                self.registered.labels(worker_type).set(registered)
                self.available.labels(worker_type).set(available)
        elif kind == "http" and self.http is not None:
            _, method, route, status, duration_ms, app_host, app_port = event
            host = f"{app_host}:{app_port}"
            self.http.labels(
                http_method=str(method), http_scheme="http", http_host=host,
                http_flavor="1.1", http_server_name=host, net_host_name=str(app_host),
                net_host_port=str(app_port), http_status_code=str(status),
                http_target=str(route),
            ).observe(float(str(duration_ms)))
