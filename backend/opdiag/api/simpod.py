"""The simpod JSON datasource protocol under ``/simpod``: the same query functions as the REST
API, answered as data frames. The plugin posts Grafana's whole DataQueryRequest; unknown keys
are ignored, hidden targets skipped, payloads accepted as objects or JSON strings, and
dashboard variables read from ``scopedVars`` when the payload does not set them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, request

from opdiag.api import queries
from opdiag.api.frames import to_frame
from opdiag.api.jsonbody import parse_json
from opdiag.api.params import (
    MAX_TEXT,
    TimeRange,
    parse_ident,
    parse_interval_us,
    parse_limit,
    parse_multi,
    parse_time_us,
)
from opdiag.api.schemas import ROW_MODELS, Row
from opdiag.api.state import current_state
from opdiag.diagnosis.result import VERDICTS
from opdiag.errors import InputError

bp = Blueprint("simpod", __name__, url_prefix="/simpod")

TARGETS: tuple[str, ...] = (
    "operations",
    "diagnosis",
    "flow",
    "findings",
    "solution",
    "comparison",
    "verdict_counts",
    "annotations",
)
# Payload option name -> (scopedVars names that may supply it).
_FILTER_VARS: dict[str, tuple[str, ...]] = {
    "type": ("type", "operation_type"),
    "verdict": ("verdict",),
    "service": ("service",),
}
_ID_VARS = ("operation_id",)
TAG_KEYS: dict[str, str] = {"operation_type": "type", "verdict": "verdict", "service": "service"}


def _multi(name: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "type": "multi-select", "placeholder": "All"}


_FILTER_PAYLOADS = [
    _multi("type", "Operation type"),
    _multi("verdict", "Verdict"),
    _multi("service", "Service"),
]
_NOW_PAYLOAD = {"name": "now", "label": "Now", "type": "input", "placeholder": "now"}
_ID_PAYLOADS = [
    {
        "name": "operation_id",
        "label": "Operation id",
        "type": "select",
        "placeholder": "$operation_id",
    },
    _NOW_PAYLOAD,
]
METRICS: list[dict[str, Any]] = [
    {
        "value": "operations",
        "label": "Recent operations",
        "payloads": [
            *_FILTER_PAYLOADS,
            {"name": "limit", "label": "Limit", "type": "input"},
            _NOW_PAYLOAD,
        ],
    },
    {"value": "diagnosis", "label": "Diagnosis (one row)", "payloads": _ID_PAYLOADS},
    {"value": "flow", "label": "Execution flow", "payloads": _ID_PAYLOADS},
    {"value": "findings", "label": "Findings", "payloads": _ID_PAYLOADS},
    {"value": "solution", "label": "Solution", "payloads": _ID_PAYLOADS},
    {"value": "comparison", "label": "Against the last good runs", "payloads": _ID_PAYLOADS},
    {
        "value": "verdict_counts",
        "label": "Verdict counts over time",
        "payloads": [
            *_FILTER_PAYLOADS,
            {
                "name": "interval",
                "label": "Interval",
                "type": "input",
                "placeholder": "$__interval",
            },
            _NOW_PAYLOAD,
        ],
    },
    {
        "value": "annotations",
        "label": "Failed, stuck and lost operations (annotations)",
        "payloads": [
            *_FILTER_PAYLOADS,
            {"name": "limit", "label": "Limit", "type": "input"},
            _NOW_PAYLOAD,
        ],
    },
]


def _body() -> dict[str, Any]:
    """The JSON body as an object; anything else is a 400 naming the body."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    body = parse_json(raw, "body")
    if not isinstance(body, dict):
        raise InputError("request body must be a JSON object", field="body")
    return body


def _json(data: Any) -> Response:
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response


def _payload(target: dict[str, Any], field: str) -> dict[str, Any]:
    """A target's payload: an object, a JSON string, or absent."""
    payload = target.get("payload")
    if payload in (None, ""):
        return {}
    if isinstance(payload, str):
        payload = parse_json(payload, field, "payload")
    if not isinstance(payload, dict):
        raise InputError("payload must be an object", field=field)
    return payload


