"""Format detection and parsing of every trace format opdiag accepts, into ``opdiag.model``.

Accepted, auto-detected (research/jaeger.md §1.3, §2.2; SPEC "Traces in"):

* legacy Jaeger JSON: the ``/api/traces`` envelope ``{data:[trace…], errors}``, one trace
  object ``{traceID, spans, processes}`` (also Jaeger UI's download/transformed form), a list
  of trace objects, and the anonymizer/Elasticsearch bare array of spans with an embedded
  ``process``;
* OTLP-JSON: ``{resourceSpans}``, the api_v3 body ``{result:{resourceSpans}}``, the api_v3
  error body, and files with one such object per line (OTel file exporters);
* the OpenTelemetry Python SDK ``ConsoleSpanExporter`` output: pretty-printed span objects
  written one after another.

Decisions worth knowing:

* A span whose ``processID`` is not in ``processes`` is kept, with service ``"unknown"`` and
  a span warning: losing the span would hide evidence, the service name is only a label.
* api_v3 ``404`` bodies ("No traces found", unknown trace) are an empty result, not an error;
  any other api_v3 error body, or a legacy envelope holding only ``errors``, is an error.
* Jaeger's trace-summaries, services, operations and dependency bodies hold no spans and are
  refused with a message that says what they are.
* Parsing is hand-written (no pydantic per span): a 100k-span file is a hot loop. The raw
  document handed to :func:`parse_bytes` is consumed while the model is built, so both never
  sit in memory whole at once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import msgspec
import orjson
from msgspec import UNSET

from opdiag.errors import TraceFormatError
from opdiag.gcpause import gc_paused
from opdiag.model import (
    CHILD_OF,
    CLIENT,
    CONSUMER,
    FOLLOWS_FROM,
    INTERNAL,
    PRODUCER,
    SERVER,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_UNSET,
    Event,
    Reference,
    Span,
    Trace,
    build_trace,
    normalise_span_id,
    normalise_trace_id,
)
from opdiag.sources import schema
from opdiag.sources.rawbytes import (
    DEFAULT_MAX_BYTES,
    has_surrogate_escape,
    is_utf8,
    read_regular_file,
    repair_surrogates,
    text_bytes,
    utf8_problem,
)

UNKNOWN_SERVICE = "unknown"
# Times past this (µs since the epoch: 3000-01-01) are refused as bad input.
MAX_TIME_US = 32_503_680_000_000_000

_LEGACY_KINDS = {
    "server": SERVER,
    "client": CLIENT,
    "producer": PRODUCER,
    "consumer": CONSUMER,
    "internal": INTERNAL,
}
_OTLP_KINDS: dict[Any, str] = {
    0: INTERNAL,
    1: INTERNAL,
    2: SERVER,
    3: CLIENT,
    4: PRODUCER,
    5: CONSUMER,
    "SPAN_KIND_UNSPECIFIED": INTERNAL,
    "SPAN_KIND_INTERNAL": INTERNAL,
    "SPAN_KIND_SERVER": SERVER,
    "SPAN_KIND_CLIENT": CLIENT,
    "SPAN_KIND_PRODUCER": PRODUCER,
    "SPAN_KIND_CONSUMER": CONSUMER,
}
_OTLP_STATUS: dict[Any, str] = {
    0: STATUS_UNSET,
    1: STATUS_OK,
    2: STATUS_ERROR,
    "STATUS_CODE_UNSET": STATUS_UNSET,
    "STATUS_CODE_OK": STATUS_OK,
    "STATUS_CODE_ERROR": STATUS_ERROR,
    "UNSET": STATUS_UNSET,
    "OK": STATUS_OK,
    "ERROR": STATUS_ERROR,
}
_SPAN_FIELDS = itemgetter(
    "spanID",
    "traceID",
    "startTime",
    "duration",
    "operationName",
    "tags",
    "processID",
    "references",
    "logs",
    "warnings",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MAX_KEYS_SHOWN = 8
_NO_ID: Any = object()
# A document whose first MiB is more than this share of blanks is compacted before decoding.
_SAMPLE = 1 << 20
_BLANK_SHARE = 0.2


class _Fail(Exception):
    """Raised deep in the hot loops with the place and problem; turned into a
    ``TraceFormatError`` naming the file at the entry points."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)


# --------------------------------------------------------------------------- entry points


def read_file(path: Path | str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Trace]:
    """Read and parse one trace file of any accepted format (gzip-compressed too); only
    regular files of at most ``max_bytes`` are read."""
    p = Path(path)
    return _parse_taken([read_regular_file(p, max_bytes)], str(p), max_bytes)


