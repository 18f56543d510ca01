"""Spans as the OpenTelemetry Python SDK's ``ConsoleSpanExporter`` prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opdiag.model import CHILD_OF, FOLLOWS_FROM, INTERNAL, STATUS_UNSET, Event, Reference, Span
from opdiag.sources.reader_base import (
    LEGACY_KINDS,
    MAX_TIME_US,
    OTLP_STATUS,
    UNKNOWN_SERVICE,
    Fail,
    bounded,
    otlp_id_at,
    short,
    time_problem,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _iso_us(value: Any, where: str, name: str) -> int:
    if type(value) is not str:
        raise Fail(where, f"{name} missing or not a string: {short(value)}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Fail(where, f"{name} is not an ISO 8601 time: {short(value)}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _ONE_US


def _hex0x(raw: Any) -> Any:
    if type(raw) is str and raw[:2].lower() == "0x":
        return raw[2:]
    return raw


def console_span(doc: dict, where: str) -> Span:
    """One span as the OTel Python SDK's ``ReadableSpan.to_json()`` prints it."""
    ctx = doc["context"]
    tid = otlp_id_at(_hex0x(ctx.get("trace_id")), 32, where, "context.trace_id")
    sid = otlp_id_at(_hex0x(ctx.get("span_id")), 16, where, "context.span_id")
    if tid is None or sid is None:
        raise Fail(where, "span without context.trace_id/span_id")
    start = _iso_us(doc.get("start_time"), where, "start_time")
    end = _iso_us(doc.get("end_time"), where, "end_time")
    if end < start:
        raise Fail(where, "negative duration (end_time before start_time)")
    if not 0 <= start <= MAX_TIME_US - (end - start):
        raise Fail(where, time_problem(sid, start, end - start, "start_time", "end_time"))
    kind_raw = doc.get("kind")
    kind = INTERNAL
    if type(kind_raw) is str:
        kind = LEGACY_KINDS.get(kind_raw.rsplit(".", 1)[-1].lower(), INTERNAL)
    status = STATUS_UNSET
    status_message = ""
    st = doc.get("status")
    if type(st) is dict:
        status = OTLP_STATUS.get(str(st.get("status_code", "")).upper(), STATUS_UNSET)
        if st.get("description"):
            status_message = str(st["description"])
    attrs = doc.get("attributes") or {}
    if type(attrs) is not dict:
        raise Fail(where, "attributes is not an object")
    res = doc.get("resource") or {}
    if type(res) is not dict:
        raise Fail(where, "resource is not an object")
    resource = res.get("attributes") if type(res.get("attributes")) is dict else res
    service = resource.get("service.name")
    if type(service) is not str or not service:
        service = UNKNOWN_SERVICE

    refs: list[Reference] = []
    parent = otlp_id_at(_hex0x(doc.get("parent_id")), 16, where, "parent_id")
    if parent is not None:
        refs.append(Reference(CHILD_OF, tid, parent))
    links = doc.get("links") or ()
    if type(links) is not list and links != ():
        raise Fail(where, "links is not a list")
    for link in links:
        lctx = link.get("context") if type(link) is dict else None
        if type(lctx) is not dict:
            raise Fail(where, "link without context")
        ltid = otlp_id_at(_hex0x(lctx.get("trace_id")), 32, where, "link trace_id") or tid
        lsid = otlp_id_at(_hex0x(lctx.get("span_id")), 16, where, "link span_id")
        if lsid is not None:
            lattrs = link.get("attributes") or {}
            child = type(lattrs) is dict and lattrs.get("opentracing.ref_type") == "child_of"
            refs.append(Reference(CHILD_OF if child else FOLLOWS_FROM, ltid, lsid))
    events: list[Event] = []
    span_events = doc.get("events") or ()
    if type(span_events) is not list and span_events != ():
        raise Fail(where, "events is not a list")
    for ev in span_events:
        if type(ev) is not dict:
            raise Fail(where, "event is not an object")
        t = ev.get("timestamp")
        ev_attrs = ev.get("attributes") or {}
        events.append(
            Event(
                str(ev.get("name") or "log"),
                start if t is None else _iso_us(t, where, "event timestamp"),
                bounded(dict(ev_attrs)) if type(ev_attrs) is dict else {},
            )
        )
    return Span(
        tid,
        sid,
        str(doc.get("name") or ""),
        service,
        start,
        end - start,
        kind,
        bounded(dict(attrs)),
        events,
        refs,
        status,
        status_message,
        bounded(dict(resource)),
        [],
    )
