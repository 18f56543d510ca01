"""The replay Jaeger's storage: traces by id in both of Jaeger's shapes, searched as Jaeger's
in-memory storage searches them, and legacy traces converted to OTLP for the api_v3 answers.

``opdiag.devtools.replay_jaeger`` serves what this holds; the conversion follows what the
query service does with spans its storage holds in the legacy model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_OTLP_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_KIND_NAMES = {number: name for name, number in _OTLP_KINDS.items()}


def _int_or_zero(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# --------------------------------------------------------------------------- the store


@dataclass(slots=True)
class _SpanKey:
    """What a search looks at in one span."""

    service: str
    name: str
    start_us: int
    duration_us: int
    tags: list[tuple[str, str]]
    kind: str = ""  # lower-case span kind, "" when unspecified (as Jaeger lists operations)


@dataclass(slots=True)
class StoredTrace:
    trace_id: str  # 32 lower-case hex
    otlp: list[dict[str, Any]] = field(default_factory=list)  # resourceSpans fragments
    legacy: list[dict[str, Any]] = field(default_factory=list)  # legacy trace objects
    spans: list[_SpanKey] = field(default_factory=list)

    @property
    def start_us(self) -> int:
        return min((s.start_us for s in self.spans), default=0)


def pad_id(raw: Any, width: int) -> str:
    return str(raw or "").strip().lower().rjust(width, "0")


def _otlp_hex(raw: Any, width: int) -> str:
    from opdiag.sources.readers import otlp_id

    try:
        return otlp_id(raw, width) or pad_id(raw, width)
    except ValueError:
        return pad_id(raw, width)


def _any_text(value: Any) -> str:
    """An OTLP AnyValue as the string a tag search compares against."""
    if not isinstance(value, dict):
        return str(value)
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return "true" if value["boolValue"] in (True, "true") else "false"
    if "intValue" in value:
        return str(int(value["intValue"]))
    if "doubleValue" in value:
        number = float(value["doubleValue"])
        return str(int(number)) if number.is_integer() else repr(number)
    if "bytesValue" in value:
        return str(value["bytesValue"])
    return json.dumps(value, separators=(",", ":"))


def _otlp_tags(attrs: Any) -> list[tuple[str, str]]:
    return [
        (str(a.get("key")), _any_text(a.get("value"))) for a in attrs or [] if isinstance(a, dict)
    ]


def _legacy_text(kv: dict[str, Any]) -> str:
    value = kv.get("value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _legacy_tags(kvs: Any) -> list[tuple[str, str]]:
    return [(str(kv.get("key")), _legacy_text(kv)) for kv in kvs or [] if isinstance(kv, dict)]


class TraceStore:
    """Traces by id, in both shapes, with Jaeger's search semantics."""

    def __init__(self) -> None:
        self.traces: dict[str, StoredTrace] = {}
        self.problems: list[str] = []

    def _trace(self, trace_id: str) -> StoredTrace:
        trace = self.traces.get(trace_id)
        if trace is None:
            trace = self.traces[trace_id] = StoredTrace(trace_id)
        return trace

    # ---- loading

    def add_document(self, doc: Any, where: str = "document") -> None:
        """Add any accepted document; unknown shapes are noted in ``problems``."""
        if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
            doc = doc["result"]
        if isinstance(doc, dict) and "resourceSpans" in doc:
            self._add_otlp(doc.get("resourceSpans") or [])
        elif isinstance(doc, dict) and isinstance(doc.get("data"), list):
            for item in doc["data"]:
                self._add_legacy_trace(item)
        elif isinstance(doc, dict) and "spans" in doc and "traceID" in doc:
            self._add_legacy_trace(doc)
        elif isinstance(doc, list) and doc and all(isinstance(d, dict) for d in doc):
            if all("spans" in d for d in doc):
                for item in doc:
                    self._add_legacy_trace(item)
            elif all("process" in d for d in doc):
                self._add_embedded_process_spans(doc)
            else:
                self.problems.append(f"{where}: a list of neither traces nor spans")
        else:
            self.problems.append(f"{where}: no spans in a shape the replay knows")

    def add_path(self, path: Path) -> None:
        """A file (``.json`` document or ``.jsonl`` lines) or a directory of them."""
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix in {".json", ".jsonl"}:
                    self.add_path(child)
            return
        text = path.read_text(encoding="utf-8")
        try:
            self.add_document(json.loads(text), str(path))
        except json.JSONDecodeError:
            for number, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    self.add_document(json.loads(line), f"{path}:{number}")
                except json.JSONDecodeError as exc:
                    self.problems.append(f"{path}:{number}: not JSON ({exc.msg})")

    def _add_otlp(self, resource_spans: Iterable[Any]) -> None:
        for rs in resource_spans:
            if not isinstance(rs, dict):
                continue
            resource = rs.get("resource") or {}
            res_tags = _otlp_tags(resource.get("attributes"))
            service = next((v for k, v in res_tags if k == "service.name"), "unknown")
            fragments: dict[str, dict[str, Any]] = {}
            for ss in rs.get("scopeSpans") or []:
                by_trace: dict[str, list[dict[str, Any]]] = {}
                scope_tags = _otlp_tags(((ss or {}).get("scope") or {}).get("attributes"))
                for span in (ss or {}).get("spans") or []:
                    trace_id = _otlp_hex(span.get("traceId"), 32)
                    by_trace.setdefault(trace_id, []).append(span)
                    key = self._otlp_key(span, service, scope_tags + res_tags)
                    self._trace(trace_id).spans.append(key)
                for trace_id, spans in by_trace.items():
                    fragment = fragments.get(trace_id)
                    if fragment is None:
                        fragment = fragments[trace_id] = {"resource": resource, "scopeSpans": []}
                        if rs.get("schemaUrl"):
                            fragment["schemaUrl"] = rs["schemaUrl"]
                    scope_spans = {k: v for k, v in ss.items() if k != "spans"}
                    scope_spans["spans"] = spans
                    fragment["scopeSpans"].append(scope_spans)
            for trace_id, fragment in fragments.items():
                self._trace(trace_id).otlp.append(fragment)

    @staticmethod
    def _otlp_key(span: dict[str, Any], service: str, res_tags: list[tuple[str, str]]) -> _SpanKey:
        start = int(span.get("startTimeUnixNano") or 0) // 1000
        end = int(span.get("endTimeUnixNano") or 0) // 1000
        tags = _otlp_tags(span.get("attributes")) + res_tags
        for event in span.get("events") or []:
            tags += _otlp_tags((event or {}).get("attributes"))
        kind = _KIND_NAMES.get(_int_or_zero(span.get("kind")), "")
        name = str(span.get("name", ""))
        return _SpanKey(service, name, start, max(0, end - start), tags, kind)

    def _add_legacy_trace(self, trace: Any) -> None:
        if not isinstance(trace, dict) or not isinstance(trace.get("spans"), list):
            self.problems.append("a legacy trace without spans")
            return
        processes = trace.get("processes") or {}
        trace_id = pad_id(trace.get("traceID"), 32)
        stored = self._trace(trace_id)
        stored.legacy.append(trace)
        for span in trace["spans"]:
            process = span.get("process") or processes.get(span.get("processID")) or {}
            own_tags = _legacy_tags(span.get("tags"))
            tags = own_tags + _legacy_tags(process.get("tags"))
            for log in span.get("logs") or []:
                tags += _legacy_tags((log or {}).get("fields"))
            kind = next((v.lower() for k, v in own_tags if k == "span.kind"), "")
            stored.spans.append(
                _SpanKey(
                    str(process.get("serviceName", "unknown")),
                    str(span.get("operationName", "")),
                    int(span.get("startTime") or 0),
                    int(span.get("duration") or 0),
                    tags,
                    kind if kind in _KIND_NAMES.values() else "",
                )
            )

    def _add_embedded_process_spans(self, spans: list[dict[str, Any]]) -> None:
        """The anonymizer/ES form: spans with an embedded ``process``; regroup per trace."""
        grouped: dict[str, dict[str, Any]] = {}
        for span in spans:
            trace = grouped.setdefault(
                pad_id(span.get("traceID"), 32),
                {"traceID": span.get("traceID"), "spans": [], "processes": {}, "warnings": None},
            )
            process = span.get("process") or {}
            pid = next((k for k, v in trace["processes"].items() if v == process), None)
            if pid is None:
                pid = f"p{len(trace['processes']) + 1}"
                trace["processes"][pid] = process
            plain = {k: v for k, v in span.items() if k != "process"}
            plain["processID"] = pid
            trace["spans"].append(plain)
        for trace in grouped.values():
            self._add_legacy_trace(trace)

    # ---- searching

    def services(self) -> list[str]:
        return sorted({s.service for t in self.traces.values() for s in t.spans})

    def operations(self, service: str) -> list[tuple[str, str]]:
        """(span name, span kind) pairs of one service, sorted."""
        spans = (s for t in self.traces.values() for s in t.spans if s.service == service)
        return sorted({(s.name, s.kind) for s in spans})

    def find(
        self,
        *,
        service: str,
        operation: str,
        start_us: int | None,
        end_us: int | None,
        tags: dict[str, str],
        depth: int,
        regex: bool,
    ) -> list[StoredTrace]:
        """Traces with one span that matches everything, most recently received first (the
        in-memory storage walks its ring backwards), at most ``depth``."""
        patterns = {k: re.compile(v) for k, v in tags.items()} if regex else None

        def value_ok(key: str, have: str) -> bool:
            if patterns is not None:
                return patterns[key].fullmatch(have) is not None
            return tags[key] == have

        def span_ok(span: _SpanKey) -> bool:
            if service and span.service != service:
                return False
            if operation and span.name != operation:
                return False
            if start_us is not None and span.start_us < start_us:
                return False
            if end_us is not None and span.start_us > end_us:
                return False
            return all(any(k == key and value_ok(key, v) for k, v in span.tags) for key in tags)

        hits = []
        for trace in reversed(self.traces.values()):
            if any(span_ok(s) for s in trace.spans):
                hits.append(trace)
                if len(hits) == depth:
                    break
        return hits

    # ---- rendering

    def resource_spans(self, trace: StoredTrace) -> list[dict[str, Any]]:
        return list(trace.otlp) + [rs for lt in trace.legacy for rs in legacy_to_otlp(lt)]

    def legacy_trace(self, trace: StoredTrace) -> dict[str, Any]:
        parts = list(trace.legacy)
        if trace.otlp:
            from opdiag.sources.otlp2jaeger import otlp_to_jaeger

            converted = otlp_to_jaeger({"resourceSpans": trace.otlp})
            parts += [
                t
                for t in converted.get("data") or []
                if pad_id(t.get("traceID"), 32) == trace.trace_id
            ]
        return parts[0] if len(parts) == 1 else _merge_legacy(parts)


