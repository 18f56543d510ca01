"""OTLP-JSON over plain JSON values (the general path), and the one function that turns the
fields of an OTLP span into a ``Span`` for both paths."""

from __future__ import annotations

from typing import Any

from opdiag.model import CHILD_OF, FOLLOWS_FROM, INTERNAL, STATUS_UNSET, Event, Reference, Span
from opdiag.sources.reader_base import (
    MAX_TIME_US,
    NO_ID,
    OTLP_KINDS,
    OTLP_STATUS,
    UNKNOWN_SERVICE,
    Collector,
    Fail,
    at,
    int_time,
    ns_time,
    otlp_attrs,
    otlp_id_at,
    short,
    time_problem,
)


def otlp_document(doc: dict, where: str, col: Collector, *, consume: bool) -> None:
    ids = IdCache()
    rss = doc.get("resourceSpans")
    if rss is None:
        return
    if type(rss) is not list:
        raise Fail(at(where, "resourceSpans"), "not a list")
    for i in range(len(rss)):
        rs = rss[i]
        if consume:
            rss[i] = None
        here = at(where, f"resourceSpans[{i}]")
        if type(rs) is not dict:
            raise Fail(here, "not an object")
        resource_obj = rs.get("resource") or {}
        resource = otlp_attrs(
            resource_obj.get("attributes") if type(resource_obj) is dict else None,
            here,
            "resource attributes",
        )
        service = resource.get("service.name")
        if type(service) is not str or not service:
            service = UNKNOWN_SERVICE
        scopes = rs.get("scopeSpans")
        if scopes is None:
            scopes = rs.get("instrumentationLibrarySpans") or []
        if type(scopes) is not list:
            raise Fail(at(here, "scopeSpans"), "not a list")
        for j, ss in enumerate(scopes):
            sw = f"{here}.scopeSpans[{j}]"
            if type(ss) is not dict:
                raise Fail(sw, "not an object")
            scope = ss.get("scope") or ss.get("instrumentationLibrary") or {}
            scope_name = scope.get("name") if type(scope) is dict else None
            scope_version = scope.get("version") if type(scope) is dict else None
            spans = ss.get("spans") or []
            if type(spans) is not list:
                raise Fail(at(sw, "spans"), "not a list")
            for k in range(len(spans)):
                raw = spans[k]
                if consume:
                    spans[k] = None
                span = otlp_span(raw, f"{sw}.spans[{k}]", service, resource, ids)
                if scope_name and "otel.scope.name" not in span.attributes:
                    span.attributes["otel.scope.name"] = scope_name
                    if scope_version:
                        span.attributes.setdefault("otel.scope.version", scope_version)
                col.add(span)


class IdCache:
    """Normalised OTLP trace ids and parent span ids per raw text: a trace's spans repeat
    one trace id, and siblings one parent. ``texts`` keeps one string per distinct span name
    (and, on the typed path, text value), as the legacy readers do: thousands of spans share
    a name, and a shared string compares by identity in every later lookup."""

    __slots__ = ("spans", "texts", "traces")

    def __init__(self) -> None:
        self.traces: dict[str, str | None] = {}
        self.spans: dict[str, str | None] = {}
        self.texts: dict[str, str] = {}


def otlp_span(
    raw: Any,
    where: str,
    service: str,
    resource: dict[str, Any],
    ids: IdCache | None = None,
) -> Span:
    """One OTLP span from its plain-JSON object."""
    if type(raw) is not dict:
        raise Fail(where, "span is not an object")
    return otlp_fields(
        raw.get("traceId"),
        raw.get("spanId"),
        raw.get("parentSpanId"),
        raw.get("name"),
        raw.get("kind"),
        raw.get("startTimeUnixNano"),
        raw.get("endTimeUnixNano"),
        raw.get("status"),
        otlp_attrs(raw.get("attributes"), where),
        raw.get("links"),
        raw.get("events"),
        where,
        service,
        resource,
        IdCache() if ids is None else ids,
    )


