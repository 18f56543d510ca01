"""The two Jaeger query APIs behind one small interface, and the detection that picks one.

``V3Api`` speaks ``/api/v3/*`` (OTLP-JSON bodies), ``LegacyApi`` the ``/api/*`` family (legacy
envelopes). Both return decoded JSON documents (or None for "nothing there"); turning them
into traces is the readers' job. Jaeger's quirks are handled here: HTML 200 on unknown paths
means "endpoint absent", api_v3 answers an empty search with 404 "No traces found", and
error bodies are JSON served as ``text/plain``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from opdiag.errors import SourceUnavailableError
from opdiag.model import normalise_trace_id
from opdiag.sources.jaeger_http import JaegerHttp, Reply
from opdiag.sources.jaeger_query import (
    LEGACY_TRACE_PARAMS,
    V3Dialect,
    dialect_for_version,
    dialect_from_error,
    escape_tag_value,
    legacy_search_params,
    parse_version,
    v3_search_params,
    v3_trace_params,
)

# Endpoint labels for the observer: route templates, never raw ids (bounded cardinality).
INDEX = "/"
V3_SERVICES = "/api/v3/services"
V3_TRACES = "/api/v3/traces"
V3_TRACE = "/api/v3/traces/{id}"
LEGACY_SERVICES = "/api/services"
LEGACY_TRACES = "/api/traces"
LEGACY_TRACE = "/api/traces/{id}"
V3_OPERATIONS = "/api/v3/operations"
LEGACY_OPERATIONS = "/api/services/{service}/operations"


class QueryApi(Protocol):
    """What ``JaegerSource`` needs from either API."""

    name: str
    filters_attributes: bool

    def services(self) -> list[str]: ...

    def span_names(self, service: str) -> list[str]: ...

    def search_reply(
        self,
        service: str,
        start_us: int,
        end_us: int,
        depth: int,
        tags: dict[str, str] | None,
        *,
        operation: str | None = None,
    ) -> Reply: ...

    def search_document(self, reply: Reply) -> Any | None: ...

    def trace(self, trace_id: str) -> Any | None: ...


def _rejected(reply: Reply) -> SourceUnavailableError:
    return SourceUnavailableError(
        f"Jaeger rejected {reply.path} with HTTP {reply.status}: {reply.message()}"
    )


def _json_ok(reply: Reply) -> Any:
    """The JSON of a 200; anything else (HTML included) is an error naming the endpoint."""
    if reply.status != 200:
        raise _rejected(reply)
    return reply.json()


def _json_or_none(reply: Reply) -> Any | None:
    """Like ``_json_ok``, but Jaeger's JSON 404 ("No traces found", unknown trace) is None."""
    if reply.status == 404 and not reply.is_html:
        return None
    return _json_ok(reply)


def _legacy_traces(doc: Any) -> list[Any] | None:
    data = doc.get("data") if isinstance(doc, dict) else None
    return data if isinstance(data, list) else None


def _v3_resource_spans(doc: Any) -> list[Any] | None:
    result = doc.get("result") if isinstance(doc, dict) else None
    found = result.get("resourceSpans") if isinstance(result, dict) else None
    return found if isinstance(found, list) else None


def _legacy_id(trace: Any) -> str | None:
    raw = trace.get("traceID") if isinstance(trace, dict) else None
    return normalise_trace_id(raw) if isinstance(raw, str) and raw.strip() else None


def _span_trace_id(span: Any) -> str | None:
    """An api_v3 span's trace id, None when it cannot be read (the reader reports it when it
    parses the answer)."""
    from opdiag.sources.readers import otlp_id

    try:
        return otlp_id(span.get("traceId"), 32) if isinstance(span, dict) else None
    except ValueError:
        return None


def _v3_ids(resource_spans: Any) -> set[str]:
    found: set[str] = set()
    scopes = resource_spans.get("scopeSpans") if isinstance(resource_spans, dict) else None
    for scope in scopes if isinstance(scopes, list) else ():
        spans = scope.get("spans") if isinstance(scope, dict) else None
        for span in spans if isinstance(spans, list) else ():
            trace_id = _span_trace_id(span)
            if trace_id:
                found.add(trace_id)
    return found


def trace_ids_of(doc: Any) -> set[str]:
    """The trace ids a search answer (either API) holds, before it is parsed."""
    legacy = _legacy_traces(doc)
    if legacy is not None:
        return {i for i in map(_legacy_id, legacy) if i}
    found: set[str] = set()
    for resource_spans in _v3_resource_spans(doc) or ():
        found |= _v3_ids(resource_spans)
    return found


