"""A small threaded HTTP server whose routes are traced as OTel's FastAPI instrumentation does.

Server span ``"{METHOD} {route template}"`` (scope ``opentelemetry.instrumentation.fastapi``)
with the old-semconv attributes, ``… http receive`` (when the request has a body) and ``… http
send`` children (the response start with its status code, then one body send, two on the
backend), status ERROR only for ≥ 500, parent extracted from the request's ``traceparent`` by
the real propagator. Routes registered with ``traced=False`` are the simulator's own controls
and leave no trace.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ktrdr_sim import http as simhttp
from ktrdr_sim.instrument import span
from ktrdr_sim.live.node import Node

_PROPAGATOR = TraceContextTextMapPropagator()
_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(slots=True)
class Request:
    """What a handler sees: path parameters, query, JSON body and the server span's context."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    ctx: Context


@dataclass(slots=True)
class Response:
    status: int = 200
    body: Any = None
    content_type: str = "application/json"
    after: Callable[[], None] | None = None  # runs once the response is sent


Handler = Callable[[Request], Response]


@dataclass(slots=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    traced: bool


@dataclass
class App:
    """Routes of one process; ``serve`` binds them, ``outage`` closes the socket for a while."""

    node: Node
    http_metrics: bool = False
    routes: list[Route] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, method: str, template: str, *, traced: bool = True
              ) -> Callable[[Handler], Handler]:
        regex = "^" + _PARAM.sub(r"(?P<\1>[^/]+)", re.escape(template).replace(r"\{", "{")
                                 .replace(r"\}", "}")) + "$"

        def add(handler: Handler) -> Handler:
            self.routes.append(Route(method, template, re.compile(regex), handler, traced))
            return handler

        return add

    def add_metrics_routes(self) -> None:
        """``/metrics`` (workers) and ``/metrics/`` (the backend's mounted app), both traced."""
        for path in ("/metrics", "/metrics/"):
            self.route("GET", path)(lambda _req: Response(
                200, generate_latest(self.node.metrics.registry), CONTENT_TYPE_LATEST))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for r in self.routes:
            if r.method == method and (m := r.pattern.match(path)):
                return r, m.groupdict()
        return None

    # --------------------------------------------------------------------------- serving

    def serve(self) -> ThreadingHTTPServer:
        """Bind and serve in a daemon thread (OSError when the port is taken)."""
        app = self

        class _Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                app.handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = _any

            def log_message(self, format: str, *args: object) -> None:
                return None

        cfg = self.node.cfg
        server = ThreadingHTTPServer((cfg.bind, cfg.port), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name=f"http-{cfg.port}",
                         daemon=True).start()
        with self._lock:
            self.server = server
        return server

    def stop(self) -> None:
        with self._lock:
            server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def outage(self, real_seconds: float) -> None:
        """Stop listening (connections are refused) for a while, then listen again."""
        def run() -> None:
            self.stop()
            if not self.node.stopping.wait(real_seconds):
                self.serve()

        threading.Thread(target=run, name="outage", daemon=True).start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        found = self.match(h.command, url.path)
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        if found is None:
            _send(h, Response(404, {"detail": "Not Found"}))
            return
        route, params = found
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            _send(h, Response(422, {"detail": "invalid JSON"}))
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        req = Request(h.command, url.path, params, query, body, Context())
        if not route.traced:
            resp = route.handler(req)
            _send(h, resp)
        else:
            resp = self._traced(h, route, req, bool(raw), url.path)
        if resp.after is not None:
            resp.after()

    def _traced(self, h: BaseHTTPRequestHandler, route: Route, req: Request, has_body: bool,
                path: str) -> Response:
        node = self.node
        proc = node.proc
        headers = {k.lower(): v for k, v in h.headers.items()}
        parent = _PROPAGATOR.extract(headers) if "traceparent" in headers else None
        host = headers.get("host", f"{proc.host}:{proc.port}")
        name = f"{req.method} {route.template}"
        attrs = {
            "http.scheme": "http", "http.host": host, "net.host.port": proc.port,
            "http.flavor": "1.1", "http.target": path, "http.url": f"http://{host}{h.path}",
            "http.method": req.method, "http.server_name": host,
            "http.user_agent": headers.get("user-agent", ""),
            "net.peer.ip": h.client_address[0], "net.peer.port": h.client_address[1],
            "http.route": route.template,
        }
        scope = {"scope": simhttp.FASTAPI_SCOPE, "scope_version": simhttp.INSTRUMENTATION_VERSION,
                 "schema_url": simhttp.HTTP_SCHEMA}
        with span(node.world, proc, name, parent, kind=SpanKind.SERVER, attributes=attrs,
                  **scope) as (server_span, ctx):
            if has_body:
                with span(node.world, proc, f"{name} http receive", ctx,
                          attributes={"asgi.event.type": "http.request"}, **scope):
                    pass
            req.ctx = ctx
            try:
                resp = route.handler(req)
            except Exception as exc:  # an unhandled error is a 500, as in FastAPI
                server_span.record_exception(exc)
                resp = Response(500, {"detail": "Internal Server Error"})
            with span(node.world, proc, f"{name} http send", ctx, attributes={
                    "asgi.event.type": "http.response.start",
                    "http.status_code": resp.status}, **scope) as (start, _):
                _send(h, resp)
                if resp.status >= 500:
                    start.set_status(Status(StatusCode.ERROR))
            for _ in range(proc.body_sends):
                with span(node.world, proc, f"{name} http send", ctx,
                          attributes={"asgi.event.type": "http.response.body"}, **scope):
                    pass
            server_span.set_attribute("http.status_code", resp.status)
            if resp.status >= 500:
                server_span.set_status(Status(StatusCode.ERROR))
            started = server_span.start_time or 0
        if self.http_metrics:
            duration_ms = (node.clock.now_ns() - started) / 1e6
            node.metrics.apply(("http", req.method, route.template, resp.status, duration_ms,
                                proc.host, proc.port))
        return resp


def _send(h: BaseHTTPRequestHandler, resp: Response) -> None:
    if isinstance(resp.body, bytes):
        payload = resp.body
    else:
        payload = json.dumps(resp.body if resp.body is not None else {}).encode()
    try:
        h.send_response(resp.status)
        h.send_header("content-type", resp.content_type)
        h.send_header("content-length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)
    except OSError:
        pass  # the client went away