def _merge_legacy(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several legacy objects of one trace as one (process keys renumbered)."""
    spans: list[dict[str, Any]] = []
    processes: dict[str, Any] = {}
    for part in parts:
        remap: dict[str, str] = {}
        for pid, process in (part.get("processes") or {}).items():
            new = next((k for k, v in processes.items() if v == process), None)
            if new is None:
                new = f"p{len(processes) + 1}"
                processes[new] = process
            remap[pid] = new
        for span in part.get("spans") or []:
            copy = dict(span)
            copy["processID"] = remap.get(span.get("processID"), span.get("processID"))
            spans.append(copy)
    return {
        "traceID": parts[0].get("traceID"),
        "spans": spans,
        "processes": processes,
        "warnings": None,
    }


# --------------------------------------------------------------------------- legacy -> OTLP


def _otlp_value(kv: dict[str, Any]) -> dict[str, Any]:
    typ, value = str(kv.get("type", "string")).lower(), kv.get("value")
    if typ == "bool":
        return {"boolValue": value in (True, "true", "True")}
    if typ == "int64":
        return {"intValue": str(value)}
    if typ == "float64":
        return {"doubleValue": float(value)}
    if typ == "binary":
        return {"bytesValue": str(value)}
    return {"stringValue": str(value)}


def _otlp_attrs(kvs: Any, skip: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    return [
        {"key": kv.get("key"), "value": _otlp_value(kv)}
        for kv in kvs or []
        if isinstance(kv, dict) and kv.get("key") not in skip
    ]


_STATUS_TAGS = frozenset({"span.kind", "otel.status_code", "otel.status_description", "error"})


def _otlp_span(span: dict[str, Any], trace_id: str) -> dict[str, Any]:
    tags = {kv.get("key"): kv.get("value") for kv in span.get("tags") or []}
    refs = [r for r in span.get("references") or [] if isinstance(r, dict)]
    parent = next((r for r in refs if r.get("refType") == "CHILD_OF"), None)
    out: dict[str, Any] = {"traceId": trace_id, "spanId": pad_id(span.get("spanID"), 16)}
    if parent is not None:
        out["parentSpanId"] = pad_id(parent.get("spanID"), 16)
    if span.get("flags"):
        out["flags"] = span["flags"]
    out["name"] = span.get("operationName", "")
    kind = _OTLP_KINDS.get(str(tags.get("span.kind", "")).lower())
    if kind:
        out["kind"] = kind
    start_ns = int(span.get("startTime") or 0) * 1000
    out["startTimeUnixNano"] = str(start_ns)
    out["endTimeUnixNano"] = str(start_ns + int(span.get("duration") or 0) * 1000)
    attrs = _otlp_attrs(span.get("tags"), _STATUS_TAGS)
    if attrs:
        out["attributes"] = attrs
    events = []
    for log in span.get("logs") or []:
        fields = (log or {}).get("fields") or []
        name = next((_legacy_text(f) for f in fields if f.get("key") == "event"), "")
        event: dict[str, Any] = {"timeUnixNano": str(int(log.get("timestamp") or 0) * 1000)}
        if name:
            event["name"] = name
        event_attrs = _otlp_attrs(fields, frozenset({"event"}))
        if event_attrs:
            event["attributes"] = event_attrs
        events.append(event)
    if events:
        out["events"] = events
    links = [
        {"traceId": pad_id(r.get("traceID"), 32), "spanId": pad_id(r.get("spanID"), 16)}
        for r in refs
        if r is not parent
    ]
    if links:
        out["links"] = links
    code = str(tags.get("otel.status_code", "")).upper()
    error = tags.get("error") in (True, "true") or code == "ERROR"
    if error or code == "OK":
        status: dict[str, Any] = {"code": 2 if error else 1}
        if tags.get("otel.status_description"):
            status["message"] = str(tags["otel.status_description"])
        out["status"] = status
    return out


def legacy_to_otlp(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """One legacy trace object as api_v3 ``resourceSpans`` (one per process), the inverse of
    Jaeger's OTLP → UI conversion, so legacy fixtures can be served over api_v3 too."""
    trace_id = pad_id(trace.get("traceID"), 32)
    processes = trace.get("processes") or {}
    by_process: dict[str, list[dict[str, Any]]] = {}
    for span in trace.get("spans") or []:
        by_process.setdefault(str(span.get("processID", "")), []).append(span)
    out = []
    for pid, spans in by_process.items():
        process = processes.get(pid) or spans[0].get("process") or {}
        attrs = [
            {
                "key": "service.name",
                "value": {"stringValue": str(process.get("serviceName", "unknown"))},
            }
        ]
        attrs += _otlp_attrs(process.get("tags"))
        out.append(
            {
                "resource": {"attributes": attrs},
                "scopeSpans": [{"scope": {}, "spans": [_otlp_span(s, trace_id) for s in spans]}],
            }
        )
    return out
