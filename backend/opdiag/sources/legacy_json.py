"""Legacy Jaeger JSON over plain JSON values (the general path): one trace object and the bare
array of spans, every lenient variant accepted and every problem named with its place."""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter
from typing import Any

from opdiag.model import CHILD_OF, Event, Reference, Span
from opdiag.sources.reader_base import (
    MAX_TIME_US,
    UNKNOWN_SERVICE,
    Collector,
    Fail,
    at,
    bounded,
    int_time,
    kv_dict,
    kv_dict_checked,
    legacy_kind_status,
    lenient,
    short,
    span_id_at,
    time_problem,
    trace_id_at,
)

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


def legacy_process(raw: Any, where: str) -> tuple[str, dict[str, Any]]:
    if type(raw) is not dict:
        raise Fail(where, "process is not an object")
    service = raw.get("serviceName")
    resource = kv_dict(raw.get("tags"), where, "process tags")
    if type(service) is not str or not service:
        service = UNKNOWN_SERVICE
    resource.setdefault("service.name", service)
    return service, resource


def legacy_trace(doc: dict, where: str, col: Collector, *, consume: bool) -> None:
    spans: Any = doc.get("spans")
    if spans is None:
        spans = []
    if type(spans) is not list:
        raise Fail(at(where, "spans"), "not a list")
    processes = doc.get("processes") or {}
    if type(processes) is not dict:
        raise Fail(at(where, "processes"), "not an object")
    procs = {pid: legacy_process(p, at(where, f"processes.{pid}")) for pid, p in processes.items()}
    touched = legacy_spans(
        spans,
        at(where, "spans"),
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


def legacy_spans(
    spans: Iterable[Any],
    where: str,
    col: Collector,
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
            raise Fail(f"{where}[{i}]", "span is not an object")
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
            raise Fail(f"{where}[{i}]", "span without spanID")
        tid = tid_cache.get(raw_tid) if type(raw_tid) is str else None
        if tid is None:
            tid = trace_id_at(raw_tid, f"{where}[{i}]")
            tid_cache[raw_tid] = tid
        if type(start) is not int:
            start = int_time(start, f"{where}[{i}]", "startTime")
        if type(duration) is not int:
            duration = int_time(duration, f"{where}[{i}]", "duration")
        if duration < 0:
            raise Fail(f"{where}[{i}]", f"negative duration {duration}")
        if not 0 <= start <= MAX_TIME_US - duration:
            raise Fail(f"{where}[{i}]", time_problem(sid, start, duration, "startTime", "duration"))
        name = share(name, name) if type(name) is str else "" if name is None else str(name)
        if tags:
            # kv_dict inlined: this is the hottest line of a 100k-span file
            try:
                attrs = {
                    kv["key"]: v
                    if (v := kv["value"]).__class__ is not str
                    else share(v, v)
                    if kv["type"] == "string"
                    else lenient(kv["type"], v)
                    for kv in tags
                }
            except (KeyError, TypeError):
                attrs = kv_dict_checked(tags, f"{where}[{i}]", "tags")
            else:
                for key in attrs:
                    if key.__class__ is not str:
                        attrs = kv_dict_checked(tags, f"{where}[{i}]", "tags")
                        break
                else:
                    bounded(attrs)
        else:
            attrs = {}

        span_warnings: list[str] = []
        proc = procs.get(pid) if type(pid) is str else None
        if proc is None:
            embedded = raw.get("process")
            if embedded is not None:
                proc = legacy_process(embedded, f"{where}[{i}].process")
            else:
                proc = (UNKNOWN_SERVICE, {})
                span_warnings.append(
                    f"processID {short(pid)} is not in the trace's processes; "
                    f"service set to {UNKNOWN_SERVICE!r}"
                )

        kind, status, status_message = legacy_kind_status(attrs)

        refs: list[Reference] = []
        if raw_refs:
            if type(raw_refs) is not list:
                raise Fail(f"{where}[{i}]", "references is not a list")
            for r in raw_refs:
                if type(r) is not dict:
                    raise Fail(f"{where}[{i}]", "reference is not an object")
                rtid = r.get("traceID", raw_tid)
                ntid = tid_cache.get(rtid) if type(rtid) is str else None
                if ntid is None:
                    ntid = trace_id_at(rtid, f"{where}[{i}].references")
                    tid_cache[rtid] = ntid
                rtype = r.get("refType")
                rtype = share(upper := rtype.upper(), upper) if type(rtype) is str else CHILD_OF
                rsid = r.get("spanID")
                if type(rsid) is not str or not rsid:
                    rsid = span_id_at(rsid, f"{where}[{i}].references", "reference spanID")
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
                raise Fail(f"{where}[{i}]", "logs is not a list")
            for lg in logs:
                if type(lg) is not dict:
                    raise Fail(f"{where}[{i}]", "log entry is not an object")
                fields = kv_dict(lg.get("fields"), where, "log fields", i)
                ev = fields.get("event")
                ts = lg.get("timestamp", start)
                if type(ts) is not int:
                    ts = int_time(ts, f"{where}[{i}]", "log timestamp")
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
