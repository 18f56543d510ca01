"""Simulated processes: one TracerProvider per KTRDR process, each with its own Resource.

The provider factory is injected, so the recorder can collect spans in memory while a live mode
exports the very same spans over OTLP.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version

from opentelemetry.sdk.resources import (
    SERVICE_NAME,
    SERVICE_VERSION,
    TELEMETRY_SDK_LANGUAGE,
    TELEMETRY_SDK_NAME,
    TELEMETRY_SDK_VERSION,
    Resource,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from ktrdr_sim.clock import NS_PER_S, Background, Clock
from ktrdr_sim.observe import NullObserver, Observer

ProviderFactory = Callable[[Resource], TracerProvider]

KTRDR_VERSION = "1.0.7.2"  # what the recorded KTRDR reports (real-spans.txt)
ENVIRONMENT = "development"


def ktrdr_resource(service_name: str) -> Resource:
    """The resource ``ktrdr/monitoring/setup.py`` builds, plus the SDK's telemetry.sdk.* keys.

    Built explicitly (not ``Resource.create``) so OTEL_* variables of the machine that records
    the corpus cannot leak into it.
    """
    return Resource(
        {
            TELEMETRY_SDK_LANGUAGE: "python",
            TELEMETRY_SDK_NAME: "opentelemetry",
            TELEMETRY_SDK_VERSION: version("opentelemetry-sdk"),
            SERVICE_NAME: service_name,
            SERVICE_VERSION: KTRDR_VERSION,
            "deployment.environment": ENVIRONMENT,
        }
    )


@dataclass(slots=True)
class Process:
    """One simulated KTRDR process (a Jaeger service) and its tracers by scope."""

    service_name: str
    provider: TracerProvider
    host: str = ""
    port: int = 0
    ip: str = "127.0.0.1"
    skew_ns: int = 0  # this host's clock error (a process on another machine)
    # FastAPI's ASGI "http.response.body" sends per response: the backend's middleware sends
    # an extra empty body (3 sends in all), the workers and the IB host service send one.
    body_sends: int = 1
    alive: bool = True  # a killed or stopped process refuses connections
    jobs: list[Background] = field(default_factory=list)  # its running background work
    _tracers: dict[tuple[str, str | None], Tracer] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def tracer(
        self, scope: str, scope_version: str | None = None, schema_url: str | None = None
    ) -> Tracer:
        """The tracer of one instrumentation scope (module name, like ``trace.get_tracer``)."""
        key = (scope, scope_version)
        if key not in self._tracers:
            self._tracers[key] = self.provider.get_tracer(scope, scope_version, schema_url)
        return self._tracers[key]


class World:
    """Everything a scenario needs: the clock, seeded randomness, and the process factory."""

    def __init__(
        self,
        clock: Clock,
        provider_factory: ProviderFactory,
        rng: random.Random,
        observer: Observer | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self._factory = provider_factory
        self.observer: Observer = observer if observer is not None else NullObserver()
        self.processes: list[Process] = []

    def spawn(
        self, service_name: str, host: str = "", port: int = 0, ip: str = "127.0.0.1",
        body_sends: int = 1,
    ) -> Process:
        """Start a process: a fresh TracerProvider with that process's resource."""
        provider = self._factory(ktrdr_resource(service_name))
        proc = Process(service_name, provider, host, port, ip, body_sends=body_sends)
        self.processes.append(proc)
        return proc

    def run_in(self, proc: Process, work: Callable[[], None]) -> Background:
        """Background work of ``proc`` (killed with it)."""
        proc.jobs = [j for j in proc.jobs if not j.done]
        job = self.clock.background(work)
        proc.jobs.append(job)
        return job

    def kill(self, proc: Process) -> None:
        """SIGKILL: the process refuses connections from now on, its work stops where it is
        and its open spans are never exported."""
        proc.alive = False
        kill = getattr(self.clock, "kill", None)
        for job in proc.jobs:
            if not job.done and kill is not None:
                kill(job)
        proc.jobs.clear()

    def hex8(self) -> str:
        """Eight random hex characters (``uuid4().hex[:8]`` / ``os.urandom(4).hex()`` in KTRDR)."""
        return f"{self.rng.getrandbits(32):08x}"

    def operation_id(self, operation_type: str) -> str:
        """``op_{type}_{YYYYMMDD_HHMMSS}_{8hex}`` from the clock, as OperationsService does."""
        stamp = datetime.fromtimestamp(self.clock.now_ns() / NS_PER_S, tz=UTC)
        return f"op_{operation_type}_{stamp:%Y%m%d_%H%M%S}_{self.hex8()}"

    def shutdown(self) -> None:
        for proc in self.processes:
            proc.provider.shutdown()
