"""Live Jaeger as a trace source: api_v3 first, the legacy API as fallback.

Finding an operation means searching every service that can hold its spans: Jaeger matches a
tag per span *within the requested service*, the backend's dispatch spans carry no
``operation.id``, and KTRDR worker service names carry a random suffix per process start. So
``traces_for`` lists the services, keeps those matching ``settings.service_patterns``, searches
each one concurrently (bounded by ``settings.concurrency``) for ``operation.id=<ident>``, and
merges the answers by trace id (one operation spans the CLI, dispatch and worker traces).

No second fetch by trace id follows a search: both APIs answer a tag search with whole traces
(all spans, not only the matching ones), so a refetch would double the calls for nothing. A
trace still being written may be incomplete in either answer; callers must not cache recent
traces as final.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Any, TypeVar

import httpx

from opdiag.errors import InputError, SourceUnavailableError, TraceFormatError
from opdiag.model import Trace, merge_traces, normalise_trace_id
from opdiag.settings import JaegerSettings
from opdiag.sources.jaeger_api import QueryApi, detect_api
from opdiag.sources.jaeger_http import JaegerHttp, Observer
from opdiag.sources.jaeger_query import looks_like_trace_id
from opdiag.sources.readers import parse_document

OPERATION_ID = "operation.id"
# Spans may reach Jaeger slightly "in the future" of this host's clock.
_CLOCK_MARGIN_S = 60.0

T = TypeVar("T")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def holds_attribute(trace: Trace, service: str, key: str, value: str) -> bool:
    """Jaeger's own tag rule, for servers that ignore ``query.attributes``: some span *of
    ``service``* carries ``key=value`` in its attributes, resource or events."""
    for span in trace.spans:
        if span.service != service:
            continue
        for attrs in (span.attributes, span.resource, *(e.attributes for e in span.events)):
            if key in attrs and _as_text(attrs[key]) == value:
                return True
    return False


class JaegerSource:
    """A ``TraceSource`` over Jaeger's HTTP query APIs; one pooled client, thread-safe."""

    def __init__(
        self,
        settings: JaegerSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._http = JaegerHttp(settings, transport=transport, observer=observer)
        self._clock = clock
        self._lock = threading.Lock()
        self._api: QueryApi | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection pool and the search threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def __enter__(self) -> JaegerSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def client(self) -> httpx.Client:
        """The one pooled httpx client every call goes through."""
        return self._http.client

    @property
    def api(self) -> str:
        """``"v3"`` or ``"legacy"``; detected on first use and remembered."""
        return self._query_api().name

    def _query_api(self) -> QueryApi:
        with self._lock:
            if self._api is None:
                self._api = detect_api(self._http, self._settings.storage, self._settings.api)
            return self._api

    # -- TraceSource -----------------------------------------------------------------------

    def describe(self) -> str:
        api = self._api
        if api is None:
            return f"jaeger {self._http.url} (API not detected yet)"
        label = "api_v3" if api.name == "v3" else "legacy /api"
        version = f", {api.version}" if api.version else ""
        return f"jaeger {self._http.url} ({label}{version})"

    def check(self) -> None:
        """Detect the API (once) and list services: proves Jaeger answers with data."""
        self._query_api().services()

    def all_services(self) -> list[str]:
        return self._query_api().services()

    def traces_for(self, ident: str) -> list[Trace]:
        """A trace id (16/32 hex) is fetched by id; anything else is searched as
        ``operation.id`` in every matching service over ``lookback_s``. Oldest first."""
        ident = ident.strip()
        if not ident:
            raise InputError("an operation id or trace id is required", field="id")
        api = self._query_api()
        if looks_like_trace_id(ident):
            trace_id = normalise_trace_id(ident)
            doc = api.trace(trace_id)
            if doc is None:
                return []
            return merge_traces(self._parse(doc, f"{api.name}:trace/{trace_id}"))
        now_us = int(self._clock() * 1_000_000)
        start_us = now_us - int(self._settings.lookback_s * 1_000_000)
        end_us = now_us + int(_CLOCK_MARGIN_S * 1_000_000)
        tags = {OPERATION_ID: ident}
        depth = max(1, self._settings.search_limit)

        def search(service: str) -> list[Trace]:
            doc = api.search(service, start_us, end_us, depth, tags)
            traces = [] if doc is None else self._parse(doc, f"{api.name}:search/{service}")
            if not api.filters_attributes:
                traces = [t for t in traces if holds_attribute(t, service, OPERATION_ID, ident)]
            return traces

        found = self._fan_out(self._matching_services(api), search)
        merged = merge_traces(t for traces in found for t in traces)
        merged.sort(key=lambda t: (t.start_us, t.trace_id))
        return merged

    def recent_traces(self, start_us: int, end_us: int, limit: int = 500) -> list[Trace]:
        """Every matching service searched for the window, merged, newest first; at most
        ``min(limit, search_limit)`` traces (also the search depth per service)."""
        if end_us <= start_us or limit <= 0:
            return []
        cap = max(1, min(limit, self._settings.search_limit))
        api = self._query_api()

        def search(service: str) -> list[Trace]:
            doc = api.search(service, start_us, end_us, cap, None)
            return [] if doc is None else self._parse(doc, f"{api.name}:search/{service}")

        found = self._fan_out(self._matching_services(api), search)
        merged = merge_traces(t for traces in found for t in traces)
        merged.sort(key=lambda t: (t.start_us, t.trace_id), reverse=True)
        return merged[:cap]

    # -- helpers ---------------------------------------------------------------------------

    def _matching_services(self, api: QueryApi) -> list[str]:
        """Services matching the configured patterns (all when none are configured)."""
        patterns = self._settings.service_patterns
        services = api.services()
        if not patterns:
            return services
        return [s for s in services if any(fnmatchcase(s, p) for p in patterns)]

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self._settings.concurrency),
                    thread_name_prefix="opdiag-jaeger",
                )
            return self._pool

    def _fan_out(self, services: list[str], search: Callable[[str], T]) -> list[T]:
        """Run ``search`` for every service, at most ``concurrency`` at a time; the first
        failure fails the lookup (a partial operation would give a wrong verdict)."""
        if len(services) <= 1:
            return [search(s) for s in services]
        pool = self._executor()
        futures: list[Future[T]] = [pool.submit(search, s) for s in services]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def _parse(self, doc: Any, where: str) -> list[Trace]:
        source = f"jaeger {self._http.url} {where}"
        try:
            return parse_document(doc, source)
        except TraceFormatError as exc:
            raise SourceUnavailableError(
                f"Jaeger answered a document opdiag cannot read ({where}): {exc.message}"
            ) from None
