"""Live Jaeger as a trace source: api_v3 first, the legacy API as fallback.

Finding an operation means searching every service that can hold its spans: Jaeger matches a
tag per span *within the requested service*, the backend's dispatch spans carry no
``operation.id``, and KTRDR worker service names carry a random suffix per process start. So
``traces_for`` lists the services, keeps those matching ``settings.service_patterns``, searches
each one concurrently (bounded by ``settings.concurrency``) for ``operation.id=<ident>``, and
merges the answers by trace id (one operation spans the CLI, dispatch and worker traces).
When none answers, or only one-span records (the orphan detector's), and the id is shaped like
an operation's, the process that ran it has exported nothing of it: the backend's answers to
reads of it are searched by their exact path too.

No second fetch by trace id follows a search: both APIs answer a tag search with whole traces
(all spans, not only the matching ones), so a refetch would double the calls for nothing. A
trace still being written may be incomplete in either answer; callers must not cache recent
traces as final.

Fewer calls on the live path (``opdiag serve``), and why each is safe:

* The service list is reused for ``services_ttl_s``: it changes only when a process starts.
  ``check()`` (``/readyz``) always asks Jaeger.
* Every fan-out search is one entry of a ``TtlCache`` holding the *merged* answer (so no
  request ever merges shared trace objects again), bounded by ``search_cache_traces`` and
  single-flight: concurrent identical requests wait for one fan-out.
* Window searches (``recent_traces``) round their bounds outwards to ``search_round_s`` and
  cut the answer back to the requested window; they are reused for ``search_ttl_s``.
* The *live window* — every matching service over the last ``lookback_s`` (plus the clock
  margin) at ``live_depth`` — is one shared entry: the operations list over that range, the
  baselines of every diagnosis and ``recent_traces_for`` all read it. A cold diagnosis used
  to cost a tag search per service *and* a window search per service for its baseline (~16
  calls), and every diagnosis repeated both; now the baseline reuses the live window, and
  a diagnosis finds its operation in it when a list or another baseline searched it within
  the TTL (no call at all). ``recent_traces_for`` never fetches the window itself: its
  answer is far larger than a tag search, worth it only when the baseline needs it.
  Lookups trust it only when no service's answer reached the depth (a cut answer
  could miss an operation's traces); a list whose window reaches "now" may still use a cut
  answer, since an exact search would hold the same newest traces.
* ``traces_for`` (an operation's traces by tag) never reuses a stored answer: it only joins
  an identical search already in flight. ``recent_traces_for`` may answer from the live
  window (at most ``search_ttl_s`` old); the service uses it only for operations that turn
  out finished — their traces no longer change — and asks ``traces_for`` again for the
  unfinished ones.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Any, TypeVar

import httpx

from opdiag.errors import (
    InputError,
    SourceTimeoutError,
    SourceUnavailableError,
    TraceFormatError,
)
from opdiag.model import Trace, looks_like_trace_id, merge_traces, normalise_trace_id
from opdiag.operations import NOISE_SPAN_PATTERNS, PATH_KEYS, READ_ROUTE, needs_answers
from opdiag.search_window import CLOCK_MARGIN_US, around
from opdiag.settings import JaegerSettings
from opdiag.sources.base import SpanQuery, holds_wanted_span
from opdiag.sources.jaeger_api import (
    QueryApi,
    detect_api,
    each_trace,
    trace_ids_of,
    without_traces,
)
from opdiag.sources.jaeger_cache import TtlCache
from opdiag.sources.jaeger_http import JaegerHttp, Observer, Reply
from opdiag.sources.jaeger_query import is_window_name, window_span_names
from opdiag.sources.readers import parse_document
from opdiag.timeutil import TimeRange

OPERATION_ID = "operation.id"
# A window this short is not split further, even when its answer reached the depth.
_MIN_SPLIT_US = 1_000
_MAX_PROBLEMS = 100  # problems kept (a server runs for weeks)

T = TypeVar("T")
SearchKey = tuple[Any, ...]


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


def _values_of(trace: Trace, services: frozenset[str], key: str) -> set[str]:
    """Every value of attribute ``key`` on spans of ``services`` (attributes, resource,
    events): what a tag search for ``key`` would match in this trace."""
    found: set[str] = set()
    for span in trace.spans:
        if span.service not in services:
            continue
        for attrs in (span.attributes, span.resource, *(e.attributes for e in span.events)):
            if key in attrs:
                found.add(_as_text(attrs[key]))
    return found


def _starts_in(trace: Trace, start_us: int, end_us: int) -> bool:
    """Some span starts in ``[start_us, end_us)`` (Jaeger's window rule); bounds first."""
    if trace.start_us >= end_us or trace.end_us < start_us:
        return False
    if trace.start_us >= start_us:
        return True
    return any(start_us <= s.start_us < end_us for s in trace.spans)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One search answer decoded: its traces, and how many traces Jaeger answered."""

    traces: list[Trace]
    count: int


@dataclass(slots=True, eq=False)
class WindowAnswer:
    """One fan-out search, merged: the (rounded) window asked, the traces newest first, and
    the services whose answer reached the depth (so it may have been cut)."""

    start_us: int
    end_us: int
    services: frozenset[str]
    traces: tuple[Trace, ...]
    truncated: frozenset[str]
    depth: int = 0
    asked_at_us: int = 0
    _by_operation: dict[str, list[Trace]] | None = field(default=None, repr=False)

    @property
    def complete(self) -> bool:
        return not self.truncated

    def covers(self, start_us: int, end_us: int) -> bool:
        return self.start_us <= start_us and end_us <= self.end_us

    def answers(self, start_us: int, end_us: int, cap: int, slack_us: int) -> bool:
        """Whether cutting this answer to ``[start_us, end_us)`` and ``cap`` gives what a
        search of that window at depth ``cap`` would: always when no service was cut; when
        one was, only for a window reaching the time this answer was asked (Jaeger answers
        the newest traces first, so both hold the newest ``cap``)."""
        if not self.covers(start_us, end_us):
            return False
        return self.complete or (cap <= self.depth and end_us >= self.asked_at_us - slack_us)

    def by_operation(self, ident: str) -> list[Trace]:
        """Traces a tag search for ``operation.id=ident`` would return; the index is built
        once per answer (building it twice in a race is harmless)."""
        index = self._by_operation
        if index is None:
            index = {}
            for trace in self.traces:
                for value in _values_of(trace, self.services, OPERATION_ID):
                    index.setdefault(value, []).append(trace)
            self._by_operation = index
        return list(index.get(ident, ()))


def _distinct(traces: Iterable[Trace]) -> Iterator[Trace]:
    """One copy of each trace: several searches answer the same whole trace."""
    seen: set[str] = set()
    for trace in traces:
        if trace.trace_id not in seen:
            seen.add(trace.trace_id)
            yield trace


def _weight(answer: WindowAnswer) -> int:
    return len(answer.traces)


class JaegerSource:
    """A ``TraceSource`` over Jaeger's HTTP query APIs; one pooled client, thread-safe."""

    def __init__(
        self,
        settings: JaegerSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
        noise_patterns: Sequence[str] = (),
    ) -> None:
        self._settings = settings
        self._noise = (*NOISE_SPAN_PATTERNS, *noise_patterns)
        self._http = JaegerHttp(settings, transport=transport, observer=observer)
        self._clock = clock
        self._lock = threading.Lock()
        self._api: QueryApi | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._services: TtlCache[list[str]] = TtlCache(settings.services_ttl_s, 4)
        self._names: TtlCache[list[str]] = TtlCache(settings.services_ttl_s, 1024)
        self._searches: TtlCache[WindowAnswer] = TtlCache(
            settings.search_ttl_s, settings.search_cache_traces, weigh=_weight
        )
        self._round_us = max(1, int(settings.search_round_s * 1_000_000))
        self._decoding = threading.Lock()
        self._detecting: Future[QueryApi] | None = None  # the API detection under way
        # trace id -> why a search answer's trace was left out (_parse_each), oldest first;
        # keyed so that a trace several searches answer is named once
        self._problems: dict[str, str] = {}

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
        """The API, detected once. One caller detects while the others wait for its answer,
        each at most ``jaeger.deadline_s``: detection does network I/O, and a Jaeger that
        hangs at start-up must not queue every request behind it (30 requests waited 3 s
        each in turn, the last one 63 s, for answers bounded at 3 s)."""
        api = self._api
        if api is not None:
            return api
        with self._lock:
            if self._api is not None:
                return self._api
            pending = self._detecting
            leader = pending is None
            if pending is None:
                pending = self._detecting = Future()
        if not leader:
            try:
                return pending.result(timeout=self._settings.deadline_s)
            except FutureTimeout:
                raise SourceTimeoutError(
                    f"Jaeger at {self._http.url} did not answer which API it serves within "
                    f"{self._settings.deadline_s:g}s (jaeger.deadline_s)"
                ) from None
        try:
            api = detect_api(self._http, self._settings.storage, self._settings.api)
        except BaseException as exc:
            with self._lock:
                self._detecting = None
            pending.set_exception(exc)
            raise
        with self._lock:  # known and no longer detecting at once: no caller sees neither
            self._api, self._detecting = api, None
        pending.set_result(api)
        return api

    def cache_stats(self) -> dict[str, dict[str, int]]:
        """Counters of the service-list and search caches (for ``/metrics``)."""
        return {"services": self._services.stats(), "searches": self._searches.stats()}

    # -- TraceSource -----------------------------------------------------------------------

    def describe(self) -> str:
        api = self._api
        if api is None:
            return f"jaeger {self._http.url} (API not detected yet)"
        label = "api_v3" if api.name == "v3" else "legacy /api"
        version = f", {api.version}" if api.version else ""
        return f"jaeger {self._http.url} ({label}{version})"

    def check(self) -> None:
        """Detect the API (once) and list services: proves Jaeger answers with data. Never
        answered from the cache: readiness is about Jaeger now."""
        self._query_api().services()

    def all_services(self) -> list[str]:
        return list(self._service_list(self._query_api()))

    def latest_us(self) -> int:
        """The latest moment Jaeger holds spans of: this host's clock (a moment well before
        it is in Jaeger's past: ``DiagnosisService``, ``opdiag.asof``)."""
        return int(self._clock() * 1_000_000)

    def traces_for(self, ident: str, window: TimeRange | None = None) -> list[Trace]:
        """A trace id (16/32 hex) is fetched by id; anything else is searched as
        ``operation.id`` in every matching service, over ``window`` (spans starting in it)
        or else the last ``lookback_s``. Oldest first. Always Jaeger's current answer: only
        an identical call in flight is shared."""
        ident = ident.strip()
        if not ident:
            raise InputError("an operation id or trace id is required", field="id")
        api = self._query_api()
        if looks_like_trace_id(ident):
            trace_id = normalise_trace_id(ident)

            def fetch() -> WindowAnswer:
                doc = api.trace(trace_id)
                found = [] if doc is None else self._parse(doc, f"{api.name}:trace/{trace_id}")
                merged = tuple(merge_traces(found))
                return WindowAnswer(0, 0, frozenset(), merged, frozenset())

            answer = self._searches.get_or_load(
                ("trace", api.name, trace_id), fetch, max_age_s=0, store=False
            )
            return list(answer.traces)
        if window is None:
            now_us = int(self._clock() * 1_000_000)
            window = around(now_us, int(self._settings.lookback_s * 1_000_000))
        start_us, end_us = self._rounded(window.start_us, window.end_us)
        depth = max(1, self._settings.search_limit)
        services = self._matching_services(api)

        def search_by(key: str, value: str) -> Callable[[str], list[Trace]]:
            def search(service: str) -> list[Trace]:
                where = f"{api.name}:search/{service}"
                traces = self._search_whole(
                    api, service, start_us, end_us, depth=depth, tags={key: value}, where=where
                )
                if not api.filters_attributes:
                    traces = [t for t in traces if holds_attribute(t, service, key, value)]
                return traces

            return search

        def fetch_all() -> WindowAnswer:
            found = self._fan_out(services, search_by(OPERATION_ID, ident))
            if needs_answers(ident, [t for ts in found for t in ts]):
                # No span of its work carries the id (a process exports in batches, and
                # nothing when it dies first; the orphan detector's one-span record may):
                # the backend's answers to reads of it name it.
                path = READ_ROUTE.format(ident)
                found += [t for key in PATH_KEYS
                          for t in self._fan_out(services, search_by(key, path))]
            merged = merge_traces(_distinct(t for traces in found for t in traces))
            merged.sort(key=lambda t: (t.start_us, t.trace_id))
            return WindowAnswer(start_us, end_us, frozenset(services), tuple(merged), frozenset())

        key = ("tags", api.name, tuple(services), start_us, end_us, depth, ident)
        return list(self._searches.get_or_load(key, fetch_all, max_age_s=0, store=False).traces)

    def recent_traces(self, start_us: int, end_us: int, limit: int = 500) -> list[Trace]:
        """Every matching service searched for the window, merged, newest first; at most
        ``min(limit, search_limit)`` traces (also the depth of exact searches). Answered
        from the shared live window when it covers the range, else by a (cached) search of
        the rounded window; either way cut back to ``[start_us, end_us)``."""
        if end_us <= start_us or limit <= 0:
            return []
        cap = max(1, min(limit, self._settings.search_limit))
        api = self._query_api()
        services = self._matching_services(api)
        answer: WindowAnswer | None = None
        live_start, live_end = self._live_bounds()
        if live_start <= start_us and end_us <= live_end:
            answer = self._live_answer(api, services, start_us, end_us)
            if not answer.answers(start_us, end_us, cap, self._round_us):
                answer = None
        if answer is None:
            lo, hi = self._rounded(start_us, end_us)
            key = ("window", api.name, tuple(services), lo, hi, cap)
            answer = self._searches.get_or_load(
                key, lambda: self._window_search(api, services, lo, hi, cap)
            )
        found = [t for t in answer.traces if _starts_in(t, start_us, end_us)]
        return found[:cap]

    def neighbour_traces(
        self, start_us: int, end_us: int, queries: Sequence[SpanQuery], limit: int
    ) -> list[Trace]:
        """One search per (matching service, span name), in parallel, by operation name so
        the busy services' polling traces are never fetched; cached like window searches."""
        if not queries or end_us <= start_us or limit <= 0:
            return []
        api = self._query_api()
        services = self._service_list(api)
        pairs = sorted(
            {(s, q.span) for q in queries for s in services if fnmatchcase(s, q.service)}
        )
        if not pairs:
            return []
        lo, hi = self._rounded(start_us, end_us)
        # The caller's limit, not search_limit: a worker's answered health checks from
        # minutes before name its service, and a busy backend probes several times a minute.
        depth = max(1, limit)

        def search(pair: tuple[str, str]) -> list[Trace]:
            service, span = pair
            reply = api.search_reply(service, lo, hi, depth, None, operation=span)
            return self._decode(api, reply, f"{api.name}:search/{service}/{span}").traces

        def fetch_all() -> WindowAnswer:
            found = self._fan_out(pairs, search)
            merged = merge_traces(_distinct(t for traces in found for t in traces))
            merged.sort(key=lambda t: (t.start_us, t.trace_id), reverse=True)
            return WindowAnswer(lo, hi, frozenset(s for s, _ in pairs), tuple(merged), frozenset())

        key = ("neighbours", api.name, tuple(pairs), lo, hi, depth)
        answer = self._searches.get_or_load(key, fetch_all)
        hits = [t for t in answer.traces if holds_wanted_span(t, queries, start_us, end_us)]
        return hits[:limit]

    def recent_traces_for(self, ident: str) -> list[Trace] | None:
        """The traces of ``ident`` (operation or trace id) as the live window holds them, if
        a list or a baseline searched it at most ``search_ttl_s`` ago. Never searches: a
        window answer is far larger than a tag search, worth fetching only when its traces
        are needed anyway (list, baseline). None when the window cannot say (not cached, a
        service's answer was cut at the depth, or ``ident`` is not in it — it may be newer
        than the window): then ask ``traces_for``. Oldest first."""
        ident = (ident or "").strip()
        if not ident:
            return None
        api = self._query_api()
        services = self._matching_services(api)
        now_us = int(self._clock() * 1_000_000)
        answer = self._searches.peek(self._live_key(api, services))
        lookback_us = int(self._settings.lookback_s * 1_000_000)
        if answer is None or not answer.complete or not answer.covers(now_us - lookback_us, now_us):
            return None
        if looks_like_trace_id(ident):
            wanted = normalise_trace_id(ident)
            found = [t for t in answer.traces if t.trace_id == wanted]
        else:
            found = answer.by_operation(ident)
        if not found:
            return None
        return sorted(found, key=lambda t: (t.start_us, t.trace_id))

    # -- helpers ---------------------------------------------------------------------------

    def _service_list(self, api: QueryApi) -> list[str]:
        return self._services.get_or_load(api.name, api.services)

    def _matching_services(self, api: QueryApi) -> list[str]:
        """Services matching the configured patterns (all when none are configured)."""
        patterns = self._settings.service_patterns
        services = self._service_list(api)
        if not patterns:
            return list(services)
        return [s for s in services if any(fnmatchcase(s, p) for p in patterns)]

    def _rounded(self, start_us: int, end_us: int) -> tuple[int, int]:
        """The window widened to whole ``search_round_s`` steps: nearby requests share it."""
        step = self._round_us
        return start_us - start_us % step, -(-end_us // step) * step

    def _live_bounds(self) -> tuple[int, int]:
        """The live window now: the last ``lookback_s`` (one rounding step more, so a
        ``now - lookback`` read a moment earlier by the caller still falls inside) plus the
        clock margin, rounded."""
        now_us = int(self._clock() * 1_000_000)
        return self._rounded(
            now_us - int(self._settings.lookback_s * 1_000_000) - self._round_us,
            now_us + CLOCK_MARGIN_US,
        )

    def _live_depth(self) -> int:
        return max(1, self._settings.search_limit, self._settings.live_depth)

    def _live_key(self, api: QueryApi, services: list[str]) -> SearchKey:
        """One entry whatever the clock: a stored live window is reused while it covers."""
        return ("live", api.name, tuple(services), self._live_depth())

    def _live_answer(
        self, api: QueryApi, services: list[str], start_us: int, end_us: int
    ) -> WindowAnswer:
        """The shared live-window search; a stored one is reused while it covers the
        request (it always does within the TTL: the TTL is shorter than the margin)."""
        lo, hi = self._live_bounds()
        depth = self._live_depth()
        return self._searches.get_or_load(
            self._live_key(api, services),
            lambda: self._window_search(api, services, lo, hi, depth),
            accept=lambda answer: answer.covers(start_us, end_us),
        )

    def _window_search(
        self, api: QueryApi, services: list[str], start_us: int, end_us: int, depth: int
    ) -> WindowAnswer:
        """Every service searched over the window without tags, merged, newest first; only
        traces that may hold an operation are kept (not health checks or polling alone).

        Health checks and polling make most traces of a busy service, so a search by
        service alone fills its depth with them and misses the operations. A service whose
        answer reached the depth is therefore searched again once per span name that can
        belong to an operation (``window_span_names``); the others' answers are whole. A
        trace already decoded from an earlier answer is not decoded again."""
        asked_at_us = int(self._clock() * 1_000_000)
        seen: set[str] = set()

        def search(pair: tuple[str, str | None], keep_cut: bool) -> tuple[str, list[Trace], bool]:
            service, name = pair
            reply = api.search_reply(service, start_us, end_us, depth, None, operation=name)
            where = f"{api.name}:search/{service}" + (f"/{name}" if name else "")
            answer = self._decode(api, reply, where, seen=seen, depth=None if keep_cut else depth)
            return service, answer.traces, answer.count >= depth

        first = self._fan_out([(s, None) for s in services], lambda p: search(p, False))
        busy = [service for service, _, cut in first if cut]
        pairs = self._window_pairs(api, busy)
        second = self._fan_out(pairs, lambda p: search(p, True))
        truncated = frozenset(service for service, _, cut in second if cut)
        found = [t for _, traces, _ in (*first, *second) for t in traces]
        merged = merge_traces(t for t in _distinct(found) if self._may_hold_operation(t))
        merged.sort(key=lambda t: (t.start_us, t.trace_id), reverse=True)
        return WindowAnswer(
            start_us,
            end_us,
            frozenset(services),
            tuple(merged),
            truncated,
            depth=depth,
            asked_at_us=asked_at_us,
        )

    def _window_pairs(
        self, api: QueryApi, services: list[str]
    ) -> list[tuple[str, str | None]]:
        """(service, span name) to search a busy service's window by: every name but noise
        (``window_span_names``); a service whose names are unknown is searched whole (its
        answer then stays cut), one holding only noise not at all."""
        known = self._fan_out(services, lambda service: self._span_names(api, service))
        pairs: list[tuple[str, str | None]] = []
        for service, names in zip(services, known, strict=True):
            if not names:
                pairs.append((service, None))
                continue
            pairs.extend((service, name) for name in window_span_names(names, self._noise))
        return pairs

    def _may_hold_operation(self, trace: Trace) -> bool:
        """What a search by span name would find: a trace with a span of its own name (the
        whole answers of quiet services are cut to that too, so every window answer holds
        the same kind of traces)."""
        return any(is_window_name(name, self._noise) for name in {s.name for s in trace.spans})

    def _span_names(self, api: QueryApi, service: str) -> list[str]:
        """A service's span names; reused like the service list (they change with code)."""
        return self._names.get_or_load((api.name, service), lambda: api.span_names(service))

    def _search_whole(
        self,
        api: QueryApi,
        service: str,
        start_us: int,
        end_us: int,
        *,
        depth: int,
        tags: dict[str, str] | None,
        where: str,
    ) -> list[Trace]:
        """Every trace of ``service`` matching ``tags`` in the window. Jaeger has no offset
        to page with, and an answer that reached the depth may have been cut (an older
        Jaeger ignores the tags, so its answer is every trace of the window), so such a
        window is halved until each answer stays below the depth."""
        pending = [(start_us, end_us)]
        found: dict[str, Trace] = {}
        while pending:
            lo, hi = pending.pop()
            reply = api.search_reply(service, lo, hi, depth, tags)
            decoded = self._decode(api, reply, where)
            if decoded.count >= depth and hi - lo > _MIN_SPLIT_US:
                mid = (lo + hi) // 2
                pending += [(mid + 1, hi), (lo, mid)]  # both bounds are inclusive in Jaeger
                continue
            for trace in decoded.traces:
                found.setdefault(trace.trace_id, trace)
        return list(found.values())

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self._settings.concurrency),
                    thread_name_prefix="opdiag-jaeger",
                )
            return self._pool

    def _fan_out(self, services: Iterable[str], search: Callable[[str], T]) -> list[T]:
        """Run ``search`` for every service, at most ``concurrency`` at a time; the first
        failure fails the lookup (a partial operation would give a wrong verdict)."""
        services = list(services)
        if len(services) <= 1:
            return [search(s) for s in services]
        pool = self._executor()
        # each worker runs in a copy of the caller's context: the request's Jaeger budget
        futures: list[Future[T]] = [
            pool.submit(contextvars.copy_context().run, search, s) for s in services
        ]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def _decode(
        self,
        api: QueryApi,
        reply: Reply,
        where: str,
        *,
        seen: set[str] | None = None,
        depth: int | None = None,
    ) -> Decoded:
        """JSON → traces, one answer at a time. Searches still fetch concurrently, but a
        window answer decodes into many times its size in Python objects; decoding them all
        at once only raised the memory high-water mark (the work holds the GIL anyway).
        ``count`` is the number of traces Jaeger answered. With ``seen``, traces decoded
        from an earlier answer are skipped (whole traces: several searches answer one);
        with ``depth``, an answer that reached it is counted but not decoded."""
        with self._decoding:
            doc = api.search_document(reply)
            if doc is None:
                return Decoded([], 0)
            ids = trace_ids_of(doc)
            if depth is not None and len(ids) >= depth:
                return Decoded([], len(ids))
            if seen is not None:
                doc = without_traces(doc, seen)
            try:
                traces = parse_document(doc, f"jaeger {self._http.url} {where}")
            except TraceFormatError as whole:
                traces = self._parse_each(doc, where)
                if not traces:  # nothing readable: the answer's own error stands
                    raise self._unreadable(whole, where) from None
            if seen is not None:
                seen.update(ids)
            return Decoded(traces, len(ids))

    def _parse_each(self, doc: Any, where: str) -> list[Trace]:
        """A search answer that does not read as a whole, read trace by trace: one trace
        with a broken span must not hide every other operation of the window. The traces
        left out are ``problems`` (the CLI prints them); none when none is readable."""
        traces: list[Trace] = []
        problems: dict[str, str] = {}
        for tid, part in each_trace(doc):
            try:
                traces.extend(parse_document(part, f"Jaeger's answer ({where})"))
            except TraceFormatError as exc:
                name = tid or "(unreadable id)"
                problems[name] = f"trace {name}, unreadable: {exc.message}"
        if not traces:
            return []
        with self._lock:
            for name, problem in problems.items():
                self._problems.setdefault(name, problem)
            while len(self._problems) > _MAX_PROBLEMS:
                del self._problems[next(iter(self._problems))]
        return traces

    @property
    def problems(self) -> list[str]:
        """Why traces of Jaeger's answers were left out (the CLI prints them)."""
        with self._lock:
            return list(self._problems.values())

    def _parse(self, doc: Any, where: str) -> list[Trace]:
        source = f"jaeger {self._http.url} {where}"
        try:
            return parse_document(doc, source)
        except TraceFormatError as exc:
            raise self._unreadable(exc, where) from None

    @staticmethod
    def _unreadable(exc: TraceFormatError, where: str) -> SourceUnavailableError:
        return SourceUnavailableError(
            f"Jaeger answered a document opdiag cannot read ({where}): {exc.message}"
        )
