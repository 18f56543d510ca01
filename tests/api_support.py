"""Fixtures of the API, web and simpod tests: a fake diagnosis service with hand-made
diagnoses (so the HTTP layer is tested on its own), the app and client built from it, and the
simpod OpenAPI document with its two documented defects fixed.

The fixtures themselves live in ``api_fixtures`` (a test module loads them with
``pytest_plugins = ("api_fixtures",)``), so this module can be imported for its data
without pytest warning that a plugin was imported before assertion rewriting.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from opdiag.api.schemas import VariableRow, VerdictCountRow
from opdiag.diagnosis.result import (
    BaselineRun,
    Bottleneck,
    Comparison,
    Diagnosis,
    Finding,
    FlowStep,
    PhaseChange,
    RootCause,
    Solution,
)
from opdiag.diagnosis.rules import load_rules
from opdiag.errors import NotFoundError, SourceTimeoutError, SourceUnavailableError
from opdiag.render.links import build_links
from opdiag.render.rows import variable_row, verdict_count_row
from opdiag.settings import Settings
from opdiag.timeutil import TimeRange

SIMPOD_OPENAPI = (
    Path(__file__).resolve().parent
    / "data/reference/grafana/simpod-json-datasource/openapi.yaml"
)
NOW_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
XSS = "<script>alert(1)</script>"
FAILED_ID = "op_backtesting_20251124_failed"
SLOW_ID = "op_training_20251124_slow"
TRACE_FAILED = "a" * 31 + "1"
TRACE_SLOW = "b" * 31 + "2"
ROOT_SPAN = "00000000000000c3"
BOTTLENECK_SPAN = "00000000000000d2"


def _flow(trace_id: str, *, failed: bool) -> list[FlowStep]:
    names = [
        ("ktrdr-cli", "cli.backtest", None, 0.0, 900.0, 0),
        ("ktrdr-api", "POST /api/v1/backtests/start", "00000000000000c1", 10.0, 60.0, 1),
        ("ktrdr-backtest-worker-ab12", "backtest.run", "00000000000000c2", 80.0, 800.0, 2),
        (
            "ktrdr-ib-host-service",
            XSS if failed else "data.load",
            "00000000000000c2",
            90.0,
            300.0,
            3,
        ),
    ]
    steps = []
    for index, (service, name, parent, start, duration, depth) in enumerate(names):
        prefix = "00000000000000c" if failed else "00000000000000d"
        span_id = ROOT_SPAN if index == 3 and failed else f"{prefix}{index}"
        steps.append(
            FlowStep(
                index=index,
                trace_id=trace_id,
                span_id=span_id,
                parent_id=parent,
                service=service,
                span_name=name,
                start_ms=start,
                duration_ms=duration,
                self_time_ms=duration / 2,
                depth=depth,
                critical=index != 1,
                error=failed and index in (2, 3),
                root_cause=failed and index == 3,
                bottleneck=not failed and index == 2,
            )
        )
    return steps


def failed_diagnosis(settings: Settings) -> Diagnosis:
    d = Diagnosis(
        operation_id=FAILED_ID,
        trace_ids=[TRACE_FAILED],
        verdict="service_unreachable",
        summary=f"IB host service refused the connection {XSS}",
        operation_type="backtesting",
        status="failed",
        services=["ktrdr-api", "ktrdr-backtest-worker-ab12", "ktrdr-ib-host-service"],
        started_at_ms=NOW_MS - 3_600_000,
        ended_at_ms=NOW_MS - 3_599_100,
        duration_ms=900.0,
        finished=True,
        root_cause=RootCause(
            trace_id=TRACE_FAILED,
            span_id=ROOT_SPAN,
            service="ktrdr-ib-host-service",
            span_name="ib.connect",
            evidence={"connection.status": "failed", "exception.message": XSS, "port": 4002},
            exception_type="ConnectionRefusedError",
            exception_message=XSS,
        ),
        findings=[
            Finding(
                rule_id="ib-connection-refused",
                severity="critical",
                summary="IB Gateway refused",
                verdict="service_unreachable",
                trace_id=TRACE_FAILED,
                span_id=ROOT_SPAN,
                service="ktrdr-ib-host-service",
                span_name="ib.connect",
                evidence={
                    "exception.type": "ConnectionRefusedError",
                    "note": XSS,
                    # another rule that fired on the same failure (conclusion.fold)
                    "also": [
                        {
                            "rule_id": "connection-error",
                            "verdict": "service_unreachable",
                            "summary": f"failed: ConnectError {XSS}",
                            "span_id": ROOT_SPAN,
                        }
                    ],
                },
            )
        ],
        execution_flow=_flow(TRACE_FAILED, failed=True),
        solution=Solution(
            title="Start IB Gateway",
            steps=["Check that IB Gateway runs", f"Look at {XSS}"],
            commands=["docker compose restart ib-host"],
            rule_id="ib-connection-refused",
        ),
    )
    d.links = build_links(d, settings.links)
    return d


def slow_diagnosis(settings: Settings) -> Diagnosis:
    d = Diagnosis(
        operation_id=SLOW_ID,
        trace_ids=[TRACE_SLOW],
        verdict="slow",
        summary="slow: 81 % of the time in training.indicators",
        operation_type="training",
        status="completed",
        services=["ktrdr-api", "ktrdr-training-worker-x1"],
        started_at_ms=NOW_MS - 1_800_000,
        ended_at_ms=NOW_MS - 1_799_100,
        duration_ms=900.0,
        finished=True,
        bottleneck=Bottleneck(
            trace_id=TRACE_SLOW,
            span_id=BOTTLENECK_SPAN,
            service="ktrdr-training-worker-x1",
            span_name="training.indicators",
            self_time_ms=400.0,
            share=0.81,
            duration_ms=800.0,
        ),
        execution_flow=_flow(TRACE_SLOW, failed=False),
        baseline_ms=300.0,
        comparison=Comparison(
            runs=[
                BaselineRun("op_training_20251124_good1", NOW_MS - 7_200_000, 290.0),
                BaselineRun("op_training_20251124_good2", NOW_MS - 5_400_000, 310.0),
                # taken because too few came before it (baseline._pool_order)
                BaselineRun("op_training_20251124_good3", NOW_MS - 600_000, 300.0),
            ],
            wanted_runs=5,
            this_ms=900.0,
            baseline_ms=300.0,
            change_ms=600.0,
            change_pct=200.0,
            note="fewer than 2 good runs of strategy v3_minimal in reach",
            phases=[
                PhaseChange(
                    name="training.indicators",
                    kind="span",
                    this_ms=800.0,
                    baseline_ms=200.0,
                    change_ms=600.0,
                    change_pct=300.0,
                    status="slower",
                    count=1,
                    baseline_count=1.0,
                    share_of_change=1.0,
                    service="ktrdr-training-worker-x1",
                ),
                PhaseChange(
                    name=f"after {XSS}",
                    kind="gap",
                    this_ms=0.0,
                    baseline_ms=50.0,
                    change_ms=-50.0,
                    change_pct=-100.0,
                    status="missing",
                    after=XSS,
                ),
            ],
            headline="training.indicators +600ms (200ms → 800ms, +300 %) vs the last 2 good runs",
        ),
    )
    d.links = build_links(d, settings.links)
    return d


class FakeService:
    """Stands in for ``opdiag.service.DiagnosisService``; records what it was asked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.diagnoses = {
            FAILED_ID: failed_diagnosis(settings),
            SLOW_ID: slow_diagnosis(settings),
        }
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.raise_error: Exception | None = None
        self.cache_hits = 3
        self.cache_misses = 2
        self.source = FakeSource()
        self.rules = load_rules()

    def cache_stats(self) -> dict[str, int]:
        return {"hits": self.cache_hits, "misses": self.cache_misses}

    def _maybe_raise(self) -> None:
        if self.raise_error is not None:
            raise self.raise_error

    def diagnose(
        self, ident: str, now_us: int | None = None, window: TimeRange | None = None
    ) -> Diagnosis:
        self.calls.append(("diagnose", {"ident": ident, "now_us": now_us, "window": window}))
        self._maybe_raise()
        for d in self.diagnoses.values():
            if ident == d.key or ident in d.trace_ids:
                return d
        raise NotFoundError(f"no trace holds {ident}")

    def operations(
        self,
        start_us: int,
        end_us: int,
        now_us: int | None = None,
        *,
        operation_types: list[str] | None = None,
        verdicts: list[str] | None = None,
        services: list[str] | None = None,
        limit: int | None = None,
    ) -> list[Diagnosis]:
        self.calls.append(
            (
                "operations",
                {
                    "start_us": start_us,
                    "end_us": end_us,
                    "operation_types": operation_types,
                    "verdicts": verdicts,
                    "services": services,
                    "limit": limit,
                },
            )
        )
        self._maybe_raise()
        out = [
            d
            for d in self.diagnoses.values()
            if (operation_types is None or d.operation_type in operation_types)
            and (verdicts is None or d.verdict in verdicts)
            and (services is None or set(services) & set(d.services))
        ]
        out.sort(key=lambda d: d.started_at_ms or 0, reverse=True)
        return out[:limit] if limit else out

    def verdict_counts(
        self,
        start_us: int,
        end_us: int,
        bucket_us: int,
        now_us: int | None = None,
        **filters: Any,
    ) -> list[VerdictCountRow]:
        self.calls.append(("verdict_counts", {"bucket_us": bucket_us, **filters}))
        self._maybe_raise()
        bucket_ms = bucket_us // 1000
        out = []
        for d in self.operations(start_us, end_us, **filters):
            start = d.started_at_ms or 0
            out.append(verdict_count_row(start - start % bucket_ms, d.verdict, 1))
        return out

    def variable_values(self, name: str, start_us: int, end_us: int) -> list[VariableRow]:
        self.calls.append(("variable_values", {"name": name}))
        self._maybe_raise()
        ds = list(self.diagnoses.values())
        if name == "operation_types":
            values = {d.operation_type or "unknown" for d in ds}
        elif name == "verdicts":
            values = {d.verdict for d in ds}
        elif name == "services":
            values = {s for d in ds for s in d.services}
        else:
            values = {d.key for d in ds}
        return [variable_row(v) for v in sorted(values)]


