"""REST for Grafana's Infinity datasource: GET routes answering JSON arrays of flat rows
(``opdiag.api.schemas``), exactly the table of docs/architecture.md."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import Blueprint, Response, jsonify, request

from opdiag.api import queries
from opdiag.api.openapi import openapi_document
from opdiag.api.params import (
    TimeRange,
    parse_ident,
    parse_interval_us,
    parse_limit,
    parse_multi,
    parse_time_us,
)
from opdiag.api.schemas import Row
from opdiag.api.state import current_state

bp = Blueprint("rest", __name__, url_prefix="/api/v1")


def rows_response(rows: Sequence[Row]) -> Response:
    """Rows as a JSON array; field names and types come from the models alone."""
    response = jsonify([row.model_dump(mode="json") for row in rows])
    response.headers["Cache-Control"] = "no-store"
    return response


def _range() -> TimeRange:
    state = current_state()
    return queries.request_range(
        request.args.get("from"), request.args.get("to"), state.source, state.settings,
        request_now(),
    )


def _filters() -> queries.Filters:
    verdicts = parse_multi(request.args.get("verdict"), "verdict")
    current_state().service.rules.check_verdicts(verdicts, "verdict")
    return queries.Filters(
        operation_types=parse_multi(request.args.get("type"), "type"),
        verdicts=verdicts,
        services=parse_multi(request.args.get("service"), "service"),
    )


def request_now() -> int | None:
    """The request's ``now`` (epoch ms, RFC 3339 or relative; None: the service's clock),
    for the API's routes and the pages alike."""
    raw = request.args.get("now")
    if raw in (None, ""):
        return None
    return parse_time_us(raw, name="now", now_us=queries.now_us())


@bp.get("/operations")
def operations() -> Response:
    return _listing(queries.operations)


@bp.get("/annotations")
def annotations() -> Response:
    return _listing(queries.annotations)


def _listing(query: Callable[..., Sequence[Row]]) -> Response:
    state = current_state()
    span = _range()
    limit = parse_limit(request.args.get("limit"), state.settings.server.max_rows)
    return rows_response(query(state.service, span, _filters(), limit, request_now()))


def lookup_range() -> TimeRange | None:
    """The range to search for one operation: ``from``/``to`` when either is given (the
    Operation Diagnosis dashboard sends its time range), else None (the id's own date or
    the look-back decides)."""
    if request.args.get("from") in (None, "") and request.args.get("to") in (None, ""):
        return None
    return _range()


def _per_operation(kind: str, ident: str) -> Response:
    state = current_state()
    query = queries.PER_OPERATION[kind]
    return rows_response(query(state.service, parse_ident(ident), request_now(), lookup_range()))


@bp.get("/operations/<ident:ident>")
def diagnosis(ident: str) -> Response:
    return _per_operation("diagnosis", ident)


@bp.get("/operations/<ident:ident>/flow")
def flow(ident: str) -> Response:
    return _per_operation("flow", ident)


@bp.get("/operations/<ident:ident>/findings")
def findings(ident: str) -> Response:
    return _per_operation("findings", ident)


@bp.get("/operations/<ident:ident>/solution")
def solution(ident: str) -> Response:
    return _per_operation("solution", ident)


@bp.get("/operations/<ident:ident>/comparison")
def comparison(ident: str) -> Response:
    return _per_operation("comparison", ident)


@bp.get("/verdict-counts")
def verdict_counts() -> Response:
    state = current_state()
    span = _range()
    raw_interval = request.args.get("interval")
    if raw_interval in (None, ""):
        interval_us = queries.default_interval_us(span)
    else:
        interval_us = queries.bounded_interval_us(span, parse_interval_us(raw_interval))
    return rows_response(
        queries.verdict_counts(state.service, span, interval_us, _filters(), request_now())
    )


@bp.get("/variables/<name>")
def variables(name: str) -> Response:
    state = current_state()
    span = _range()
    return rows_response(queries.variable(state.service, name, span))


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document())
