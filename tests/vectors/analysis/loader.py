"""Test-only loader for the analysis vectors: a small subset of legacy Jaeger JSON → Trace.

Kept independent of ``opdiag.sources.readers`` on purpose: span ids stay readable ("X", "A")
and the analysis tests do not break when the reader changes. The fixture tests use the reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opdiag.model import Reference, Span, Trace, build_trace

VECTOR_DIR = Path(__file__).resolve().parent


def vector_paths() -> list[Path]:
    return sorted(VECTOR_DIR.glob("*.json"))


def load_document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def trace_from_document(doc: dict[str, Any]) -> Trace:
    processes = doc.get("processes", {})
    spans = []
    for raw in doc["spans"]:
        tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
        kind = str(tags.pop("span.kind", "internal")).lower()
        spans.append(
            Span(
                trace_id=doc["traceID"],
                span_id=raw["spanID"],
                name=raw["operationName"],
                service=processes.get(raw.get("processID"), {}).get("serviceName", "svc"),
                start_us=int(raw["startTime"]),
                duration_us=int(raw["duration"]),
                kind=kind,
                attributes=tags,
                references=[
                    Reference(r["refType"], doc["traceID"], r["spanID"])
                    for r in raw.get("references", [])
                ],
            )
        )
    return build_trace(doc["traceID"], spans)


def load_vector(path: Path) -> tuple[Trace, dict[str, Any]]:
    doc = load_document(path)
    return trace_from_document(doc), doc