class FakeSource:
    """A trace source whose health the test decides."""

    def __init__(self) -> None:
        self.error: Exception | None = None

    def describe(self) -> str:
        return "fake source <test>"

    def check(self) -> None:
        if self.error is not None:
            raise self.error


SOURCE_ERRORS = [
    (SourceUnavailableError("jaeger at http://127.0.0.1:9 unreachable"), 502),
    (SourceTimeoutError("jaeger did not answer within 10 s"), 504),
]


def make_settings(**server: Any) -> Settings:
    return Settings.model_validate({"server": server} if server else {})


def simpod_openapi() -> dict[str, Any]:
    """The plugin's openapi.yaml with its two documented defects fixed here, in memory:
    /query rows are arrays of row arrays, and /query may answer data frames."""
    doc = yaml.safe_load(SIMPOD_OPENAPI.read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    query_items = doc["paths"]["/query"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["items"]
    table = query_items["anyOf"][1]
    table["properties"]["rows"]["items"] = {
        "type": "array",
        "items": {
            "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
        },
    }
    query_items["anyOf"].append({"$ref": "#/components/schemas/dataframe"})
    return doc


def _with_components(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """A sub-schema whose ``#/components/...`` references resolve against the document."""
    return {**schema, "components": doc["components"]}


def simpod_request_schema(doc: dict[str, Any], path: str) -> dict[str, Any]:
    body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return _with_components(body, doc)


def simpod_response_schema(doc: dict[str, Any], path: str, method: str = "post") -> dict[str, Any]:
    content = doc["paths"][path][method]["responses"]["200"].get("content")
    if content is None:
        return {}
    return _with_components(content["application/json"]["schema"], doc)


XSS_OPERATION = "op_backtesting_20261124_090000_xss0001"
XSS_TRACE = "5c" * 16
XSS_ERROR_SPAN = "00000000000000e3"


def _tag(key: str, value: Any) -> dict[str, Any]:
    typ = "bool" if isinstance(value, bool) else "int64" if isinstance(value, int) else "string"
    return {"key": key, "type": typ, "value": value}


def xss_trace_document(start_us: int | None = None) -> dict[str, Any]:
    """A failed KTRDR-like backtest whose error span carries ``<script>`` in its exception
    message and an attribute (legacy Jaeger JSON, ``{data: [trace]}``). It starts ten
    minutes ago by default, inside a live Jaeger's lookback."""
    if start_us is None:
        start_us = time.time_ns() // 1000 - 600_000_000

    def span(
        span_id: str,
        parent: str | None,
        name: str,
        proc: str,
        offset_ms: int,
        duration_ms: int,
        tags: list[dict[str, Any]],
        logs: list[Any] | None = None,
    ) -> dict[str, Any]:
        refs = (
            []
            if parent is None
            else [{"refType": "CHILD_OF", "traceID": XSS_TRACE, "spanID": parent}]
        )
        return {
            "traceID": XSS_TRACE,
            "spanID": span_id,
            "operationName": name,
            "references": refs,
            "startTime": start_us + offset_ms * 1000,
            "duration": duration_ms * 1000,
            "tags": tags,
            "logs": logs or [],
            "processID": proc,
        }

    exception_log = {
        "timestamp": start_us + 150_000,
        "fields": [
            _tag("event", "exception"),
            _tag("exception.type", "ConnectionRefusedError"),
            _tag("exception.message", XSS),
        ],
    }
    spans = [
        span(
            "00000000000000e0",
            None,
            "cli.backtest",
            "p1",
            0,
            400,
            [_tag("operation.id", XSS_OPERATION), _tag("operation.type", "backtesting")],
        ),
        span(
            "00000000000000e1",
            "00000000000000e0",
            "POST /api/v1/backtests/start",
            "p2",
            10,
            300,
            [
                _tag("span.kind", "server"),
                _tag("operation.id", XSS_OPERATION),
                _tag("http.status_code", 200),
            ],
        ),
        span(
            "00000000000000e2",
            "00000000000000e1",
            "backtest.data_loading",
            "p3",
            40,
            250,
            [
                _tag("operation.id", XSS_OPERATION),
                _tag("error", True),
                _tag("otel.status_code", "ERROR"),
            ],
        ),
        span(
            XSS_ERROR_SPAN,
            "00000000000000e2",
            "ib.connect",
            "p4",
            100,
            60,
            [
                _tag("operation.id", XSS_OPERATION),
                _tag("connection.status", "failed"),
                _tag("error", True),
                _tag("otel.status_code", "ERROR"),
                _tag("otel.status_description", XSS),
                _tag("note", XSS),
            ],
            [exception_log],
        ),
        span(
            "00000000000000e4",
            "00000000000000e1",
            "operation.transition",
            "p2",
            380,
            5,
            [
                _tag("operation.id", XSS_OPERATION),
                _tag("operation.from_status", "running"),
                _tag("operation.to_status", "failed"),
                _tag("operation.error", XSS),
            ],
        ),
    ]
    processes = {
        "p1": {"serviceName": "ktrdr-cli", "tags": []},
        "p2": {"serviceName": "ktrdr-api", "tags": []},
        "p3": {"serviceName": "ktrdr-backtest-worker-5f3a", "tags": []},
        "p4": {"serviceName": "ktrdr-ib-host-service", "tags": []},
    }
    return {"data": [{"traceID": XSS_TRACE, "spans": spans, "processes": processes}]}


def write_xss_traces(directory: Path) -> Path:
    """Write the ``<script>`` trace into ``directory``; returns the file."""
    import json

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "xss.jaeger.json"
    path.write_text(json.dumps(xss_trace_document()), encoding="utf-8")
    return path


@contextmanager
def serving(traces: Path, **server: Any) -> Iterator[Any]:
    """opdiag on waitress in a thread, on a free loopback port, over the trace files
    ``traces``; ``server`` adds server settings. Yields the ``ServerThread``."""
    from opdiag.api.server import ServerThread, build_server

    settings = Settings.model_validate(
        {"trace_paths": [str(traces)], "server": {"port": 0, "threads": 2, **server}}
    )
    waitress_server, _ = build_server(settings)
    running = ServerThread(waitress_server).start()
    try:
        yield running
    finally:
        running.stop()
