"""Recordings of the real KTRDR changed the way another recording would differ, for tests.

A recording is a list of ``(file name, OTLP-JSON document)`` in the recorder's order
(``<UTC time>_<sequence>_grpc_<service>.json``). Each change below is a pure function from one
recording to another; ``write`` puts one on disk for ``opdiag diagnose --traces``. Nothing here
knows what the right diagnosis is: the tests say that.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

Doc = dict[str, Any]
Recording = list[tuple[str, Doc]]
SpanFilter = Callable[[str, dict[str, Any]], bool]

CLIENT, SERVER = 3, 2
ORPHAN_MESSAGE = "no worker claimed"


@cache
def _loaded(directory: str) -> tuple[tuple[str, str], ...]:
    files = sorted(Path(directory).glob("*.json"))
    return tuple((f.name, f.read_text(encoding="utf-8")) for f in files)


def load(traces: Path) -> Recording:
    """The recording in ``traces`` (a fresh copy each call: changes may edit it in place)."""
    return [(name, json.loads(text)) for name, text in _loaded(str(traces))]


def write(recording: Recording, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for name, doc in recording:
        (into / name).write_text(json.dumps(doc), encoding="utf-8")
    return into


def diagnosed(recording: Recording, ident: str, now: str, scratch: Path) -> dict[str, Any]:
    """``ident`` diagnosed in ``recording`` at ``now``, as ``score_cases`` checks a case."""
    from opdiag.devtools.score_cases import diagnose_case

    run = scratch / "run"
    write(recording, run / "traces")
    return diagnose_case(run, {"id": ident, "upto": None, "now": now}, scratch / "snap")


def sequence_of(name: str) -> int:
    return int(name.split("_")[1])


def clock_of(name: str) -> str:
    """``20261204T154141_…`` -> ``2026-12-04T15:41:41Z`` (when the recorder wrote the file)."""
    t = name.split("_", maxsplit=1)[0]
    return f"{t[0:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}:{t[13:15]}Z"


# --- looking inside ---------------------------------------------------------------------


def service_of(resource: dict[str, Any]) -> str:
    for a in resource.get("resource", {}).get("attributes", []):
        if a.get("key") == "service.name":
            return str(a["value"].get("stringValue"))
    return ""


def attr(span: dict[str, Any], key: str) -> Any:
    for a in span.get("attributes", []):
        if a.get("key") == key:
            value = a.get("value", {})
            return next(iter(value.values()), None)
    return None


def spans(recording: Recording) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (file name, service, span) of the recording."""
    for name, doc in recording:
        for resource in doc.get("resourceSpans", []):
            service = service_of(resource)
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    yield name, service, span


def without(recording: Recording, drop: SpanFilter) -> Recording:
    """The recording without the spans ``drop(service, span)`` names (files left empty are
    dropped too: the recorder writes none for an export that had nothing)."""
    out: Recording = []
    for name, original in recording:
        doc = copy.deepcopy(original)
        kept = 0
        for resource in doc.get("resourceSpans", []):
            service = service_of(resource)
            for scope in resource.get("scopeSpans", []):
                scope["spans"] = [s for s in scope["spans"] if not drop(service, s)]
                kept += len(scope["spans"])
        if kept:
            out.append((name, doc))
    return out


def is_probe(service: str, span: dict[str, Any]) -> bool:
    """A backend health check of a worker or service (one trace per probe), and the
    server spans that answered it."""
    url = str(attr(span, "http.url") or "")
    return span.get("name", "").startswith("GET /health") or (
        span.get("name") == "GET" and url.endswith("/health")
    )


def is_orphan_close(service: str, span: dict[str, Any]) -> bool:
    """KTRDR's orphan detector failing an operation (a separate one-span trace)."""
    return span.get("name") == "operation.state_transition" and ORPHAN_MESSAGE in str(
        attr(span, "operation.error") or ""
    )


def is_ib_connect(service: str, span: dict[str, Any]) -> bool:
    return span.get("name") == "ib.connect"


# --- changes --------------------------------------------------------------------------------


def edited(
    recording: Recording, which: SpanFilter, change: Callable[[dict[str, Any]], None]
) -> Recording:
    """The recording with ``change(span)`` applied in place to every span ``which`` names."""
    out: Recording = []
    for name, original in recording:
        doc = copy.deepcopy(original)
        for resource in doc.get("resourceSpans", []):
            service = service_of(resource)
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    if which(service, span):
                        change(span)
        out.append((name, doc))
    return out


def raising(exc_type: str, message: str, *, end_ns: int | None = None) -> Callable[[Doc], None]:
    """A change for ``edited``: the span ends (at ``end_ns`` when given) in error with the
    exception event and status message OpenTelemetry's Python SDK records."""

    def change(span: Doc) -> None:
        if end_ns is not None:
            span["endTimeUnixNano"] = str(end_ns)
        at = span["endTimeUnixNano"]
        span["events"] = [
            {
                "timeUnixNano": at,
                "name": "exception",
                "attributes": [
                    {"key": "exception.type", "value": {"stringValue": exc_type}},
                    {"key": "exception.message", "value": {"stringValue": message}},
                    {"key": "exception.escaped", "value": {"stringValue": "False"}},
                ],
            }
        ]
        span["status"] = {"code": 2, "message": f"{exc_type.rsplit('.', 1)[-1]}: {message}"}

    return change


def client_call(
    trace_id: str, parent_id: str, span_id: str, start_ns: int, end_ns: int, method: str, url: str
) -> Doc:
    """An httpx client span as KTRDR's instrumentation writes it (named by the method)."""
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "parentSpanId": parent_id,
        "name": method,
        "kind": CLIENT,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "attributes": [
            {"key": "http.method", "value": {"stringValue": method}},
            {"key": "http.url", "value": {"stringValue": url}},
        ],
        "events": [],
        "status": {},
    }


def server_answer(
    call: Doc, span_id: str, route: str, path: str, start_ns: int, end_ns: int,
    *, url: str | None = None,
) -> Doc:
    """The backend's FastAPI server span answering ``call`` 200 (``{METHOD} {route}``)."""
    method = call["name"]
    attributes = [{"key": "http.method", "value": {"stringValue": method}}]
    if url is not None:
        attributes.append({"key": "http.url", "value": {"stringValue": url}})
    attributes += [
        {"key": "http.route", "value": {"stringValue": route}},
        {"key": "http.target", "value": {"stringValue": path}},
        {"key": "http.status_code", "value": {"intValue": "200"}},
    ]
    return {
        "traceId": call["traceId"],
        "spanId": span_id,
        "parentSpanId": call["spanId"],
        "name": f"{method} {route}",
        "kind": SERVER,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "attributes": attributes,
        "events": [],
        "status": {},
    }


def added(recording: Recording, service: str, new_spans: list[Doc]) -> Recording:
    """``new_spans`` of ``service`` (whose resource is copied from the recording), in a file
    of their own where the recorder would have put them (after the last file written before
    the last of them ended)."""
    resource = next(
        {k: v for k, v in r.items() if k != "scopeSpans"}
        for _, doc in recording
        for r in doc.get("resourceSpans", [])
        if service_of(r) == service
    )
    ended = max(int(span["endTimeUnixNano"]) for span in new_spans)
    before = [n for n, _ in recording if _file_clock_ns(n) <= ended]
    anchor = before[-1] if before else recording[0][0]
    doc = {"resourceSpans": [{**resource, "scopeSpans": [{"scope": {}, "spans": new_spans}]}]}
    out = [*recording, (f"{anchor.rsplit('_', 1)[0]}_zz{len(recording)}-{service}.json", doc)]
    out.sort(key=lambda item: (sequence_of(item[0]), item[0]))
    return out


def map_strings(recording: Recording, change: Callable[[str], str]) -> Recording:
    """Every string value (attributes, resource, names) through ``change``; ids untouched."""

    def walk(node: Any, key: str = "") -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and key not in ("traceId", "spanId", "parentSpanId"):
            return change(node)
        return node

    return [(name, walk(doc)) for name, doc in recording]


def rename_services(recording: Recording, names: dict[str, str]) -> Recording:
    """Services renamed (resource ``service.name`` only) and file names following them."""
    out: Recording = []
    for name, original in recording:
        doc = copy.deepcopy(original)
        for resource in doc.get("resourceSpans", []):
            for a in resource.get("resource", {}).get("attributes", []):
                if a.get("key") == "service.name":
                    old = a["value"].get("stringValue")
                    a["value"]["stringValue"] = names.get(old, old)
        stem, _, service = name.rpartition("_")
        service = service.removesuffix(".json")
        out.append((f"{stem}_{names.get(service, service)}.json", doc))
    return out


def worker_ports(recording: Recording) -> dict[str, int]:
    """Each worker service and the port its server spans listened on."""
    out: dict[str, int] = {}
    for _, service, span in spans(recording):
        port = attr(span, "net.host.port")
        if "worker" in service and span.get("kind") == SERVER and port is not None:
            out.setdefault(service, int(port))
    return out


def split_files(recording: Recording, rnd: random.Random) -> tuple[Recording, Callable[[int], int]]:
    """Each export written as several files (spans shuffled, resources reversed), numbered so
    that every old file's pieces sort where it was. Returns the new recording and how an old
    ``upto`` maps to a new one."""
    out: Recording = []
    for name, doc in recording:
        stamp, seq, rest = name.split("_", 2)
        pieces: list[Doc] = []
        for resource in reversed(doc.get("resourceSpans", [])):
            for scope in resource.get("scopeSpans", []):
                all_spans = list(scope.get("spans", []))
                rnd.shuffle(all_spans)
                for i in range(0, len(all_spans), 3):
                    piece = {k: v for k, v in resource.items() if k != "scopeSpans"}
                    piece["scopeSpans"] = [{**scope, "spans": all_spans[i : i + 3]}]
                    pieces.append({"resourceSpans": [piece]})
        for k, piece in enumerate(pieces[:99]):
            out.append((f"{stamp}_{int(seq) * 100 + k:07d}_{rest}", piece))
    return out, lambda upto: upto * 100 + 99


_HOST_PORT = re.compile(r"(127\.0\.0\.1|localhost):(\d{4})\b")


def container_hosts(recording: Recording, hosts: dict[int, str]) -> Recording:
    """Services reached by container name instead of loopback (``127.0.0.1:5003`` ->
    ``backtest-worker-1:5003``), as in KTRDR's docker compose set-up."""

    def change(text: str) -> str:
        return _HOST_PORT.sub(
            lambda m: f"{hosts.get(int(m.group(2)), m.group(1))}:{m.group(2)}", text
        )

    return map_strings(recording, change)


