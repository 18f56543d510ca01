"""The JSON form of a diagnosis: the SPEC's CLI contract, for scripts and CI.

``Diagnosis.to_dict()`` is the single definition of the keys; this module only guarantees
the contract's must-have keys and that any value from a trace serialises (attribute values
can be anything a reader let through, e.g. a huge integer kept as a Python int).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec
import orjson

from opdiag.diagnosis.result import INTERNAL_FIELDS, Comparison, Diagnosis, plain

# SPEC.md "The CLI contract": at least these keys, always present (null when absent).
CONTRACT_KEYS: tuple[str, ...] = (
    "operation_id",
    "trace_ids",
    "verdict",
    "summary",
    "root_cause",
    "bottleneck",
    "findings",
    "duration_ms",
    "execution_flow",
    "solution",
    "links",
)


def _fallback(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):  # a result: its fields, in order, as for a dataclass
        return msgspec.structs.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def diagnosis_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    """``to_dict()`` with every contract key guaranteed."""
    data = diagnosis.to_dict()
    for key in CONTRACT_KEYS:
        data.setdefault(key, None)
    return data


def dumps(data: Any, *, indent: bool = True) -> str:
    """Serialise with orjson (fast on 2000-step flows); stdlib json for what orjson refuses
    (integers beyond 64 bits)."""
    option = orjson.OPT_INDENT_2 if indent else 0
    try:
        return orjson.dumps(data, default=_fallback, option=option).decode("utf-8")
    except TypeError:
        return json.dumps(data, default=_fallback, indent=2 if indent else None)


def write_list(out: TextIO, items: Iterable[Any]) -> None:
    """``dumps(list(items))`` and a newline, written item by item with the same bytes: a
    listing of 200k rows is never held as one list or one string. Items are what orjson
    serialises (rows of plain values)."""
    first = True
    for item in items:
        text = orjson.dumps(item, default=_fallback, option=orjson.OPT_INDENT_2)
        out.write(("[\n  " if first else ",\n  ") + text.decode("utf-8").replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")


def _shallow(diagnosis: Diagnosis) -> dict[str, Any]:
    """Top-level fields as ``to_dict()`` orders them; nested results are left for orjson,
    which asks ``_fallback`` for each (``asdict`` deep-copies a 2000-step flow: slow)."""
    out: dict[str, Any] = {name: getattr(diagnosis, name) for name in fields_of(diagnosis)}
    out["key"] = diagnosis.key
    for key in CONTRACT_KEYS:
        out.setdefault(key, None)
    return out


def fields_of(diagnosis: Diagnosis) -> tuple[str, ...]:
    return tuple(f for f in diagnosis.__struct_fields__ if f not in INTERNAL_FIELDS)


def render_json(diagnosis: Diagnosis) -> str:
    """One JSON object, indented, no trailing newline (the CLI adds one)."""
    try:
        data = orjson.dumps(_shallow(diagnosis), default=_fallback, option=orjson.OPT_INDENT_2)
        return data.decode("utf-8")
    except TypeError:  # beyond orjson (e.g. 2**70 in evidence): the slow, general path
        return dumps(diagnosis_dict(diagnosis))


def run_brief(diagnosis: Diagnosis) -> dict[str, Any]:
    """One run in a few keys: what a comparison (or an assistant) needs to name it."""
    return {
        "key": diagnosis.key,
        "operation_id": diagnosis.operation_id,
        "operation_type": diagnosis.operation_type,
        "verdict": diagnosis.verdict,
        "severity": diagnosis.severity,
        "summary": diagnosis.summary,
        "status": diagnosis.status,
        "started_at_ms": diagnosis.started_at_ms,
        "duration_ms": diagnosis.duration_ms,
        "trace_ids": list(diagnosis.trace_ids),
        "diagnosis_page": diagnosis.links.diagnosis_page,
        "jaeger": diagnosis.links.jaeger,
    }


def comparison_dict(this: Diagnosis, other: Diagnosis, comparison: Comparison) -> dict[str, Any]:
    """``opdiag compare A B --format json``: both runs, then A's phases against B's."""
    return {
        "operation": run_brief(this),
        "against": run_brief(other),
        "comparison": plain(comparison),
    }
