"""OTLP-JSON → the legacy ``/api/traces`` envelope, as Jaeger's ``POST /api/transform`` does.

Why: Grafana panels, the Jaeger UI's upload and older tools read only the legacy JSON; with this
opdiag can hand out traces it received as OTLP (api_v3, file exporters) in that form.

The mapping follows research/jaeger.md §1.4 (opentelemetry-collector-contrib
``pkg/translator/jaeger`` followed by Jaeger's domain→UI converter):

* one batch per ``resourceSpans``; spans grouped into traces by trace id in order of first
  appearance; processes ``p1``, ``p2`` … per trace, identical processes shared;
* resource ``service.name`` → ``serviceName`` (``OTLPResourceNoServiceName`` when the resource
  has no attributes at all), other resource attributes → process tags;
* tags in this order: scope name/version, span attributes, ``span.kind`` (none for
  UNSPECIFIED), ``otel.status_code`` (OK/ERROR), ``error=true`` (ERROR),
  ``otel.status_description``, ``w3c.tracestate``;
* parent → first ``CHILD_OF`` reference; links → ``FOLLOWS_FROM`` unless the link attribute
  ``opentracing.ref_type`` is ``child_of`` (a link to the parent overrides the parent's type);
* events → logs with the event name as field ``event`` first (unless an ``event`` attribute
  exists);
* trace ids print as 16 hex when the upper 64 bits are zero, else 32; span ids as 16;
  ``startTime``/``duration`` are µs truncated from ns; int64 beyond ±(2^53−1) becomes a JSON
  string; bytes stay base64; arrays/maps become compact JSON strings; ``flags`` is omitted
  (the translator does not copy it).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from opdiag.errors import TraceFormatError
from opdiag.sources.readers import otlp_id

NO_SERVICE_NAME = "OTLPResourceNoServiceName"
_JS_SAFE = 2**53 - 1
_KIND_TAG = {
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
    "SPAN_KIND_INTERNAL": "internal",
    "SPAN_KIND_SERVER": "server",
    "SPAN_KIND_CLIENT": "client",
    "SPAN_KIND_PRODUCER": "producer",
    "SPAN_KIND_CONSUMER": "consumer",
}
_STATUS = {1: "OK", 2: "ERROR", "STATUS_CODE_OK": "OK", "STATUS_CODE_ERROR": "ERROR"}
_SCOPE_KEYS = {
    "scope": ("otel.scope.name", "otel.scope.version"),
    "library": ("otel.library.name", "otel.library.version"),
}


def otlp_to_jaeger(otlp: dict, *, scope_tags: str = "scope") -> dict:
    """Convert an OTLP-JSON ``TracesData`` (or an api_v3 ``{result: …}`` body) to the legacy
    envelope ``{data, total, limit, offset, errors}``. ``scope_tags="library"`` writes the
    older ``otel.library.*`` tag names instead of ``otel.scope.*``."""
    if scope_tags not in _SCOPE_KEYS:
        raise ValueError(f"scope_tags must be 'scope' or 'library', not {scope_tags!r}")
    if (
        isinstance(otlp, dict)
        and "resourceSpans" not in otlp
        and isinstance(otlp.get("result"), dict)
    ):
        otlp = otlp["result"]
    if not isinstance(otlp, dict):
        raise TraceFormatError("OTLP input is not a JSON object")
    scope_keys = _SCOPE_KEYS[scope_tags]
    traces: dict[str, dict[str, Any]] = {}
    for rs in otlp.get("resourceSpans") or ():
        if not isinstance(rs, dict):
            raise TraceFormatError("resourceSpans entry is not an object")
        process = _process((rs.get("resource") or {}).get("attributes") or [])
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or ():
            scope = ss.get("scope") or ss.get("instrumentationLibrary") or {}
            scope_tag_list = []
            if scope.get("name"):
                scope_tag_list.append(_tag(scope_keys[0], "string", scope["name"]))
            if scope.get("version"):
                scope_tag_list.append(_tag(scope_keys[1], "string", scope["version"]))
            for span in ss.get("spans") or ():
                trace_key, jspan = _span(span, scope_tag_list)
                trace = traces.setdefault(trace_key, {"spans": [], "processes": []})
                jspan["processID"] = _process_key(trace["processes"], process)
                trace["spans"].append(jspan)
    data = []
    for trace_key, trace in traces.items():
        data.append(
            {
                "traceID": trace_key,
                "spans": trace["spans"],
                "processes": {f"p{i + 1}": p for i, p in enumerate(trace["processes"])},
                "warnings": None,
            }
        )
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}


def _process_key(processes: list[dict[str, Any]], process: dict[str, Any]) -> str:
    for i, existing in enumerate(processes):
        if existing == process:
            return f"p{i + 1}"
    processes.append(process)
    return f"p{len(processes)}"


def _process(attrs: list) -> dict[str, Any]:
    if not attrs:
        return {"serviceName": NO_SERVICE_NAME, "tags": []}
    service = ""
    tags = []
    for kv in attrs:
        if kv.get("key") == "service.name":
            value = (kv.get("value") or {}).get("stringValue")
            service = value if isinstance(value, str) else ""
            continue
        tags.append(_attr_tag(kv))
    return {"serviceName": service, "tags": tags}


def _tag(key: str, typ: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": typ, "value": value}


def _attr_tag(kv: dict) -> dict[str, Any]:
    key = str(kv.get("key", ""))
    value = kv.get("value") or {}
    if "stringValue" in value:
        return _tag(key, "string", value["stringValue"])
    if "boolValue" in value:
        return _tag(key, "bool", bool(value["boolValue"]))
    if "intValue" in value:
        n = int(value["intValue"])
        return _tag(key, "int64", n if -_JS_SAFE <= n <= _JS_SAFE else str(n))
    if "doubleValue" in value:
        return _tag(key, "float64", float(value["doubleValue"]))
    if "bytesValue" in value:
        return _tag(key, "binary", _rebase64(value["bytesValue"]))
    if "arrayValue" in value or "kvlistValue" in value:
        return _tag(key, "string", _go_json(_raw(value)))
    return _tag(key, "string", "")


def _rebase64(text: Any) -> str:
    try:
        return base64.b64encode(base64.b64decode(str(text), validate=True)).decode("ascii")
    except (binascii.Error, ValueError):
        return str(text)


def _raw(value: Any) -> Any:
    """An AnyValue as pdata's ``AsRaw()`` gives it (for the JSON string of arrays/maps)."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "bytesValue" in value:
        return _rebase64(value["bytesValue"])
    if "arrayValue" in value:
        return [_raw(v) for v in (value["arrayValue"] or {}).get("values") or ()]
    if "kvlistValue" in value:
        return {
            str(kv.get("key")): _raw(kv.get("value"))
            for kv in (value["kvlistValue"] or {}).get("values") or ()
        }
    return None


