"""HTML pages: ``/`` lists recent operations, ``/operations/<id>`` shows one diagnosis with its
waterfall. Server-rendered Jinja with autoescape; no JavaScript, no external assets.

A person reads these pages, so their failures are pages too: an unknown id is an HTML 404,
Jaeger unreachable or too slow an HTML 502/504 carrying the message, a bad id an HTML 400.
The handler is the blueprint's own, so the JSON API keeps its JSON errors.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, make_response, render_template, request
from flask.blueprints import BlueprintSetupState

from opdiag.api.params import TimeRange, parse_ident, parse_range
from opdiag.api.queries import Filters, is_file_source, now_us, operations
from opdiag.api.rest import lookup_range, request_now
from opdiag.api.schemas import OperationRow
from opdiag.api.state import AppState, current_state
from opdiag.diagnosis.comparison import total_status
from opdiag.diagnosis.result import BaselineRun, Diagnosis, warned
from opdiag.errors import NotYetError, OpdiagError
from opdiag.render.links import operation_range_ms, range_around_ms, span_url
from opdiag.timeutil import ALL_END_US
from opdiag.web import comparison_chart, waterfall
from opdiag.web.filters import FILTERS, utc

bp = Blueprint("pages", __name__, template_folder="templates")
log = logging.getLogger("opdiag.web")
INDEX_LIMIT = 200

# No script may run on these pages, whatever a trace holds; styles are inline.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


@bp.record_once
def _register_filters(setup_state: BlueprintSetupState) -> None:
    """The pages' Jinja filters, installed on the app once when the blueprint registers."""
    setup_state.app.jinja_env.filters.update(FILTERS)
    setup_state.app.jinja_env.globals["warned"] = warned


def _html(body: str) -> Response:
    response = make_response(body)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def default_window(state: AppState) -> tuple[int, int]:
    """The last ``lookback_s`` for Jaeger; all of it for files (a finite, recorded corpus
    whose timestamps may be far in the past, like the demo)."""
    end = now_us()
    if is_file_source(state.source):
        return 0, max(end, ALL_END_US)
    return end - int(state.settings.jaeger.lookback_s * 1_000_000), end


_TITLES = {
    400: "Bad request",
    401: "Token needed",
    404: "Not found",
    502: "Trace source unavailable",
    504: "Trace source too slow",
}
_HINTS = {
    400: "Check the operation id or trace id in the address.",
    401: "This opdiag asks for its access token (OPDIAG_AUTH_TOKEN): when the browser asks, "
    "enter any user name and the token as the password.",
    404: "No trace in Jaeger holds this operation id or trace id. It may be older than the "
    "search window, or its spans may not have reached Jaeger yet.",
    502: "opdiag could not get an answer from the trace source; try again when it is back.",
    504: "The trace source did not answer in time; try again in a moment.",
}


_FILES_404 = (
    "No trace in the trace files ({source}) holds this operation id or trace id. Check the id, "
    "or serve the files that hold it (--traces)."
)


_NOT_YET = (
    "The page judges at the moment in its address (now=): drop it, or give a later one, to see "
    "the operation as it went on."
)


def _hint(status: int, exc: OpdiagError | None = None) -> str:
    """What to do next; a file source has no search window and no Jaeger to wait for."""
    if isinstance(exc, NotYetError):
        return _NOT_YET
    if status == 404:
        source = current_state().source
        if is_file_source(source):
            return _FILES_404.format(source=source.describe())
    return _HINTS.get(status, "")


def _page_for(
    status: int, message: str, ident: str | None = None, exc: OpdiagError | None = None
) -> Response:
    response = _html(
        render_template(
            "error.html",
            status=status,
            title=_TITLES.get(status, "Error"),
            message=message,
            hint=_hint(status, exc),
            ident=ident,
        )
    )
    response.status_code = status
    return response


