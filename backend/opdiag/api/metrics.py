"""opdiag's own Prometheus metrics, on one registry per app (never the global one, so two
apps in one process — tests, benchmarks — do not collide or share counts)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from opdiag.verdict_metrics import VerdictMetrics

EXTENSION = "opdiag.metrics"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CacheCollector(Collector):
    """Reads the service's cache counters at scrape time (the service owns the numbers)."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> list[CounterMetricFamily]:
        family = CounterMetricFamily(
            "opdiag_cache_lookups", "Diagnosis cache lookups by result", labels=["result"]
        )
        try:
            stats = self._stats()
        except Exception:
            stats = {}
        for result in ("hit", "miss"):
            family.add_metric([result], float(stats.get(result, 0)))
        return [family]


class _JaegerCacheCollector(Collector):
    """Reads the Jaeger source's service-list and search caches at scrape time: ``hit``
    (a stored answer reused), ``joined`` (waited for an identical call in flight), ``miss``
    (asked Jaeger). Nothing is exported for sources without such caches (files)."""

    def __init__(self, stats: Callable[[], dict[str, dict[str, int]]]) -> None:
        self._stats = stats

    def collect(self) -> list[CounterMetricFamily]:
        family = CounterMetricFamily(
            "opdiag_jaeger_cache_lookups",
            "Jaeger answer cache lookups by cache and result",
            labels=["cache", "result"],
        )
        try:
            stats = self._stats()
        except Exception:
            stats = {}
        for cache, counts in sorted(stats.items()):
            for result, key in (("hit", "hits"), ("joined", "joined"), ("miss", "misses")):
                family.add_metric([cache, result], float(counts.get(key, 0)))
        return [family]


class AppMetrics:
    """The metric objects of one app plus the hooks that feed them."""

    def __init__(
        self,
        cache_stats: Callable[[], dict[str, int]],
        source_cache_stats: Callable[[], dict[str, dict[str, int]]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "opdiag_http_requests",
            "HTTP requests served, by route and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "opdiag_http_request_duration_seconds",
            "HTTP request latency, by route",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.jaeger_latency = Histogram(
            "opdiag_jaeger_request_duration_seconds",
            "Latency of calls to Jaeger, by endpoint and outcome",
            ["endpoint", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.verdicts: VerdictMetrics | None = None
        self.registry.register(_CacheCollector(cache_stats))
        if source_cache_stats is not None:
            self.registry.register(_JaegerCacheCollector(source_cache_stats))

    def enable_verdicts(self) -> VerdictMetrics:
        """The verdict and watcher metrics, on this registry (apps with a store only)."""
        if self.verdicts is None:
            self.verdicts = VerdictMetrics(self.registry)
        return self.verdicts

    def observe_jaeger(self, endpoint: str, seconds: float, outcome: str) -> None:
        """The JaegerSource observer: called once per HTTP call to Jaeger."""
        self.jaeger_latency.labels(endpoint=endpoint, outcome=outcome).observe(seconds)

    def init_app(self, app: Flask) -> None:
        """Time every request; label by the URL rule (bounded), never by the raw path."""
        app.extensions[EXTENSION] = self

        @app.before_request
        def _start_timer() -> None:
            g.opdiag_started = time.perf_counter()

        @app.after_request
        def _record(response: Response) -> Response:
            started = g.get("opdiag_started")
            if started is not None:
                rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
                elapsed = time.perf_counter() - started
                self.latency.labels(route=rule, method=request.method).observe(elapsed)
                self.requests.labels(
                    route=rule, method=request.method, status=str(response.status_code)
                ).inc()
            return response


def cache_stats_of(service: Any) -> dict[str, int]:
    """Hits and misses from ``DiagnosisService.cache_stats()``."""
    stats = service.cache_stats()
    return {"hit": int(stats.get("hits", 0)), "miss": int(stats.get("misses", 0))}


def source_cache_stats_of(source: Any) -> dict[str, dict[str, int]]:
    """``JaegerSource.cache_stats()``; empty for sources without caches."""
    stats = getattr(source, "cache_stats", None)
    return stats() if callable(stats) else {}