def shift_times(recording: Recording, shift_ns: int) -> Recording:
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: (str(int(v) + shift_ns) if k.endswith("UnixNano") else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return [(name, walk(doc)) for name, doc in recording]


def as_curl(recording: Recording, trace_ids: set[str]) -> Recording:
    """The requests of ``trace_ids`` sent with curl instead of the CLI: no ``ktrdr-cli``
    span, the backend's server span becomes the root."""
    dropped = {
        span["spanId"]
        for _, service, span in spans(recording)
        if span["traceId"] in trace_ids and service == "ktrdr-cli"
    }
    out = without(recording, lambda service, span: span["spanId"] in dropped)
    for _, _, span in spans(out):
        if span.get("parentSpanId") in dropped:
            span.pop("parentSpanId")
    return out


def stretched(recording: Recording, trace_ids: set[str], name: str, extra_ns: int) -> Recording:
    """The span ``name`` of ``trace_ids`` lasts ``extra_ns`` longer: what starts after it
    ends starts that much later, and what holds it ends that much later."""
    return _later_after(recording, trace_ids, name, extra_ns, itself=True)


def longer_after(recording: Recording, trace_ids: set[str], name: str, extra_ns: int) -> Recording:
    """The time after the span ``name`` of ``trace_ids`` (KTRDR's span-less training loop
    after ``training.data_loading``) lasts ``extra_ns`` longer: what starts after it ends
    starts that much later, and what holds it ends that much later; the span itself not."""
    return _later_after(recording, trace_ids, name, extra_ns, itself=False)


def _later_after(
    recording: Recording, trace_ids: set[str], name: str, extra_ns: int, *, itself: bool
) -> Recording:
    target = next(
        s for _, _, s in spans(recording) if s["traceId"] in trace_ids and s["name"] == name
    )
    start, end = int(target["startTimeUnixNano"]), int(target["endTimeUnixNano"])

    def holds(s_start: int, s_end: int) -> bool:
        if itself:
            return s_end >= end and (s_start <= start or s_start >= end)
        return s_end > end and (s_start < start or s_start >= end)

    def later(span: Doc) -> None:
        s_start, s_end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
        if s_start >= end:
            span["startTimeUnixNano"] = str(s_start + extra_ns)
            for event in span.get("events", []):
                event["timeUnixNano"] = str(int(event["timeUnixNano"]) + extra_ns)
        if holds(s_start, s_end):
            span["endTimeUnixNano"] = str(s_end + extra_ns)

    return edited(recording, lambda _service, span: span["traceId"] in trace_ids, later)


def loop_cut(recording: Recording, trace_ids: set[str], keep_ns: int) -> Recording:
    """The training of ``trace_ids`` whose span-less loop (the time after its last
    ``training.data_loading``) lasts only ``keep_ns``: KTRDR's ``model_trainer.py`` returns
    ``{"error": "NaN loss detected on first batch"}`` from the first batch and the worker
    completes the operation with that result (no span records it). The CLI's and backend's
    polls in the cut time are gone; what came after comes that much earlier, and what held
    the loop (the CLI's command) ends that much earlier."""
    loads = [
        s for _, _, s in spans(recording)
        if s["traceId"] in trace_ids and s["name"] == "training.data_loading"
    ]
    end = max(int(s["endTimeUnixNano"]) for s in loads)
    after = [
        int(s["startTimeUnixNano"]) for _, _, s in spans(recording)
        if s["traceId"] in trace_ids and attr(s, "operation.to_status") == "completed"
    ]
    cut = min(after) - end - keep_ns
    gone = {
        s["spanId"] for _, _, s in spans(recording)
        if s["traceId"] in trace_ids and end < int(s["startTimeUnixNano"]) < end + cut
    }
    for trace_id in trace_ids:
        gone |= _subtree_ids(recording, trace_id, gone)
    out = without(recording, lambda _svc, s: s["traceId"] in trace_ids and s["spanId"] in gone)

    def earlier(span: Doc) -> None:
        s_start, s_end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
        if s_start >= end + cut:
            span["startTimeUnixNano"] = str(s_start - cut)
            for event in span.get("events", []):
                event["timeUnixNano"] = str(int(event["timeUnixNano"]) - cut)
        if s_end >= end + cut:
            span["endTimeUnixNano"] = str(s_end - cut)

    return edited(out, lambda _svc, s: s["traceId"] in trace_ids, earlier)


def trace_moved(recording: Recording, trace_id: str, shift_ns: int) -> Recording:
    """The trace ``trace_id`` (a command of its own: ``ktrdr cancel``) happening ``shift_ns``
    later (earlier when negative), each service's spans in a file of their own where the
    recorder would have put them."""
    moved: dict[str, list[Doc]] = {}
    for _, service, original in spans(recording):
        if original["traceId"] == trace_id:
            span = copy.deepcopy(original)
            for key in ("startTimeUnixNano", "endTimeUnixNano"):
                span[key] = str(int(span[key]) + shift_ns)
            for event in span.get("events", []):
                event["timeUnixNano"] = str(int(event["timeUnixNano"]) + shift_ns)
            moved.setdefault(service, []).append(span)
    out = without(recording, lambda _service, span: span["traceId"] == trace_id)
    for service, new_spans in moved.items():
        out = added(out, service, new_spans)
    return out


def another_worker(
    recording: Recording,
    beside_port: int,
    port: int,
    service: str,
    *,
    from_ns: int,
    dies_ns: int,
    until_ns: int,
) -> Recording:
    """A second worker ``service`` on ``port``, registered beside the one on
    ``beside_port`` (of the same type): from ``from_ns`` the backend's health loop, which
    checks every registered worker each round, probes it next to each probe of
    ``beside_port``; it answers them until it is killed at ``dies_ns``, and they are refused
    until ``until_ns``. It runs nothing."""
    probes: list[Doc] = []
    answers: list[Doc] = []
    rnd = random.Random(port)
    for _, svc, span in spans(recording):
        start = int(span["startTimeUnixNano"])
        if (
            svc != "ktrdr-api"
            or span.get("kind") != CLIENT
            or _probe_port(span) != beside_port
            or not from_ns <= start < until_ns
        ):
            continue
        at = start + 2_000_000
        url = str(attr(span, "http.url")).replace(f":{beside_port}/", f":{port}/")
        probe = client_call(
            f"{rnd.getrandbits(128):032x}", "", f"{rnd.getrandbits(64):016x}",
            at, at + 3_000_000, "GET", url,
        )
        probe.pop("parentSpanId")
        if at < dies_ns:
            probe["attributes"].append({"key": "http.status_code", "value": {"intValue": "200"}})
            answers.append(
                {
                    "traceId": probe["traceId"],
                    "spanId": f"{rnd.getrandbits(64):016x}",
                    "parentSpanId": probe["spanId"],
                    "name": "GET /health",
                    "kind": SERVER,
                    "startTimeUnixNano": str(at + 500_000),
                    "endTimeUnixNano": str(at + 2_500_000),
                    "attributes": [
                        {"key": "http.status_code", "value": {"intValue": "200"}},
                        {"key": "net.host.port", "value": {"intValue": str(port)}},
                    ],
                    "status": {},
                }
            )
        else:
            raising("httpx.ConnectError", "All connection attempts failed")(probe)
        probes.append(probe)
    resource = {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [],
    }
    # a first file that names the new service (``added`` copies its resource from one)
    out = [("19700101T000000_00000_seed.json", {"resourceSpans": [resource]}), *recording]
    out = added(added(out, "ktrdr-api", probes), service, answers) if answers else added(
        out, "ktrdr-api", probes
    )
    return [(n, d) for n, d in out if not n.startswith("19700101T")]


def _probe_port(span: dict[str, Any]) -> int | None:
    m = re.search(r":(\d+)/health$", str(attr(span, "http.url") or ""))
    return int(m.group(1)) if m else None


def restart_worker(
    recording: Recording, port: int, at_ns: int, service: str, orphan_after_s: float = 70.0
) -> Recording:
    """The worker on ``port`` started again at ``at_ns`` (as ``service``: a new random id, or
    the old name when KTRDR_WORKER_ID is fixed): every later health check of that port is
    answered by it. KTRDR's registry drops the old registration for the same endpoint (or the
    worker reports idle), so the orphan detector fails the operation the old process held
    ``orphan_after_s`` later instead of minutes later."""
    out: Recording = []
    orphan_ns = at_ns + int(orphan_after_s * 1e9)
    for name, original in recording:
        doc = copy.deepcopy(original)
        answers: list[dict[str, Any]] = []
        for resource in doc.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    start = int(span["startTimeUnixNano"])
                    if span.get("kind") != CLIENT or _probe_port(span) != port or start < at_ns:
                        continue
                    span["status"] = {}
                    span["events"] = []
                    span["attributes"] = [
                        a for a in span.get("attributes", []) if a["key"] != "http.status_code"
                    ] + [{"key": "http.status_code", "value": {"intValue": "200"}}]
                    end = int(span["endTimeUnixNano"])
                    answers.append(
                        {
                            "traceId": span["traceId"],
                            "spanId": f"{random.Random(span['spanId']).getrandbits(64):016x}",
                            "parentSpanId": span["spanId"],
                            "name": "GET /health",
                            "kind": SERVER,
                            "startTimeUnixNano": str(start + 500_000),
                            "endTimeUnixNano": str(max(start + 600_000, end - 500_000)),
                            "attributes": [
                                {"key": "http.status_code", "value": {"intValue": "200"}},
                                {"key": "net.host.port", "value": {"intValue": str(port)}},
                            ],
                            "status": {},
                        }
                    )
        out.append((name, doc))
        if answers:
            resource = {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.fastapi"}, "spans": answers}
                ],
            }
            stem = name.rsplit("_", 1)[0]
            out.append((f"{stem}_restart-{service}.json", {"resourceSpans": [resource]}))
    out.sort(key=lambda item: (sequence_of(item[0]), item[0]))
    # only the operations the old process held: another worker's, or a data load's, are
    # failed by the detector when KTRDR's own rules say (before, all of run1's moved here)
    held = _held_at(recording, port, at_ns)
    return move_spans(
        out,
        lambda _, span: is_orphan_close("", span) and attr(span, "operation.id") in held,
        orphan_ns,
    )


def _held_at(recording: Recording, port: int, at_ns: int) -> set[str]:
    """The operations of the worker(s) that answered the health checks of ``port`` before
    ``at_ns``: what a restart there takes down."""
    probes = {
        span["spanId"] for _, _, span in spans(recording)
        if span.get("kind") == CLIENT and _probe_port(span) == port
        and int(span["startTimeUnixNano"]) < at_ns
    }
    workers = {
        svc for _, svc, span in spans(recording)
        if span.get("kind") == SERVER and span.get("parentSpanId") in probes
    }
    return {
        str(attr(span, "operation.id")) for _, svc, span in spans(recording)
        if svc in workers and attr(span, "operation.id")
    }


def ns(clock: str) -> int:
    """``2026-12-04T15:56:00Z`` -> nanoseconds since the epoch."""
    from datetime import datetime

    return int(datetime.fromisoformat(clock.replace("Z", "+00:00")).timestamp() * 1e9)


def file_clock(name: str) -> int:
    """When the recorder wrote the file ``name`` (its UTC time), epoch ns: a snapshot of a
    recording is its files up to a moment."""
    return _file_clock_ns(name)


def _file_clock_ns(name: str) -> int:
    return ns(clock_of(name))


def move_spans(recording: Recording, which: SpanFilter, at_ns: int) -> Recording:
    """The spans ``which`` names happen at ``at_ns`` instead, written in a file of their
    own where the recorder would have put them (after the last file written before then)."""
    moved: list[tuple[dict[str, Any], dict[str, Any]]] = []
    out: Recording = []
    for name, original in recording:
        doc = copy.deepcopy(original)
        kept = 0
        for resource in doc.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                keep = []
                for span in scope.get("spans", []):
                    if which(service_of(resource), span):
                        length = int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])
                        span["startTimeUnixNano"] = str(at_ns)
                        span["endTimeUnixNano"] = str(at_ns + length)
                        moved.append(
                            (
                                {k: v for k, v in resource.items() if k != "scopeSpans"},
                                {**scope, "spans": [span]},
                            )
                        )
                    else:
                        keep.append(span)
                scope["spans"] = keep
                kept += len(keep)
        if kept:
            out.append((name, doc))
    if not moved:
        return out
    before = [n for n, _ in out if _file_clock_ns(n) <= at_ns]
    anchor = before[-1] if before else out[0][0]
    stem = anchor.rsplit("_", 1)[0]
    for i, (resource, scope) in enumerate(moved):
        doc = {"resourceSpans": [{**resource, "scopeSpans": [scope]}]}
        out.append((f"{stem}_zz{i:02d}-{service_of(resource)}.json", doc))
    out.sort(key=lambda item: (sequence_of(item[0]), item[0]))
    return out


def files_holding(traces: Path, text: str) -> list[int]:
    """The sequence numbers of the recorded files whose text holds ``text``."""
    return [sequence_of(name) for name, raw in _loaded(str(traces)) if text in raw]


def failed_probes(recording: Recording, port: int, after_ns: int = 0) -> list[tuple[int, int]]:
    """(file sequence, start ns) of every failed health check of ``port`` after ``after_ns``."""
    out = []
    for name, _, span in spans(recording):
        failed = span.get("status", {}).get("code") == 2
        start = int(span["startTimeUnixNano"])
        if span.get("kind") == CLIENT and _probe_port(span) == port and failed and start > after_ns:
            out.append((sequence_of(name), start))
    return sorted(out)


def died_before_export(recording: Recording, service: str, from_ns: int) -> Recording:
    """``service`` killed at ``from_ns`` before exporting what it did since: every span of it
    that ends later is gone (a SIGKILLed process loses its unexported batch and its open
    spans)."""
    return without(
        recording,
        lambda svc, span: svc == service and int(span["endTimeUnixNano"]) >= from_ns,
    )


