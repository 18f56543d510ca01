"""Legacy Jaeger JSON decoded into ``schema``'s structs (the typed fast path): the same rules
as ``legacy_json`` without a dict per span, tag and reference."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from opdiag.model import (
    CHILD_OF,
    INTERNAL,
    STATUS_UNSET,
    Event,
    Reference,
    Span,
    normalise_trace_id,
)
from opdiag.sources import schema
from opdiag.sources.reader_base import (
    MAX_TIME_US,
    MEMO_LIMIT,
    UNKNOWN_SERVICE,
    Collector,
    General,
    bounded,
    legacy_kind_status,
    lenient,
    short,
)


def tags_typed(tags: list[schema.Tag] | None) -> dict[str, Any]:
    """``kv_dict`` of typed tags (process tags, log fields)."""
    if not tags:
        return {}
    return bounded(
        {
            t.key: v
            if (v := t.value).__class__ is not str or t.type == "string"
            else lenient(t.type, v)
            for t in tags
        }
    )


def process_typed(proc: schema.Process) -> tuple[str, dict[str, Any]]:
    """``legacy_process`` of a typed process: its service and resource."""
    service = proc.serviceName
    resource = tags_typed(schema.TAGS.decode(proc.tags))
    if type(service) is not str or not service:
        service = UNKNOWN_SERVICE
    resource.setdefault("service.name", service)
    return service, resource


class Shared:
    """What the traces of one document share while they are read: the processes, tags and
    ids already decoded (a Jaeger answer holds many traces of the same few services, and a
    listing's file thousands). The tags and process memos are bounded (``MEMO_LIMIT``); the
    id and name tables hold strings the model keeps anyway (a 20k-operation file peaks 7 %
    lower than with a table per trace: its spans share one resource dict per process)."""

    __slots__ = ("memo", "names", "processes", "sids", "tids")

    def __init__(self) -> None:
        # decoded tags, kind and status per raw tags text (see MEMO_LIMIT); the first span's
        # dict is the template, every later span gets a copy
        self.memo: dict[bytes, tuple[dict[str, Any], str, str, str]] = {}
        self.names: dict[str, str] = {}  # one string per distinct name, key and text value
        # (service, resource) per (service name, raw process tags): spans of one process
        # share the resource dict, which nothing changes
        self.processes: dict[tuple[str, bytes], tuple[str, dict[str, Any]]] = {}
        self.tids: dict[Any, str] = {}  # raw trace id -> normalised
        self.sids: dict[str, str] = {}  # raw referenced span id -> normalised

    def process(self, proc: schema.Process) -> tuple[str, dict[str, Any]]:
        """``process_typed(proc)``, once per distinct process of the document."""
        service = proc.serviceName
        key = (service if type(service) is str else "", bytes(proc.tags))
        found = self.processes.get(key)
        if found is None:
            if len(self.processes) >= MEMO_LIMIT:
                self.processes.clear()
            found = self.processes[key] = process_typed(proc)
        return found


def legacy_typed(
    spans: list[schema.LegacySpan],
    processes: dict[str, schema.Process] | None,
    default_tid: Any,
    trace_warnings: Any,
    col: Collector,
    *,
    shared: Shared | None = None,
) -> None:
    """``legacy_trace`` + ``legacy_spans`` over typed spans (same rules, same caches);
    ``shared``: the caches of the document's other traces."""
    if shared is None:
        shared = Shared()
    procs = {pid: shared.process(p) for pid, p in (processes or {}).items()}
    tid_cache = shared.tids
    sid_cache = shared.sids
    share = shared.names.setdefault
    touched: set[str] = set()
    buckets = col.spans
    last_tid: str | None = None
    bucket: list[Span] = []
    tags_of, logs_of = schema.TAGS.decode, schema.LOGS.decode
    memo = shared.memo
    memo_get = memo.get
    for i, raw in enumerate(spans):
        spans[i] = None  # type: ignore[call-overload]  # freed as the model grows
        sid = raw.spanID
        raw_tid = default_tid if raw.traceID is UNSET else raw.traceID
        start = raw.startTime
        duration = raw.duration
        if not sid or duration < 0 or not 0 <= start <= MAX_TIME_US - duration:
            raise General
        tid = tid_cache.get(raw_tid) if type(raw_tid) is str else None
        if tid is None:
            if type(raw_tid) is not str or not raw_tid.strip():
                raise General
            tid = tid_cache[raw_tid] = normalise_trace_id(raw_tid)
        name = raw.operationName
        name = "" if name is None else share(name, name)
        raw_tags = raw.tags
        if len(raw_tags) > 2:  # not "[]"
            blob = bytes(raw_tags)
            known = memo_get(blob)
            if known is None:
                tags = tags_of(raw_tags)
                attrs = (
                    {
                        share(k := t.key, k): v
                        if (v := t.value).__class__ is not str
                        else share(v, v)
                        if t.type == "string"
                        else lenient(t.type, v)
                        for t in tags
                    }
                    if tags
                    else {}
                )
                known = (bounded(attrs), *legacy_kind_status(attrs))
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[blob] = known
                kind, status, status_message = known[1:]
            else:  # the first span's dict is the template: nothing changes it while reading
                template, kind, status, status_message = known
                attrs = template.copy()
        else:
            attrs, kind, status, status_message = {}, INTERNAL, STATUS_UNSET, ""
        span_warnings: list[str] = []
        pid = raw.processID
        proc = procs.get(pid) if pid is not None else None
        if proc is None:
            if raw.process is not None:
                proc = shared.process(raw.process)
            else:
                proc = (UNKNOWN_SERVICE, {})
                span_warnings.append(
                    f"processID {short(pid)} is not in the trace's processes; "
                    f"service set to {UNKNOWN_SERVICE!r}"
                )

        refs: list[Reference] = []
        if raw.references:
            for r in raw.references:
                rtid = r.traceID
                if rtid is UNSET or rtid == raw_tid:  # the span's own trace: the usual case
                    ntid = tid
                else:
                    ntid = tid_cache.get(rtid)
                    if ntid is None:
                        if not rtid.strip():
                            raise General
                        ntid = tid_cache[rtid] = normalise_trace_id(rtid)
                rtype = r.refType
                if rtype == "CHILD_OF":  # the usual spelling, without upper()
                    rtype = CHILD_OF
                elif type(rtype) is str:
                    rtype = share(upper := rtype.upper(), upper)
                else:
                    rtype = CHILD_OF
                rsid = r.spanID
                if type(rsid) is not str:
                    raise General
                nsid = sid_cache.get(rsid)
                if nsid is None:
                    if not rsid.strip():
                        raise General
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
                fields = tags_typed(lg.fields)
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
