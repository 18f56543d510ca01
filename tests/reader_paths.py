"""The typed (fast) path of the readers against the general one: both must give the same
model, or the same error, for a document (test_reader_memo, test_otlp_typed_inline)."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from opdiag.errors import TraceFormatError
from opdiag.model import Trace
from opdiag.sources import readers


def plain(value: Any) -> Any:
    """A span (or event, reference) as nested plain values, field by field, as
    ``dataclasses.asdict`` gave while they were dataclasses: containers are copied and keep
    their types (a tuple stays a tuple), so two readers must agree on those too."""
    if isinstance(value, msgspec.Struct):
        return {name: plain(getattr(value, name)) for name in value.__struct_fields__}
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def model_dump(traces: list[Trace], *, by_trace_id: bool = False) -> list[Any]:
    """Every field of every span, with each trace's tree, as plain comparable values."""
    ordered = sorted(traces, key=lambda t: t.trace_id) if by_trace_id else traces
    return [
        (
            t.trace_id,
            t.warnings,
            [r.span_id for r in t.roots],
            {k: [c.span_id for c in v] for k, v in t.children.items()},
            [sorted(plain(s).items()) for s in t.spans],
        )
        for t in ordered
    ]


def outcome(
    data: bytes, *, fast: bool, monkeypatch: pytest.MonkeyPatch, by_trace_id: bool = False
) -> Any:
    """The model of ``data`` (or the error), by the typed path when ``fast``, else by the
    general path alone."""
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(readers, "_typed", lambda data, source: None)
        try:
            return model_dump(readers.parse_bytes(data, "f.json"), by_trace_id=by_trace_id)
        except TraceFormatError as exc:
            return ("error", str(exc))


def same_model(doc: Any, monkeypatch: pytest.MonkeyPatch, *, by_trace_id: bool = False) -> Any:
    """Assert both paths agree on ``doc``; the general path's outcome."""
    data = orjson.dumps(doc)
    general = outcome(data, fast=False, monkeypatch=monkeypatch, by_trace_id=by_trace_id)
    assert outcome(data, fast=True, monkeypatch=monkeypatch, by_trace_id=by_trace_id) == general
    return general