def _scoped(scoped_vars: dict[str, Any], names: Sequence[str]) -> Any:
    """A dashboard variable's value from scopedVars (``{"text", "value"}``)."""
    for name in names:
        entry = scoped_vars.get(name)
        if isinstance(entry, dict) and "value" in entry:
            return entry["value"]
    return None


def _range(body: dict[str, Any]) -> TimeRange:
    """Grafana's absolute ``range.from``/``to`` (ISO), else ``range.raw`` (``now-6h``)."""
    span = body.get("range") or {}
    if not isinstance(span, dict):
        raise InputError("range: must be an object", field="range")
    raw = span.get("raw") if isinstance(span.get("raw"), dict) else {}
    start = span.get("from", raw.get("from"))
    end = span.get("to", raw.get("to"))
    state = current_state()
    try:
        return queries.request_range(start, end, state.source, state.settings)
    except InputError as exc:
        raise InputError(f"range.{exc.message}", field=f"range.{exc.field}") from None


def _filters(payload: dict[str, Any], scoped: dict[str, Any], adhoc: list[Any]) -> queries.Filters:
    values: dict[str, list[str] | None] = {}
    for option, var_names in _FILTER_VARS.items():
        raw = payload.get(option)
        if raw in (None, ""):
            raw = _scoped(scoped, var_names)
        values[option] = parse_multi(raw, f"payload.{option}")
    for index, item in enumerate(adhoc):
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or key not in TAG_KEYS:
            raise InputError("unknown ad hoc filter key", field=f"filters[{index}].key")
        if item.get("operator", "=") != "=":
            raise InputError(
                "only the '=' operator is supported", field=f"filters[{index}].operator"
            )
        option = TAG_KEYS[item["key"]]
        extra = parse_multi(item.get("value"), f"filters[{index}].value") or []
        values[option] = sorted(set(values[option] or []) | set(extra)) or None
    current_state().service.rules.check_verdicts(values["verdict"], "payload.verdict")
    return queries.Filters(
        operation_types=values["type"], verdicts=values["verdict"], services=values["service"]
    )


def _ident(payload: dict[str, Any], scoped: dict[str, Any], field: str) -> str:
    raw = payload.get("operation_id")
    if raw in (None, ""):
        raw = _scoped(scoped, _ID_VARS)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw in (None, ""):
        raise InputError("operation_id is required", field=f"{field}.operation_id")
    if not isinstance(raw, str):  # {"a": 1} is no id: its text would be "not found"
        raise InputError(
            f"{field}.operation_id: expected an operation id or trace id (text)",
            field=f"{field}.operation_id",
        )
    return parse_ident(raw, f"{field}.operation_id")


def _rows_for(kind: str, payload: dict[str, Any], body: dict[str, Any], field: str) -> list[Row]:
    state = current_state()
    scoped = body.get("scopedVars") if isinstance(body.get("scopedVars"), dict) else {}
    adhoc = body.get("filters") if isinstance(body.get("filters"), list) else []
    now_raw = payload.get("now")
    now_us = (
        None
        if now_raw in (None, "", "now")
        else parse_time_us(now_raw, name=f"{field}.now", now_us=queries.now_us())
    )
    if kind in queries.PER_OPERATION:
        ident = _ident(payload, scoped, field)
        window = _range(body) if body.get("range") else None  # the dashboard's range
        return list(queries.PER_OPERATION[kind](state.service, ident, now_us, window))
    span = _range(body)
    filters = _filters(payload, scoped, adhoc)
    if kind in ("operations", "annotations"):
        limit = parse_limit(payload.get("limit"), state.settings.server.max_rows, f"{field}.limit")
        listing = queries.operations if kind == "operations" else queries.annotations
        return list(listing(state.service, span, filters, limit, now_us))
    raw_interval = payload.get("interval")
    where = f"{field}.interval"
    if raw_interval in (None, ""):  # else the panel's own interval
        raw_interval, where = body.get("intervalMs"), "intervalMs"
    if raw_interval in (None, ""):
        interval_us = queries.default_interval_us(span)
    else:
        interval_us = queries.bounded_interval_us(
            span, max(1_000_000, parse_interval_us(raw_interval, where))
        )
    return list(queries.verdict_counts(state.service, span, interval_us, filters, now_us))