def killed_before_export(
    recording: Recording, service: str, at_ns: int, port: int, until_ns: int
) -> Recording:
    """``service`` (listening on ``port``) SIGKILLed at ``at_ns``: every export it would have
    written later is gone, spans that had ended before the kill too (KTRDR's workers export
    in batches every 5 s, ``BatchSpanProcessor``), and the backend's health checks of its
    port fail to connect until ``until_ns`` (when another process answers there)."""
    kept = [
        (name, doc)
        for name, doc in recording
        if not (name.removesuffix(".json").endswith(service) and _file_clock_ns(name) >= at_ns)
    ]

    def refused(service_name: str, span: Doc) -> bool:
        start = int(span["startTimeUnixNano"])
        return span.get("kind") == CLIENT and _probe_port(span) == port and at_ns < start < until_ns

    def fail(span: Doc) -> None:
        span["attributes"] = [a for a in span["attributes"] if a["key"] != "http.status_code"]
        raising(
            "httpx.ConnectError",
            "All connection attempts failed",
            end_ns=int(span["startTimeUnixNano"]) + 3_000_000,
        )(span)

    return edited(kept, refused, fail)


def copy_operation(
    recording: Recording, trace_ids: set[str], renames: dict[str, str], shift_ns: int, salt: int
) -> Recording:
    """Another run of the same operation: the spans of ``trace_ids`` with new trace and span
    ids (``salt`` mixed in), strings renamed (the operation id) and times shifted, in files
    of their own (``salt`` before the sequence number: past the recording's)."""

    def new_id(value: str) -> str:
        return f"{int(value, 16) ^ salt:0{len(value)}x}" if value else value

    def change(text: str) -> str:
        for old, new in renames.items():
            text = text.replace(old, new)
        return text

    picked = without(recording, lambda _service, span: span.get("traceId") not in trace_ids)
    out: Recording = []
    for name, doc in shift_times(map_strings(picked, change), shift_ns):
        for resource in doc.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in span:
                            span[key] = new_id(span[key])
        stamp, seq, rest = name.split("_", 2)
        out.append((f"{stamp}_{salt}{int(seq):05d}_{rest}", doc))
    return out


