"""OTLP-JSON decoded into ``schema``'s structs (the typed fast path)."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from opdiag.sources import schema
from opdiag.sources.otlp_json import IdCache, otlp_fields
from opdiag.sources.reader_base import UNKNOWN_SERVICE, Collector, any_value


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


def attrs_typed(attrs: list[schema.Attribute] | None) -> dict[str, Any]:
    if not attrs:
        return {}
    return {
        a.key: s
        if (v := a.value) is not None and (s := v.stringValue) is not UNSET and s is not None
        else value_typed(v)
        for a in attrs
    }


def otlp_typed(rss: list[schema.ResourceSpans] | None, col: Collector) -> None:
    """``otlp_document`` over typed resource spans."""
    ids = IdCache()
    attributes_of = schema.ATTRIBUTES.decode
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
            spans = ss.spans or []
            for k, raw in enumerate(spans):
                spans[k] = None  # type: ignore[call-overload]  # freed as the model grows
                span = otlp_fields(
                    raw.traceId,
                    raw.spanId,
                    raw.parentSpanId,
                    raw.name,
                    raw.kind,
                    raw.startTimeUnixNano,
                    raw.endTimeUnixNano,
                    raw.status,
                    attrs_typed(attributes_of(raw.attributes)),
                    raw.links,
                    raw.events,
                    "",
                    service,
                    resource,
                    ids,
                )
                if scope_name and "otel.scope.name" not in span.attributes:
                    span.attributes["otel.scope.name"] = scope_name
                    if scope_version:
                        span.attributes.setdefault("otel.scope.version", scope_version)
                col.add(span)