@bp.route("/", methods=["GET", "HEAD"])
def test_connection() -> Response:
    """The datasource's "Save & test"."""
    return _json({"status": "ok", "source": current_state().source.describe()})


@bp.post("/metrics")
def metrics() -> Response:
    _body()
    return _json(METRICS)


@bp.post("/metric-payload-options")
def metric_payload_options() -> Response:
    body = _body()
    name = body.get("name")
    state = current_state()
    span = queries.default_range(state.source, state.settings, queries.now_us())
    variable = {
        "operation_id": "operation_ids",
        "type": "operation_types",
        "service": "services",
    }.get(str(name))
    if name == "verdict":
        return _json([{"label": v, "value": v} for v in VERDICTS])
    if variable is None:
        raise InputError("unknown payload option", field="name")
    rows = queries.variable(state.service, variable, span)
    return _json([{"label": row.text, "value": row.value} for row in rows])


@bp.post("/query")
def query() -> Response:
    body = _body()
    targets = body.get("targets", [])
    if not isinstance(targets, list):
        raise InputError("targets must be a list", field="targets")
    state = current_state()
    cap = state.settings.server.max_targets
    if len(targets) > cap:
        raise InputError(
            f"{len(targets)} targets in one request; at most {cap} (server.max_targets)",
            field="targets",
        )
    frames: list[dict[str, Any]] = []
    for index, target in enumerate(targets):
        field = f"targets[{index}]"
        if not isinstance(target, dict):
            raise InputError("target must be an object", field=field)
        if target.get("hide") is True or "target" not in target:
            continue
        kind = target.get("target")
        if kind not in TARGETS:
            raise InputError(
                f"unknown target; expected one of {', '.join(TARGETS)}", field=f"{field}.target"
            )
        payload = _payload(target, f"{field}.payload")
        rows = _rows_for(kind, payload, body, f"{field}.payload")
        ref_id = _ref_id(target.get("refId"), f"{field}.refId")
        frames.append(
            to_frame(ROW_MODELS[kind], rows, ref_id=ref_id, name=kind, links=state.settings.links)
        )
    return _json(frames)


def _ref_id(raw: Any, field: str) -> str:
    """Grafana's query letter; echoed in the frame, so text (or a number) only."""
    if raw in (None, ""):
        return "A"
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InputError("refId must be text", field=field)
    return str(raw)[:MAX_TEXT]


def _variable_name(payload: Any) -> str:
    if isinstance(payload, str):
        text = payload
    elif isinstance(payload, dict):
        text = payload.get("target") or payload.get("name") or payload.get("variable") or ""
    else:
        text = ""
    text = str(text).strip()
    try:
        parsed = parse_json(text, "payload") if text.startswith("{") else None
    except InputError:
        parsed = None
    if isinstance(parsed, dict):
        text = str(parsed.get("target") or parsed.get("name") or "")
    return text


@bp.post("/variable")
def variable() -> Response:
    body = _body()
    name = _variable_name(body.get("payload"))
    if name not in queries.VARIABLE_NAMES:
        raise InputError(
            f"unknown variable; expected one of {', '.join(queries.VARIABLE_NAMES)}",
            field="payload.target",
        )
    rows = queries.variable(current_state().service, name, _range(body))
    return _json(
        [{"__text": r.text, "__value": r.value, "text": r.text, "value": r.value} for r in rows]
    )


@bp.post("/tag-keys")
def tag_keys() -> Response:
    _body()
    return _json([{"type": "string", "text": key} for key in TAG_KEYS])


@bp.post("/tag-values")
def tag_values() -> Response:
    body = _body()
    key = body.get("key")
    if not isinstance(key, str) or key not in TAG_KEYS:
        raise InputError("unknown tag key", field="key")
    if key == "verdict":
        return _json([{"text": v} for v in VERDICTS])
    state = current_state()
    name = {"operation_type": "operation_types", "service": "services"}[key]
    span = queries.default_range(state.source, state.settings, queries.now_us())
    return _json([{"text": row.value} for row in queries.variable(state.service, name, span)])
