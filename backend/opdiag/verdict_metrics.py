"""Prometheus metrics of the verdicts and of the watcher that records them.

Names follow Prometheus' conventions (``opdiag_`` prefix, base units, ``_total`` counters,
``_seconds``): see the README's table. They live on the app's own registry (``AppMetrics``)
and are fed by the watcher only, so every replica exports what *its* watcher recorded: sum
the counters over instances (only the leading replica's watcher records); the in-progress
gauge is read from the shared store, so take its ``max`` over instances.

Counters are created at 0 for every (operation type, verdict) before their first increment:
``increase()`` misses the first increment of a series born at 1. Known types (the settings'
budgets, the store's types) are created at start; a type first seen later is created at 0 and
its first observations wait for the next pass, so a scrape sees the zero first. The watcher
counts only operations that settle while it runs (not the backlog its first pass finds in
the source), so a restart never looks like a burst of failures.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from opdiag.diagnosis.result import VERDICTS
from opdiag.store.records import IN_PROGRESS_STATES, InProgress

# Operation run times span seconds (refused dispatches) to many hours (training).
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400)
RECORDED_VERDICTS = tuple(v for v in VERDICTS if v != "not_found")
WATCHER_STAGES = ("source", "store", "internal")


class _InProgressCollector(Collector):
    """The last snapshot of unsettled operations, zeros for every type ever seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._types: set[str] = set()

    def seed(self, types: Iterable[str]) -> None:
        with self._lock:
            self._types.update(types)

    def update(self, snapshot: Iterable[InProgress]) -> None:
        counts = {(s.operation_type, s.state): s.count for s in snapshot}
        with self._lock:
            self._counts = counts
            self._types.update(t for t, _ in counts)

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "opdiag_operations_in_progress",
            "Operations not finished yet, by type and state (running, stuck, lost), as the "
            "verdict store holds them after the last watcher pass",
            labels=["operation_type", "state"],
        )
        with self._lock:
            for op_type in sorted(self._types):
                for state in IN_PROGRESS_STATES:
                    count = self._counts.get((op_type, state), 0)
                    family.add_metric([op_type, state], float(count))
        return [family]


class VerdictMetrics:
    """The verdict and watcher metrics of one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.finished = Counter(
            "opdiag_operations_finished",
            "Operations that reached their final verdict (finished, or refused at dispatch), "
            "by type and verdict, as this replica's watcher recorded them",
            ["operation_type", "verdict"],
            registry=registry,
        )
        self.duration = Histogram(
            "opdiag_operation_duration_seconds",
            "Run time of operations that reached their final verdict, by type and verdict",
            ["operation_type", "verdict"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "opdiag_watcher_last_success_timestamp_seconds",
            "When the watcher last finished a pass without error (Unix time)",
            registry=registry,
        )
        self.errors = Counter(
            "opdiag_watcher_errors",
            "Watcher passes that failed, by stage (source: Jaeger; store; internal)",
            ["stage"],
            registry=registry,
        )
        self.pass_duration = Histogram(
            "opdiag_watcher_pass_duration_seconds",
            "Time of successful watcher passes",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.leader = Gauge(
            "opdiag_watcher_leader",
            "1 while this replica's watcher records verdicts, 0 while another one does",
            registry=registry,
        )
        self.in_progress = _InProgressCollector()
        registry.register(self.in_progress)
        for stage in WATCHER_STAGES:
            self.errors.labels(stage=stage)
        self._lock = threading.Lock()
        self._types: set[str] = set()
        self._fresh: set[str] = set()
        self._waiting: list[tuple[str, str, float]] = []

    def seed(self, operation_types: Iterable[str]) -> list[str]:
        """Create every series of these types at 0 (see the module docstring); returns the
        types that were new."""
        with self._lock:
            new = sorted({t for t in operation_types if t and t not in self._types})
            self._types.update(new)
        for op_type in new:
            for verdict in RECORDED_VERDICTS:
                self.finished.labels(operation_type=op_type, verdict=verdict)
                self.duration.labels(operation_type=op_type, verdict=verdict)
        self.in_progress.seed(new)
        return new

    def settled(self, operation_type: str, verdict: str, duration_s: float) -> None:
        """One operation reached its final verdict. The observations of a type seen for the
        first time wait for ``flush()`` (the next pass): its zeros are exported first."""
        with self._lock:
            fresh = operation_type in self._fresh or operation_type not in self._types
            if fresh:
                self._waiting.append((operation_type, verdict, duration_s))
        if not fresh:
            self._count(operation_type, verdict, duration_s)
            return
        if self.seed([operation_type]):
            with self._lock:
                self._fresh.add(operation_type)

    def flush(self) -> None:
        """Count the observations that waited for their series' zeros to be exported."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
            self._fresh.clear()
        for op_type, verdict, duration_s in waiting:
            self._count(op_type, verdict, duration_s)

    def _count(self, operation_type: str, verdict: str, duration_s: float) -> None:
        self.finished.labels(operation_type=operation_type, verdict=verdict).inc()
        self.duration.labels(operation_type=operation_type, verdict=verdict).observe(
            max(0.0, duration_s)
        )