def each_trace(doc: Any) -> list[tuple[str | None, Any]]:
    """A search answer split into one answer per trace (id, document), in the answer's
    order; spans whose trace id cannot be read go together under ``None``. Lets one
    unreadable trace be left out instead of the whole answer."""
    legacy = _legacy_traces(doc)
    if legacy is not None:
        return [(_legacy_id(t), {**doc, "data": [t]}) for t in legacy]
    resource_spans = _v3_resource_spans(doc)
    if resource_spans is None:
        return [(None, doc)]
    parts: dict[str | None, list[Any]] = {}
    for rs in resource_spans:
        scopes = rs.get("scopeSpans") if isinstance(rs, dict) else None
        if not isinstance(scopes, list):
            parts.setdefault(None, []).append(rs)
            continue
        for scope in scopes:
            spans = scope.get("spans") if isinstance(scope, dict) else None
            if not isinstance(spans, list):
                parts.setdefault(None, []).append({**rs, "scopeSpans": [scope]})
                continue
            by_trace: dict[str | None, list[Any]] = {}
            for span in spans:
                by_trace.setdefault(_span_trace_id(span), []).append(span)
            for tid, own in by_trace.items():
                part = {**rs, "scopeSpans": [{**scope, "spans": own}]}
                parts.setdefault(tid, []).append(part)
    return [
        (tid, {**doc, "result": {**doc["result"], "resourceSpans": rss}})
        for tid, rss in parts.items()
    ]


def without_traces(doc: Any, skip: set[str]) -> Any:
    """A search answer without the traces in ``skip`` (already read from another answer:
    searches answer whole traces, so a trace answered twice is the same trace)."""
    if not skip:
        return doc
    legacy = _legacy_traces(doc)
    if legacy is not None:
        return {**doc, "data": [t for t in legacy if _legacy_id(t) not in skip]}
    resource_spans = _v3_resource_spans(doc)
    if resource_spans is None:
        return doc
    kept = [rs for rs in resource_spans if not (ids := _v3_ids(rs)) or not ids <= skip]
    return {**doc, "result": {**doc["result"], "resourceSpans": kept}}


def _services_from(doc: Any, key: str, path: str) -> list[str]:
    if not isinstance(doc, dict):
        raise SourceUnavailableError(f"Jaeger answered an unexpected document at {path}")
    names = doc.get(key)
    if names is None:  # proto-JSON drops empty lists: {} means no services
        return []
    if not isinstance(names, list):
        raise SourceUnavailableError(f"Jaeger answered an unexpected document at {path}")
    return sorted({str(n) for n in names if n})


def _names_from(doc: Any, key: str, path: str) -> list[str]:
    """Span names of a service: api_v3 ``{"operations": [{"name", "spanKind"}]}`` or the
    legacy ``{"data": ["name", ...]}`` (``null`` and a dropped key both mean none)."""
    if not isinstance(doc, dict):
        raise SourceUnavailableError(f"Jaeger answered an unexpected document at {path}")
    items = doc.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise SourceUnavailableError(f"Jaeger answered an unexpected document at {path}")
    names = {str(i.get("name") if isinstance(i, dict) else i) for i in items}
    return sorted(n for n in names if n and n != "None")


@dataclass(slots=True)
class V3Api:
    """``/api/v3``: search needs RFC 3339 bounds; the dialect depends on the server version."""

    http: JaegerHttp
    storage: str
    dialect: V3Dialect
    version: str | None = None
    name: str = "v3"

    @property
    def filters_attributes(self) -> bool:
        return self.dialect.attributes

    def services(self) -> list[str]:
        reply = self.http.get(V3_SERVICES, label=V3_SERVICES)
        return _services_from(_json_ok(reply), "services", reply.path)

    def span_names(self, service: str) -> list[str]:
        reply = self.http.get(V3_OPERATIONS, {"service": service}, label=V3_OPERATIONS)
        return _names_from(_json_ok(reply), "operations", reply.path)

    def search_reply(
        self,
        service: str,
        start_us: int,
        end_us: int,
        depth: int,
        tags: dict[str, str] | None,
        *,
        operation: str | None = None,
    ) -> Reply:
        """The raw answer of a search (decoding is a separate step: see ``JaegerSource``)."""
        attributes = (
            {k: escape_tag_value(v, self.storage) for k, v in tags.items()} if tags else None
        )
        params = v3_search_params(
            self.dialect,
            service=service,
            start_us=start_us,
            end_us=end_us,
            depth=depth,
            attributes=attributes,
            operation=operation,
        )
        return self.http.get(V3_TRACES, params, label=V3_TRACES)

    def search_document(self, reply: Reply) -> Any | None:
        return _json_or_none(reply)  # "No traces found": an empty result, not an error

    def trace(self, trace_id: str) -> Any | None:
        params = v3_trace_params(self.dialect)
        return _json_or_none(self.http.get(f"/api/v3/traces/{trace_id}", params, label=V3_TRACE))