def parse_bytes(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[Trace]:
    """Parse the bytes of a file or HTTP body; ``source`` names it in every error."""
    return _parse_taken([data], source, max_bytes)


def _parse_taken(box: list[bytes], source: str, max_bytes: int) -> list[Trace]:
    """``parse_bytes`` of the bytes taken out of ``box``: when nothing else holds them (a file
    just read), each larger form is freed as soon as the smaller one exists (gzip inflated,
    a pretty-printed document compacted)."""
    data = text_bytes(box.pop(), source, max_bytes)
    if not data or data.isspace():  # not data.strip(): that copies a 70 MB file
        raise TraceFormatError("empty, no JSON document", source=source)
    data = _compacted(data)
    with gc_paused():
        return _parse_bytes(data, source)


def _compacted(data: bytes) -> bytes:
    """A pretty-printed document without its whitespace (every token kept as it is), or
    ``data`` itself when it is mostly tokens already or is not one JSON document (the general
    path reads it as it is). Indent 4 is 60 % whitespace: the typed decoder then reads and
    keeps slices of a third of the bytes."""
    sample = data[:_SAMPLE]
    if sample.count(b" ") + sample.count(b"\n") < len(sample) * _BLANK_SHARE:
        return data
    if not is_utf8(data):  # errors in other text name offsets of the bytes as they came
        return data
    try:
        return msgspec.json.format(data, indent=-1)
    except msgspec.DecodeError:
        return data


def _parse_bytes(data: bytes, source: str) -> list[Trace]:
    # The typed decoder refuses lone surrogate escapes wherever they are, so a document it
    # takes holds none; the others are repaired before the general path reads them.
    typed = _typed(data, source) if is_utf8(data) else None
    if typed is not None:
        return typed
    if has_surrogate_escape(data):
        data = repair_surrogates(data)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if not exc.msg.startswith("unexpected content after document"):
            problem = utf8_problem(data)
            raise TraceFormatError(problem or _json_problem(exc), source=source) from None
        collector = _Collector(source)
        try:
            for where, one in _documents(data):
                _dispatch(one, where, collector, consume=True)
        except _Fail as fail:
            raise TraceFormatError(str(fail), source=source) from None
        return collector.finish()
    collector = _Collector(source)
    try:
        _dispatch(doc, "", collector, consume=True)
    except _Fail as fail:
        raise TraceFormatError(str(fail), source=source) from None
    del doc
    return collector.finish()


def parse_document(obj: Any, source: str) -> list[Trace]:
    """Parse an already-decoded JSON document (e.g. an HTTP response); ``obj`` is not changed."""
    collector = _Collector(source)
    with gc_paused():
        try:
            _dispatch(obj, "", collector, consume=False)
        except _Fail as fail:
            raise TraceFormatError(str(fail), source=source) from None
        return collector.finish()


# --------------------------------------------------------------------------- typed path

# Well-formed legacy and OTLP documents decode straight into ``schema``'s structs, whatever
# their whitespace or key order. A document that does not fit them, or that the typed code
# below finds anything unusual in, is parsed again by the general path over plain JSON
# values: it accepts every lenient variant and words the errors, so both paths give the
# same model for what they both accept.


class _General(Exception):
    """The typed path does not take this document: use the general path."""


def _typed(data: bytes, source: str) -> list[Trace] | None:
    """The model of ``data`` by the typed path, or ``None`` when it is not the one to use."""
    try:
        doc = schema.DECODER.decode(data)
    except (*schema.Mismatch, RecursionError):  # the general path words it (or takes it)
        return None
    collector = _Collector(source)
    try:
        if doc.resourceSpans is not UNSET:
            _otlp_typed(doc.resourceSpans, collector)
        elif doc.result is not UNSET:
            _otlp_typed(doc.result.resourceSpans, collector)
        elif doc.data is not UNSET:
            if doc.errors:
                return None  # Jaeger's errors beside data become trace warnings: rare
            for trace in doc.data:
                _legacy_typed(
                    trace.spans, trace.processes, trace.traceID, trace.warnings, collector
                )
        elif doc.spans is not UNSET:
            _legacy_typed(doc.spans, doc.processes, doc.traceID, doc.warnings, collector)
        else:
            return None
    except (_General, _Fail, *schema.Mismatch, RecursionError):
        return None
    del doc
    return collector.finish()


def _tags_typed(tags: list[schema.Tag] | None) -> dict[str, Any]:
    if not tags:
        return {}
    return {
        t.key: v
        if (v := t.value).__class__ is not str or t.type == "string"
        else _lenient(t.type, v)
        for t in tags
    }


def _process_typed(proc: schema.Process) -> tuple[str, dict[str, Any]]:
    service = proc.serviceName
    resource = _tags_typed(proc.tags)
    if type(service) is not str or not service:
        service = UNKNOWN_SERVICE
    resource.setdefault("service.name", service)
    return service, resource


def _legacy_typed(
    spans: list[schema.LegacySpan],
    processes: dict[str, schema.Process] | None,
    default_tid: Any,
    trace_warnings: Any,
    col: _Collector,
) -> None:
    """``_legacy_trace`` + ``_legacy_spans`` over typed spans (same rules, same caches)."""
    procs = {pid: _process_typed(p) for pid, p in (processes or {}).items()}
    tid_cache: dict[Any, str] = {}
    sid_cache: dict[str, str] = {}
    share = {}.setdefault
    touched: set[str] = set()
    buckets = col.spans
    last_tid: str | None = None
    bucket: list[Span] = []
    tags_of, logs_of = schema.TAGS.decode, schema.LOGS.decode
    for i, raw in enumerate(spans):
        spans[i] = None  # type: ignore[call-overload]  # freed as the model grows
        sid = raw.spanID
        raw_tid = default_tid if raw.traceID is UNSET else raw.traceID
        start = raw.startTime
        duration = raw.duration
        if not sid or duration < 0 or not 0 <= start <= MAX_TIME_US - duration:
            raise _General
        tid = tid_cache.get(raw_tid) if type(raw_tid) is str else None
        if tid is None:
            if type(raw_tid) is not str or not raw_tid.strip():
                raise _General
            tid = tid_cache[raw_tid] = normalise_trace_id(raw_tid)
        name = raw.operationName
        name = "" if name is None else share(name, name)
        tags = tags_of(raw.tags) if len(raw.tags) > 2 else None
        attrs = (
            {
                t.key: v
                if (v := t.value).__class__ is not str
                else share(v, v)
                if t.type == "string"
                else _lenient(t.type, v)
                for t in tags
            }
            if tags
            else {}
        )
        span_warnings: list[str] = []
        pid = raw.processID
        proc = procs.get(pid) if pid is not None else None
        if proc is None:
            if raw.process is not None:
                proc = _process_typed(raw.process)
            else:
                proc = (UNKNOWN_SERVICE, {})
                span_warnings.append(
                    f"processID {_short(pid)} is not in the trace's processes; "
                    f"service set to {UNKNOWN_SERVICE!r}"
                )
        kind, status, status_message = _legacy_kind_status(attrs)

        refs: list[Reference] = []
        if raw.references:
            for r in raw.references:
                rtid = raw_tid if r.traceID is UNSET else r.traceID
                ntid = tid_cache.get(rtid)
                if ntid is None:
                    if not rtid.strip():
                        raise _General
                    ntid = tid_cache[rtid] = normalise_trace_id(rtid)
                rtype = r.refType
                if rtype == "CHILD_OF":  # the usual spelling, without upper()
                    rtype = CHILD_OF
                elif type(rtype) is str:
                    rtype = share(upper := rtype.upper(), upper)
                else:
                    rtype = CHILD_OF
                rsid = r.spanID
                if type(rsid) is not str or not rsid.strip():
                    raise _General
                nsid = sid_cache.get(rsid)
                if nsid is None:
                    nsid = sid_cache[rsid] = rsid.strip().lower().rjust(16, "0")
                refs.append(Reference(rtype, ntid, nsid))
        parent = raw.parentSpanID
        if type(parent) is str and parent.strip("0 "):
            pid16 = parent.strip().lower().rjust(16, "0")
            if not any(ref.span_id == pid16 for ref in refs):
                refs.insert(0, Reference(CHILD_OF, tid, pid16))

        events: list[Event] = []
        logs = logs_of(raw.logs) if len(raw.logs) > 2 else None  # not "[]"
        if logs:
            for lg in logs:
                fields = _tags_typed(lg.fields)
                ev = fields.get("event")
                ts = start if lg.timestamp is UNSET else lg.timestamp
                events.append(Event(ev if type(ev) is str and ev else "log", ts, fields))
        raw_warnings = raw.warnings
        if raw_warnings and type(raw_warnings) is list:
            span_warnings.extend(str(w) for w in raw_warnings)

        span = Span(
            tid,
            sid.strip().lower().rjust(16, "0"),
            name,
            proc[0],
            start,
            duration,
            kind,
            attrs,
            events,
            refs,
            status,
            status_message,
            proc[1],
            span_warnings,
        )
        if tid is not last_tid:
            touched.add(tid)
            found = buckets.get(tid)
            if found is None:
                found = buckets[tid] = []
            bucket, last_tid = found, tid
        bucket.append(span)
    if trace_warnings and type(trace_warnings) is list:
        for tid in touched:
            for w in trace_warnings:
                col.warn(tid, str(w))


def _value_typed(v: schema.Value | None) -> Any:
    """``_any_value`` of a typed OTLP value."""
    if v is None:
        return None
    if v.stringValue is not UNSET and v.stringValue is not None:
        return v.stringValue
    iv = v.intValue
    if iv is not UNSET:  # the next key _any_value tries, and a common one
        try:
            return int(iv)
        except (TypeError, ValueError):
            return iv
    return _any_value({k: x for k in v.__struct_fields__ if (x := getattr(v, k)) is not UNSET})


def _attrs_typed(attrs: list[schema.Attribute] | None) -> dict[str, Any]:
    if not attrs:
        return {}
    return {
        a.key: s
        if (v := a.value) is not None and (s := v.stringValue) is not UNSET and s is not None
        else _value_typed(v)
        for a in attrs
    }


def _otlp_typed(rss: list[schema.ResourceSpans] | None, col: _Collector) -> None:
    """``_otlp`` over typed resource spans."""
    ids = _IdCache()
    attributes_of = schema.ATTRIBUTES.decode
    for rs in rss or ():
        resource = _attrs_typed(rs.resource.attributes if rs.resource is not None else None)
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
                span = _otlp_fields(
                    raw.traceId,
                    raw.spanId,
                    raw.parentSpanId,
                    raw.name,
                    raw.kind,
                    raw.startTimeUnixNano,
                    raw.endTimeUnixNano,
                    raw.status,
                    _attrs_typed(attributes_of(raw.attributes)),
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


# --------------------------------------------------------------------------- documents


def _json_problem(exc: orjson.JSONDecodeError, line: int | None = None) -> str:
    where = f"line {exc.lineno if line is None else line} column {exc.colno}"
    if exc.pos >= len(exc.doc) - 1 or "end of data" in exc.msg or "EOF" in exc.msg:
        return f"not valid JSON, the file looks truncated ({exc.msg} at {where})"
    return f"not valid JSON ({exc.msg} at {where})"


def _documents(data: bytes) -> Iterator[tuple[str, Any]]:
    """Several JSON documents in one file: one per line (OTel file exporters) or
    pretty-printed ones one after another (OTel ConsoleSpanExporter)."""
    lines = data.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    try:
        first_doc = orjson.loads(lines[first])
    except orjson.JSONDecodeError:
        first_doc = None
    if isinstance(first_doc, dict | list):
        for i in range(first, len(lines)):
            line = lines[i]
            lines[i] = b""
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise _Fail("", _json_problem(exc, i + 1)) from None
            yield f"line {i + 1}", doc
        return
    del lines
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Fail("", f"not UTF-8 text (byte {exc.start})") from None
    decoder = json.JSONDecoder()
    pos, n, index = 0, len(text), 0
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            return
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except RecursionError:
            raise _Fail(f"document {index + 1}", "JSON nested too deeply") from None
        except json.JSONDecodeError as exc:
            truncated = " (the file looks truncated)" if exc.pos >= n - 1 else ""
            raise _Fail(
                "", f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}){truncated}"
            ) from None
        yield f"document {index + 1}", doc
        index += 1


