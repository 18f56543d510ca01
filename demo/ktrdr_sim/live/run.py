"""``python -m ktrdr_sim.live``: run the demo scenarios forever against a real Jaeger.

Spans go over OTLP/HTTP (``--otlp-endpoint``, default ``$OTEL_EXPORTER_OTLP_ENDPOINT`` or
``http://localhost:4318``). The backend and each worker serve ``/metrics`` from their own
process on KTRDR's ports (backend 8000, backtest workers 5003/5004, training workers
5005/5006), so the Prometheus scrape configs and dashboards of KTRDR apply unchanged.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ktrdr_sim.clock import RealClock
from ktrdr_sim.ktrdr import Ktrdr
from ktrdr_sim.live.agent import Agent, AgentError, AgentSpec, start_agent
from ktrdr_sim.live.observer import LiveObserver
from ktrdr_sim.runtime import ProviderFactory, World
from ktrdr_sim.scenarios import SCENARIOS, Scenario

DEFAULT_PORTS = {
    "backend": 8000,
    "backtest-worker-1": 5003,
    "backtest-worker-2": 5004,
    "training-worker-1": 5005,
    "training-worker-2": 5006,
}


def otlp_provider_factory(endpoint: str) -> ProviderFactory:
    """Every simulated process exports its own resource's spans to the collector."""
    url = endpoint.rstrip("/") + "/v1/traces"

    def make(resource: Resource) -> TracerProvider:
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        return provider

    return make


def _ports(pairs: Sequence[str]) -> dict[str, int]:
    ports = dict(DEFAULT_PORTS)
    for pair in pairs:
        host, _, port = pair.partition("=")
        if not port.isdigit():
            raise SystemExit(f"--port expects HOST=PORT, got {pair!r}")
        ports[host] = int(port)
    return ports


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ktrdr_sim.live", description=__doc__)
    p.add_argument("--otlp-endpoint",
                   default=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"))
    p.add_argument("--bind", default="0.0.0.0", help="address the /metrics servers bind to")
    p.add_argument("--port", action="append", default=[], metavar="HOST=PORT",
                   help="metrics port of a simulated host (backend, backtest-worker-1, …)")
    p.add_argument("--no-metrics", action="store_true", help="traces only")
    p.add_argument("--speedup", type=float, default=1.0, help="run N times faster than real")
    p.add_argument("--gap-s", type=float, default=30.0, help="pause between scenarios")
    p.add_argument("--scenario", action="append", default=[], help="run only these")
    p.add_argument("--once", action="store_true", help="one pass instead of forever")
    p.add_argument("--seed", type=int, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen: list[Scenario] = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if not chosen:
        raise SystemExit(f"no scenario named {args.scenario}")
    agents: list[Agent] = []
    if not args.no_metrics:
        try:
            for host, port in _ports(args.port).items():
                role = "backend" if host == "backend" else "worker"
                agents.append(start_agent(AgentSpec(role, host, port, args.bind)))
        except AgentError as exc:
            for agent in agents:
                agent.stop()
            print(f"ktrdr_sim.live: {exc}", file=sys.stderr)
            return 2
    observer = LiveObserver({a.host: a.send for a in agents})
    clock = RealClock(args.speedup)
    world = World(clock, otlp_provider_factory(args.otlp_endpoint),
                  random.Random(args.seed), observer)
    k = Ktrdr(world)
    for kind in ("backtesting", "backtesting", "training", "training"):
        k.start_worker(kind)
    observer.registry(k.api, k.registry)
    try:
        while True:
            for scenario in chosen:
                print(f"ktrdr_sim.live: {scenario.name} (expect {scenario.verdict})", flush=True)
                scenario.run(k)
                observer.registry(k.api, k.registry)
                clock.sleep(args.gap_s)
            if args.once:
                break
    except KeyboardInterrupt:
        pass
    finally:
        world.shutdown()
        for agent in agents:
            agent.stop()
    return 0
