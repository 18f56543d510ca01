"""OTLP-JSON decoded into ``schema``'s structs (the typed fast path).

A span as exporters write it (hex ids, decimal-string times, a status with a code, no links
or events) is built here inline; anything else goes through ``otlp_fields``, the one
function both paths share, which checks and words every problem. Attributes are decoded
once per distinct raw text (``MEMO_LIMIT``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import UNSET

from opdiag.model import CHILD_OF, INTERNAL, STATUS_UNSET, Reference, Span
from opdiag.sources import schema
from opdiag.sources.otlp_json import IdCache, otlp_fields
from opdiag.sources.reader_base import (
    MAX_TIME_US,
    MEMO_LIMIT,
    OTLP_KINDS,
    OTLP_STATUS,
    UNKNOWN_SERVICE,
    Collector,
    General,
    any_value,
    bounded,
    ns_time,
    otlp_id_at,
)

NOT_SEEN: Any = object()
ZERO_ID = bytes(8)
NO_TEXT = msgspec.Raw(b"")  # equal to no decoded value
NO_ATTRIBUTES: tuple[dict[str, Any], tuple[str, ...]] = ({}, ())


def value_typed(v: schema.Value | None) -> Any:
    """``any_value`` of a typed OTLP value."""
    if v is None:
        return None
    if v.stringValue is not UNSET and v.stringValue is not None:
        return v.stringValue
    iv = v.intValue
    if iv is not UNSET:  # the next key any_value tries, and a common one
        try:
            return int(iv)
        except (TypeError, ValueError, OverflowError):
            return iv
    return any_value({k: x for k in v.__struct_fields__ if (x := getattr(v, k)) is not UNSET})


def attrs_typed(
    attrs: list[schema.Attribute] | None, share: Callable[[str, str], str] | None = None
) -> dict[str, Any]:
    """``otlp_attrs`` of typed attributes; ``share`` keeps one string per distinct text
    value (``{}.setdefault`` of the reader's, as the legacy readers do). As there, a
    ``stringValue`` is the value whenever it is present (even ``null``), unless an attribute
    has no value object: then each value is read by ``any_value``."""
    if not attrs:
        return {}
    if share is None:
        share = {}.setdefault
    out: dict[str, Any] = {}
    for a in attrs:
        v = a.value
        if v is None:  # otlp_attrs_checked's reading
            return bounded({share(k := a.key, k): value_typed(a.value) for a in attrs})
        s = v.stringValue
        if s.__class__ is str:
            value = share(s, s)
        elif s is not UNSET:
            value = s
        elif (iv := v.intValue) is not UNSET:  # the next key any_value tries, a common one
            try:
                value = int(iv)
            except (TypeError, ValueError, OverflowError):
                value = iv
        else:
            value = value_typed(v)
        out[share(k := a.key, k)] = value
    return bounded(out)


def otlp_typed(rss: list[schema.ResourceSpans] | None, col: Collector) -> None:
    """``otlp_document`` over typed resource spans. The usual span is built inline, in one
    loop as ``legacy_typed`` does; a trace's first span (its trace id is checked there) and
    a span with links or events go through ``_span``. Anything the inline code finds wrong
    makes the general path read the document (it words the problem)."""
    try:
        _spans(rss, col)
    except ValueError:  # a time that is not a number
        raise General from None


def _spans(rss: list[schema.ResourceSpans] | None, col: Collector) -> None:
    ids = IdCache()
    share = ids.texts.setdefault  # span names and text values, one string each
    traces_get = ids.traces.get
    # per scope and raw text: the attributes (scope name and version added), and the span
    # warnings they carry
    memos: dict[Any, dict[bytes, tuple[dict[str, Any], tuple[str, ...]]]] = {}
    limit = MEMO_LIMIT
    fromhex = bytes.fromhex
    # the trace id and the parent id of the span before, raw and checked: a run of spans
    # shares one trace, siblings one parent
    seen_raw_tid: Any = NOT_SEEN
    seen_tid: str | None = None
    seen_raw_parent: Any = NOT_SEEN
    seen_parent: str | None = None
    # the kind and status code of the span before, raw (compared by identity) and mapped
    seen_raw_kind: Any = NOT_SEEN
    seen_kind = INTERNAL
    seen_code: Any = NOT_SEEN
    seen_status = STATUS_UNSET
    buckets = col.spans
    last_tid: str | None = None
    bucket: list[Span] = []
    # per raw resource attributes: the resource and its service; spans of one resource share
    # the dict, which nothing changes
    resources: dict[bytes, tuple[dict[str, Any], str]] = {}
    for rs in rss or ():
        raw_resource = bytes(rs.resource.attributes) if rs.resource is not None else b"null"
        known_resource = resources.get(raw_resource)
        if known_resource is None:
            resource = attrs_typed(schema.ATTRIBUTES.decode(raw_resource))
            service = resource.get("service.name")
            if type(service) is not str or not service:
                service = UNKNOWN_SERVICE
            if len(resources) >= limit:
                resources.clear()
            known_resource = resources[raw_resource] = (resource, service)
        resource, service = known_resource
        scopes = rs.scopeSpans
        if scopes is None:
            scopes = rs.instrumentationLibrarySpans or []
        for ss in scopes:
            scope = ss.scope or ss.instrumentationLibrary or {}
            scope_name = scope.get("name") if type(scope) is dict else None
            scope_version = scope.get("version") if type(scope) is dict else None
            try:
                memo = memos.setdefault((scope_name, scope_version), {})
            except TypeError:  # a scope name that is a list or a map
                memo = {}
            memo_get = memo.get
            # the memo's answers for the last two raw texts: a poll repeats the span before,
            # a send/receive pair the one before that (``Raw`` compares without a copy)
            recent_raw = older_raw = NO_TEXT
            recent = older = NO_ATTRIBUTES
            spans = ss.spans or []
            for k, raw in enumerate(spans):
                spans[k] = None  # type: ignore[call-overload]  # freed as the model grows
                raw_attrs = raw.attributes
                if raw_attrs == recent_raw:
                    attrs = recent[0].copy()
                elif raw_attrs == older_raw:
                    recent_raw, older_raw, recent, older = older_raw, recent_raw, older, recent
                    attrs = recent[0].copy()
                else:
                    blob = bytes(raw_attrs)
                    known = memo_get(blob)
                    if known is None:
                        known = _attributes(raw_attrs, scope_name, scope_version, share)
                        if len(memo) >= limit:
                            memo.clear()
                        memo[blob] = known
                        attrs = known[0]
                    else:  # the first span's dict is the template: nothing changes it
                        attrs = known[0].copy()
                    older_raw, older, recent_raw, recent = recent_raw, recent, raw_attrs, known
                raw_tid = raw.traceId
                if raw_tid != seen_raw_tid:  # not the trace of the span before
                    seen_tid = traces_get(raw_tid) if raw_tid.__class__ is str else None
                    seen_raw_tid = raw_tid
                tid = seen_tid
                if tid is None or raw.links or raw.events:
                    span = _span(raw, attrs, service, resource, ids)
                    tid = span.trace_id
                    seen_raw_tid = NOT_SEEN  # checked now: from the cache next time
                else:
                    sid = raw.spanId
                    if sid.__class__ is str and len(sid) == 16:
                        sid_bytes = fromhex(sid)  # not hex: ValueError
                        if len(sid_bytes) != 8 or sid_bytes == ZERO_ID:  # blanks, or zero
                            raise General
                        sid = sid.lower()
                    elif (sid := _hex_id(sid)) is None:
                        raise General
                    raw_parent = raw.parentSpanId
                    if raw_parent != seen_raw_parent:  # not a sibling of the span before
                        if raw_parent.__class__ is str and len(raw_parent) == 16:
                            parent_bytes = fromhex(raw_parent)
                            if len(parent_bytes) != 8:
                                raise General
                            seen_parent = None if parent_bytes == ZERO_ID else raw_parent.lower()
                        else:
                            seen_parent = _hex_id(raw_parent)
                        seen_raw_parent = raw_parent
                    parent = seen_parent
                    start_raw = raw.startTimeUnixNano
                    end_raw = raw.endTimeUnixNano
                    start_ns = (
                        int(start_raw)
                        if start_raw.__class__ is str
                        else ns_time(start_raw, "", "startTimeUnixNano")
                    )
                    end_ns = (
                        int(end_raw)
                        if end_raw.__class__ is str
                        else ns_time(end_raw, "", "endTimeUnixNano")
                    )
                    start_us = start_ns // 1000
                    duration = (end_ns - start_ns) // 1000
                    if duration < 0 or not 0 <= start_us <= MAX_TIME_US - duration:
                        raise General
                    if (start_ns == 0) != (end_ns == 0):  # one time missing: otlp_json says
                        raise General
                    name = raw.name
                    if name.__class__ is not str:
                        name = "" if name is None else str(name)
                    kind = raw.kind
                    if kind is not seen_raw_kind:  # small ints are one object each
                        seen_raw_kind = kind
                        seen_kind = (
                            OTLP_KINDS.get(kind, INTERNAL)
                            if (kind_class := kind.__class__) is int or kind_class is str
                            else INTERNAL
                        )
                    st = raw.status
                    if st is None:
                        status = STATUS_UNSET
                        status_message = ""
                    else:
                        code = st.code
                        if code is not seen_code:
                            seen_code = code
                            seen_status = (
                                OTLP_STATUS.get(code, STATUS_UNSET)
                                if (code_class := code.__class__) is int or code_class is str
                                else STATUS_UNSET
                            )
                        status = seen_status
                        status_message = str(msg) if (msg := st.message) else ""
                    span = Span(
                        tid,
                        sid,
                        share(name, name),
                        service,
                        start_us,
                        duration,
                        seen_kind,
                        attrs,
                        [],
                        [] if parent is None else [Reference(CHILD_OF, tid, parent)],
                        status,
                        status_message,
                        resource,
                        list(recent[1]) if recent[1] else [],
                    )
                if tid is not last_tid:  # Collector.add, for a run of one trace's spans
                    bucket = buckets.get(tid)
                    if bucket is None:
                        bucket = buckets[tid] = []
                    last_tid = tid
                bucket.append(span)


def _hex_id(raw: Any) -> str | None:
    """``otlp_id_at`` of a span or parent id that is not 16 characters (base64, short hex,
    absent)."""
    return otlp_id_at(raw, 16, "", "span id")


def _attributes(
    raw: Any, scope_name: Any, scope_version: Any, share: Callable[[str, str], str]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A span's attributes, the scope's name and version among them unless it has its own,
    and the span warnings Jaeger stored in them (``@jaeger@warnings``)."""
    attrs = attrs_typed(schema.ATTRIBUTES.decode(raw), share)
    if scope_name and "otel.scope.name" not in attrs:
        attrs["otel.scope.name"] = scope_name
        if scope_version:
            attrs.setdefault("otel.scope.version", scope_version)
    jw = attrs.get("@jaeger@warnings")
    if not jw:
        return attrs, ()
    return attrs, tuple(str(w) for w in (jw if isinstance(jw, list) else [jw]))


def _span(
    raw: schema.OtlpSpan,
    attrs: dict[str, Any],
    service: str,
    resource: dict[str, Any],
    ids: IdCache,
) -> Span:
    """``otlp_fields`` of a typed span: every check, every problem worded."""
    return otlp_fields(
        raw.traceId,
        raw.spanId,
        raw.parentSpanId,
        raw.name,
        raw.kind,
        raw.startTimeUnixNano,
        raw.endTimeUnixNano,
        None if (st := raw.status) is None else {"code": st.code, "message": st.message},
        attrs,
        raw.links,
        raw.events,
        "",
        service,
        resource,
        ids,
    )