def otlp_fields(  # noqa: PLR0917 - the fields of one span, as both paths read them
    raw_tid: Any,
    raw_sid: Any,
    raw_parent: Any,
    name: Any,
    kind_raw: Any,
    start_raw: Any,
    end_raw: Any,
    st: Any,
    attrs: dict[str, Any],
    links: Any,
    raw_events: Any,
    where: str,
    service: str,
    resource: dict[str, Any],
    ids: IdCache,
) -> Span:
    """One OTLP span from its fields (plain JSON values, or a ``schema.OtlpSpan``'s).
    ``ids`` caches normalised trace and parent ids per raw text (they repeat)."""
    tid = ids.traces.get(raw_tid, NO_ID) if raw_tid.__class__ is str else NO_ID
    if tid is NO_ID:
        tid = otlp_id_at(raw_tid, 32, where, "traceId")
        if raw_tid.__class__ is str:
            ids.traces[raw_tid] = tid
    if tid is None:
        raise Fail(where, "span without traceId")
    sid = otlp_id_at(raw_sid, 16, where, "spanId")
    if sid is None:
        raise Fail(where, "span without spanId")
    start_ns = ns_time(start_raw, where, "startTimeUnixNano")
    end_ns = ns_time(end_raw, where, "endTimeUnixNano")
    # proto3 JSON leaves a zero out: a span with neither time is read at 0 (Jaeger's own
    # test data has them), but one time without the other would make a span of 56 years
    if (start_ns == 0) != (end_ns == 0):
        missing = "startTimeUnixNano" if start_ns == 0 else "endTimeUnixNano"
        raise Fail(where, f"span {short(sid)}: {missing} is missing (or 0) but not the other")
    start_us = start_ns // 1000
    if not 0 <= start_us <= MAX_TIME_US:
        raise Fail(where, time_problem(sid, start_us, 0, "startTimeUnixNano", ""))
    duration = (end_ns - start_ns) // 1000
    if duration < 0:
        raise Fail(where, f"negative duration (endTimeUnixNano {end_ns} < start {start_ns})")
    if start_us > MAX_TIME_US - duration:
        problem = time_problem(sid, start_us, duration, "startTimeUnixNano", "endTimeUnixNano")
        raise Fail(where, problem)
    if type(name) is not str:
        name = "" if name is None else str(name)
    name = ids.texts.setdefault(name, name)
    kind = OTLP_KINDS.get(kind_raw, INTERNAL) if type(kind_raw) in (int, str) else INTERNAL
    status = STATUS_UNSET
    status_message = ""
    if type(st) is dict:
        code = st.get("code")
        if type(code) in (int, str):
            status = OTLP_STATUS.get(code, STATUS_UNSET)
        msg = st.get("message")
        if msg:
            status_message = str(msg)

    refs: list[Reference] = []
    parent = ids.spans.get(raw_parent, NO_ID) if raw_parent.__class__ is str else NO_ID
    if parent is NO_ID:
        parent = otlp_id_at(raw_parent, 16, where, "parentSpanId")
        if raw_parent.__class__ is str:
            ids.spans[raw_parent] = parent
    if parent is not None:
        refs.append(Reference(CHILD_OF, tid, parent))
    if links:
        if type(links) is not list:
            raise Fail(where, "links is not a list")
        for link in links:
            if type(link) is not dict:
                raise Fail(where, "link is not an object")
            ltid = otlp_id_at(link.get("traceId"), 32, where, "link traceId") or tid
            lsid = otlp_id_at(link.get("spanId"), 16, where, "link spanId")
            if lsid is None:
                continue
            lattrs = otlp_attrs(link.get("attributes"), where, "link attributes")
            ltype = CHILD_OF if lattrs.get("opentracing.ref_type") == "child_of" else FOLLOWS_FROM
            if parent is not None and ltid == tid and lsid == parent:
                refs[0].ref_type = ltype
                continue
            refs.append(Reference(ltype, ltid, lsid))

    events: list[Event] = []
    if raw_events:
        if type(raw_events) is not list:
            raise Fail(where, "events is not a list")
        for ev in raw_events:
            if type(ev) is not dict:
                raise Fail(where, "event is not an object")
            t = ev.get("timeUnixNano")
            t_us = (
                start_us if t is None else int_time(t, where, "event timeUnixNano") // 1000
            )
            ev_name = ev.get("name")
            events.append(
                Event(
                    ev_name if type(ev_name) is str and ev_name else "log",
                    t_us,
                    otlp_attrs(ev.get("attributes"), where, "event attributes"),
                )
            )
    warnings: list[str] = []
    jw = attrs.get("@jaeger@warnings")
    if jw:
        warnings.extend(str(w) for w in (jw if isinstance(jw, list) else [jw]))
    return Span(
        tid,
        sid,
        name,
        service,
        start_us,
        duration,
        kind,
        attrs,
        events,
        refs,
        status,
        status_message,
        resource,
        warnings,
    )
