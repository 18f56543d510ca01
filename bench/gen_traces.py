"""Generate KTRDR-shaped backtest traces of a chosen size as a legacy ``/api/traces`` envelope.

The shape follows research/ktrdr.md §1.3 and §2: the CLI command span, its httpx ``POST``,
the backend's ``POST /api/v1/backtests/start`` (with ``http receive``/``http send`` children,
``workers.list`` and ``workers.select`` with *string* counts), the dispatch ``POST`` to the
worker, the worker's ``POST /backtests/start`` that answers at once while its background
children (``operations.create`` → ``operation.register``, state transitions,
``backtest.data_loading`` chunks, ``backtest.feature_compute``) outlive it, and the CLI
polling ``GET /api/v1/operations/{operation_id}`` until completion. Polls and data-loading
chunks repeat until the requested span count is reached. One trace, one operation id.

    python -m bench.gen_traces --out /tmp/opdiag-bench --sizes 1000 10000 100000 [--style S]
    python -m bench.gen_traces --out /tmp/opdiag-bench --sizes --many 200000 --duplicates 30000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

OPERATION_ID = "op_backtesting_20251122_101500_1a2b3c4d"
T0_US = 1_763_806_500_000_000  # 2025-11-22T10:15:00Z
WORKER_SERVICE = "ktrdr-backtest-worker-5f3a9c2e"
WORKER_URL = "http://backtest-worker-1:5003"


def _kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        typ = "bool"
    elif isinstance(value, int):
        typ = "int64"
    elif isinstance(value, float):
        typ = "float64"
    else:
        typ = "string"
    return {"key": key, "type": typ, "value": value}


class _Builder:
    """Accumulates legacy-JSON spans with sequential span ids."""

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.spans: list[dict[str, Any]] = []
        self._next = 1

    def span(  # noqa: PLR0917 - call sites read as a table of spans
        self,
        name: str,
        process: str,
        start: int,
        duration: int,
        parent: str | None,
        kind: str | None,
        tags: dict[str, Any],
        scope: str,
        status: str | None = "OK",
        logs: list[dict[str, Any]] | None = None,
    ) -> str:
        span_id = f"{self._next:016x}"
        self._next += 1
        all_tags = [_kv("otel.scope.name", scope)]
        all_tags += [_kv(k, v) for k, v in tags.items()]
        if kind:
            all_tags.append(_kv("span.kind", kind))
        if status:
            all_tags.append(_kv("otel.status_code", status))
        refs = (
            [{"refType": "CHILD_OF", "traceID": self.trace_id, "spanID": parent}] if parent else []
        )
        self.spans.append(
            {
                "traceID": self.trace_id,
                "spanID": span_id,
                "flags": 1,
                "operationName": name,
                "references": refs,
                "startTime": start,
                "duration": duration,
                "tags": all_tags,
                "logs": logs or [],
                "processID": process,
                "warnings": None,
            }
        )
        return span_id

    def server(  # noqa: PLR0917
        self, name: str, process: str, start: int, duration: int, parent: str, target: str
    ) -> str:
        """A FastAPI server span with its ASGI ``http receive``/``http send`` children."""
        method, _, route = name.partition(" ")
        sid = self.span(
            name,
            process,
            start,
            duration,
            parent,
            "server",
            {
                "http.scheme": "http",
                "http.method": method,
                "http.target": target,
                "http.route": route,
                "http.flavor": "1.1",
                "net.host.port": 8000 if process == "p2" else 5003,
                "http.status_code": 200,
            },
            "opentelemetry.instrumentation.fastapi",
            status=None,
        )
        if method == "POST":
            self.span(
                f"{name} http receive",
                process,
                start + 20,
                15,
                sid,
                "internal",
                {},
                "opentelemetry.instrumentation.asgi",
                status=None,
            )
        end = start + duration
        for i, typ in enumerate(("http.response.start", "http.response.body")):
            self.span(
                f"{name} http send",
                process,
                end - 40 + 15 * i,
                10,
                sid,
                "internal",
                {"asgi.event.type": typ},
                "opentelemetry.instrumentation.asgi",
                status=None,
            )
        return sid

    def client(  # noqa: PLR0917
        self, method: str, process: str, start: int, duration: int, parent: str, url: str
    ) -> str:
        return self.span(
            method,
            process,
            start,
            duration,
            parent,
            "client",
            {"http.method": method, "http.url": url, "http.status_code": 200},
            "opentelemetry.instrumentation.httpx",
            status=None,
        )


def generate(n_spans: int, seed: int = 7) -> dict[str, Any]:
    """One KTRDR backtest trace of about ``n_spans`` spans (at least the fixed skeleton)."""
    rng = random.Random(seed)
    trace_id = f"{rng.getrandbits(128):032x}"
    b = _Builder(trace_id)
    svc = "ktrdr.monitoring.service_telemetry"
    t = T0_US
    # 18 fixed spans; a poll costs 8, a data chunk 1: polls take ~80 % of the rest and
    # chunks absorb the remainder so the count is exact.
    skeleton = 18
    budget = max(n_spans - skeleton, 9)
    n_polls = max(budget * 4 // 5 // 8, 1)
    n_chunks = budget - 8 * n_polls
    # The backtest takes ~4 min whatever the size (well inside the 10 min budget): more
    # spans means more, shorter data chunks and more frequent polls.
    chunk_us = max(240_000_000 // n_chunks, 10_000)
    work_us = n_chunks * chunk_us + 2_000_000
    total_us = work_us + 3_000_000

    cli = b.span(
        "cli.backtest",
        "p1",
        t,
        total_us,
        None,
        None,
        {
            "cli.command": "backtest",
            "cli.args": '{"symbol": "AAPL", "timeframe": "1h"}',
            "operation.id": OPERATION_ID,
        },
        "ktrdr.cli.telemetry",
    )
    post = b.client(
        "POST", "p1", t + 1_000, 120_000, cli, "http://backend:8000/api/v1/backtests/start"
    )
    api = b.server(
        "POST /api/v1/backtests/start", "p2", t + 3_000, 110_000, post, "/api/v1/backtests/start"
    )
    b.span(
        "workers.list",
        "p2",
        t + 5_000,
        800,
        api,
        "internal",
        {"service.method": "workers.list"},
        svc,
    )
    b.span(
        "workers.select",
        "p2",
        t + 6_000,
        1_200,
        api,
        "internal",
        {
            "service.method": "workers.select",
            "worker.type": "backtesting",
            "worker.total_workers": "4",
            "worker.capable_workers": "2",
            "worker.available_workers": "1",
            "worker.selection_status": "success",
            "worker.selected_id": "backtesting-worker-1a2b3c4d",
        },
        svc,
    )
    dispatch = b.client("POST", "p2", t + 8_000, 90_000, api, f"{WORKER_URL}/backtests/start")
    worker = b.server(
        "POST /backtests/start", "p3", t + 10_000, 60_000, dispatch, "/backtests/start"
    )
    w = t + 12_000
    create = b.span(
        "operations.create",
        "p3",
        w,
        3_000,
        worker,
        "internal",
        {"service.method": "operations.create", "operation.id": OPERATION_ID},
        svc,
    )
    b.span(
        "operation.register",
        "p3",
        w + 500,
        2_000,
        create,
        "internal",
        {
            "operation.id": OPERATION_ID,
            "data.symbol": "AAPL",
            "data.timeframe": "1h",
            "operation.type": "backtesting",
            "operation.status": "pending",
            "operation.is_backend_local": False,
        },
        svc,
    )
    b.span(
        "operation.state_transition",
        "p3",
        w + 4_000,
        500,
        worker,
        "internal",
        {
            "operation.id": OPERATION_ID,
            "operation.from_status": "pending",
            "operation.to_status": "running",
        },
        svc,
    )
    # Background phases: children of the worker's server span, outliving it.
    phase_start = w + 100_000
    rows = 0
    for i in range(n_chunks):
        rows += 1_000
        b.span(
            "backtest.data_loading",
            "p3",
            phase_start + i * chunk_us,
            chunk_us - chunk_us // 20,
            worker,
            "internal",
            {
                "data.symbol": "AAPL",
                "data.timeframe": "1h",
                "data.rows": rows,
                "operation.id": OPERATION_ID,
            },
            "ktrdr.backtesting.engine",
        )
    feat_start = phase_start + n_chunks * chunk_us
    b.span(
        "backtest.feature_compute",
        "p3",
        feat_start,
        1_500_000,
        worker,
        "internal",
        {"data.rows": rows, "operation.id": OPERATION_ID},
        "ktrdr.backtesting.engine",
    )
    done = feat_start + 1_600_000
    b.span(
        "operation.state_transition",
        "p3",
        done,
        500,
        worker,
        "internal",
        {
            "operation.id": OPERATION_ID,
            "operation.from_status": "running",
            "operation.to_status": "completed",
        },
        svc,
    )
    # CLI polling: GET → backend GET → proxy GET → worker GET, each server with its sends.
    interval = max((done - (t + 200_000)) // n_polls, 5_000)
    for i in range(n_polls):
        ps = t + 200_000 + i * interval
        jitter = rng.randrange(0, 500)
        get = b.client(
            "GET",
            "p1",
            ps,
            3_000 + jitter,
            cli,
            f"http://backend:8000/api/v1/operations/{OPERATION_ID}",
        )
        srv = b.server(
            "GET /api/v1/operations/{operation_id}",
            "p2",
            ps + 200,
            2_500,
            get,
            f"/api/v1/operations/{OPERATION_ID}",
        )
        proxy = b.client(
            "GET",
            "p2",
            ps + 400,
            1_800,
            srv,
            f"{WORKER_URL}/api/v1/operations/{OPERATION_ID}?force_refresh=false",
        )
        b.server(
            "GET /api/v1/operations/{operation_id}",
            "p3",
            ps + 500,
            1_500,
            proxy,
            f"/api/v1/operations/{OPERATION_ID}",
        )
    resource = [
        _kv("service.version", "dev"),
        _kv("deployment.environment", "development"),
        _kv("telemetry.sdk.language", "python"),
        _kv("telemetry.sdk.name", "opentelemetry"),
        _kv("telemetry.sdk.version", "1.38.0"),
    ]
    trace = {
        "traceID": trace_id,
        "spans": b.spans,
        "processes": {
            "p1": {"serviceName": "ktrdr-cli", "tags": resource},
            "p2": {"serviceName": "ktrdr-api", "tags": resource},
            "p3": {"serviceName": WORKER_SERVICE, "tags": resource},
        },
        "warnings": None,
    }
    return {"data": [trace], "total": 0, "limit": 0, "offset": 0, "errors": None}


def many_operations(n_traces: int, seed: int = 11) -> dict[str, Any]:
    """``n_traces`` one-span traces, each a finished operation of its own (a worker's terminal
    state transition carrying a distinct ``operation.id``): the shape of a long listing.
    Each id carries the time KTRDR would have made it, 5-64 s before that transition (an id
    hours older made every row a 10-hour "slow" run). About 300 bytes per trace in the
    compact legacy style."""
    rng = random.Random(seed)
    traces = []
    for i in range(n_traces):
        trace_id = f"{rng.getrandbits(128):032x}"
        start = T0_US + i * 1_000_000
        made = datetime.fromtimestamp(start // 1_000_000 - 5 - i % 60, tz=UTC)
        op_id = f"op_backtesting_{made:%Y%m%d_%H%M%S}_{i:08x}"
        span = {
            "traceID": trace_id,
            "spanID": f"{rng.getrandbits(64):016x}",
            "operationName": "operation.state_transition",
            "references": [],
            "startTime": start,
            "duration": 500 + i % 300,
            "tags": [
                _kv("operation.id", op_id),
                _kv("operation.to_status", "completed"),
            ],
            "logs": [],
            "processID": "p1",
        }
        traces.append(
            {
                "traceID": trace_id,
                "spans": [span],
                "processes": {"p1": {"serviceName": WORKER_SERVICE, "tags": []}},
            }
        )
    return {"data": traces, "total": 0, "limit": 0, "offset": 0, "errors": None}


def duplicate_ids(n_spans: int) -> dict[str, Any]:
    """One trace of ``n_spans`` spans that all share one span id (a broken exporter): the
    first is the root, every other one names it as its parent."""
    doc = generate(n_spans)
    trace = doc["data"][0]
    same = trace["spans"][0]["spanID"]
    for span in trace["spans"]:
        span["spanID"] = same
        for ref in span["references"]:
            ref["spanID"] = same
    return doc


def unique_names(n_spans: int) -> dict[str, Any]:
    """One trace of ``n_spans`` spans whose names are all different but the root's (an
    instrumentation that names spans by the concrete URL or an id): as many span shapes as
    spans, where a usual trace has a few dozen."""
    doc = generate(n_spans)
    for i, span in enumerate(doc["data"][0]["spans"][1:], start=1):
        span["operationName"] = f"{span['operationName']} #{i}"
    return doc


def unique_values(n_spans: int) -> dict[str, Any]:
    """One trace of ``n_spans`` spans each carrying a value no other span has (a request id,
    a sequence number): no span repeats another's tags byte for byte, so the readers' memo
    of decoded tags never hits and every span's tags are decoded."""
    doc = generate(n_spans)
    for i, span in enumerate(doc["data"][0]["spans"]):
        span["tags"] = [
            *span["tags"],
            {"key": "request.id", "type": "string", "value": f"{i * 2654435761 % 2**64:016x}"},
            {"key": "request.seq", "type": "int64", "value": i},
        ]
    return doc