def _keys_of(obj: dict) -> str:
    keys = [str(k)[:40] for k in list(obj)[:_MAX_KEYS_SHOWN]]
    more = ", …" if len(obj) > _MAX_KEYS_SHOWN else ""
    return ", ".join(repr(k) for k in keys) + more if keys else "none"


def _at(where: str, sub: str) -> str:
    return f"{where}.{sub}" if where else sub


def _dispatch(doc: Any, where: str, col: _Collector, *, consume: bool) -> None:
    """Detect the format of one decoded document and feed its spans to ``col``."""
    if isinstance(doc, list):
        _dispatch_list(doc, where, col, consume=consume)
        return
    if not isinstance(doc, dict):
        raise _Fail(where, f"not a Jaeger or OTLP trace document: a JSON {type(doc).__name__}")
    if "resourceSpans" in doc:
        _otlp(doc, where, col, consume=consume)
    elif "result" in doc and isinstance(doc["result"], dict):
        _otlp(doc["result"], _at(where, "result"), col, consume=consume)
    elif "data" in doc:
        _legacy_envelope(doc, where, col, consume=consume)
    elif "spans" in doc:
        _legacy_trace(doc, where, col, consume=consume)
    elif "spanID" in doc:
        _legacy_spans([doc], where, col, consume=False)
    elif isinstance(doc.get("context"), dict) and "name" in doc:
        col.add(_console_span(doc, where))
    elif "error" in doc and isinstance(doc["error"], dict):
        _v3_error(doc["error"], where)
    elif "summaries" in doc:
        raise _Fail(where, "a Jaeger trace-summaries response holds no spans, only summaries")
    elif "services" in doc or "operations" in doc:
        what = "services" if "services" in doc else "operations"
        raise _Fail(where, f"a Jaeger {what} response holds no spans")
    else:
        raise _Fail(where, f"not a Jaeger or OTLP trace document: top-level keys {_keys_of(doc)}")


