"""One live process: its clock, its TracerProvider (OTLP/HTTP or nothing) and its registry.

The world/process objects are the recorder's (``ktrdr_sim.runtime``), so spans carry exactly
the corpus' resource and scopes; only the clock (wall) and the exporter differ.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ktrdr_sim.clock import RealClock
from ktrdr_sim.live.config import LiveConfig
from ktrdr_sim.live.metrics import KtrdrMetrics
from ktrdr_sim.runtime import Process, ProviderFactory, World

EXPORT_DELAY_S = 1.0  # the BatchSpanProcessor's schedule delay: what a SIGKILL can lose


def provider_factory(cfg: LiveConfig) -> ProviderFactory:
    """OTLP/HTTP to ``<endpoint>/v1/traces``, or a provider that exports nothing (``none``)."""
    url = cfg.otlp_endpoint.rstrip("/") + "/v1/traces"

    def make(resource: Resource) -> TracerProvider:
        provider = TracerProvider(resource=resource)
        if cfg.exports:
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=url, timeout=5),
                                   schedule_delay_millis=round(EXPORT_DELAY_S * 1000)))
        return provider

    return make


@dataclass(slots=True)
class Node:
    """The simulated KTRDR process this OS process is."""

    cfg: LiveConfig
    world: World
    clock: RealClock
    service_name: str
    metrics: KtrdrMetrics
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def proc(self) -> Process:
        return self.world.processes[0]

    def sleep(self, ktrdr_s: float) -> bool:
        """Sleep a KTRDR duration; False when the process is stopping."""
        return not self.stopping.wait(self.cfg.real_s(ktrdr_s))

    def shutdown(self) -> None:
        self.stopping.set()
        self.world.shutdown()


def make_node(cfg: LiveConfig, service_name: str, metrics_role: str,
              body_sends: int = 1) -> Node:
    """Spawn the single simulated process of this OS process."""
    clock = RealClock(cfg.speedup)
    world = World(clock, provider_factory(cfg), random.Random(cfg.seed))
    host = cfg.public_url.split("://", 1)[-1].rsplit(":", 1)[0] or "127.0.0.1"
    world.spawn(service_name, host=host, port=cfg.port, body_sends=body_sends)
    metrics = KtrdrMetrics(metrics_role, host, cfg.port, service_name)
    return Node(cfg, world, clock, service_name, metrics)
