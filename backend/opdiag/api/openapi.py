"""OpenAPI 3.1 of the REST API, generated from the pydantic row models so the document, the
responses and the dashboards' columns share one definition."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

import opdiag
from opdiag import timeutil
from opdiag.api.params import IDENT_PATTERN, MAX_TEXT
from opdiag.api.schemas import (
    AnnotationRow,
    ComparisonRow,
    DiagnosisRow,
    ErrorBody,
    FindingRow,
    FlowRow,
    OperationRow,
    SolutionRow,
    VariableRow,
    VerdictCountRow,
)

_MODELS = (
    OperationRow,
    DiagnosisRow,
    FlowRow,
    FindingRow,
    SolutionRow,
    ComparisonRow,
    VerdictCountRow,
    VariableRow,
    AnnotationRow,
    ErrorBody,
)
_REF = "#/components/schemas/{model}"


def _param(
    name: str,
    description: str,
    *,
    where: str = "query",
    required: bool = False,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "description": description,
        "schema": schema or {"type": "string"},
    }


_TIME = "epoch ms, RFC 3339 or Grafana relative time (now-6h)"
_MULTI = "comma-separated values; All, $__all or empty = no filter"
# The grammar the server parses (opdiag.timeutil), so clients and fuzzers that generate values
# from this document send only times the server takes, and the server refuses the rest.
TIME_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": timeutil.MAX_EPOCH_MS},
        {"type": "string", "format": "date-time", "pattern": timeutil.RFC3339_PATTERN},
        {"type": "string", "pattern": timeutil.RELATIVE_TIME_PATTERN},
    ]
}
IDENT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT,
    "pattern": IDENT_PATTERN,
}
_RANGE = "without from and to: all of a file source, the look-back of Jaeger"
RANGE_PARAMS = [
    _param("from", f"Range start: {_TIME}; {_RANGE}", schema=TIME_SCHEMA),
    _param("to", f"Range end: {_TIME}; default now", schema=TIME_SCHEMA),
]
FILTER_PARAMS = [
    _param("type", f"Operation types: {_MULTI}"),
    _param("verdict", f"Verdicts: {_MULTI}"),
    _param(
        "service",
        f"Services: {_MULTI}; in a value, * matches any run of characters and ? one "
        "(ktrdr-training-worker-*: every process of the training workers)",
    ),
]
ID_PARAM = _param(
    "ident", "Operation id (operation.id) or trace id", where="path", schema=IDENT_SCHEMA
)
NOW_PARAM = _param(
    "now",
    f"The moment to judge at: {_TIME}; 'stuck' is judged by it, a moment in the trace "
    "source's past sees only what had happened by then; default the server's clock; the "
    "rows' diagnosis links keep it",
    schema=TIME_SCHEMA,
)
LOOKUP_PARAMS = [
    _param(
        "from",
        f"Search the trace source from: {_TIME}; default the date in a KTRDR operation id, "
        "else now minus the lookback (a trace id is fetched whatever the range)",
        schema=TIME_SCHEMA,
    ),
    _param("to", f"Search the trace source up to: {_TIME}; default now", schema=TIME_SCHEMA),
]

ROUTES: list[tuple[str, type, list[dict[str, Any]], str]] = [
    (
        "/api/v1/operations",
        OperationRow,
        [
            *RANGE_PARAMS,
            *FILTER_PARAMS,
            _param(
                "limit",
                "Maximum rows (capped by server.max_rows)",
                schema={"type": "integer", "minimum": 1},
            ),
            NOW_PARAM,
        ],
        "Recent operations with their verdicts, newest first",
    ),
    (
        "/api/v1/operations/{ident}",
        DiagnosisRow,
        [ID_PARAM, NOW_PARAM, *LOOKUP_PARAMS],
        "One operation's diagnosis as one row",
    ),
    (
        "/api/v1/operations/{ident}/flow",
        FlowRow,
        [ID_PARAM, NOW_PARAM, *LOOKUP_PARAMS],
        "The execution flow, spans in start order",
    ),
    (
        "/api/v1/operations/{ident}/findings",
        FindingRow,
        [ID_PARAM, NOW_PARAM, *LOOKUP_PARAMS],
        "Every rule that fired",
    ),
    (
        "/api/v1/operations/{ident}/solution",
        SolutionRow,
        [ID_PARAM, NOW_PARAM, *LOOKUP_PARAMS],
        "Solution steps and commands",
    ),
    (
        "/api/v1/operations/{ident}/comparison",
        ComparisonRow,
        [ID_PARAM, NOW_PARAM, *LOOKUP_PARAMS],
        "The total and each phase against the median of the last good runs",
    ),
    (
        "/api/v1/verdict-counts",
        VerdictCountRow,
        [
            *RANGE_PARAMS,
            *FILTER_PARAMS,
            _param("interval", "Bucket width: 5m, 1h or ms"),
            NOW_PARAM,
        ],
        "Operations per verdict per time bucket",
    ),
    (
        "/api/v1/variables/{name}",
        VariableRow,
        [
            _param(
                "name",
                "Variable",
                where="path",
                schema={
                    "type": "string",
                    "enum": ["operation_types", "verdicts", "services", "operation_ids"],
                },
            ),
            *RANGE_PARAMS,
        ],
        "Values of a Grafana template variable",
    ),
    (
        "/api/v1/annotations",
        AnnotationRow,
        [
            *RANGE_PARAMS,
            *FILTER_PARAMS,
            _param("limit", "Maximum rows (capped by server.max_rows)", schema={"type": "integer"}),
            NOW_PARAM,
        ],
        "Operations with a problem verdict (failed, refused, stuck, worker lost; or the "
        "verdicts asked for) as dashboard annotations",
    ),
]

_ERRORS = {
    "400": "Bad parameter; 'field' names it",
    "401": "Missing or invalid bearer token (when auth is on)",
    "404": "Unknown operation or trace id, or nothing of it by 'now' (field 'now')",
    "502": "Trace source (Jaeger) unreachable",
    "503": "Verdict store unavailable",
    "504": "Trace source (Jaeger) too slow",
}


@cache
def openapi_document() -> dict[str, Any]:
    """The whole document; built once per process (the models do not change at run time)."""
    _, defs = models_json_schema([(model, "serialization") for model in _MODELS], ref_template=_REF)
    error_ref = {"$ref": _REF.format(model="ErrorBody")}
    paths: dict[str, Any] = {}
    for path, model, params, summary in ROUTES:
        responses: dict[str, Any] = {
            "200": {
                "description": f"Array of {model.__name__}",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": _REF.format(model=model.__name__)},
                        }
                    }
                },
            }
        }
        for status, text in _ERRORS.items():
            responses[status] = {
                "description": text,
                "content": {"application/json": {"schema": error_ref}},
            }
        operation_id = path.removeprefix("/api/v1/").replace("/", "_").replace("{", "")
        paths[path] = {
            "get": {
                "operationId": operation_id.replace("}", "").replace("-", "_"),
                "summary": summary,
                "parameters": params,
                "responses": responses,
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "opdiag REST API",
            "version": opdiag.__version__,
            "description": "Operation diagnoses for Grafana's Infinity datasource. "
            "Times are epoch milliseconds.",
        },
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
