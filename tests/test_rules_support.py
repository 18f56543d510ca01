"""Builds model traces from the compact literal form of tests/vectors/rules/*.yaml.

A case::

    name: what it shows
    fires: true            # the vector's rule must (true) or must not (false) produce a finding
    verdict: no_workers    # optional: expected verdict
    summary: "..."         # optional: expected summary (exact)
    evidence: {k: v}       # optional: subset of the rule's finding evidence
    operation_id: op_...   # optional (also the ident); default: the trace id
    now_s: 400             # optional, seconds after the base time; default: last span end + 1 s
    baseline_ms: 1000      # optional
    rushed: "..."          # optional: what says it completed too fast (diagnosis.rushed)
    settings: {stuck_after_s: 300}   # optional DiagnosisSettings overrides
    spans: [...]           # one trace, or `traces: [{spans: [...]}, ...]`

A span: ``{id, parent, name, service, kind, start (ms), dur (ms), attrs, status, exc, events}``;
``exc: "Type: message"`` adds an exception event. Only ``name`` is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from opdiag.diagnosis.engine import diagnose
from opdiag.diagnosis.result import Diagnosis
from opdiag.diagnosis.rules import RuleSet, load_rules
from opdiag.model import CHILD_OF, Event, Reference, Span, Trace, build_trace
from opdiag.settings import DiagnosisSettings

VECTORS = Path(__file__).resolve().parent / "vectors" / "rules"
BASE_US = 1_763_800_000_000_000  # 2025-11-22, when KTRDR's telemetry landed


def build_span(raw: dict[str, Any], trace_id: str, ids: dict[str, str], index: int) -> Span:
    sid = f"{index + 1:016x}"
    ids[str(raw.get("id", f"s{index + 1}"))] = sid
    events = [
        Event(e.get("name", "exception"), BASE_US, dict(e.get("attrs", {})))
        for e in raw.get("events", [])
    ]
    if "exc" in raw:
        exc_type, _, message = str(raw["exc"]).partition(": ")
        events.append(
            Event("exception", BASE_US, {"exception.type": exc_type, "exception.message": message})
        )
    return Span(
        trace_id=trace_id,
        span_id=sid,
        name=raw["name"],
        service=raw.get("service", "ktrdr-api"),
        start_us=BASE_US + int(float(raw.get("start", 0)) * 1000),
        duration_us=int(float(raw.get("dur", 1)) * 1000),
        kind=raw.get("kind", "internal"),
        attributes=dict(raw.get("attrs", {})),
        events=events,
        status=raw.get("status", "unset"),
    )


def build_traces(case: dict[str, Any], key: str = "traces", first: int = 1) -> list[Trace]:
    """The case's traces (``traces``, or one trace of ``spans``); ``key="neighbours"`` builds
    the traces around the operation instead, numbered from ``first``."""
    raw_traces = case.get(key)
    if raw_traces is None and key == "traces":
        raw_traces = [{"spans": case.get("spans", [])}] if case.get("spans") else []
    traces: list[Trace] = []
    for t_index, raw_trace in enumerate(raw_traces or [], start=first - 1):
        trace_id = raw_trace.get("id", f"{t_index + 1:032x}")
        ids: dict[str, str] = {}
        spans = [build_span(s, trace_id, ids, i) for i, s in enumerate(raw_trace["spans"])]
        for raw, span in zip(raw_trace["spans"], spans, strict=True):
            if "parent" in raw:
                span.references.append(Reference(CHILD_OF, trace_id, ids[str(raw["parent"])]))
        traces.append(build_trace(trace_id, spans))
    return traces


def run_case(case: dict[str, Any], rules: RuleSet | None = None) -> Diagnosis:
    traces = build_traces(case)
    rules = rules or load_rules()
    settings = DiagnosisSettings(**case.get("settings", {}))
    if "now_s" in case:
        now_us = BASE_US + int(float(case["now_s"]) * 1e6)
    else:
        now_us = max((t.end_us for t in traces), default=BASE_US) + 1_000_000
    op_id = case.get("operation_id")
    ident = op_id or (traces[0].trace_id if traces else "op_missing_1")
    return diagnose(
        traces,
        ident=case.get("ident", ident),
        operation_id=op_id,
        rules=rules,
        settings=settings,
        now_us=now_us,
        baseline_ms=case.get("baseline_ms"),
        rushed=case.get("rushed"),
        neighbours=build_traces(case, "neighbours", first=101),
    )


def load_vectors() -> dict[str, dict[str, Any]]:
    """rule id -> vector document."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(VECTORS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[doc["rule"]] = doc
    return out
