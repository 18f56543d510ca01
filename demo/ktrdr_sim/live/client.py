"""Outgoing HTTP with a real httpx client, traced as OTel's httpx instrumentation does.

Client span named by the method only, ``http.method``/``http.url``/``http.status_code``, ERROR
for ≥ 400 or on an exception (recorded as an event: a refused connection has no status), and
the W3C ``traceparent`` injected into the request headers by the real propagator.
"""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ktrdr_sim import http as simhttp
from ktrdr_sim.instrument import span
from ktrdr_sim.live.node import Node

_PROPAGATOR = TraceContextTextMapPropagator()


class Client:
    """One pooled httpx client per process."""

    def __init__(self, node: Node, timeout_s: float = 10.0) -> None:
        self.node = node
        self._http = httpx.Client(timeout=timeout_s,
                                  headers={"user-agent": simhttp.USER_AGENT})

    def close(self) -> None:
        self._http.close()

    def call(self, parent: Context | None, method: str, url: str, body: Any = None, *,
             read_timeout_s: float | None = None, raise_errors: bool = False
             ) -> httpx.Response | None:
        """One traced request; None when no answer came (refused, reset, timeout), or with
        ``raise_errors`` ``ConnectionError``/``TimeoutError``. ``read_timeout_s`` is in KTRDR
        seconds (compressed like every other duration)."""
        node = self.node
        with span(node.world, node.proc, method, parent, scope=simhttp.HTTPX_SCOPE,
                  scope_version=simhttp.INSTRUMENTATION_VERSION,
                  schema_url=simhttp.HTTP_SCHEMA, kind=SpanKind.CLIENT,
                  attributes={"http.method": method, "http.url": url}) as (sp, ctx):
            headers: dict[str, str] = {}
            _PROPAGATOR.inject(headers, context=ctx)
            timeout = (httpx.USE_CLIENT_DEFAULT if read_timeout_s is None else
                       httpx.Timeout(10.0, read=node.cfg.real_s(read_timeout_s)))
            try:
                resp = self._http.request(method, url, json=body, headers=headers,
                                          timeout=timeout)
            except httpx.HTTPError as exc:
                sp.record_exception(exc)
                sp.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                if raise_errors and isinstance(exc, httpx.TimeoutException):
                    raise TimeoutError(str(exc)) from exc
                if raise_errors:
                    raise ConnectionError(str(exc)) from exc
                return None
            sp.set_attribute("http.status_code", resp.status_code)
            if resp.status_code >= 400:
                sp.set_status(Status(StatusCode.ERROR))
            return resp

    def plain(self, method: str, url: str, body: Any = None) -> httpx.Response | None:
        """An untraced call (the simulator's own controls)."""
        try:
            return self._http.request(method, url, json=body)
        except httpx.HTTPError:
            return None