_OTLP_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
_DROPPED_TAGS = frozenset({"span.kind", "otel.status_code", "otel.scope.name"})


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # proto JSON: int64 as a string
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def to_otlp_api_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """The legacy envelope as Jaeger v2's ``/api/v3/traces`` answers it: ``{result:
    {resourceSpans}}``, one resource per process and one scope per instrumentation scope,
    nanosecond times as strings, integer kinds, status objects."""
    resource_spans = []
    for trace in doc["data"]:
        scopes: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for span in trace["spans"]:
            tags = {t["key"]: t["value"] for t in span["tags"]}
            parent = next(
                (r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), ""
            )
            out: dict[str, Any] = {
                "traceId": span["traceID"],
                "spanId": span["spanID"],
                "parentSpanId": parent,
                "name": span["operationName"],
                "kind": _OTLP_KINDS.get(str(tags.get("span.kind", "internal")), 1),
                "startTimeUnixNano": str(span["startTime"] * 1000),
                "endTimeUnixNano": str((span["startTime"] + span["duration"]) * 1000),
                "attributes": [
                    {"key": k, "value": _any_value(v)}
                    for k, v in tags.items()
                    if k not in _DROPPED_TAGS
                ],
                "status": {"code": 2 if tags.get("otel.status_code") == "ERROR" else 0},
            }
            key = (span["processID"], str(tags.get("otel.scope.name", "")))
            scopes.setdefault(key, []).append(out)
        for process_id in trace["processes"]:
            process = trace["processes"][process_id]
            attrs = [{"key": "service.name", "value": {"stringValue": process["serviceName"]}}]
            attrs += [{"key": t["key"], "value": _any_value(t["value"])} for t in process["tags"]]
            resource_spans.append(
                {
                    "resource": {"attributes": attrs},
                    "scopeSpans": [
                        {"scope": {"name": scope}, "spans": spans}
                        for (pid, scope), spans in scopes.items()
                        if pid == process_id
                    ],
                }
            )
    return {"result": {"resourceSpans": resource_spans}}


