"""The metrics side of one simulated KTRDR process, run as its own OS process.

Each agent owns a prometheus_client registry, so its ``process_*`` metrics are its own, and
serves it over HTTP like the real ``/metrics`` route. The simulation sends it events over a
queue.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from prometheus_client import start_http_server

from ktrdr_sim.live.metrics import Event, KtrdrMetrics


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """What one metrics process serves: its role (backend/worker), host name and port."""

    role: str
    host: str
    port: int
    bind: str = "0.0.0.0"


def serve(spec: AgentSpec, queue: Queue, ready: Queue) -> None:
    """Child-process body: serve the registry, apply events until ``None`` arrives."""
    metrics = KtrdrMetrics(spec.role, spec.host, spec.port)
    try:
        server, thread = start_http_server(spec.port, addr=spec.bind,
                                           registry=metrics.registry)
    except OSError as exc:
        ready.put(f"{spec.host}: cannot serve /metrics on {spec.bind}:{spec.port}: {exc}")
        return
    ready.put("")
    try:
        while (event := queue.get()) is not None:
            metrics.apply(event)
    finally:
        server.shutdown()
        thread.join()


@dataclass(slots=True)
class Agent:
    """Handle on a running agent process."""

    host: str
    port: int
    process: BaseProcess
    queue: Queue

    def send(self, event: Event) -> None:
        self.queue.put(event)

    def stop(self) -> None:
        self.queue.put(None)
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()


class AgentError(RuntimeError):
    """An agent could not start (port taken, bad address)."""


def start_agent(spec: AgentSpec, startup_timeout_s: float = 30.0) -> Agent:
    """Spawn (not fork: the parent runs exporter threads) one metrics process and wait until
    it serves, so a taken port is reported instead of silently losing the metrics."""
    ctx = multiprocessing.get_context("spawn")
    queue: Queue = ctx.Queue()
    ready: Queue = ctx.Queue()
    proc = ctx.Process(target=serve, args=(spec, queue, ready),
                       name=f"ktrdr-metrics-{spec.host}", daemon=True)
    proc.start()
    try:
        problem = ready.get(timeout=startup_timeout_s)
    except queue_module.Empty:
        problem = f"{spec.host}: metrics process did not start within {startup_timeout_s} s"
    if problem:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
        raise AgentError(problem)
    return Agent(spec.host, spec.port, proc, queue)