@dataclass(slots=True)
class LegacyApi:
    """The ``/api/*`` family of Jaeger v1 and v2 ≤ 2.20: ``service`` is required, times in µs."""

    http: JaegerHttp
    storage: str
    version: str | None = None
    name: str = "legacy"
    filters_attributes: bool = True

    def services(self) -> list[str]:
        reply = self.http.get(LEGACY_SERVICES, label=LEGACY_SERVICES)
        return _services_from(_json_ok(reply), "data", reply.path)

    def span_names(self, service: str) -> list[str]:
        path = f"/api/services/{quote(service, safe='')}/operations"
        return _names_from(_json_ok(self.http.get(path, label=LEGACY_OPERATIONS)), "data", path)

    def search_reply(
        self,
        service: str,
        start_us: int,
        end_us: int,
        depth: int,
        tags: dict[str, str] | None,
        *,
        operation: str | None = None,
    ) -> Reply:
        """The raw answer of a search (decoding is a separate step: see ``JaegerSource``)."""
        escaped = {k: escape_tag_value(v, self.storage) for k, v in (tags or {}).items()}
        params = legacy_search_params(
            service=service,
            start_us=start_us,
            end_us=end_us,
            limit=depth,
            tags=escaped,
            operation=operation,
        )
        return self.http.get(LEGACY_TRACES, params, label=LEGACY_TRACES)

    def search_document(self, reply: Reply) -> Any | None:
        return _json_ok(reply)

    def trace(self, trace_id: str) -> Any | None:
        reply = self.http.get(f"/api/traces/{trace_id}", LEGACY_TRACE_PARAMS, label=LEGACY_TRACE)
        return _json_or_none(reply)


def _serves_json(reply: Reply, key: str) -> bool:
    """A capability probe: 200, not the UI's HTML, a JSON object holding ``key`` (or ``{}``).

    The Content-Type alone cannot decide: Jaeger's api_v3 gateway does not set one in every
    release, so Go sniffs ``text/plain`` for JSON; only HTML means "absent"."""
    if reply.status != 200 or reply.is_html:
        return False
    doc = reply.json()  # 200 with a broken body is a broken Jaeger, not an absent endpoint
    return isinstance(doc, dict) and (key in doc or not doc)


def _version(http: JaegerHttp) -> tuple[tuple[int, int, int] | None, str | None]:
    reply = http.get("/", label=INDEX)
    if reply.status != 200:
        return None, None
    version = parse_version(reply.body.decode("utf-8", "replace"))
    text = None if version is None else "v{}.{}.{}".format(*version)
    return version, text


def _v3_dialect(http: JaegerHttp) -> tuple[V3Dialect, str | None]:
    """The dialect from ``JAEGER_VERSION``; for ``dev`` builds or a missing page, from the
    wording of the 400 that a search without time bounds gets."""
    version, text = _version(http)
    if version is not None:
        return dialect_for_version(version), text
    reply = http.get(V3_TRACES, label=V3_TRACES)
    if reply.status == 400:
        return dialect_from_error(reply.message()), text
    return V3Dialect(), text


def detect_api(http: JaegerHttp, storage: str, forced: str = "auto") -> QueryApi:
    """Pick the API: api_v3 when present and new enough to filter by attributes, else the
    legacy API when present, else api_v3 in the old dialect (the caller then filters)."""
    forced = forced.strip().lower()
    if forced == "legacy":
        return LegacyApi(http, storage)
    if forced not in {"auto", "v3"}:
        raise SourceUnavailableError(f"unknown Jaeger API setting {forced!r} (auto|v3|legacy)")
    v3_present = forced == "v3" or _serves_json(
        http.get(V3_SERVICES, label=V3_SERVICES), "services"
    )
    if v3_present:
        dialect, version = _v3_dialect(http)
        if dialect.attributes or forced == "v3":
            return V3Api(http, storage, dialect, version)
        if _serves_json(http.get(LEGACY_SERVICES, label=LEGACY_SERVICES), "data"):
            return LegacyApi(http, storage, version)
        return V3Api(http, storage, dialect, version)
    if _serves_json(http.get(LEGACY_SERVICES, label=LEGACY_SERVICES), "data"):
        return LegacyApi(http, storage)
    raise SourceUnavailableError(
        f"Jaeger at {http.url} answers neither /api/v3/services nor /api/services with JSON "
        "(is this the Jaeger query/UI address, with its base path?)"
    )