# How each style is written: Jaeger's compact answer, Python's json.dump defaults, `curl | jq`
# (indent 2), Jaeger's prettyPrint=true (indent 4), and the api_v3 OTLP body (compact).
STYLES = ("compact", "default", "indent2", "indent4", "otlp")


def dump(doc: dict[str, Any], style: str) -> bytes:
    if style == "compact":
        return orjson.dumps(doc)
    if style == "default":
        return json.dumps(doc).encode()
    if style == "indent2":
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    if style == "indent4":
        return json.dumps(doc, indent=4).encode()
    if style == "otlp":
        return orjson.dumps(to_otlp_api_v3(doc))
    raise ValueError(f"unknown style {style!r}")


def write(path: Path, n_spans: int, seed: int = 7, style: str = "compact") -> int:
    """Write one generated trace to ``path`` in ``style``; returns the real span count."""
    doc = generate(n_spans, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(dump(doc, style))
    return len(doc["data"][0]["spans"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/opdiag-bench"))
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--style", choices=STYLES, default="compact")
    parser.add_argument("--many", type=int, metavar="N", help="also N one-span operations")
    parser.add_argument("--duplicates", type=int, metavar="N", help="also N spans, one id")
    parser.add_argument("--unique-names", type=int, metavar="N", help="also N spans, N names")
    parser.add_argument(
        "--unique-values", type=int, metavar="N", help="also N spans, each with its own tags"
    )
    args = parser.parse_args(argv)
    for n in args.sizes:
        path = args.out / f"ktrdr-{n}-{args.style}.json"
        real = write(path, n, style=args.style)
        print(f"{path}  {real} spans  operation {OPERATION_ID}")
    if args.many:
        path = args.out / f"many-{args.many}.json"
        path.write_bytes(orjson.dumps(many_operations(args.many)))
        print(f"{path}  {args.many} spans  operations {args.many}")
    if args.duplicates:
        path = args.out / f"duplicates-{args.duplicates}.json"
        path.write_bytes(orjson.dumps(duplicate_ids(args.duplicates)))
        print(f"{path}  {args.duplicates} spans  operation {OPERATION_ID}")
    if args.unique_names:
        path = args.out / f"names-{args.unique_names}.json"
        path.write_bytes(orjson.dumps(unique_names(args.unique_names)))
        print(f"{path}  {args.unique_names} spans  operation {OPERATION_ID}")
    if args.unique_values:
        path = args.out / f"values-{args.unique_values}.json"
        path.write_bytes(orjson.dumps(unique_values(args.unique_values)))
        print(f"{path}  {args.unique_values} spans  operation {OPERATION_ID}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