def _dispatch_list(doc: list, where: str, col: _Collector, *, consume: bool) -> None:
    if not doc:
        return
    first = doc[0]
    if not isinstance(first, dict):
        raise _Fail(
            where,
            f"not a Jaeger or OTLP trace document: a JSON array of {type(first).__name__}",
        )
    if "spanID" in first:
        _legacy_spans(doc, where, col, consume=consume)
    elif "parent" in first and "child" in first:
        raise _Fail(where, "Jaeger service dependency links (parent/child/callCount), not traces")
    else:
        for i in range(len(doc)):
            item = doc[i]
            if consume:
                doc[i] = None
            _dispatch(item, f"{where}[{i}]", col, consume=consume)


def _v3_error(err: dict, where: str) -> None:
    code = err.get("httpCode", err.get("code"))
    message = str(err.get("message", ""))[:500]
    if code == 404:
        return
    raise _Fail(where, f"Jaeger answered an error instead of traces: HTTP {code}: {message}")


# --------------------------------------------------------------------------- collector


class _Collector:
    """Spans grouped by trace id, plus trace-level warnings; built into ``Trace`` at the end."""

    __slots__ = ("source", "spans", "warnings")

    def __init__(self, source: str) -> None:
        self.source = source
        self.spans: dict[str, list[Span]] = {}
        self.warnings: dict[str, list[str]] = {}

    def add(self, span: Span) -> None:
        bucket = self.spans.get(span.trace_id)
        if bucket is None:
            self.spans[span.trace_id] = [span]
        else:
            bucket.append(span)

    def warn(self, trace_id: str, message: str) -> None:
        self.warnings.setdefault(trace_id, []).append(message)

    def finish(self) -> list[Trace]:
        traces = [
            build_trace(tid, spans, sources=[self.source], warnings=self.warnings.get(tid, ()))
            for tid, spans in self.spans.items()
        ]
        self.spans = {}
        return traces


# --------------------------------------------------------------------------- ids and values


def _trace_id(raw: Any, where: str) -> str:
    if type(raw) is not str or not raw.strip():
        raise _Fail(where, f"trace id missing or not a string: {_short(raw)}")
    return normalise_trace_id(raw)


def _span_id(raw: Any, where: str, what: str = "span id") -> str:
    if type(raw) is not str or not raw.strip():
        raise _Fail(where, f"{what} missing or not a string: {_short(raw)}")
    return normalise_span_id(raw)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _int_time(value: Any, where: str, name: str) -> int:
    """Integer µs (legacy) or ns (OTLP, often a decimal string); anything else is refused."""
    if type(value) is int:
        return value
    if type(value) is str:
        try:
            return int(value.strip())
        except ValueError:
            pass
    elif type(value) is float and value.is_integer():
        return int(value)
    if value is None:
        raise _Fail(where, f"{name} is missing")
    raise _Fail(where, f"{name} is not an integer: {_short(value)}")


def _time_problem(span_id: Any, start_us: int, duration_us: int, start: str, end: str) -> str:
    """Why a span's times are out of range, naming the span and the field: 10^37 ms or a
    start past the year 3000 is a broken exporter, not an operation to diagnose."""
    if start_us < 0:
        return f"span {_short(span_id)}: {start} {start_us} µs is before 1970"
    if start_us > MAX_TIME_US:
        return f"span {_short(span_id)}: {start} {start_us} µs is after the year 3000"
    return (
        f"span {_short(span_id)}: {end} out of range, the span would end after the year 3000 "
        f"(duration {duration_us} µs)"
    )


def _lenient(typ: Any, value: str) -> Any:
    """Legacy tag values that arrive as strings although the type says otherwise."""
    if typ == "bool":
        low = value.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
        return value
    if typ == "int64":
        try:
            return int(value)
        except ValueError:
            return value
    if typ == "float64":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _kv_dict(tags: Any, where: str, what: str, index: int | None = None) -> dict[str, Any]:
    """Legacy ``[{key, type, value}]`` → dict; later duplicates win.

    One dict comprehension for the common well-formed case (this is the hottest line of a
    100k-span file); anything unusual falls back to the checking loop, which names the
    problem."""
    if not tags:
        return {}
    try:
        out = {
            kv["key"]: v
            if (v := kv["value"]).__class__ is not str or kv["type"] == "string"
            else _lenient(kv["type"], v)
            for kv in tags
        }
    except (KeyError, TypeError):
        return _kv_dict_checked(tags, _idx(where, index), what)
    for key in out:
        if key.__class__ is not str:
            return _kv_dict_checked(tags, _idx(where, index), what)
    return out


def _idx(where: str, index: int | None) -> str:
    return where if index is None else f"{where}[{index}]"


