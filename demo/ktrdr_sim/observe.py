"""Hooks for what KTRDR measures besides spans (its Prometheus metrics).

The recorder uses :class:`NullObserver`. The live mode plugs in an observer that feeds
per-process prometheus_client registries. The scenario code stays the same in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ktrdr_sim.runtime import Process


class Observer(Protocol):
    """Called by the simulated services at the moments KTRDR updates its metrics."""

    def http_server(self, server: Process, method: str, route: str, status: int,
                    duration_ms: float) -> None: ...

    def operation_created(self, proc: Process, operation_id: str, operation_type: str) -> None:
        ...

    def transition(self, proc: Process, operation_id: str, operation_type: str,
                   to_status: str, at_ns: int) -> None: ...

    def registry(self, backend: Process, workers: Sequence[Any]) -> None: ...


class NullObserver:
    """Observes nothing (recording traces only)."""

    def http_server(self, server: Process, method: str, route: str, status: int,
                    duration_ms: float) -> None:
        return None

    def operation_created(self, proc: Process, operation_id: str, operation_type: str) -> None:
        return None

    def transition(self, proc: Process, operation_id: str, operation_type: str,
                   to_status: str, at_ns: int) -> None:
        return None

    def registry(self, backend: Process, workers: Sequence[Any]) -> None:
        return None
