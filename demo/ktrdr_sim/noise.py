"""Traffic KTRDR traces although no operation runs (``ktrdr.md`` §9 "Noise").

Nothing excludes these URLs from the FastAPI instrumentation:
- the backend's health loop: a root httpx ``GET`` to every worker's ``/health``, whose handler
  lists operations;
- Prometheus scrapes of ``/metrics``;
- docker healthchecks of ``/api/v1/health``.

None of these traces carries an ``operation.id``, and none is a failed dispatch: opdiag must
not list them as operations.
"""

from __future__ import annotations

from opentelemetry.context import Context

from ktrdr_sim import instrument as ins
from ktrdr_sim.http import Target, request, serve
from ktrdr_sim.ktrdr import Ktrdr
from ktrdr_sim.runtime import Process

PROMETHEUS_IP = "172.18.0.5"
PROMETHEUS_UA = "Prometheus/2.53.0"
HEALTHCHECK_UA = "curl/7.88.1"


def health_loop(k: Ktrdr) -> None:
    """One round of ``WorkerRegistry``'s health checks: a root client span per worker."""
    clock = k.world.clock
    for worker in list(k.registry):
        wproc = worker.process
        if wproc is None:
            continue

        def handler(ctx: Context, wproc: Process = wproc) -> int:
            with ins.span(k.world, wproc, "operations.list", ctx,
                          attributes=ins.service_attributes("operations.list")) as (sp, _):
                clock.sleep(0.0009)
                ins.mark_ok(sp)
            return 200

        request(k.world, k.api, None, "GET",
                Target(wproc, wproc.base_url, "/health", "/health"), handler=handler)
        clock.sleep(0.0031)


def prometheus_scrape(k: Ktrdr) -> None:
    """Prometheus scrapes the backend and every worker: root server spans."""
    targets: list[tuple[Process, str]] = [(k.api, "/metrics/")]
    targets += [(w.process, "/metrics") for w in k.registry if w.process is not None]
    for proc, path in targets:
        serve(k.world, proc, {"user-agent": PROMETHEUS_UA}, "GET",
              Target(proc, proc.base_url, "/metrics", path),
              handler=lambda _ctx: _work(k, 0.0042), body=False, peer_ip=PROMETHEUS_IP)
        k.world.clock.sleep(0.0007)


def docker_healthcheck(k: Ktrdr) -> None:
    """Docker's healthcheck of the backend."""
    serve(k.world, k.api, {"user-agent": HEALTHCHECK_UA}, "GET",
          Target(k.api, "http://localhost:8000", "/api/v1/health", "/api/v1/health"),
          handler=lambda _ctx: _work(k, 0.0011), body=False, peer_ip="127.0.0.1")


def background_round(k: Ktrdr) -> None:
    """One round of all background traffic."""
    health_loop(k)
    k.world.clock.sleep(1.7)
    prometheus_scrape(k)
    k.world.clock.sleep(2.3)
    docker_healthcheck(k)


def _work(k: Ktrdr, seconds: float) -> int:
    k.world.clock.sleep(seconds)
    return 200
