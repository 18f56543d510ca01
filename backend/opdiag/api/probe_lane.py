"""A lane of its own for the liveness probe, beside waitress' worker pool.

Every request that needs the trace source may wait on Jaeger (up to ``jaeger.deadline_s``);
enough of them occupy every waitress worker, and a probe queued behind them looks like a dead
process to an orchestrator that then restarts a healthy one. ``/healthz`` needs no worker of
the pool: its requests are served by one thread of their own.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from waitress.task import ThreadedTaskDispatcher

PROBE_PATHS = frozenset({"/healthz"})


class ProbeLaneDispatcher(ThreadedTaskDispatcher):
    """waitress' dispatcher, but probe requests go to one dedicated thread."""

    def __init__(self, paths: frozenset[str] = PROBE_PATHS) -> None:
        super().__init__()
        self._paths = paths
        self._probes: deque[Any] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._lane = threading.Thread(target=self._serve_probes, name="opdiag-probe", daemon=True)
        self._lane.start()

    def add_task(self, task: Any) -> None:
        if _path_of(task) in self._paths:
            with self._wake:
                self._probes.append(task)
                self._wake.notify()
            return
        super().add_task(task)

    def _serve_probes(self) -> None:
        while True:
            with self._wake:
                while not self._probes and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                task = self._probes.popleft()
            try:
                task.service()
            except BaseException:
                self.logger.exception("Exception when servicing %r", task)

    def shutdown(self, cancel_pending: bool = True, timeout: int = 5) -> bool:
        with self._wake:
            self._stopping = True
            if cancel_pending:
                for task in self._probes:
                    task.cancel()
                self._probes.clear()
            self._wake.notify()
        return bool(super().shutdown(cancel_pending, timeout))


def _path_of(task: Any) -> str | None:
    """The path of the channel's first pending request (waitress' parser decodes it)."""
    requests = getattr(task, "requests", None)
    if not requests:
        return None
    path = getattr(requests[0], "path", None)
    return path if isinstance(path, str) else None
