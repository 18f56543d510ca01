"""HTTP between simulated processes, instrumented as httpx and FastAPI 0.59b0 instrument it.

As recorded from the real KTRDR (``run1/real-spans.txt``):
- the client span is named by the method only (``POST``) with ``http.method``/``http.url``, and
  ``http.status_code`` when an answer came; ERROR for a status >= 400 (no message), or on an
  exception (an ``exception`` event, status ``"<Type>: <message>"``, no status code);
- the server span is ``"{method} {route template}"`` with the old semantic conventions, a
  ``… http receive`` child when the request has a body, then ``… http send`` children:
  ``http.response.start`` (with ``http.status_code``; ERROR when >= 500) and one
  ``http.response.body`` per body send (two on the backend, one elsewhere). The server span is
  ERROR only for a status >= 500.

W3C trace context crosses the "wire" through a headers dict with the real propagator, so a
broken propagation (``propagate=False``) starts a new trace exactly as in KTRDR. A request to a
process that is not running is refused (``httpx.ConnectError``); one whose server takes longer
than the client's read timeout ends in ``httpx.ReadTimeout`` while the server goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ktrdr_sim.errors import ConnectError, ReadTimeout
from ktrdr_sim.instrument import span, traceback_text
from ktrdr_sim.runtime import Process, World

INSTRUMENTATION_VERSION = "0.59b0"
HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"
FASTAPI_SCOPE = "opentelemetry.instrumentation.fastapi"
HTTP_SCHEMA = "https://opentelemetry.io/schemas/1.11.0"
USER_AGENT = "python-httpx/0.28.1"

# ``request`` answers the HTTP status, or one of these when no answer came.
REFUSED: int | None = None
TIMED_OUT = 0

_PROPAGATOR = TraceContextTextMapPropagator()

# The handler runs inside the server span; it returns the HTTP status it answers with.
Handler = Callable[[Context], int]

_HTTPX_FRAMES = [
    ("/usr/local/lib/python3.11/contextlib.py", 158, "__exit__",
     "self.gen.throw(typ, value, traceback)"),
    ("/app/.venv/lib/python3.11/site-packages/httpx/_transports/default.py", 118,
     "map_httpcore_exceptions", "raise mapped_exc(message) from exc"),
]
CONNECT_STACK = traceback_text(_HTTPX_FRAMES, "httpx.ConnectError",
                               "All connection attempts failed")
TIMEOUT_STACK = traceback_text(_HTTPX_FRAMES, "httpx.ReadTimeout", "")


@dataclass(slots=True)
class Target:
    """Where a request goes: the server process (None = nothing listens) and its route."""

    server: Process | None
    base_url: str
    route: str
    path: str


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
    read_timeout_s: float | None = None,
) -> int | None:
    """One httpx call from ``client`` to ``target``: the HTTP status, ``REFUSED`` (None) or
    ``TIMED_OUT`` (0)."""
    clock = world.clock
    url = target.base_url + target.path
    with span(
        world, client, method, parent, scope=HTTPX_SCOPE, scope_version=INSTRUMENTATION_VERSION,
        schema_url=HTTP_SCHEMA, kind=SpanKind.CLIENT,
        attributes={"http.method": method, "http.url": url},
    ) as (client_span, client_ctx):
        clock.sleep(0.0008 + 0.004 * world.rng.random())
        server = target.server
        if server is None or handler is None or not server.alive:
            clock.sleep(0.0015 + 0.004 * world.rng.random())
            _failed(client_span, ConnectError("All connection attempts failed"), CONNECT_STACK,
                    clock.now_ns() + client.skew_ns)
            return REFUSED
        headers: dict[str, str] = {"user-agent": USER_AGENT}
        if propagate:
            _PROPAGATOR.inject(headers, context=client_ctx)
        answer: list[int] = []

        def call() -> None:
            answer.append(serve(world, server, headers, method, target, handler=handler,
                                body=body, peer_ip=client.ip))

        if read_timeout_s is None:
            call()
        elif not clock.join(world.run_in(server, call), read_timeout_s):
            _failed(client_span, ReadTimeout(""), TIMEOUT_STACK, clock.now_ns() + client.skew_ns)
            return TIMED_OUT
        status = answer[0]
        clock.sleep(0.0006)
        client_span.set_attribute("http.status_code", status)
        if status >= 400:
            client_span.set_status(Status(StatusCode.ERROR))
        return status


def _failed(sp: Span, exc: Exception, stacktrace: str, at_ns: int) -> None:
    """What httpx's instrumentation records for an exception: an event and ERROR."""
    sp.record_exception(exc, attributes={"exception.stacktrace": stacktrace}, timestamp=at_ns)
    sp.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


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
            asgi_event(world, server, f"{name} http receive", server_ctx,
                       {"asgi.event.type": "http.request"})
        clock.sleep(0.0004)
        status = handler(server_ctx)
        send_response(world, server, name, server_ctx, status)
        server_span.set_attribute("http.status_code", status)
        if status >= 500:
            server_span.set_status(Status(StatusCode.ERROR))
        started = server_span.start_time or 0
        duration_ms = (clock.now_ns() + server.skew_ns - started) / 1e6
        world.observer.http_server(server, method, target.route, status, duration_ms)
        return status


def send_response(world: World, server: Process, name: str, ctx: Context, status: int) -> None:
    """The ASGI ``http send`` spans of one response (the first is ERROR for a 5xx)."""
    asgi_event(world, server, f"{name} http send", ctx,
               {"asgi.event.type": "http.response.start", "http.status_code": status},
               error=status >= 500)
    for _ in range(server.body_sends):
        asgi_event(world, server, f"{name} http send", ctx,
                   {"asgi.event.type": "http.response.body"})


def asgi_event(world: World, server: Process, name: str, parent: Context,
               attributes: dict[str, str | int], *, error: bool = False) -> None:
    """One ASGI receive/send span (INTERNAL; UNSET, or ERROR for a 5xx response start)."""
    with span(world, server, name, parent, scope=FASTAPI_SCOPE,
              scope_version=INSTRUMENTATION_VERSION, schema_url=HTTP_SCHEMA,
              attributes=attributes) as (sp, _):
        world.clock.sleep(0.00005)
        if error:
            sp.set_status(Status(StatusCode.ERROR))
