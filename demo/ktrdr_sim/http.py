"""HTTP between simulated processes, instrumented as httpx and FastAPI 0.59b0 instrument it.

The client span is named by the method only (``POST``), the server span by method and route
template (``POST /api/v1/backtests/start``) with ``… http receive``/``… http send`` children.
W3C trace context crosses the "wire" through a headers dict with the real propagator, so a
broken propagation (``propagate=False``) starts a new trace exactly as in KTRDR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ktrdr_sim.errors import ConnectError
from ktrdr_sim.instrument import span, traceback_text
from ktrdr_sim.runtime import Process, World

INSTRUMENTATION_VERSION = "0.59b0"
HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"
FASTAPI_SCOPE = "opentelemetry.instrumentation.fastapi"
HTTP_SCHEMA = "https://opentelemetry.io/schemas/1.11.0"
USER_AGENT = "python-httpx/0.28.1"

_PROPAGATOR = TraceContextTextMapPropagator()

# The handler runs inside the server span; it returns the HTTP status it answers with.
Handler = Callable[[Context], int]


@dataclass(slots=True)
class Target:
    """Where a request goes: the server process (None = nothing listens) and its route."""

    server: Process | None
    base_url: str
    route: str
    path: str


CONNECT_STACK = traceback_text(
    [
        ("/app/.venv/lib/python3.11/site-packages/httpx/_transports/default.py", 101,
         "map_httpcore_exceptions", "yield"),
        ("/app/.venv/lib/python3.11/site-packages/httpx/_transports/default.py", 394,
         "handle_async_request", "resp = await self._pool.handle_async_request(req)"),
    ],
    "httpx.ConnectError",
    "All connection attempts failed",
)


def request(
    world: World,
    client: Process,
    parent: Context | None,
    method: str,
    target: Target,
    *,
    handler: Handler | None,
    propagate: bool = True,
    body: bool | None = None,
    connect_timeout_s: float = 0.004,
) -> int | None:
    """One httpx call from ``client`` to ``target``; returns the status, or None if refused."""
    clock = world.clock
    url = target.base_url + target.path
    with span(
        world, client, method, parent, scope=HTTPX_SCOPE, scope_version=INSTRUMENTATION_VERSION,
        schema_url=HTTP_SCHEMA, kind=SpanKind.CLIENT,
        attributes={"http.method": method, "http.url": url},
    ) as (client_span, client_ctx):
        clock.sleep(0.0008)
        if target.server is None or handler is None:
            clock.sleep(connect_timeout_s)
            exc = ConnectError("All connection attempts failed")
            # use_span records the escaping exception (escaped=False) and sets the status.
            client_span.record_exception(
                exc, attributes={"exception.stacktrace": CONNECT_STACK}, timestamp=clock.now_ns()
            )
            client_span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            return None
        headers: dict[str, str] = {"user-agent": USER_AGENT}
        if propagate:
            _PROPAGATOR.inject(headers, context=client_ctx)
        status = serve(world, target.server, headers, method, target, handler=handler,
                       body=body, peer_ip=client.ip)
        clock.sleep(0.0006)
        client_span.set_attribute("http.status_code", status)
        if status >= 400:
            client_span.set_status(Status(StatusCode.ERROR))
        return status


def serve(
    world: World,
    server: Process,
    headers: dict[str, str],
    method: str,
    target: Target,
    *,
    handler: Handler,
    body: bool | None,
    peer_ip: str,
) -> int:
    """The FastAPI side: extract the context, run the handler inside the server span."""
    clock = world.clock
    name = f"{method} {target.route}"
    host = f"{server.host}:{server.port}"
    parent = _PROPAGATOR.extract(headers) if "traceparent" in headers else None
    attrs = {
        "http.scheme": "http",
        "http.host": host,
        "net.host.port": server.port,
        "http.flavor": "1.1",
        "http.target": target.path.split("?", 1)[0],
        "http.url": target.base_url + target.path,
        "http.method": method,
        "http.server_name": host,
        "http.user_agent": headers.get("user-agent", USER_AGENT),
        "net.peer.ip": peer_ip,
        "net.peer.port": 32768 + world.rng.randrange(28000),
        "http.route": target.route,
    }
    with span(
        world, server, name, parent, scope=FASTAPI_SCOPE, scope_version=INSTRUMENTATION_VERSION,
        schema_url=HTTP_SCHEMA, kind=SpanKind.SERVER, attributes=attrs,
    ) as (server_span, server_ctx):
        if body if body is not None else method in ("POST", "PUT", "PATCH"):
            _asgi_event(world, server, f"{name} http receive", server_ctx,
                        {"asgi.event.type": "http.request"})
        clock.sleep(0.0004)
        status = handler(server_ctx)
        _asgi_event(world, server, f"{name} http send", server_ctx,
                    {"asgi.event.type": "http.response.start", "http.status_code": status})
        _asgi_event(world, server, f"{name} http send", server_ctx,
                    {"asgi.event.type": "http.response.body"})
        server_span.set_attribute("http.status_code", status)
        if status >= 500:
            server_span.set_status(Status(StatusCode.ERROR))
        started = server_span.start_time or 0
        duration_ms = (clock.now_ns() + server.skew_ns - started) / 1e6
        world.observer.http_server(server, method, target.route, status, duration_ms)
        return status


def _asgi_event(world: World, server: Process, name: str, parent: Context,
                attributes: dict[str, str | int]) -> None:
    with span(world, server, name, parent, scope=FASTAPI_SCOPE,
              scope_version=INSTRUMENTATION_VERSION, schema_url=HTTP_SCHEMA,
              attributes=attributes):
        world.clock.sleep(0.00005)