def _kv_dict_checked(tags: Any, where: str, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if type(tags) is not list:
        raise _Fail(where, f"{what} is not a list")
    for kv in tags:
        if type(kv) is not dict:
            raise _Fail(where, f"{what} holds a non-object entry {_short(kv)}")
        key = kv.get("key")
        if type(key) is not str:
            raise _Fail(where, f"{what} entry without a string key: {_short(kv)}")
        value = kv.get("value")
        if type(value) is str:
            typ = kv.get("type")
            if typ is not None and typ != "string":
                value = _lenient(typ, value)
        out[key] = value
    return out


def _any_value(value: Any) -> Any:
    """OTLP ``AnyValue`` → plain Python value (intValue arrives as a string)."""
    if type(value) is not dict:
        return value
    s = value.get("stringValue")
    if s is not None:
        return s
    if "intValue" in value:
        iv = value["intValue"]
        try:
            return int(iv)
        except (TypeError, ValueError):
            return iv
    if "boolValue" in value:
        b = value["boolValue"]
        return b.strip().lower() == "true" if type(b) is str else bool(b)
    if "doubleValue" in value:
        d = value["doubleValue"]
        try:
            return float(d)
        except (TypeError, ValueError):
            return d
    if "bytesValue" in value:
        return value["bytesValue"]
    if "arrayValue" in value:
        arr = value["arrayValue"] or {}
        return [_any_value(v) for v in (arr.get("values") or ())] if type(arr) is dict else []
    if "kvlistValue" in value:
        kvl = value["kvlistValue"] or {}
        vals = kvl.get("values") or () if type(kvl) is dict else ()
        return {str(kv.get("key")): _any_value(kv.get("value")) for kv in vals if type(kv) is dict}
    return None


def _otlp_attrs(attrs: Any, where: str, what: str = "attributes") -> dict[str, Any]:
    """OTLP ``[{key, value: AnyValue}]`` → dict; a comprehension for the common case, the
    checking loop (which names the problem) for anything unusual."""
    if not attrs:
        return {}
    if type(attrs) is dict:  # some hand-written files use a plain map
        return dict(attrs)
    try:
        out = {
            kv["key"]: v["stringValue"] if "stringValue" in (v := kv["value"]) else _any_value(v)
            for kv in attrs
        }
    except (KeyError, TypeError):
        return _otlp_attrs_checked(attrs, where, what)
    for key in out:
        if key.__class__ is not str:
            return _otlp_attrs_checked(attrs, where, what)
    return out


def _otlp_attrs_checked(attrs: Any, where: str, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if type(attrs) is not list:
        raise _Fail(where, f"{what} is not a list")
    for kv in attrs:
        if type(kv) is not dict or type(kv.get("key")) is not str:
            raise _Fail(where, f"{what} entry without a string key: {_short(kv)}")
        out[kv["key"]] = _any_value(kv.get("value"))
    return out


def _ns_time(value: Any, where: str, name: str) -> int:
    """OTLP nanoseconds: a decimal string (proto JSON), an int, or absent (0)."""
    if value.__class__ is str:
        try:
            return int(value)
        except ValueError:
            pass
    elif value.__class__ is int:
        return value
    elif value is None:
        return 0
    return _int_time(value, where, name)


def otlp_id(raw: Any, width: int) -> str | None:
    """An OTLP trace (width 32) or span (16) id as lower-case hex: hex as Jaeger and the
    OTel collector write it, or base64 as protobuf's default JSON mapping does. ``None``
    for an absent or all-zero id, ``ValueError`` for anything else."""
    if raw is None or raw == "":
        return None
    if type(raw) is not str:
        raise ValueError(f"not a string: {_short(raw)}")
    s = raw.strip()
    if len(s) <= width and s.isalnum():
        try:
            if int(s, 16) == 0:
                return None
            return s.lower().rjust(width, "0")
        except ValueError:
            pass
    try:
        raw_bytes = base64.b64decode(s + "=" * (-len(s) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        try:
            raw_bytes = base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"neither hex nor base64: {_short(raw)}") from None
    if len(raw_bytes) != width // 2:
        raise ValueError(f"{len(raw_bytes)} bytes, expected {width // 2}: {_short(raw)}")
    if not any(raw_bytes):
        return None
    return raw_bytes.hex()


def _otlp_id_at(raw: Any, width: int, where: str, what: str) -> str | None:
    if raw.__class__ is str and len(raw) == width and raw.isalnum():  # fast path: plain hex
        try:
            return raw.lower() if int(raw, 16) else None
        except ValueError:
            pass
    try:
        return otlp_id(raw, width)
    except ValueError as exc:
        raise _Fail(where, f"{what} {exc}") from None


# --------------------------------------------------------------------------- legacy Jaeger


def _legacy_envelope(doc: dict, where: str, col: _Collector, *, consume: bool) -> None:
    data = doc.get("data")
    errors = doc.get("errors") or []
    messages = [_error_text(e) for e in errors] if isinstance(errors, list) else [str(errors)]
    if data is None or data == []:
        if messages:
            raise _Fail(where, "Jaeger answered errors instead of traces: " + "; ".join(messages))
        return
    if not isinstance(data, list):
        raise _Fail(_at(where, "data"), f"not a list of traces but a {type(data).__name__}")
    if data and not isinstance(data[0], dict):
        raise _Fail(
            _at(where, "data"),
            "a list of names (a services/operations response), not traces",
        )
    before = {tid: len(spans) for tid, spans in col.spans.items()} if messages else {}
    _dispatch_list(data, _at(where, "data"), col, consume=consume)
    for tid, spans in col.spans.items() if messages else ():
        if len(spans) != before.get(tid, 0):
            for message in messages:
                col.warn(tid, f"Jaeger reported: {message}")


def _error_text(err: Any) -> str:
    if isinstance(err, dict):
        text = str(err.get("msg") or err.get("message") or err)
        if err.get("traceID"):
            text += f" (traceID {err['traceID']})"
        if err.get("code"):
            text = f"{err['code']} {text}"
        return text[:500]
    return str(err)[:500]


def _process(raw: Any, where: str) -> tuple[str, dict[str, Any]]:
    if type(raw) is not dict:
        raise _Fail(where, "process is not an object")
    service = raw.get("serviceName")
    resource = _kv_dict(raw.get("tags"), where, "process tags")
    if type(service) is not str or not service:
        service = UNKNOWN_SERVICE
    resource.setdefault("service.name", service)
    return service, resource


def _legacy_trace(doc: dict, where: str, col: _Collector, *, consume: bool) -> None:
    spans: Any = doc.get("spans")
    if spans is None:
        spans = []
    if type(spans) is not list:
        raise _Fail(_at(where, "spans"), "not a list")
    processes = doc.get("processes") or {}
    if type(processes) is not dict:
        raise _Fail(_at(where, "processes"), "not an object")
    procs = {pid: _process(p, _at(where, f"processes.{pid}")) for pid, p in processes.items()}
    touched = _legacy_spans(
        spans,
        _at(where, "spans"),
        col,
        consume=consume,
        procs=procs,
        default_tid=doc.get("traceID"),
    )
    warnings = doc.get("warnings")
    if warnings and type(warnings) is list:
        for tid in touched:
            for w in warnings:
                col.warn(tid, str(w))


def _legacy_kind_status(attrs: dict[str, Any]) -> tuple[str, str, str]:
    """Span kind, status and status message from legacy tags (``span.kind``,
    ``otel.status_code``, ``otel.status_description``)."""
    kind_tag = attrs.get("span.kind")
    if type(kind_tag) is str:
        kind = _LEGACY_KINDS.get(kind_tag) or _LEGACY_KINDS.get(kind_tag.lower(), INTERNAL)
    else:
        kind = INTERNAL
    code = attrs.get("otel.status_code")
    if code is None:
        return kind, STATUS_UNSET, ""
    status = STATUS_UNSET
    if code == "OK":  # the usual spelling, without str().upper()
        status = STATUS_OK
    else:
        code_s = str(code).upper()
        if code_s == "ERROR":
            status = STATUS_ERROR
        elif code_s == "OK":
            status = STATUS_OK
    desc = attrs.get("otel.status_description")
    return kind, status, "" if desc is None else str(desc)


def _legacy_spans(
    spans: Iterable[Any],
    where: str,
    col: _Collector,
    *,
    consume: bool,
    procs: dict[str, tuple[str, dict[str, Any]]] | None = None,
    default_tid: Any = None,
) -> set[str]:
    """The hot loop: one pass, plain dict lookups, ids normalised with small caches (parent
    ids repeat: one string per parent). Returns the trace ids the spans went to."""
    procs = procs or {}
    tid_cache: dict[Any, str] = {}
    sid_cache: dict[str, str] = {}
    # One string object per distinct text value: tag values and names repeat across
    # thousands of spans, and a shared string is ~60 bytes not kept per span.
    share = {}.setdefault
    touched: set[str] = set()
    buckets = col.spans
    last_tid: str | None = None
    bucket: list[Span] = []
    for i, raw in enumerate(spans):
        if consume:
            spans[i] = None  # type: ignore[index]  # consume is only set for lists
        if type(raw) is not dict:
            raise _Fail(f"{where}[{i}]", "span is not an object")
        try:  # every key Jaeger always writes, in one call
            sid, raw_tid, start, duration, name, tags, pid, raw_refs, logs, raw_warnings = (
                _SPAN_FIELDS(raw)
            )
        except KeyError:  # something is missing: look each up, missing ones are None
            sid = raw.get("spanID")
            raw_tid = raw.get("traceID", default_tid)
            start = raw.get("startTime")
            duration = raw.get("duration")
            name = raw.get("operationName")
            tags = raw.get("tags")
            pid = raw.get("processID")
            raw_refs = raw.get("references")
            logs = raw.get("logs")
            raw_warnings = raw.get("warnings")
        if type(sid) is not str or not sid:
            raise _Fail(f"{where}[{i}]", "span without spanID")
        tid = tid_cache.get(raw_tid) if type(raw_tid) is str else None
        if tid is None:
            tid = _trace_id(raw_tid, f"{where}[{i}]")
            tid_cache[raw_tid] = tid
        if type(start) is not int:
            start = _int_time(start, f"{where}[{i}]", "startTime")
        if type(duration) is not int:
            duration = _int_time(duration, f"{where}[{i}]", "duration")
        if duration < 0:
            raise _Fail(f"{where}[{i}]", f"negative duration {duration}")
        if not 0 <= start <= MAX_TIME_US - duration:
            raise _Fail(
                f"{where}[{i}]", _time_problem(sid, start, duration, "startTime", "duration")
            )
        name = share(name, name) if type(name) is str else "" if name is None else str(name)
        if tags:
            # _kv_dict inlined: this is the hottest line of a 100k-span file
            try:
                attrs = {
                    kv["key"]: v
                    if (v := kv["value"]).__class__ is not str
                    else share(v, v)
                    if kv["type"] == "string"
                    else _lenient(kv["type"], v)
                    for kv in tags
                }
            except (KeyError, TypeError):
                attrs = _kv_dict_checked(tags, f"{where}[{i}]", "tags")
            else:
                for key in attrs:
                    if key.__class__ is not str:
                        attrs = _kv_dict_checked(tags, f"{where}[{i}]", "tags")
                        break
        else:
            attrs = {}

        span_warnings: list[str] = []
        proc = procs.get(pid) if type(pid) is str else None
        if proc is None:
            embedded = raw.get("process")
            if embedded is not None:
                proc = _process(embedded, f"{where}[{i}].process")
            else:
                proc = (UNKNOWN_SERVICE, {})
                span_warnings.append(
                    f"processID {_short(pid)} is not in the trace's processes; "
                    f"service set to {UNKNOWN_SERVICE!r}"
                )

        kind, status, status_message = _legacy_kind_status(attrs)

        refs: list[Reference] = []
        if raw_refs:
            if type(raw_refs) is not list:
                raise _Fail(f"{where}[{i}]", "references is not a list")
            for r in raw_refs:
                if type(r) is not dict:
                    raise _Fail(f"{where}[{i}]", "reference is not an object")
                rtid = r.get("traceID", raw_tid)
                ntid = tid_cache.get(rtid) if type(rtid) is str else None
                if ntid is None:
                    ntid = _trace_id(rtid, f"{where}[{i}].references")
                    tid_cache[rtid] = ntid
                rtype = r.get("refType")
                rtype = share(upper := rtype.upper(), upper) if type(rtype) is str else CHILD_OF
                rsid = r.get("spanID")
                if type(rsid) is not str or not rsid:
                    rsid = _span_id(rsid, f"{where}[{i}].references", "reference spanID")
                nsid = sid_cache.get(rsid)
                if nsid is None:
                    nsid = sid_cache[rsid] = rsid.strip().lower().rjust(16, "0")
                refs.append(Reference(rtype, ntid, nsid))
        parent = raw.get("parentSpanID")
        if type(parent) is str and parent.strip("0 "):
            pid16 = parent.strip().lower().rjust(16, "0")
            if not any(ref.span_id == pid16 for ref in refs):
                refs.insert(0, Reference(CHILD_OF, tid, pid16))

        events: list[Event] = []
        if logs:
            if type(logs) is not list:
                raise _Fail(f"{where}[{i}]", "logs is not a list")
            for lg in logs:
                if type(lg) is not dict:
                    raise _Fail(f"{where}[{i}]", "log entry is not an object")
                fields = _kv_dict(lg.get("fields"), where, "log fields", i)
                ev = fields.get("event")
                ts = lg.get("timestamp", start)
                if type(ts) is not int:
                    ts = _int_time(ts, f"{where}[{i}]", "log timestamp")
                events.append(Event(ev if type(ev) is str and ev else "log", ts, fields))

        if raw_warnings and type(raw_warnings) is list:
            span_warnings.extend(str(w) for w in raw_warnings)

        span = Span(
            tid,
            sid.strip().lower().rjust(16, "0"),
            name,
            proc[0],
            start,
            duration,
            kind,
            attrs,
            events,
            refs,
            status,
            status_message,
            proc[1],
            span_warnings,
        )
        if tid is not last_tid:
            touched.add(tid)
            found = buckets.get(tid)
            if found is None:
                found = buckets[tid] = []
            bucket, last_tid = found, tid
        bucket.append(span)
    return touched


# --------------------------------------------------------------------------- OTLP-JSON


def _otlp(doc: dict, where: str, col: _Collector, *, consume: bool) -> None:
    ids = _IdCache()
    rss = doc.get("resourceSpans")
    if rss is None:
        return
    if type(rss) is not list:
        raise _Fail(_at(where, "resourceSpans"), "not a list")
    for i in range(len(rss)):
        rs = rss[i]
        if consume:
            rss[i] = None
        here = _at(where, f"resourceSpans[{i}]")
        if type(rs) is not dict:
            raise _Fail(here, "not an object")
        resource_obj = rs.get("resource") or {}
        resource = _otlp_attrs(
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
            raise _Fail(_at(here, "scopeSpans"), "not a list")
        for j, ss in enumerate(scopes):
            sw = f"{here}.scopeSpans[{j}]"
            if type(ss) is not dict:
                raise _Fail(sw, "not an object")
            scope = ss.get("scope") or ss.get("instrumentationLibrary") or {}
            scope_name = scope.get("name") if type(scope) is dict else None
            scope_version = scope.get("version") if type(scope) is dict else None
            spans = ss.get("spans") or []
            if type(spans) is not list:
                raise _Fail(_at(sw, "spans"), "not a list")
            for k in range(len(spans)):
                raw = spans[k]
                if consume:
                    spans[k] = None
                span = _otlp_span(raw, f"{sw}.spans[{k}]", service, resource, ids)
                if scope_name and "otel.scope.name" not in span.attributes:
                    span.attributes["otel.scope.name"] = scope_name
                    if scope_version:
                        span.attributes.setdefault("otel.scope.version", scope_version)
                col.add(span)


class _IdCache:
    """Normalised OTLP trace ids and parent span ids per raw text: a trace's spans repeat
    one trace id, and siblings one parent."""

    __slots__ = ("spans", "traces")

    def __init__(self) -> None:
        self.traces: dict[str, str | None] = {}
        self.spans: dict[str, str | None] = {}


def _otlp_span(
    raw: Any,
    where: str,
    service: str,
    resource: dict[str, Any],
    ids: _IdCache | None = None,
) -> Span:
    """One OTLP span from its plain-JSON object."""
    if type(raw) is not dict:
        raise _Fail(where, "span is not an object")
    return _otlp_fields(
        raw.get("traceId"),
        raw.get("spanId"),
        raw.get("parentSpanId"),
        raw.get("name"),
        raw.get("kind"),
        raw.get("startTimeUnixNano"),
        raw.get("endTimeUnixNano"),
        raw.get("status"),
        _otlp_attrs(raw.get("attributes"), where),
        raw.get("links"),
        raw.get("events"),
        where,
        service,
        resource,
        _IdCache() if ids is None else ids,
    )


def _otlp_fields(  # noqa: PLR0917 - the fields of one span, as both paths read them
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
    ids: _IdCache,
) -> Span:
    """One OTLP span from its fields (plain JSON values, or a ``schema.OtlpSpan``'s).
    ``ids`` caches normalised trace and parent ids per raw text (they repeat)."""
    tid = ids.traces.get(raw_tid, _NO_ID) if raw_tid.__class__ is str else _NO_ID
    if tid is _NO_ID:
        tid = _otlp_id_at(raw_tid, 32, where, "traceId")
        if raw_tid.__class__ is str:
            ids.traces[raw_tid] = tid
    if tid is None:
        raise _Fail(where, "span without traceId")
    sid = _otlp_id_at(raw_sid, 16, where, "spanId")
    if sid is None:
        raise _Fail(where, "span without spanId")
    start_ns = _ns_time(start_raw, where, "startTimeUnixNano")
    end_ns = _ns_time(end_raw, where, "endTimeUnixNano")
    duration = (end_ns - start_ns) // 1000
    if duration < 0:
        raise _Fail(where, f"negative duration (endTimeUnixNano {end_ns} < start {start_ns})")
    if not 0 <= start_ns // 1000 <= MAX_TIME_US - duration:
        problem = _time_problem(
            sid, start_ns // 1000, duration, "startTimeUnixNano", "endTimeUnixNano"
        )
        raise _Fail(where, problem)
    if type(name) is not str:
        name = "" if name is None else str(name)
    kind = _OTLP_KINDS.get(kind_raw, INTERNAL) if type(kind_raw) in (int, str) else INTERNAL
    status = STATUS_UNSET
    status_message = ""
    if type(st) is dict:
        code = st.get("code")
        if type(code) in (int, str):
            status = _OTLP_STATUS.get(code, STATUS_UNSET)
        msg = st.get("message")
        if msg:
            status_message = str(msg)

    refs: list[Reference] = []
    parent = ids.spans.get(raw_parent, _NO_ID) if raw_parent.__class__ is str else _NO_ID
    if parent is _NO_ID:
        parent = _otlp_id_at(raw_parent, 16, where, "parentSpanId")
        if raw_parent.__class__ is str:
            ids.spans[raw_parent] = parent
    if parent is not None:
        refs.append(Reference(CHILD_OF, tid, parent))
    if links:
        if type(links) is not list:
            raise _Fail(where, "links is not a list")
        for link in links:
            if type(link) is not dict:
                raise _Fail(where, "link is not an object")
            ltid = _otlp_id_at(link.get("traceId"), 32, where, "link traceId") or tid
            lsid = _otlp_id_at(link.get("spanId"), 16, where, "link spanId")
            if lsid is None:
                continue
            lattrs = _otlp_attrs(link.get("attributes"), where, "link attributes")
            ltype = CHILD_OF if lattrs.get("opentracing.ref_type") == "child_of" else FOLLOWS_FROM
            if parent is not None and ltid == tid and lsid == parent:
                refs[0].ref_type = ltype
                continue
            refs.append(Reference(ltype, ltid, lsid))

    events: list[Event] = []
    if raw_events:
        if type(raw_events) is not list:
            raise _Fail(where, "events is not a list")
        for ev in raw_events:
            if type(ev) is not dict:
                raise _Fail(where, "event is not an object")
            t = ev.get("timeUnixNano")
            t_us = (
                start_ns // 1000 if t is None else _int_time(t, where, "event timeUnixNano") // 1000
            )
            ev_name = ev.get("name")
            events.append(
                Event(
                    ev_name if type(ev_name) is str and ev_name else "log",
                    t_us,
                    _otlp_attrs(ev.get("attributes"), where, "event attributes"),
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
        start_ns // 1000,
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


# --------------------------------------------------------------------------- console exporter


def _iso_us(value: Any, where: str, name: str) -> int:
    if type(value) is not str:
        raise _Fail(where, f"{name} missing or not a string: {_short(value)}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Fail(where, f"{name} is not an ISO 8601 time: {_short(value)}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // _ONE_US


def _hex0x(raw: Any) -> Any:
    if type(raw) is str and raw[:2].lower() == "0x":
        return raw[2:]
    return raw


def _console_span(doc: dict, where: str) -> Span:
    """One span as the OTel Python SDK's ``ReadableSpan.to_json()`` prints it."""
    ctx = doc["context"]
    tid = _otlp_id_at(_hex0x(ctx.get("trace_id")), 32, where, "context.trace_id")
    sid = _otlp_id_at(_hex0x(ctx.get("span_id")), 16, where, "context.span_id")
    if tid is None or sid is None:
        raise _Fail(where, "span without context.trace_id/span_id")
    start = _iso_us(doc.get("start_time"), where, "start_time")
    end = _iso_us(doc.get("end_time"), where, "end_time")
    if end < start:
        raise _Fail(where, "negative duration (end_time before start_time)")
    if not 0 <= start <= MAX_TIME_US - (end - start):
        raise _Fail(where, _time_problem(sid, start, end - start, "start_time", "end_time"))
    kind_raw = doc.get("kind")
    kind = INTERNAL
    if type(kind_raw) is str:
        kind = _LEGACY_KINDS.get(kind_raw.rsplit(".", 1)[-1].lower(), INTERNAL)
    status = STATUS_UNSET
    status_message = ""
    st = doc.get("status")
    if type(st) is dict:
        status = _OTLP_STATUS.get(str(st.get("status_code", "")).upper(), STATUS_UNSET)
        if st.get("description"):
            status_message = str(st["description"])
    attrs = doc.get("attributes") or {}
    if type(attrs) is not dict:
        raise _Fail(where, "attributes is not an object")
    res = doc.get("resource") or {}
    if type(res) is not dict:
        raise _Fail(where, "resource is not an object")
    resource = res.get("attributes") if type(res.get("attributes")) is dict else res
    service = resource.get("service.name")
    if type(service) is not str or not service:
        service = UNKNOWN_SERVICE

    refs: list[Reference] = []
    parent = _otlp_id_at(_hex0x(doc.get("parent_id")), 16, where, "parent_id")
    if parent is not None:
        refs.append(Reference(CHILD_OF, tid, parent))
    for link in doc.get("links") or ():
        lctx = link.get("context") if type(link) is dict else None
        if type(lctx) is not dict:
            raise _Fail(where, "link without context")
        ltid = _otlp_id_at(_hex0x(lctx.get("trace_id")), 32, where, "link trace_id") or tid
        lsid = _otlp_id_at(_hex0x(lctx.get("span_id")), 16, where, "link span_id")
        if lsid is not None:
            lattrs = link.get("attributes") or {}
            child = type(lattrs) is dict and lattrs.get("opentracing.ref_type") == "child_of"
            refs.append(Reference(CHILD_OF if child else FOLLOWS_FROM, ltid, lsid))
    events: list[Event] = []
    for ev in doc.get("events") or ():
        if type(ev) is not dict:
            raise _Fail(where, "event is not an object")
        t = ev.get("timestamp")
        ev_attrs = ev.get("attributes") or {}
        events.append(
            Event(
                str(ev.get("name") or "log"),
                start if t is None else _iso_us(t, where, "event timestamp"),
                dict(ev_attrs) if type(ev_attrs) is dict else {},
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
        dict(attrs),
        events,
        refs,
        status,
        status_message,
        dict(resource),
        [],
    )
