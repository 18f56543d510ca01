"""Turns the simulation's observer calls into metric events for the right process.

KTRDR counts a dispatched operation on the worker that ran it and a backend-local one
(data_load) on the backend. Only the backend has HTTP metrics and the worker-registry gauges.
Processes nobody scrapes (CLI, IB host service) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ktrdr_sim.clock import NS_PER_S
from ktrdr_sim.live.metrics import EXPORTED_WORKER_TYPES, Event
from ktrdr_sim.runtime import Process

TERMINAL = frozenset({"completed", "failed", "cancelled"})

Sink = Callable[[Event], None]


class LiveObserver:
    """Routes events to per-host sinks (an agent's queue, or a list in tests)."""

    def __init__(self, sinks: Mapping[str, Sink], backend_host: str = "backend") -> None:
        self._sinks = dict(sinks)
        self._backend = backend_host
        self._started: dict[str, int] = {}

    def _send(self, host: str, event: Event) -> None:
        sink = self._sinks.get(host)
        if sink is not None:
            sink(event)

    def http_server(self, server: Process, method: str, route: str, status: int,
                    duration_ms: float) -> None:
        if server.host == self._backend:  # workers have no MeterProvider
            self._send(server.host, ("http", method, route, status, duration_ms,
                                     server.host, server.port))

    def operation_created(self, proc: Process, operation_id: str, operation_type: str) -> None:
        self._send(proc.host, ("created", operation_type))

    def transition(self, proc: Process, operation_id: str, operation_type: str,
                   to_status: str, at_ns: int) -> None:
        if to_status == "running":
            self._started[operation_id] = at_ns
        elif to_status in TERMINAL:
            started = self._started.pop(operation_id, None)
            seconds = None if started is None else (at_ns - started) / NS_PER_S
            self._send(proc.host, ("terminal", operation_type, to_status, seconds))

    def registry(self, backend: Process, workers: Sequence[Any]) -> None:
        counts: dict[str, tuple[int, int]] = {}
        for worker_type in EXPORTED_WORKER_TYPES:
            of_type = [w for w in workers if w.worker_type == worker_type]
            counts[worker_type] = (len(of_type),
                                   sum(1 for w in of_type if w.status == "available"))
        self._send(backend.host, ("registry", counts))