def shut_down_gracefully(recording: Recording, operation_id: str, at_ns: int) -> Recording:
    """The training worker running ``operation_id`` got SIGTERM at ``at_ns``: KTRDR's
    graceful shutdown (``workers/base.py`` ``run_with_graceful_shutdown``) cancels the run
    and PATCHes ``/api/v1/operations/{id}/status`` to CANCELLED from its background task (a
    client span under its ``POST /training/start``, answered by the backend, which writes no
    transition). The run never completes; the following CLI sees cancelled and stops a
    second later. The worker process keeps serving (its SIGTERM handler replaces uvicorn's)."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )
    worker, server = next(
        (svc, s)
        for _, svc, s in spans(recording)
        if s["traceId"] == trace_id and s["name"] == "POST /training/start" and s["kind"] == SERVER
    )
    stop_ns = at_ns + 1_500_000_000
    out = without(
        recording,
        lambda _svc, s: s["traceId"] == trace_id
        and (
            int(s["startTimeUnixNano"]) > stop_ns
            or attr(s, "operation.to_status") in ("completed", "failed")
        ),
    )

    def stop(span: Doc) -> None:
        span["endTimeUnixNano"] = str(min(int(span["endTimeUnixNano"]), stop_ns))

    out = edited(out, lambda svc, s: s["traceId"] == trace_id and svc == "ktrdr-cli", stop)
    route = "/api/v1/operations/{operation_id}/status"
    path = route.replace("{operation_id}", operation_id)
    patch = client_call(
        trace_id, server["spanId"], "5d0000000000a001", at_ns, at_ns + 40_000_000, "PATCH",
        f"http://127.0.0.1:8000{path}",
    )
    patch["attributes"].append({"key": "http.status_code", "value": {"intValue": "200"}})
    answer = server_answer(
        patch, "5d0000000000a002", route, path, at_ns + 5_000_000, at_ns + 35_000_000
    )
    return added(added(out, worker, [patch]), "ktrdr-api", [answer])


def failed_instead(recording: Recording, operation_id: str, message: str) -> Recording:
    """``operation_id`` failed with ``message`` where it completed: an exception raised in
    code without a span (KTRDR's training loop) reaches the traces only as the worker's
    ``fail_operation(operation_id, str(e))``: the transition to failed and its
    ``operation.error``."""

    def change(span: Doc) -> None:
        replaced = ("operation.to_status", "operation.error")
        span["attributes"] = [a for a in span["attributes"] if a["key"] not in replaced] + [
            {"key": "operation.to_status", "value": {"stringValue": "failed"}},
            {"key": "operation.error", "value": {"stringValue": message}},
        ]

    return edited(
        recording,
        lambda _svc, s: attr(s, "operation.id") == operation_id
        and attr(s, "operation.to_status") == "completed",
        change,
    )


def _download_span(recording: Recording, operation_id: str) -> Doc:
    """The backend's ``data.download`` span of the data load ``operation_id``."""
    return next(
        s
        for _, _, s in spans(recording)
        if s["name"] == "data.download" and attr(s, "operation.id") == operation_id
    )


def loaded_in_segments(
    recording: Recording,
    operation_id: str,
    *,
    segments: int,
    failed: dict[int, str],
    every_ns: int = 3_500_000_000,
    complete: bool = True,
) -> Recording:
    """The IB data load ``operation_id`` (run1: the IB Gateway was down, so the host service
    never answered ``POST /data/validate``) as it runs with the Gateway up. The first
    validation answers at once (its retries and the Gateway's refused ``ib.connect`` are
    gone); then KTRDR's segment manager (``ktrdr/data/acquisition/segment_manager.py``)
    sends ``segments`` requests one after the other: each a backend ``POST`` to the host's
    ``/data/historical`` (answered 200 even when it failed: ``success=false`` in the body,
    ``ib-host-service/endpoints/data.py``) with the host's server span and its
    ``ib.fetch_historical`` below (``ib-host-service/ib/data_fetcher.py``: the range asked,
    ``bars.received`` and ``ib.latency_ms``; the ones in ``failed`` raise with that
    message: ``error=true``, status ERROR and the exception recorded twice, by the fetcher
    and by the context manager). No failed segment is retried; the acquisition service
    saves what it got and completes the operation (``complete_operation``: from the status
    it has, ``failed`` since the orphan detector failed it a minute in, as it did in run1).
    ``complete=False``: the recording stops before that, while it still downloads."""
    download = _download_span(recording, operation_id)
    trace_id = download["traceId"]
    symbol, timeframe = attr(download, "data.symbol"), attr(download, "data.timeframe")

    def of_trace(s: Doc) -> bool:
        return s["traceId"] == trace_id

    validations = sorted(
        (
            s
            for _, _, s in spans(recording)
            if of_trace(s)
            and s["kind"] == CLIENT
            and str(attr(s, "http.url") or "").endswith("/data/validate")
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    first, retries = validations[0], {s["spanId"] for s in validations[1:]}
    ok_ns = int(first["startTimeUnixNano"]) + 1_200_000_000
    below_first = _subtree_ids(recording, trace_id, {first["spanId"]}) - {first["spanId"]}
    gone = _subtree_ids(recording, trace_id, retries)
    out = without(
        recording,
        lambda svc, s: is_ib_connect(svc, s)
        or (of_trace(s) and s["spanId"] in gone)
        or (of_trace(s) and s["spanId"] in below_first and int(s["startTimeUnixNano"]) >= ok_ns),
    )

    def answered(span: Doc) -> None:
        span["status"], span["events"] = {}, []
        span["endTimeUnixNano"] = str(ok_ns)
        span["attributes"].append({"key": "http.status_code", "value": {"intValue": "200"}})

    def within_answer(span: Doc) -> None:
        span["endTimeUnixNano"] = str(min(int(span["endTimeUnixNano"]), ok_ns - 2_000_000))

    out = edited(out, lambda _svc, s: of_trace(s) and s["spanId"] == first["spanId"], answered)
    out = edited(out, lambda _svc, s: of_trace(s) and s["spanId"] in below_first, within_answer)

    calls: list[Doc] = []
    served: list[Doc] = []
    period_end = int(download["startTimeUnixNano"]) - 86_400 * 10**9
    for i in range(segments):
        start = ok_ns + 100_000_000 + i * every_ns
        end = start + every_ns - 200_000_000
        call = client_call(
            trace_id, download["spanId"], f"5e{i:014x}", start, end, "POST",
            "http://localhost:5001/data/historical",
        )
        call["attributes"].append({"key": "http.status_code", "value": {"intValue": "200"}})
        calls.append(call)
        server = {
            "traceId": trace_id,
            "spanId": f"5f{i:014x}",
            "parentSpanId": call["spanId"],
            "name": "POST /data/historical",
            "kind": SERVER,
            "startTimeUnixNano": str(start + 3_000_000),
            "endTimeUnixNano": str(end - 3_000_000),
            "attributes": [
                {"key": "http.method", "value": {"stringValue": "POST"}},
                {"key": "http.url", "value": {"stringValue": "http://localhost:5001/data/historical"}},
                {"key": "http.route", "value": {"stringValue": "/data/historical"}},
                {"key": "http.target", "value": {"stringValue": "/data/historical"}},
                {"key": "http.status_code", "value": {"intValue": "200"}},
            ],
            "events": [],
            "status": {},
        }
        # the newest segment first (tail mode): each asks for 30 days of 1h bars
        seg_end = period_end - (segments - 1 - i) * _MONTH_NS
        fetch_start, fetch_end = start + 600_000_000, end - 10_000_000
        fetch = {
            "traceId": trace_id,
            "spanId": f"60{i:014x}",
            "parentSpanId": server["spanId"],
            "name": "ib.fetch_historical",
            "kind": 1,
            "startTimeUnixNano": str(fetch_start),
            "endTimeUnixNano": str(fetch_end),
            "attributes": [
                {"key": "data.symbol", "value": {"stringValue": symbol}},
                {"key": "data.timeframe", "value": {"stringValue": timeframe}},
                {"key": "data.start_date", "value": {"stringValue": _iso(seg_end - _MONTH_NS)}},
                {"key": "data.end_date", "value": {"stringValue": _iso(seg_end)}},
                {"key": "data.instrument_type", "value": {"stringValue": "STK"}},
            ],
            "events": [],
            "status": {},
        }
        if i in failed:
            fetch["attributes"].append({"key": "error", "value": {"boolValue": True}})
            raising("Exception", failed[i])(fetch)
            fetch["events"] = fetch["events"] * 2
        else:
            latency_ms = round((fetch_end - fetch_start) / 1e6, 2)
            fetch["attributes"] += [
                {"key": "bars.received", "value": {"intValue": "210"}},
                {"key": "ib.latency_ms", "value": {"doubleValue": latency_ms}},
            ]
        served += [server, fetch]
    done_ns = ok_ns + segments * every_ns + 200_000_000

    def completed(span: Doc) -> None:
        span["startTimeUnixNano"], span["endTimeUnixNano"] = str(done_ns), str(done_ns + 90_000)
        dropped = ("operation.to_status", "operation.error")
        span["attributes"] = [a for a in span["attributes"] if a["key"] not in dropped] + [
            {"key": "operation.to_status", "value": {"stringValue": "completed"}}
        ]

    def final(_svc: str, s: Doc) -> bool:
        return (
            of_trace(s)
            and attr(s, "operation.id") == operation_id
            and attr(s, "operation.from_status") == "failed"
        )

    out = edited(out, final, completed) if complete else without(out, final)
    return added(added(out, "ktrdr-api", calls), "ktrdr-ib-host-service", served)


def _subtree_ids(recording: Recording, trace_id: str, tops: set[str]) -> set[str]:
    """The ids of ``tops`` and of every span below them in ``trace_id``."""
    children: dict[str, list[str]] = {}
    for _, _, s in spans(recording):
        if s["traceId"] == trace_id and s.get("parentSpanId"):
            children.setdefault(s["parentSpanId"], []).append(s["spanId"])
    found, todo = set(), list(tops)
    while todo:
        sid = todo.pop()
        if sid not in found:
            found.add(sid)
            todo.extend(children.get(sid, ()))
    return found


_MONTH_NS = 30 * 86_400 * 10**9


def _iso(at_ns: int) -> str:
    """A time as KTRDR's host service writes it in ``data.start_date`` (``isoformat()``)."""
    return datetime.fromtimestamp(at_ns // 10**9, tz=UTC).isoformat()


def data_load_cancelled(recording: Recording, operation_id: str, at_ns: int) -> Recording:
    """The CLI's ``ktrdr data load`` interrupted with Ctrl+C at ``at_ns``
    (``cli/data_commands.py``): it sends ``DELETE /api/v1/operations/{id}`` with the reason
    'User requested cancellation via CLI' from its command's trace and returns (status OK).
    The backend's cancel writes ``running -> cancelled`` under that request
    (``operations_service.cancel_operation``) and cancels the asyncio task, which does not stop
    the download's own thread (``service_orchestrator``: ``asyncio.to_thread``); that thread
    retries the host service as recorded and then fails the operation from ``cancelled``.
    The orphan detector leaves a cancelled operation alone."""
    trace_id = next(
        s["traceId"]
        for _, _, s in spans(recording)
        if s["name"] == "data.download" and attr(s, "operation.id") == operation_id
    )
    out = without(
        recording,
        lambda svc, s: is_orphan_close(svc, s) and attr(s, "operation.id") == operation_id,
    )
    root = next(
        s for _, _, s in spans(out) if s["traceId"] == trace_id and s["name"] == "cli.data_load"
    )
    later_polls = {
        s["spanId"]
        for _, svc, s in spans(out)
        if s["traceId"] == trace_id
        and svc == "ktrdr-cli"
        and s["name"] == "GET"
        and int(s["startTimeUnixNano"]) > at_ns
    }
    gone = _subtree_ids(out, trace_id, later_polls)
    out = without(out, lambda _svc, s: s["traceId"] == trace_id and s["spanId"] in gone)

    def ends(span: Doc) -> None:
        span["endTimeUnixNano"] = str(at_ns + 400_000_000)

    def from_cancelled(span: Doc) -> None:
        for a in span["attributes"]:
            if a["key"] == "operation.from_status":
                a["value"]["stringValue"] = "cancelled"

    out = edited(out, lambda _svc, s: s["spanId"] == root["spanId"], ends)
    out = edited(
        out,
        lambda _svc, s: s["traceId"] == trace_id and attr(s, "operation.from_status") == "failed",
        from_cancelled,
    )
    route = "/api/v1/operations/{operation_id}"
    path = route.replace("{operation_id}", operation_id)
    url = f"http://127.0.0.1:8000{path}"
    call = client_call(
        trace_id, root["spanId"], "de1e7e0000000001", at_ns, at_ns + 300_000_000, "DELETE", url
    )
    call["attributes"].append({"key": "http.status_code", "value": {"intValue": "200"}})
    answer = server_answer(
        call, "de1e7e0000000002", route, path, at_ns + 3_000_000, at_ns + 290_000_000, url=url
    )
    reason = "User requested cancellation via CLI"
    transition = {
        "traceId": trace_id,
        "spanId": "de1e7e0000000003",
        "parentSpanId": answer["spanId"],
        "name": "operation.state_transition",
        "kind": 1,
        "startTimeUnixNano": str(at_ns + 200_000_000),
        "endTimeUnixNano": str(at_ns + 200_100_000),
        "attributes": [
            {"key": "operation.id", "value": {"stringValue": operation_id}},
            {"key": "operation.from_status", "value": {"stringValue": "running"}},
            {"key": "operation.to_status", "value": {"stringValue": "cancelled"}},
            {"key": "operation.cancellation_reason", "value": {"stringValue": reason}},
        ],
        "events": [],
        "status": {"code": 1},
    }
    return added(added(out, "ktrdr-cli", [call]), "ktrdr-api", [answer, transition])


def backend_killed_during_data_load(
    recording: Recording, operation_id: str, at_ns: int, back_ns: int
) -> Recording:
    """The backend SIGKILLed at ``at_ns`` while it ran the data load ``operation_id`` (in a
    thread of its own process, ``service_orchestrator``) and started again at ``back_ns``.
    Lost: the backend's spans that ended in its last 5 s export batch or were open at the kill,
    everything it would have written until the restart, and all later work of the load (its
    thread died: no more calls to the host service, no final transition), with the host
    service's answers to calls that were never made. The CLI following the load has its
    status reads refused while the backend is down (AsyncCLIClient retries a refused call
    after 1, 2, 4 s) and read RUNNING again afterwards; the new backend's orphan detector fails
    the load about a minute later, as the old one did in the recording."""
    trace_id = next(
        s["traceId"]
        for _, _, s in spans(recording)
        if s["name"] == "data.download" and attr(s, "operation.id") == operation_id
    )
    batch_ns = 5_000_000_000
    kept_names = ("data.download", "operations.create", "operation.register")

    def lost(service: str, s: Doc) -> bool:
        start, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        if service == "ktrdr-ib-host-service":
            return s["traceId"] == trace_id and start > at_ns
        if service != "ktrdr-api" or is_orphan_close(service, s):
            return False
        if s["traceId"] == trace_id and start < at_ns - batch_ns:
            return end >= at_ns and s["name"] not in kept_names
        return (end >= at_ns - batch_ns and start < back_ns) or start < at_ns < end or (
            s["traceId"] == trace_id
            and not s["name"].startswith("GET /api/v1/operations/{operation_id}")
        )

    out = without(recording, lost)
    polls = sorted(
        (
            s
            for _, svc, s in spans(out)
            if s["traceId"] == trace_id
            and svc == "ktrdr-cli"
            and s["name"] == "GET"
            and at_ns <= int(s["startTimeUnixNano"]) < back_ns
        ),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    refused: set[str] = set()
    due = at_ns
    for poll in polls:  # one read, then its retries after 1 s, 2 s, 4 s ...
        if int(poll["startTimeUnixNano"]) >= due:
            refused.add(poll["spanId"])
            due = int(poll["startTimeUnixNano"]) + 2 ** len(refused) // 2 * 1_000_000_000
    out = without(
        out,
        lambda svc, s: s["traceId"] == trace_id
        and svc == "ktrdr-cli"
        and s["name"] == "GET"
        and at_ns <= int(s["startTimeUnixNano"]) < back_ns
        and s["spanId"] not in refused,
    )

    def fail(span: Doc) -> None:
        span["attributes"] = [a for a in span["attributes"] if a["key"] != "http.status_code"]
        end = int(span["startTimeUnixNano"]) + 2_000_000
        raising("httpx.ConnectError", "All connection attempts failed", end_ns=end)(span)

    return edited(out, lambda _svc, s: s["spanId"] in refused, fail)


def dummy_task(recording: Recording, load_id: str, dummy_id: str) -> Recording:
    """``curl -X POST /api/v1/dummy/start`` where the data load ``load_id`` was started: the
    dummy endpoint (api/endpoints/dummy.py) has no service span of its own and calls
    ``start_managed_operation`` like the data load does, so its trace is the load's without
    the CLI, ``data.download`` and what the load did after it started (its host calls and
    their failure): the server span, ``operations.create`` > ``operation.register``
    (type ``dummy``, symbol and timeframe "N/A", ``is_backend_local`` false) and the
    pending -> running transition. The 200 s task (dummy_service.py) writes no span."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == load_id
    )
    out = as_curl(recording, {trace_id})
    server = next(
        s["spanId"]
        for _, _, s in spans(out)
        if s["traceId"] == trace_id and s.get("kind") == SERVER and s["name"].startswith("POST /")
    )
    dropped = {
        s["spanId"]
        for _, _, s in spans(out)
        if s["traceId"] == trace_id
        and (
            s["name"] == "data.download"
            or s.get("kind") == CLIENT
            or attr(s, "operation.to_status") not in (None, "running")
        )
    }
    out = without(out, lambda _svc, s: s["spanId"] in dropped)
    load_path = "/api/v1/data/acquire/download"

    def as_dummy(span: Doc) -> None:
        if span.get("parentSpanId") in dropped:
            span["parentSpanId"] = server
        span["name"] = span["name"].replace(load_path, "/api/v1/dummy/start")
        for a in span.get("attributes", []):
            value = a["value"]
            if "stringValue" not in value:
                continue
            text = value["stringValue"].replace(load_id, dummy_id)
            if a["key"] in ("http.url", "http.target", "http.route"):
                text = re.sub(re.escape(load_path) + r"(\?[^#]*)?", "/api/v1/dummy/start", text)
            elif a["key"] == "operation.type":
                text = "dummy"
            elif a["key"] in ("data.symbol", "data.timeframe"):
                text = "N/A"
            value["stringValue"] = text

    return edited(out, lambda _svc, s: s["traceId"] == trace_id, as_dummy)


def orphan_closed(recording: Recording, operation_id: str, at_ns: int) -> Recording:
    """KTRDR's orphan detector failing ``operation_id`` at ``at_ns``: a copy of the one-span
    trace run1 recorded (case 9), in a trace of its own."""
    service, found = next((svc, s) for _, svc, s in spans(recording) if is_orphan_close(svc, s))
    span = copy.deepcopy(found)
    span["traceId"], span["spanId"] = "0f" * 16, "0e" * 8
    for a in span["attributes"]:
        if a["key"] == "operation.id":
            a["value"] = {"stringValue": operation_id}
    length = int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])
    span["startTimeUnixNano"], span["endTimeUnixNano"] = str(at_ns), str(at_ns + length)
    return added(recording, service, [span])


def _server_span(
    trace_id: str, span_id: str, parent: str, name: str, route: str, target: str, code: int,
    start_ns: int, end_ns: int, base: str,
) -> Doc:
    """The backend's server span of a request (method, URL, route, target, status)."""
    return _span(trace_id, span_id, parent, name, SERVER, start_ns, end_ns,
                 {"http.method": name.split(maxsplit=1)[0], "http.url": f"{base}{target}",
                  "http.route": route, "http.target": target, "http.status_code": code})


def _research_triggered(
    trace_id: str, prefix: str, at_ns: int, operation_id: str, base: str
) -> list[Doc]:
    """The backend's side of ``_research_started``: the health check and the trigger it
    answered, ``agent.trigger`` creating the research (pending, then running); span ids
    ``<prefix>000…11`` to ``…16``, below the command's ``…02`` and ``…03``."""
    ms = 1_000_000
    sid = [f"{prefix}{i:014x}" for i in range(0x11, 0x17)]
    health, trigger = f"{prefix}{2:014x}", f"{prefix}{3:014x}"
    return [
        _server_span(trace_id, sid[0], health, "GET /api/v1/health", "/api/v1/health",
                     "/api/v1/health", 200, at_ns + 7 * ms, at_ns + 12 * ms, base),
        _server_span(trace_id, sid[1], trigger, "POST /api/v1/agent/trigger",
                     "/api/v1/agent/trigger", "/api/v1/agent/trigger", 202, at_ns + 22 * ms,
                     at_ns + 72 * ms, base),
        _span(trace_id, sid[2], sid[1], "agent.trigger", 1, at_ns + 24 * ms, at_ns + 70 * ms,
              {"service.method": "agent.trigger"}, 1),
        _span(trace_id, sid[3], sid[2], "operations.create", 1, at_ns + 30 * ms,
              at_ns + 55 * ms, {"service.method": "operations.create"}, 1),
        _span(trace_id, sid[4], sid[3], "operation.register", 1, at_ns + 31 * ms,
              at_ns + 54 * ms,
              {"operation.id": operation_id, "data.symbol": "None", "data.timeframe": "None",
               "operation.type": "agent_research", "operation.status": "pending",
               "operation.is_backend_local": True}, 1),
        _span(trace_id, sid[5], sid[2], "operation.state_transition", 1, at_ns + 60 * ms,
              at_ns + 60 * ms + 50_000,
              {"operation.id": operation_id, "operation.from_status": "pending",
               "operation.to_status": "running"}, 1),
    ]


def _research_started(
    trace_id: str, prefix: str, at_ns: int, end_ns: int, args: dict[str, Any], base: str
) -> list[Doc]:
    """``ktrdr research``'s span and its first two calls (the health check, the trigger the
    backend answers 202), span ids ``<prefix>000…01`` to ``…03``."""
    ms = 1_000_000
    root, health, trigger = (f"{prefix}{i:014x}" for i in (1, 2, 3))
    return [
        _span(trace_id, root, None, "cli.research", 1, at_ns, end_ns,
              {"cli.command": "research", "cli.args": json.dumps(args)}, 1),
        _span(trace_id, health, root, "GET", CLIENT, at_ns + 5 * ms, at_ns + 15 * ms,
              {"http.method": "GET", "http.url": f"{base}/api/v1/health",
               "http.status_code": 200}),
        _span(trace_id, trigger, root, "POST", CLIENT, at_ns + 20 * ms, at_ns + 75 * ms,
              {"http.method": "POST", "http.url": f"{base}/api/v1/agent/trigger",
               "http.status_code": 202}),
    ]


def _span(
    trace_id: str, span_id: str, parent: str | None, name: str, kind: int,
    start_ns: int, end_ns: int, attrs: dict[str, Any], status: int = 0,
) -> Doc:
    """A span as KTRDR's SDK exports it: string, int, float and bool attributes typed."""

    def typed(value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"boolValue": value}
        if isinstance(value, int):
            return {"intValue": str(value)}
        if isinstance(value, float):
            return {"doubleValue": value}
        return {"stringValue": str(value)}

    span: Doc = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(end_ns),
        "attributes": [{"key": k, "value": typed(v)} for k, v in attrs.items()],
        "events": [],
        "status": {"code": status} if status else {},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def research_without_design_workers(
    recording: Recording, operation_id: str, at_ns: int, goal: str, registered: int
) -> Recording:
    """``ktrdr research GOAL --follow`` (cli/commands/research.py) at ``at_ns`` with no design
    agent worker registered (local processes: the agent containers are not running).
    POST /api/v1/agent/trigger answers 202: ``agent.trigger`` creates the agent_research
    operation (is_backend_local true), starts it and the coordinator task, whose
    ``agent.coordinator`` span (research_worker.py) is a child of ``agent.trigger``;
    ``_start_design`` sets the progress on it (``update_progress`` writes the current span's
    ``operation.id``, ``progress.*``) and ``AgentDispatchService.dispatch_design``'s
    ``workers.select`` finds no agent_design worker: RuntimeError, wrapped as
    ``WorkerError("Design dispatch failed: …")``, and ``_handle_research_failed`` fails the
    operation. The coordinator sleeps its poll interval (5 s), finds no active research and
    ends. The CLI's first read sees failed; ``monitor_agent_cycle`` prints it and returns
    (cli.research OK)."""
    t = "5e" + f"{at_ns:030x}"[-30:]
    ms = 1_000_000
    route = "/api/v1/operations/{operation_id}"
    path = f"/api/v1/operations/{operation_id}"
    base = "http://127.0.0.1:8000"
    args = {"args": [], "kwargs": {"goal": goal, "model": None, "strategy": None, "follow": True}}
    error = (
        "Design dispatch failed: No available AGENT_DESIGN workers. "
        "Ensure design agent containers are running and registered."
    )
    cli = [
        *_research_started(t, "5e", at_ns, at_ns + 190 * ms, args, base),
        _span(t, "5e00000000000004", "5e00000000000001", "GET", CLIENT, at_ns + 150 * ms,
              at_ns + 160 * ms, {"http.method": "GET", "http.url": f"{base}{path}",
                                 "http.status_code": 200}),
    ]

    api = [
        *_research_triggered(t, "5e", at_ns, operation_id, base),
        _span(t, "5e00000000000017", "5e00000000000013", "agent.coordinator", 1,
              at_ns + 73 * ms, at_ns + 5_095 * ms,
              {"operation.type": "coordinator", "progress.percentage": 5.0,
               "operation.id": operation_id, "progress.phase": "Designing strategy...",
               "progress.updated_at": at_ns / 1e9}),
        _span(t, "5e00000000000018", "5e00000000000017", "workers.select", 1,
              at_ns + 80 * ms, at_ns + 81 * ms,
              {"service.method": "workers.select", "worker.type": "agent_design",
               "worker.total_workers": str(registered), "worker.capable_workers": "0",
               "worker.available_workers": "0",
               "worker.selection_status": "no_workers_available"}, 1),
        _span(t, "5e00000000000019", "5e00000000000017", "operation.state_transition", 1,
              at_ns + 90 * ms, at_ns + 90 * ms + 60_000,
              {"operation.id": operation_id, "operation.from_status": "running",
               "operation.to_status": "failed", "operation.error": error}, 1),
        _server_span(t, "5e0000000000001a", "5e00000000000004", f"GET {route}", route, path,
                     200, at_ns + 152 * ms, at_ns + 158 * ms, base),
    ]
    return added(added(recording, "ktrdr-cli", cli), "ktrdr-api", api)


def backtest_outside_the_data(
    recording: Recording, operation_id: str, start: str, end: str, cached: tuple[str, str]
) -> Recording:
    """The followed backtest ``operation_id`` asked for ``start``..``end`` instead of the
    dates ``cached`` (its CLI arguments), a range the cached bars do not reach: the engine's
    single-timeframe load (backtesting/engine.py ``_load_historical_data``) reads the file,
    filters it to the dates and sets ``data.rows`` 0 on ``backtest.data_loading`` (status
    unset: no exception there); ``run`` then raises ValueError("No data for SYMBOL TF")
    before ``backtest.feature_compute``, and the worker fails the operation with it
    (backtest_worker.py). The CLI's follow reads failed and exits 1 (cli.backtest unset)."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )
    asked = f'"start_date": "{cached[0]}", "end_date": "{cached[1]}"'

    def command(span: Doc) -> None:
        for a in span["attributes"]:
            if a["key"] == "cli.args":
                text = a["value"]["stringValue"]
                a["value"]["stringValue"] = text.replace(
                    asked, f'"start_date": "{start}", "end_date": "{end}"'
                )
        span["status"] = {}

    out = edited(
        recording, lambda _svc, s: s["traceId"] == trace_id and s["name"] == "cli.backtest",
        command,
    )
    loading = next(
        s
        for _, _, s in spans(out)
        if s["traceId"] == trace_id and s["name"] == "backtest.data_loading"
    )
    symbol, timeframe = attr(loading, "data.symbol"), attr(loading, "data.timeframe")
    ended = int(loading["endTimeUnixNano"])

    def no_rows(span: Doc) -> None:
        for a in span["attributes"]:
            if a["key"] == "data.rows":
                a["value"] = {"intValue": "0"}

    out = edited(out, lambda _svc, s: s["spanId"] == loading["spanId"], no_rows)
    out = without(
        out, lambda _svc, s: s["traceId"] == trace_id and s["name"] == "backtest.feature_compute"
    )
    out = failed_instead(out, operation_id, f"No data for {symbol} {timeframe}")

    return failure_after(out, trace_id, ended)


def failure_after(recording: Recording, trace_id: str, ended_ns: int) -> Recording:
    """The failed transition in ``trace_id`` moved to 2 ms after ``ended_ns`` (the end of the
    span that failed), 50 µs long: the worker records the failure as its phase raises."""

    def right_after(span: Doc) -> None:
        span["startTimeUnixNano"] = str(ended_ns + 2_000_000)
        span["endTimeUnixNano"] = str(ended_ns + 2_050_000)

    return edited(
        recording,
        lambda _svc, s: s["traceId"] == trace_id and attr(s, "operation.to_status") == "failed",
        right_after,
    )


def hung_while_followed(
    recording: Recording,
    operation_id: str,
    after: str,
    until_ns: int,
    every_ns: int = 5_000_000_000,
) -> Recording:
    """The followed operation ``operation_id`` hangs once its span ``after`` ended (a
    backtest's simulation, a training's loop: code without a span) and the CLI follows it
    until ``until_ns``: no terminal transition, no work span after ``after``, the command's
    own span still open (unexported), and its polls going on, answered by the backend and,
    through it, by the live worker (the last second of polls before the hang, repeated every
    ``every_ns``)."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )
    mine = [(svc, s) for _, svc, s in spans(recording) if s["traceId"] == trace_id]
    cut = int(next(s["endTimeUnixNano"] for _, s in mine if s["name"] == after))
    children: dict[str, list[dict[str, Any]]] = {}
    for _, s in mine:
        children.setdefault(s.get("parentSpanId", ""), []).append(s)
    polled = f"/api/v1/operations/{operation_id}"
    poll_ids: set[str] = set()

    def subtree(span: dict[str, Any]) -> None:
        poll_ids.add(span["spanId"])
        for child in children.get(span["spanId"], []):
            subtree(child)

    for svc, s in mine:
        if svc == "ktrdr-cli" and s["name"] == "GET" and str(attr(s, "http.url")).endswith(polled):
            subtree(s)
    command = {
        s["spanId"] for svc, s in mine if svc == "ktrdr-cli" and s["name"].startswith("cli.")
    }
    out = without(
        recording,
        lambda _svc, s: s["traceId"] == trace_id
        and (
            s["spanId"] in command
            or (int(s["startTimeUnixNano"]) > cut and s["spanId"] not in poll_ids)
            or attr(s, "operation.to_status") in ("completed", "failed", "cancelled")
        ),
    )
    block = [
        (svc, s)
        for svc, s in mine
        if s["spanId"] in poll_ids and cut - 1_000_000_000 <= int(s["startTimeUnixNano"]) <= cut
    ]
    last = max(int(s["startTimeUnixNano"]) for _, s in mine if s["spanId"] in poll_ids)
    batch: dict[str, list[Doc]] = {}
    k, shift = 0, max(every_ns, last - cut + every_ns)
    while cut + shift < until_ns:
        k += 1
        for svc, original in block:
            span = copy.deepcopy(original)
            for key in ("spanId", "parentSpanId"):
                if span.get(key) and span[key] in poll_ids:
                    span[key] = f"{int(span[key], 16) ^ (k << 20):016x}"
            for key in ("startTimeUnixNano", "endTimeUnixNano"):
                span[key] = str(int(span[key]) + shift)
            batch.setdefault(svc, []).append(span)
        shift += every_ns
        if k % 6 == 0 or cut + shift >= until_ns:
            for svc, new_spans in batch.items():
                out = added(out, svc, new_spans)
            batch = {}
    return out


def killed_after_dispatch(
    recording: Recording, operation_id: str, after_ns: int, until_ns: int,
    orphan_after_s: float = 375.0,
) -> Recording:
    """The worker that took ``operation_id`` SIGKILLed ``after_ns`` after the backend's
    dispatch to it (``POST /training/start`` or ``/backtests/start``, answered 200 within a
    few ms) and before its first export: none of its spans of the operation arrive, and the
    backend's health checks of its port are refused until ``until_ns``. The worker writes the
    operation to PostgreSQL in ``operations.create``, after it answered the dispatch:

    * killed after that write, the operation is RUNNING in the database: the backend's reads
      of it answer 200 from its row, each after one refused read from the worker (the proxy
      KTRDR registers once the dispatch is answered); the orphan detector fails it
      ``orphan_after_s`` after the kill (6 min 15 s in run1);
    * killed before it, no row exists: each read of it misses the database, asks the worker
      (refused) and answers 404 "Operation not found"; the orphan detector, which scans
      RUNNING rows, never fails it."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
        and s["name"] == "operations.create"
    )
    create = next(
        s for _, _, s in spans(recording)
        if s["traceId"] == trace_id and s["name"] == "operations.create"
    )
    dispatch = next(
        s for _, svc, s in spans(recording)
        if s["traceId"] == trace_id and svc == "ktrdr-api" and s["kind"] == CLIENT
        and re.search(r"/(training|backtests)/start$", str(attr(s, "http.url") or ""))
    )
    worker = next(
        svc for _, svc, s in spans(recording) if s.get("parentSpanId") == dispatch["spanId"]
    )
    port = int(re.search(r":(\d+)/", str(attr(dispatch, "http.url"))).group(1))
    kill = int(dispatch["startTimeUnixNano"]) + after_ns
    written = kill >= int(create["endTimeUnixNano"])
    out = killed_before_export(recording, worker, kill, port, until_ns)
    closes = {
        s["spanId"] for _, svc, s in spans(out)
        if is_orphan_close(svc, s) and attr(s, "operation.id") == operation_id
    }
    if written:
        close_ns = kill + int(orphan_after_s * 1e9)
        out = move_spans(out, lambda _svc, s: s["spanId"] in closes, close_ns)
    else:
        close_ns = until_ns + 1
        out = without(out, lambda _svc, s: s["spanId"] in closes)
    path = f"/api/v1/operations/{operation_id}"
    reads = {
        s["traceId"]: s for _, svc, s in spans(out)
        if svc == "ktrdr-api" and s["kind"] == SERVER and attr(s, "http.target") == path
        and kill < int(s["startTimeUnixNano"]) < close_ns
    }
    # what the backend asked the worker under each read: one refused read of the operation
    out = without(out, lambda _svc, s: s["traceId"] in reads and s["kind"] == CLIENT)
    asked: list[Doc] = []
    for i, (tid, server) in enumerate(sorted(reads.items())):
        at = int(server["startTimeUnixNano"]) + 3_000_000
        call = client_call(
            tid, server["spanId"], f"d1{i:014x}", at, at + 2_000_000, "GET",
            f"http://127.0.0.1:{port}{path}",
        )
        raising("httpx.ConnectError", "All connection attempts failed")(call)
        asked.append(call)
    if not written:

        def not_found(span: Doc) -> None:
            for a in span["attributes"]:
                if a["key"] == "http.status_code":
                    a["value"] = {"intValue": "404"}

        out = edited(
            out,
            lambda _svc, s: s["traceId"] in reads and attr(s, "http.status_code") is not None,
            not_found,
        )
    return added(out, "ktrdr-api", asked) if asked else out


def unfollowed(recording: Recording, trace_ids: set[str]) -> Recording:
    """``as_curl``, and nothing following the operation: the CLI's status reads in its
    command's trace (``--follow``'s polls, answered by the backend) are gone with it."""
    out = as_curl(recording, trace_ids)
    reads = {
        s["spanId"]
        for _, svc, s in spans(out)
        if s["traceId"] in trace_ids and svc == "ktrdr-api" and s.get("kind") == SERVER
        and s["name"].startswith("GET /api/v1/operations/")
    }
    gone: set[str] = set()
    for trace_id in trace_ids:
        gone |= _subtree_ids(out, trace_id, reads)
    return without(out, lambda _svc, s: s["traceId"] in trace_ids and s["spanId"] in gone)


def research_child_failed(
    recording: Recording, child_id: str, operation_id: str, goal: str, strategy: str
) -> Recording:
    """``ktrdr research GOAL --follow`` whose training child ``child_id`` (a run1 training that
    failed, started by the CLI) failed: the same worker spans, started instead by the research
    coordinator (research_worker.py ``_start_training``: ``training_service.start_training``
    inside ``agent.coordinator``, 45 s after ``agent.trigger``, once the design agent's child
    completed: ``agent.phase.design``). The coordinator's next poll (5 s) reads the child
    failed and raises ``WorkerError("Training failed: <child's error>")``, which
    ``_handle_research_failed`` writes on the research's transition to failed; the
    coordinator span itself ends without ``outcome`` (per-research errors are caught). The
    CLI's ``monitor_agent_cycle`` polls the research every 1.5 s and returns on failed."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == child_id
    )
    start = next(
        s for _, svc, s in spans(recording)
        if s["traceId"] == trace_id and svc == "ktrdr-api" and s["name"] == "training.start"
    )
    start_ns = int(start["startTimeUnixNano"])
    kept = _subtree_ids(recording, trace_id, {start["spanId"]})
    child_error = next(
        attr(s, "operation.error") for _, _, s in spans(recording)
        if attr(s, "operation.id") == child_id and attr(s, "operation.to_status") == "failed"
    )
    failed_ns = next(
        int(s["endTimeUnixNano"]) for _, _, s in spans(recording)
        if attr(s, "operation.id") == child_id and attr(s, "operation.to_status") == "failed"
    )
    out = without(recording, lambda _svc, s: s["traceId"] == trace_id and s["spanId"] not in kept)
    ms = 1_000_000
    at_ns = start_ns - 45_000 * ms
    research_failed_ns = failed_ns + 3_000 * ms
    coordinator_end = research_failed_ns + 5_010 * ms
    t = trace_id
    coordinator = "5f00000000000017"

    def reparent(span: Doc) -> None:
        span["parentSpanId"] = coordinator

    out = edited(out, lambda _svc, s: s["spanId"] == start["spanId"], reparent)
    route = "/api/v1/operations/{operation_id}"
    path = f"/api/v1/operations/{operation_id}"
    base = "http://127.0.0.1:8000"
    args = {"args": [], "kwargs": {"goal": goal, "model": None, "strategy": None, "follow": True}}
    polls = list(range(at_ns + 150 * ms, research_failed_ns + 1_500 * ms, 1_500 * ms))
    end_ns = polls[-1] + 20 * ms
    cli = _research_started(t, "5f", at_ns, end_ns, args, base)

    api = [
        *_research_triggered(t, "5f", at_ns, operation_id, base),
        _span(t, coordinator, "5f00000000000013", "agent.coordinator", 1,
              at_ns + 73 * ms, coordinator_end,
              {"operation.type": "coordinator", "progress.percentage": 20.0,
               "operation.id": operation_id, "progress.phase": "Training model...",
               "progress.updated_at": start_ns / 1e9}),
        _span(t, "5f00000000000018", coordinator, "workers.select", 1,
              at_ns + 80 * ms, at_ns + 81 * ms,
              {"service.method": "workers.select", "worker.type": "agent_design",
               "worker.total_workers": "5", "worker.capable_workers": "1",
               "worker.available_workers": "1", "worker.selection_status": "success",
               "worker.selected_id": "agent-design-1"}, 1),
        _span(t, "5f00000000000019", coordinator, "agent.phase.design", 1,
              start_ns - 40 * ms, start_ns - 39 * ms,
              {"operation.id": operation_id, "phase": "designing", "strategy_name": strategy,
               "tokens.input": 5120, "tokens.output": 1830}),
        _span(t, "5f0000000000001a", coordinator, "operation.state_transition", 1,
              research_failed_ns, research_failed_ns + 60_000,
              {"operation.id": operation_id, "operation.from_status": "running",
               "operation.to_status": "failed",
               "operation.error": f"Training failed: {child_error}"}, 1),
    ]
    for i, poll in enumerate(polls):
        client_id, server_id = f"5f1{i:013x}", f"5f2{i:013x}"
        cli.append(_span(t, client_id, "5f00000000000001", "GET", CLIENT, poll, poll + 10 * ms,
                         {"http.method": "GET", "http.url": f"{base}{path}",
                          "http.status_code": 200}))
        api.append(_server_span(t, server_id, client_id, f"GET {route}", route, path, 200,
                                poll + 2 * ms, poll + 8 * ms, base))
    return added(added(out, "ktrdr-cli", cli), "ktrdr-api", api)


def _backtest_cli_unset(recording: Recording, operation_id: str) -> tuple[Recording, str]:
    """The backtest's trace with its ``cli.backtest`` span unset (the CLI's follow reads the
    failure and exits 1 without an error status), and that trace's id."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )

    def unset(span: Doc) -> None:
        span["status"] = {}

    out = edited(
        recording, lambda _svc, s: s["traceId"] == trace_id and s["name"] == "cli.backtest", unset
    )
    return out, trace_id


def backtest_model_unloadable(recording: Recording, operation_id: str, message: str) -> Recording:
    """The backtest ``operation_id`` whose model could not be loaded: KTRDR builds its
    ``BacktestingEngine`` (``ModelBundle.load``: metadata, features, ``torch.load`` of
    model.pt, ``load_state_dict``) before ``run`` opens ``backtest.data_loading``, so the
    worker's ``fail_operation(operation_id, str(e))`` 3 ms after its transition to running
    is all the traces hold: no phase span, ``message`` on the transition to failed. The CLI's
    follow reads failed and exits 1 (cli.backtest unset)."""
    out, trace_id = _backtest_cli_unset(recording, operation_id)
    phases = ("backtest.data_loading", "backtest.feature_compute")
    out = without(out, lambda _svc, s: s["traceId"] == trace_id and s["name"] in phases)
    out = failed_instead(out, operation_id, message)
    running = next(
        int(s["endTimeUnixNano"]) for _, _, s in spans(out)
        if attr(s, "operation.id") == operation_id and attr(s, "operation.to_status") == "running"
    )

    def right_after(span: Doc) -> None:
        span["startTimeUnixNano"] = str(running + 3_000_000)
        span["endTimeUnixNano"] = str(running + 3_050_000)

    return edited(
        out,
        lambda _svc, s: attr(s, "operation.id") == operation_id
        and attr(s, "operation.to_status") == "failed",
        right_after,
    )


def backtest_features_mismatched(
    recording: Recording, operation_id: str, message: str
) -> Recording:
    """The backtest ``operation_id`` run with a model trained on other features than its
    strategy makes: ``BacktestingEngine.run`` opens ``backtest.feature_compute``, whose
    ``FeatureCache.compute_all_features`` ends in ``_validate_features`` raising
    ValueError('Feature mismatch: missing N features. …') (``backtesting/feature_cache.py``);
    the span records it (OpenTelemetry's default: exception event, status ERROR) and the
    worker fails the operation with ``str(e)`` 2 ms later (``backtest_worker.py``), before
    any simulation. The CLI's follow reads failed and exits 1 (cli.backtest unset)."""
    out, trace_id = _backtest_cli_unset(recording, operation_id)
    compute = next(
        s
        for _, _, s in spans(out)
        if s["traceId"] == trace_id and s["name"] == "backtest.feature_compute"
    )
    ended = int(compute["endTimeUnixNano"])
    out = edited(
        out, lambda _svc, s: s["spanId"] == compute["spanId"], raising("ValueError", message)
    )
    out = failed_instead(out, operation_id, message)

    return failure_after(out, trace_id, ended)


def data_load_of_an_unknown_symbol(
    recording: Recording, operation_id: str, symbol: str
) -> Recording:
    """The data load ``operation_id`` (run1: nothing listened on :5001, so ``POST
    /data/validate`` got ConnectError) asked for ``symbol``, which IB does not know, with
    the host service and the IB Gateway up: the host's ``/data/validate`` answers 200 with
    ``success=true, is_valid=false, error_message='Symbol X not found'``
    (``ib-host-service/endpoints/data.py``, ``ib/symbol_validator.py``); the backend's
    ``validate_and_get_metadata`` raises DataProviderDataError with that message
    (``data/acquisition/ib_data_provider.py``) in code without a span, and the orchestrator
    fails the operation with ``str(e)`` (``service_orchestrator.py``). No span is in error."""
    download = _download_span(recording, operation_id)
    trace_id = download["traceId"]
    asked = str(attr(download, "data.symbol"))

    def of_trace(_svc: str, s: Doc) -> bool:
        return s["traceId"] == trace_id

    def renamed(span: Doc) -> None:
        for a in span["attributes"]:
            value = a["value"]
            if a["key"] == "data.symbol" and value.get("stringValue") == asked:
                value["stringValue"] = symbol
            elif a["key"] in ("cli.args", "progress.context"):
                text = value["stringValue"].replace(f'"symbol": "{asked}"', f'"symbol": "{symbol}"')
                value["stringValue"] = text.replace(f" {asked} ", f" {symbol} ")

    out = edited(recording, of_trace, renamed)
    call = next(
        s
        for _, _, s in spans(out)
        if s["traceId"] == trace_id
        and s["kind"] == CLIENT
        and str(attr(s, "http.url") or "").endswith("/data/validate")
    )
    answered_ns = int(call["startTimeUnixNano"]) + 180_000_000

    def answered(span: Doc) -> None:
        span["status"], span["events"] = {}, []
        span["endTimeUnixNano"] = str(answered_ns)
        span["attributes"].append({"key": "http.status_code", "value": {"intValue": "200"}})

    out = edited(out, lambda svc, s: of_trace(svc, s) and s["spanId"] == call["spanId"], answered)

    def failed_after(span: Doc) -> None:
        span["startTimeUnixNano"] = str(answered_ns + 2_000_000)
        span["endTimeUnixNano"] = str(answered_ns + 2_050_000)
        for a in span["attributes"]:
            if a["key"] == "operation.error":
                a["value"] = {"stringValue": f"Symbol {symbol} not found"}

    out = edited(
        out,
        lambda svc, s: of_trace(svc, s)
        and attr(s, "operation.id") == operation_id
        and attr(s, "operation.to_status") == "failed",
        failed_after,
    )
    path = "/data/validate"
    server = server_answer(
        call, "5a0000000000b001", path, path, int(call["startTimeUnixNano"]) + 3_000_000,
        answered_ns - 3_000_000, url=f"http://localhost:5001{path}",
    )
    return added(out, "ktrdr-ib-host-service", [server])


def trained_on_symbols(
    recording: Recording, operation_id: str, loaded: str, rows: int, load_ns: int
) -> Recording:
    """The training ``operation_id`` (run1: one symbol whose data was not cached) asked for
    ``loaded`` before it (``ktrdr train … --symbols LOADED,MISSING``): the worker names the
    operation by all its symbols (``training_worker.py``: ``symbol=",".join(symbols)``) and
    the orchestrator loads one symbol after the other, one ``training.data_loading`` each
    (``local_orchestrator.py``): ``loaded``'s answers ``rows`` bars in ``load_ns``, then the
    missing one raises DataNotFoundError as recorded, later by that time."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )
    missing = next(
        s
        for _, _, s in spans(recording)
        if s["traceId"] == trace_id and s["name"] == "training.data_loading"
    )
    symbol = str(attr(missing, "data.symbol"))
    both = f"{loaded},{symbol}"
    start = int(missing["startTimeUnixNano"])

    def named(span: Doc) -> None:
        for a in span["attributes"]:
            value = a["value"]
            if a["key"] == "cli.args":
                value["stringValue"] = value["stringValue"].replace(
                    f'"symbols": "{symbol}"', f'"symbols": "{both}"'
                )
            elif a["key"] == "data.symbol" and span["name"] == "operation.register":
                value["stringValue"] = both

    def later(span: Doc) -> None:
        for key in ("startTimeUnixNano", "endTimeUnixNano"):
            span[key] = str(int(span[key]) + load_ns + 1_000_000)

    of_trace: SpanFilter = lambda _svc, s: s["traceId"] == trace_id  # noqa: E731
    out = edited(recording, of_trace, named)
    out = edited(
        out,
        lambda svc, s: of_trace(svc, s)
        and (s["spanId"] == missing["spanId"] or attr(s, "operation.to_status") == "failed"),
        later,
    )
    first = copy.deepcopy(missing)
    first.update(
        spanId="5b0000000000c001", startTimeUnixNano=str(start),
        endTimeUnixNano=str(start + load_ns), events=[], status={},
    )
    first["attributes"] = [
        {"key": "data.symbol", "value": {"stringValue": loaded}},
        *[a for a in missing["attributes"] if a["key"] in ("data.timeframes", "progress.phase")],
        {"key": "data.rows", "value": {"intValue": str(rows)}},
        {"key": "data.columns", "value": {"intValue": "5"}},
    ]
    worker = next(svc for _, svc, s in spans(out) if s["spanId"] == missing["spanId"])
    return added(out, worker, [first])


def failed_past_loading(
    recording: Recording, operation_id: str, rows: int, message: str
) -> Recording:
    """The training ``operation_id`` whose data load failed (run1 case 15, or
    ``trained_on_symbols``) finding its bars this time: its failed ``training.data_loading``
    ends OK with ``rows`` of them, and the run fails after it outside any span, as
    ``local_orchestrator.py`` does when features or labels are empty after alignment
    (ValueError 'No aligned samples available: …'): the worker fails the operation with the
    message (the failed transition's ``operation.error``), which no span records."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )

    def loaded(span: Doc) -> None:
        span["events"], span["status"] = [], {}
        span["attributes"] = [
            *[a for a in span["attributes"] if a["key"] not in ("data.rows", "data.columns")],
            {"key": "data.rows", "value": {"intValue": str(rows)}},
            {"key": "data.columns", "value": {"intValue": "5"}},
        ]

    def said(span: Doc) -> None:
        for a in span["attributes"]:
            if a["key"] == "operation.error":
                a["value"] = {"stringValue": message}

    out = edited(
        recording,
        lambda _svc, s: s["traceId"] == trace_id
        and s["name"] == "training.data_loading"
        and (s.get("status") or {}).get("code") == 2,
        loaded,
    )
    return edited(
        out,
        lambda _svc, s: s["traceId"] == trace_id and attr(s, "operation.to_status") == "failed",
        said,
    )


def trained_on_timeframes(recording: Recording, operation_id: str, timeframes: str) -> Recording:
    """The training ``operation_id`` (run1: a symbol whose 1h data was not cached) of a
    strategy on several ``timeframes`` (``"1h,4h,1d"``, the base first): the worker names
    the operation by all of them (``training_worker.py``: ``timeframe=",".join(...)``) and
    ``training.data_loading`` carries them all (``data.timeframes``); the multi-timeframe
    load (``data/multi_timeframe_coordinator.py``) reads the base first, catches its
    DataNotFoundError and raises DataError('Failed to load base timeframe 1h for ZZZZ')
    from it, which the span records and the worker fails the operation with."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == operation_id
    )
    loading = next(
        s
        for _, _, s in spans(recording)
        if s["traceId"] == trace_id and s["name"] == "training.data_loading"
    )
    symbol = attr(loading, "data.symbol")
    base = timeframes.partition(",")[0]
    message = f"Failed to load base timeframe {base} for {symbol}"

    def named(span: Doc) -> None:
        for a in span["attributes"]:
            if a["key"] == "data.timeframes" or (
                a["key"] == "data.timeframe" and span["name"] == "operation.register"
            ):
                a["value"] = {"stringValue": timeframes}
            elif a["key"] == "operation.error":
                a["value"] = {"stringValue": message}
        if span["spanId"] == loading["spanId"]:
            raising("ktrdr.errors.exceptions.DataError", message)(span)

    return edited(recording, lambda _svc, s: s["traceId"] == trace_id, named)


def trained_on_more_symbols(
    recording: Recording,
    trace_ids: set[str],
    operation_id: str,
    more: list[str],
    load_ns: int,
    loop_extra_ns: int,
) -> Recording:
    """The training ``operation_id`` (its ``trace_ids``) asked for ``more`` symbols after
    its own (``ktrdr train … --symbols A,B,C``): the worker names the operation by all of
    them (``training_worker.py``: ``symbol=",".join(symbols)``), the orchestrator loads one
    after the other, one ``training.data_loading`` each with the first one's rows, in
    ``load_ns`` (``local_orchestrator.py``), and stacks their features: its span-less loop
    sees that many more samples and lasts ``loop_extra_ns`` longer."""
    first = next(
        s
        for _, _, s in spans(recording)
        if s["traceId"] in trace_ids and s["name"] == "training.data_loading"
    )
    own = str(attr(first, "data.symbol"))
    every = f"{own},{','.join(more)}"
    step = load_ns + 1_000_000
    out = longer_after(recording, trace_ids, "training.data_loading", loop_extra_ns)
    out = longer_after(out, trace_ids, "training.data_loading", step * len(more))

    def named(span: Doc) -> None:
        for a in span["attributes"]:
            value = a["value"]
            if a["key"] == "cli.args":
                value["stringValue"] = value["stringValue"].replace(
                    '"symbols": null', f'"symbols": "{every}"'
                )
            elif a["key"] == "data.symbol" and span["name"] == "operation.register":
                value["stringValue"] = every

    out = edited(out, lambda _svc, s: s["traceId"] in trace_ids, named)
    end = int(first["endTimeUnixNano"])
    loads = []
    for i, symbol in enumerate(more):
        load = copy.deepcopy(first)
        load["spanId"] = f"5c{i:014x}"
        load["startTimeUnixNano"] = str(end + 1_000_000 + i * step)
        load["endTimeUnixNano"] = str(end + 1_000_000 + i * step + load_ns)
        for a in load["attributes"]:
            if a["key"] == "data.symbol":
                a["value"] = {"stringValue": symbol}
        loads.append(load)
    worker = next(svc for _, svc, s in spans(out) if s["spanId"] == first["spanId"])
    return added(out, worker, loads)


def download_cancelled(recording: Recording, operation_id: str, at_ns: int) -> Recording:
    """The IB data load ``operation_id`` downloading in segments (``loaded_in_segments``
    with ``complete=False``) interrupted with Ctrl+C at ``at_ns`` (``data_load_cancelled``:
    the CLI's DELETE, the backend's running -> cancelled). The cancel sets the operation's
    cancellation token, which the segment manager polls every 0.5 s while a request is out
    (``segment_manager.py`` ``_fetch_single_segment``): it cancels the request in flight,
    whose httpx client span ends with the CancelledError, sends no further segment and
    raises CancelledError, which the orchestrator's ``except Exception`` lets through:
    no failed transition follows. CancelledError is no ``Exception``: neither httpx's
    instrumentation nor OpenTelemetry's ``use_span`` (1.38) records it, so the cancelled
    request's span ends unset, without a status code. The host service answers it as it
    would have (it is not told); nothing of the load happens after that answer (a span
    run1 left there, the host's receive of a validation retry whose request is gone, with
    it)."""
    out = data_load_cancelled(recording, operation_id, at_ns)
    trace_id = next(
        s["traceId"]
        for _, _, s in spans(out)
        if s["name"] == "data.download" and attr(s, "operation.id") == operation_id
    )
    noticed_ns = at_ns + 500_000_000
    requests = [
        s
        for _, svc, s in spans(out)
        if s["traceId"] == trace_id
        and svc == "ktrdr-api"
        and s["kind"] == CLIENT
        and str(attr(s, "http.url") or "").endswith("/data/historical")
    ]
    unsent = {s["spanId"] for s in requests if int(s["startTimeUnixNano"]) > noticed_ns}
    gone = _subtree_ids(out, trace_id, unsent)
    out = without(out, lambda _svc, s: s["traceId"] == trace_id and s["spanId"] in gone)
    cut = {
        s["spanId"]
        for s in requests
        if int(s["startTimeUnixNano"]) <= noticed_ns < int(s["endTimeUnixNano"])
    }

    def cancelled(span: Doc) -> None:
        span["attributes"] = [a for a in span["attributes"] if a["key"] != "http.status_code"]
        span["endTimeUnixNano"] = str(noticed_ns)

    out = edited(out, lambda _svc, s: s["traceId"] == trace_id and s["spanId"] in cut, cancelled)
    answered = _subtree_ids(out, trace_id, cut)
    last_ns = max(
        (int(s["endTimeUnixNano"]) for _, _, s in spans(out) if s["spanId"] in answered),
        default=noticed_ns,
    )
    return without(
        out, lambda _svc, s: s["traceId"] == trace_id and int(s["startTimeUnixNano"]) > last_ns
    )


def _refused_then_answered(
    trace_id: str, parent: str, first_ns: int, at_ns: int, back_ns: int, path: str, base: str,
    prefix: str,
) -> tuple[list[Doc], list[Doc], int]:
    """``monitor_agent_cycle``'s reads of ``path`` from ``first_ns``: every 0.5 s while the
    backend answers (its server span lost when it ended within the 5 s before ``at_ns``, the
    export batch that died with the process), refused while it is down (AsyncCLIClient
    retries a refused call after 1, 2, 4 s, the monitor then after 1, 2, 4, 5 s), and one
    read answered by the process that came back; the CLI's spans, the backend's, and the
    end of that last read."""
    ms = 1_000_000
    route = "/api/v1/operations/{operation_id}"
    cli: list[Doc] = []
    api: list[Doc] = []
    at, i, wait_s = first_ns, 0, 1
    while True:
        client_id, server_id = f"{prefix}1{i:013x}", f"{prefix}2{i:013x}"
        i += 1
        if at_ns <= at < back_ns:
            poll = _span(trace_id, client_id, parent, "GET", CLIENT, at, at + 2 * ms,
                         {"http.method": "GET", "http.url": f"{base}{path}"})
            raising("httpx.ConnectError", "All connection attempts failed")(poll)
            cli.append(poll)
            at += 2 * ms + wait_s * 1_000 * ms
            wait_s = min(wait_s * 2, 5) if wait_s < 4 else 5
            continue
        cli.append(_span(trace_id, client_id, parent, "GET", CLIENT, at, at + 10 * ms,
                         {"http.method": "GET", "http.url": f"{base}{path}",
                          "http.status_code": 200}))
        if not at_ns - 5_000 * ms <= at < at_ns:
            api.append(_server_span(trace_id, server_id, client_id, f"GET {route}", route, path,
                                    200, at + 2 * ms, at + 8 * ms, base))
        if at >= back_ns:
            return cli, api, at + 10 * ms
        at += 510 * ms


def _adopted_by_research(
    recording: Recording, child_id: str, coordinator: str
) -> tuple[Recording, str, int]:
    """The run1 training ``child_id`` as a research's coordinator starts it
    (research_worker.py ``_start_training``: ``training_service.start_training`` inside
    ``agent.coordinator``, span id ``coordinator``): its backend's ``training.start`` subtree
    kept, reparented under the coordinator, the command that started it gone. The recording,
    the trace id and when ``training.start`` began."""
    trace_id = next(
        s["traceId"] for _, _, s in spans(recording) if attr(s, "operation.id") == child_id
    )
    start = next(
        s for _, svc, s in spans(recording)
        if s["traceId"] == trace_id and svc == "ktrdr-api" and s["name"] == "training.start"
    )
    kept = _subtree_ids(recording, trace_id, {start["spanId"]})
    out = without(recording, lambda _svc, s: s["traceId"] == trace_id and s["spanId"] not in kept)

    def reparent(span: Doc) -> None:
        span["parentSpanId"] = coordinator

    out = edited(out, lambda _svc, s: s["spanId"] == start["spanId"], reparent)
    return out, trace_id, int(start["startTimeUnixNano"])


def _design_done(
    trace_id: str, prefix: str, coordinator: str, t0: int, start_ns: int, operation_id: str,
    strategy: str,
) -> list[Doc]:
    """The coordinator's dispatch of the design (``workers.select`` found the design agent
    worker) and ``agent.phase.design`` once its child completed, just before the training."""
    ms = 1_000_000
    return [
        _span(trace_id, f"{prefix}00000000000018", coordinator, "workers.select", 1,
              t0 + 80 * ms, t0 + 81 * ms,
              {"service.method": "workers.select", "worker.type": "agent_design",
               "worker.total_workers": "5", "worker.capable_workers": "1",
               "worker.available_workers": "1", "worker.selection_status": "success",
               "worker.selected_id": "agent-design-1"}, 1),
        _span(trace_id, f"{prefix}00000000000019", coordinator, "agent.phase.design", 1,
              start_ns - 40 * ms, start_ns - 39 * ms,
              {"operation.id": operation_id, "phase": "designing", "strategy_name": strategy,
               "tokens.input": 5120, "tokens.output": 1830}),
    ]


def research_lost_with_backend(
    recording: Recording, child_id: str, operation_id: str, goal: str, strategy: str,
    at_ns: int, back_ns: int,
) -> Recording:
    """``ktrdr research GOAL --follow`` whose coordinator started the training ``child_id``
    (a run1 training that completed) 45 s after ``agent.trigger``, and the backend SIGKILLed
    at ``at_ns`` during that training, started again at ``back_ns``. A research is
    backend-local (``agent.trigger`` registers it with ``is_backend_local`` true): the new
    process's ``StartupReconciliation`` fails it ("Backend restarted - no checkpoint
    available") with a repository update, no span, and ``resume_if_needed`` finds no active
    research, so no coordinator runs again. Lost with the old process: the open
    ``agent.coordinator`` span and every backend span that ended in its last 5 s export batch
    or before the restart. The training, worker-based, was only marked PENDING_RECONCILIATION:
    its worker re-registers and completes it as recorded. The CLI's reads
    (``monitor_agent_cycle``; its reads of the child are left out) are refused while the
    backend is down; the first answered after reads failed, and the command ends
    (cli.research OK)."""
    coordinator = "5d00000000000017"
    out, trace_id, start_ns = _adopted_by_research(recording, child_id, coordinator)
    batch_ns = 5_000_000_000

    def lost(service: str, s: Doc) -> bool:
        if service != "ktrdr-api" or is_orphan_close(service, s):
            return False
        begin, end = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        return (end >= at_ns - batch_ns and begin < back_ns) or begin < at_ns < end

    out = without(out, lost)
    ms = 1_000_000
    t0 = start_ns - 45_000 * ms
    base = "http://127.0.0.1:8000"
    path = f"/api/v1/operations/{operation_id}"
    args = {"args": [], "kwargs": {"goal": goal, "model": None, "strategy": None, "follow": True}}
    polls, reads, end_ns = _refused_then_answered(
        trace_id, "5d00000000000001", t0 + 150 * ms, at_ns, back_ns, path, base, "5d"
    )
    cli = [*_research_started(trace_id, "5d", t0, end_ns + 20 * ms, args, base), *polls]
    api = [
        *_research_triggered(trace_id, "5d", t0, operation_id, base),
        *_design_done(trace_id, "5d", coordinator, t0, start_ns, operation_id, strategy),
        *reads,
    ]
    return added(added(out, "ktrdr-cli", cli), "ktrdr-api", api)


def research_cancelled(
    recording: Recording, child_id: str, operation_id: str, goal: str, strategy: str,
    cancel_ns: int,
) -> Recording:
    """``ktrdr research GOAL --follow`` whose coordinator started the training ``child_id``
    (a run1 training that completed) 45 s after ``agent.trigger``, and the user's Ctrl+C at
    ``cancel_ns`` during it: ``monitor_agent_cycle`` sends ``DELETE /operations/{id}``
    (no reason), whose ``OperationsService.cancel_operation`` cancels the research (its
    transition to cancelled, no ``operation.cancellation_reason``) and only the children
    registered with its id as ``parent_operation_id``: the training, created by its worker
    (``training_service.start_training`` passes no parent), is not one, and runs on to its
    completion as recorded. The CLI reads the research once more a second later (cancelled)
    and ends (cli.research OK). The coordinator's next poll (5 s) finds no active research:
    its span ends, no outcome."""
    coordinator = "5c00000000000017"
    out, trace_id, start_ns = _adopted_by_research(recording, child_id, coordinator)
    ms = 1_000_000
    t0 = start_ns - 45_000 * ms
    base = "http://127.0.0.1:8000"
    route = "/api/v1/operations/{operation_id}"
    path = f"/api/v1/operations/{operation_id}"
    root = "5c00000000000001"
    args = {"args": [], "kwargs": {"goal": goal, "model": None, "strategy": None, "follow": True}}
    polls, reads, last = _refused_then_answered(
        trace_id, root, t0 + 150 * ms, cancel_ns, cancel_ns, path, base, "5c"
    )
    polls, reads = polls[:-1], reads[:-1]  # the loop stops at the signal: no read at it
    delete_ns = last - 10 * ms + 20 * ms
    final_ns = delete_ns + 1_030 * ms
    cli = [
        *_research_started(trace_id, "5c", t0, final_ns + 30 * ms, args, base),
        *polls,
        _span(trace_id, "5c00000000000004", root, "DELETE", CLIENT, delete_ns,
              delete_ns + 25 * ms,
              {"http.method": "DELETE", "http.url": f"{base}{path}", "http.status_code": 200}),
        _span(trace_id, "5c00000000000005", root, "GET", CLIENT, final_ns, final_ns + 10 * ms,
              {"http.method": "GET", "http.url": f"{base}{path}", "http.status_code": 200}),
    ]
    coordinator_end = cancel_ns + 5_010 * ms
    api = [
        *_research_triggered(trace_id, "5c", t0, operation_id, base),
        _span(trace_id, coordinator, "5c00000000000013", "agent.coordinator", 1,
              t0 + 73 * ms, coordinator_end,
              {"operation.type": "coordinator", "progress.percentage": 20.0,
               "operation.id": operation_id, "progress.phase": "Training model...",
               "progress.updated_at": start_ns / 1e9}),
        *_design_done(trace_id, "5c", coordinator, t0, start_ns, operation_id, strategy),
        *reads,
        _server_span(trace_id, "5c0000000000001a", "5c00000000000004", f"DELETE {route}",
                     route, path, 200, delete_ns + 2 * ms, delete_ns + 22 * ms, base),
        _span(trace_id, "5c0000000000001b", "5c0000000000001a", "operation.state_transition", 1,
              delete_ns + 15 * ms, delete_ns + 15 * ms + 60_000,
              {"operation.id": operation_id, "operation.from_status": "running",
               "operation.to_status": "cancelled"}, 1),
        _server_span(trace_id, "5c0000000000001c", "5c00000000000005", f"GET {route}", route,
                     path, 200, final_ns + 2 * ms, final_ns + 8 * ms, base),
    ]
    return added(added(out, "ktrdr-cli", cli), "ktrdr-api", api)


def research_design_failed(
    recording: Recording, operation_id: str, at_ns: int, goal: str, design_s: float,
    message: str,
) -> Recording:
    """``ktrdr research GOAL --follow`` at ``at_ns`` whose design child failed ``design_s``
    seconds in with ``message``. The coordinator's ``AgentDispatchService.dispatch_design``
    selects the design agent worker and POSTs ``/designs/start`` to it (the backend's httpx
    client span; the agent worker sets up no telemetry, so nothing of it is exported: its
    child id is ``op_design_<12 hex>``). The coordinator polls every 5 s, reading the child
    through its container proxy (a GET of ``/api/v1/operations/<child>`` on the agent
    worker), and the first read after the failure raises ``WorkerError("Design failed:
    <message>")``, which fails the research. When the Claude call itself fails (API key,
    credit, rate limit, network), ``ClaudeAgentRuntime`` returns an empty transcript with
    "Agent SDK error: …" as its output, which the design worker never reports: it fails
    the child with "Design agent did not call save_strategy_config MCP tool. No strategy
    was produced." The CLI polls every 0.5 s and ends OK on failed."""
    t = "5b" + f"{at_ns:030x}"[-30:]
    ms = 1_000_000
    base = "http://127.0.0.1:8000"
    agent = "http://127.0.0.1:5010"
    child = "op_design_3f9c2a7d41be"
    root, coordinator = "5b00000000000001", "5b00000000000017"
    path = f"/api/v1/operations/{operation_id}"
    args = {"args": [], "kwargs": {"goal": goal, "model": None, "strategy": None, "follow": True}}
    reads_at = [at_ns + 80 * ms + 5_000 * ms * i for i in range(1, int(design_s // 5) + 3)]
    failed_read = next(r for r in reads_at if r >= at_ns + int(design_s * 1_000) * ms)
    failed_ns = failed_read + 15 * ms
    reads_at = [r for r in reads_at if r <= failed_read]
    polls, answers, last = _refused_then_answered(
        t, root, at_ns + 150 * ms, failed_ns + 200 * ms, failed_ns + 200 * ms, path, base, "5b"
    )
    cli = [*_research_started(t, "5b", at_ns, last + 20 * ms, args, base), *polls]
    api = [
        *_research_triggered(t, "5b", at_ns, operation_id, base),
        _span(t, coordinator, "5b00000000000013", "agent.coordinator", 1,
              at_ns + 73 * ms, failed_read + 5_030 * ms,
              {"operation.type": "coordinator", "progress.percentage": 5.0,
               "operation.id": operation_id, "progress.phase": "Designing strategy...",
               "progress.updated_at": (at_ns + 78 * ms) / 1e9}),
        _span(t, "5b00000000000018", coordinator, "workers.select", 1,
              at_ns + 80 * ms, at_ns + 81 * ms,
              {"service.method": "workers.select", "worker.type": "agent_design",
               "worker.total_workers": "5", "worker.capable_workers": "1",
               "worker.available_workers": "1", "worker.selection_status": "success",
               "worker.selected_id": "agent-design-1"}, 1),
        _span(t, "5b00000000000019", coordinator, "POST", CLIENT, at_ns + 82 * ms,
              at_ns + 95 * ms,
              {"http.method": "POST", "http.url": f"{agent}/designs/start",
               "http.status_code": 200}),
        *[
            _span(t, f"5b3{i:013x}", coordinator, "GET", CLIENT, r, r + 6 * ms,
                  {"http.method": "GET", "http.url": f"{agent}/api/v1/operations/{child}",
                   "http.status_code": 200})
            for i, r in enumerate(reads_at)
        ],
        _span(t, "5b0000000000001a", coordinator, "operation.state_transition", 1,
              failed_ns, failed_ns + 60_000,
              {"operation.id": operation_id, "operation.from_status": "running",
               "operation.to_status": "failed", "operation.error": f"Design failed: {message}"},
              1),
        *answers,
    ]
    return added(added(recording, "ktrdr-cli", cli), "ktrdr-api", api)