def _go_json(value: Any) -> str:
    """Go's ``json.Marshal``: sorted map keys, no spaces, ``<>&`` escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jaeger_trace_id(hex32: str | None) -> str:
    """Jaeger's ``TraceID.String()``: 16 hex when the high half is zero."""
    if hex32 is None:
        return "0" * 16
    return hex32[16:] if hex32[:16] == "0" * 16 else hex32


def _ns(value: Any) -> int:
    return int(value) if value not in (None, "") else 0


def _trunc_us(ns: int) -> int:
    """Go's Duration.Microseconds(): truncation toward zero."""
    return -((-ns) // 1000) if ns < 0 else ns // 1000


def _ids(span: dict) -> tuple[str | None, str | None, str | None]:
    try:
        return (
            otlp_id(span.get("traceId"), 32),
            otlp_id(span.get("spanId"), 16),
            otlp_id(span.get("parentSpanId"), 16),
        )
    except ValueError as exc:
        raise TraceFormatError(f"span {span.get('name')!r}: bad id: {exc}") from None


def _span(span: dict, scope_tags: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    tid, sid, parent = _ids(span)
    trace_key = _jaeger_trace_id(tid)
    start_ns = _ns(span.get("startTimeUnixNano"))
    end_ns = _ns(span.get("endTimeUnixNano"))

    refs: list[dict[str, str]] = []
    if parent is not None:
        refs.append({"refType": "CHILD_OF", "traceID": trace_key, "spanID": parent})
    for link in span.get("links") or ():
        try:
            ltid = otlp_id(link.get("traceId"), 32)
            lsid = otlp_id(link.get("spanId"), 16) or "0" * 16
        except ValueError as exc:
            raise TraceFormatError(f"span {span.get('name')!r}: bad link id: {exc}") from None
        ref_type = "FOLLOWS_FROM"
        for kv in link.get("attributes") or ():
            value = (kv.get("value") or {}).get("stringValue")
            if kv.get("key") == "opentracing.ref_type" and value == "child_of":
                ref_type = "CHILD_OF"
        ltrace = _jaeger_trace_id(ltid)
        if parent is not None and ltrace == trace_key and lsid == parent:
            refs[0]["refType"] = ref_type
            continue
        refs.append({"refType": ref_type, "traceID": ltrace, "spanID": lsid})

    tags = list(scope_tags)
    tags.extend(_attr_tag(kv) for kv in span.get("attributes") or ())
    kind = _KIND_TAG.get(span.get("kind"))
    if kind:
        tags.append(_tag("span.kind", "string", kind))
    status = span.get("status") or {}
    code = _STATUS.get(status.get("code"))
    if code:
        tags.append(_tag("otel.status_code", "string", code))
    if code == "ERROR":
        tags.append(_tag("error", "bool", True))
    if status.get("message"):
        tags.append(_tag("otel.status_description", "string", status["message"]))
    if span.get("traceState"):
        tags.append(_tag("w3c.tracestate", "string", span["traceState"]))

    logs = []
    for event in span.get("events") or ():
        attrs = event.get("attributes") or ()
        fields = []
        if event.get("name") and not any(kv.get("key") == "event" for kv in attrs):
            fields.append(_tag("event", "string", event["name"]))
        fields.extend(_attr_tag(kv) for kv in attrs)
        logs.append({"timestamp": _ns(event.get("timeUnixNano")) // 1000, "fields": fields})

    return trace_key, {
        "traceID": trace_key,
        "spanID": sid or "0" * 16,
        "operationName": span.get("name") or "",
        "references": refs,
        "startTime": start_ns // 1000,
        "duration": _trunc_us(end_ns - start_ns),
        "tags": tags,
        "logs": logs,
        "processID": "",
        "warnings": None,
    }
