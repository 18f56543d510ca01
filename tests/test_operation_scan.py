"""``operations._scan`` reads each distinct (operation.id, operation.type) pair once (issue
10): on random traces it decides what a span-by-span reading decides, values that are not
strings (or not hashable) included."""

from __future__ import annotations

import random
from typing import Any

from opdiag.model import Span, build_trace
from opdiag.operations import OPERATION_ID_KEY, OPERATION_TYPE_KEY, _scan, operation_id_of

IDS: tuple[Any, ...] = ("op_a", " op_a ", "op_b", "None", "", 1, True, 1.0, ["x"], None)
TYPES: tuple[Any, ...] = ("training", "Training ", "none", "", 7, None, {"k": 1})


def _by_span(spans: list[Span]) -> tuple[dict[str, str | None], str | None]:
    """The span-by-span reading ``_scan`` stands for."""
    op_types: dict[str, str | None] = {}
    any_type = None
    for span in spans:
        op_id = operation_id_of(span)
        raw_type = span.attributes.get(OPERATION_TYPE_KEY)
        op_type = "" if raw_type is None else str(raw_type).strip().lower()
        op_type = "" if op_type in {"", "none", "null", "nil", "undefined"} else op_type
        if op_type and any_type is None:
            any_type = op_type
        if op_id is None:
            continue
        if op_id not in op_types or (op_types[op_id] is None and op_type):
            op_types[op_id] = op_type or None
    return op_types, any_type


def test_the_scan_decides_what_reading_span_by_span_decides() -> None:
    rng = random.Random(3)
    for _ in range(300):
        spans = []
        for n in range(rng.randint(0, 12)):
            attrs: dict[str, Any] = {}
            if rng.random() < 0.7:
                attrs[OPERATION_ID_KEY] = rng.choice(IDS)
            if rng.random() < 0.5:
                attrs[OPERATION_TYPE_KEY] = rng.choice(TYPES)
            spans.append(Span("ab" * 16, f"{n + 1:016x}", "s", "svc", n, 1, attributes=attrs))
        trace = build_trace("ab" * 16, spans)
        scan = _scan(trace)
        op_types, any_type = _by_span(trace.spans)
        assert list(scan.op_types.items()) == list(op_types.items())
        assert scan.any_type == any_type