@bp.errorhandler(OpdiagError)
def _error_page(exc: OpdiagError) -> Response:
    """The failure as a page with its status and message (the JSON API's message, the same
    statuses: 400/404/502/504), never a stack trace."""
    status = int(getattr(exc, "http_status", 500))
    if status >= 500:
        log.warning("trace source problem on a page: %s", exc.message)
    return _page_for(status, exc.message, (request.view_args or {}).get("ident"), exc)


def unauthorised_page() -> Response:
    """The 401 a browser gets for a page without the token (``opdiag.api.auth`` adds the
    challenge that makes the browser ask for it)."""
    return _page_for(401, "missing or invalid token")


def _now_args() -> dict[str, int]:
    """``now`` for the links of a page given one (epoch ms: a relative one is resolved), the
    moment its verdicts are judged at."""
    given = request_now()
    return {} if given is None else {"now": given // 1000}


@bp.get("/")
def index() -> Response:
    state = current_state()
    given = request_now()
    start, end = default_window(state)
    if request.args.get("from") or request.args.get("to"):
        clock = now_us() if given is None else given
        span = parse_range(request.args.get("from"), request.args.get("to"), clock, end - start)
        # only "to" over a file source: the default span reaches back before 1970
        start, end = max(0, span.start_us), span.end_us
    rows = operations(state.service, TimeRange(start, end), Filters(), INDEX_LIMIT, given)
    return _html(
        render_template(
            "index.html",
            rows=rows,
            source=state.source.describe(),
            window=f"{utc(start // 1000)} – {utc(end // 1000)}" if start else "all recorded time",
            judged_at=None if given is None else given // 1000,
        )
    )


def range_args(span: tuple[int, int | None] | None) -> dict[str, int]:
    """``from``/``to`` query arguments (epoch ms) of a link to one operation's page, and the
    ``now`` of the page it is on."""
    if span is None:
        return _now_args()
    start, end = span
    bounds = {"from": start} if end is None else {"from": start, "to": end}
    return {**bounds, **_now_args()}


@bp.app_template_filter("page_range")
def page_range(diagnosis: Diagnosis) -> dict[str, int]:
    """The range a link to this operation's page carries (its own time)."""
    return range_args(operation_range_ms(diagnosis))


@bp.app_template_filter("row_range")
def row_range(row: OperationRow) -> dict[str, int]:
    """The same for a row of the operations list (from the store or the traces)."""
    end = row.time + round(row.duration_ms) if row.finished else None
    return range_args(range_around_ms(row.time, end))


@bp.app_template_filter("run_range")
def run_range(run: BaselineRun) -> dict[str, int]:
    """The same for a good run a comparison names (finished: its start and duration)."""
    end = run.started_at_ms + round(run.duration_ms)
    return range_args(range_around_ms(run.started_at_ms, end))


@bp.get("/operations/<ident:ident>")  # an id may hold "/"
def operation(ident: str) -> Response:
    """One diagnosis; ``from``/``to`` say where a live source searches for it, ``now`` the
    moment it is judged at (its links keep it)."""
    state = current_state()
    given = request_now()
    diagnosis = state.service.diagnose(parse_ident(ident), given, window=lookup_range())
    links = state.settings.links
    picture = waterfall.layout(
        diagnosis.execution_flow,
        diagnosis.execution_flow_truncated,
        noise_patterns=state.settings.diagnosis.noise_span_patterns,
        span_link=lambda trace_id, span_id: span_url(links, trace_id, span_id),
    )
    b = diagnosis.bottleneck
    if b is not None and b.kind == "gap" and b.start_ms is not None and diagnosis.started_at_ms:
        waterfall.mark_gap(picture, b.start_ms - diagnosis.started_at_ms, b.duration_ms, b.text)
    c = diagnosis.comparison
    chart = comparison_chart.layout(c) if c else None
    here = {**{k: v for k, v in request.args.items() if k in ("from", "to") and v}, **_now_args()}
    return _html(
        render_template(
            "diagnosis.html",
            d=diagnosis,
            waterfall=picture,
            chart=chart,
            range_args=here,
            total=total_status(c) if c else "",
            judged_at=None if given is None else given // 1000,
        )
    )
