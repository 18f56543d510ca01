"""OTLP-JSON decoded into ``schema``'s structs (the typed fast path).

A span as exporters write it (hex ids, decimal-string times, a status with a code, no links
or events) is built here inline; anything else goes through ``otlp_fields``, the one
function both paths share, which checks and words every problem. Attributes are decoded
once per distinct raw text (``MEMO_LIMIT``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    any_value,
    otlp_id_at,
)

# Times as proto JSON writes them (decimal strings) or as numbers; bool and float are not.
_TIMES = (str, int)


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
        except (TypeError, ValueError):
            return iv
    return any_value({k: x for k in v.__struct_fields__ if (x := getattr(v, k)) is not UNSET})


def attrs_typed(
    attrs: list[schema.Attribute] | None, share: Callable[[str, str], str] | None = None
) -> dict[str, Any]:
    """``otlp_attrs`` of typed attributes; ``share`` keeps one string per distinct text
    value (``{}.setdefault`` of the reader's, as the legacy readers do)."""
    if not attrs:
        return {}
    if share is None:
        return {
            a.key: s
            if (v := a.value) is not None and (s := v.stringValue) is not UNSET and s is not None
            else value_typed(v)
            for a in attrs
        }
    return {
        share(k := a.key, k): (share(s, s) if s.__class__ is str else s)
        if (v := a.value) is not None and (s := v.stringValue) is not UNSET and s is not None
        else value_typed(v)
        for a in attrs
    }


def otlp_typed(rss: list[schema.ResourceSpans] | None, col: Collector) -> None:
    """``otlp_document`` over typed resource spans."""
    ids = IdCache()
    share = ids.texts.setdefault  # span names and text values, one string each
    # attributes (scope name and version added) per scope and raw text
    memos: dict[Any, dict[bytes, dict[str, Any]]] = {}
    buckets = col.spans
    last_tid: str | None = None
    bucket: list[Span] = []
    for rs in rss or ():
        resource = attrs_typed(rs.resource.attributes if rs.resource is not None else None)
        service = resource.get("service.name")
        if type(service) is not str or not service:
            service = UNKNOWN_SERVICE
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
            spans = ss.spans or []
            for k, raw in enumerate(spans):
                spans[k] = None  # type: ignore[call-overload]  # freed as the model grows
                attrs = _attributes(raw.attributes, memo, scope_name, scope_version, share)
                span = _plain_span(raw, attrs, service, resource, ids) or _span(
                    raw, attrs, service, resource, ids
                )
                tid = span.trace_id
                if tid is not last_tid:  # Collector.add, for a run of one trace's spans
                    bucket = buckets.get(tid)
                    if bucket is None:
                        bucket = buckets[tid] = []
                    last_tid = tid
                bucket.append(span)


def _attributes(
    raw: Any,
    memo: dict[bytes, dict[str, Any]],
    scope_name: Any,
    scope_version: Any,
    share: Callable[[str, str], str],
) -> dict[str, Any]:
    """A span's attributes, the scope's name and version among them unless it has its own:
    a copy of the dict decoded for the first span with the same raw text."""
    blob = bytes(raw)
    template = memo.get(blob)
    if template is not None:  # the first span's dict: nothing changes it while reading
        return template.copy()
    attrs = attrs_typed(schema.ATTRIBUTES.decode(raw), share)
    if scope_name and "otel.scope.name" not in attrs:
        attrs["otel.scope.name"] = scope_name
        if scope_version:
            attrs.setdefault("otel.scope.version", scope_version)
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[blob] = attrs
    return attrs


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
        raw.status,
        attrs,
        raw.links,
        raw.events,
        "",
        service,
        resource,
        ids,
    )


def _plain_span(
    raw: schema.OtlpSpan,
    attrs: dict[str, Any],
    service: str,
    resource: dict[str, Any],
    ids: IdCache,
) -> Span | None:
    """``otlp_fields`` for the usual span, or ``None`` when anything about it is unusual
    (then ``otlp_fields`` decides, or words the problem)."""
    if raw.links or raw.events:
        return None
    raw_tid = raw.traceId
    tid = ids.traces.get(raw_tid) if raw_tid.__class__ is str else None
    raw_sid = raw.spanId
    name = raw.name
    start_raw = raw.startTimeUnixNano
    end_raw = raw.endTimeUnixNano
    if (
        tid is None
        or name.__class__ is not str
        or raw_sid.__class__ is not str
        or len(raw_sid) != 16
        or not raw_sid.isalnum()
        or start_raw.__class__ not in _TIMES
        or end_raw.__class__ not in _TIMES
    ):
        return None
    try:
        if not int(raw_sid, 16):
            return None
        start_ns = int(start_raw)
        end_ns = int(end_raw)
    except ValueError:
        return None
    start_us = start_ns // 1000
    duration = (end_ns - start_ns) // 1000
    if duration < 0 or not 0 <= start_us <= MAX_TIME_US - duration:
        return None
    kind_raw = raw.kind
    kind = OTLP_KINDS.get(kind_raw, INTERNAL) if type(kind_raw) in (int, str) else INTERNAL
    status = STATUS_UNSET
    status_message = ""
    st = raw.status
    if st.__class__ is dict:
        code = st.get("code")
        if type(code) in (int, str):
            status = OTLP_STATUS.get(code, STATUS_UNSET)
        msg = st.get("message")
        if msg:
            status_message = str(msg)
    raw_parent = raw.parentSpanId
    if raw_parent is None or raw_parent == "":  # a root
        parent = None
    elif raw_parent.__class__ is str and len(raw_parent) == 16 and raw_parent.isalnum():
        try:  # plain hex, as for the span id
            parent = raw_parent.lower() if int(raw_parent, 16) else None
        except ValueError:
            parent = otlp_id_at(raw_parent, 16, "", "parentSpanId")
    else:
        parent = otlp_id_at(raw_parent, 16, "", "parentSpanId")
    warnings: list[str] = []
    jw = attrs.get("@jaeger@warnings")
    if jw:
        warnings.extend(str(w) for w in (jw if isinstance(jw, list) else [jw]))
    return Span(
        tid,
        raw_sid.lower(),
        ids.texts.setdefault(name, name),
        service,
        start_us,
        duration,
        kind,
        attrs,
        [],
        [] if parent is None else [Reference(CHILD_OF, tid, parent)],
        status,
        status_message,
        resource,
        warnings,
    )
