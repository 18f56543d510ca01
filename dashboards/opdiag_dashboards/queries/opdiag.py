"""Every opdiag REST query of the dashboards, one function each: settings in, a URL out.

The URL is the single source for both JSON datasources: Infinity gets it as is (relative to
the datasource's base URL), the simpod target is derived from it (``targets.simpod_target``).
Filters follow docs/architecture.md: ``from``/``to`` take ``${__from}``/``${__to}`` (for one
operation too: a live Jaeger is searched for it over the dashboard's range); the
single-select filter variables are sent with the ``:text`` format so "All" arrives as ``All``
(= no filter) while Prometheus panels get the ``.*`` all-value of the same variable.
"""

from __future__ import annotations

from opdiag.settings import Settings

from opdiag_dashboards.queries import selectors as sel

API = "/api/v1"
RANGE = "from=${__from}&to=${__to}"
# Verdicts that mean the backend could not place an operation on a worker.
WORKER_SELECTION_VERDICTS = ("no_workers", "no_capable_workers", "workers_busy")


def _filters() -> str:
    return f"type=${{{sel.OPERATION_TYPE}:text}}&verdict=${{{sel.VERDICT}:text}}"


def recent_operations(s: Settings) -> str:
    """Recent operations with their verdicts, filtered by type and verdict."""
    return f"{API}/operations?{RANGE}&{_filters()}&limit={s.dashboards.operations_limit}"


def worker_selection_failures(s: Settings) -> str:
    """Recent operations refused for lack of a (capable, available) worker."""
    verdicts = ",".join(WORKER_SELECTION_VERDICTS)
    return (
        f"{API}/operations?{RANGE}&type=${{{sel.OPERATION_TYPE}:text}}&verdict={verdicts}"
        f"&limit={s.dashboards.operations_limit}"
    )


def verdict_counts(s: Settings) -> str:
    """Operations per verdict per Grafana interval."""
    return f"{API}/verdict-counts?{RANGE}&interval=${{__interval_ms}}&{_filters()}"


def annotations(s: Settings, *, by_type: bool) -> str:
    """Failed, refused, stuck and lost operations as annotations (``by_type``: filtered by
    the dashboard's operation type variable)."""
    filters = f"&type=${{{sel.OPERATION_TYPE}:text}}" if by_type else ""
    return f"{API}/annotations?{RANGE}{filters}&limit={s.dashboards.operations_limit}"


# The selected operation as one path segment (an id may hold "/", "#", "?").
_OPERATION = f"${{{sel.OPERATION_ID}:percentencode}}"


def diagnosis(s: Settings) -> str:
    """The selected operation's diagnosis (one row)."""
    return f"{API}/operations/{_OPERATION}?{RANGE}"


def flow(s: Settings) -> str:
    """The selected operation's execution flow."""
    return f"{API}/operations/{_OPERATION}/flow?{RANGE}"


def findings(s: Settings) -> str:
    """Every rule that fired for the selected operation."""
    return f"{API}/operations/{_OPERATION}/findings?{RANGE}"


def solution(s: Settings) -> str:
    """Steps and commands that fix the selected operation's problem."""
    return f"{API}/operations/{_OPERATION}/solution?{RANGE}"


def comparison(s: Settings) -> str:
    """The selected operation's phases against the median of its last good runs."""
    return f"{API}/operations/{_OPERATION}/comparison?{RANGE}"


def variable_values(s: Settings, name: str) -> str:
    """Values of one opdiag-fed template variable over the dashboard range."""
    return f"{API}/variables/{name}?{RANGE}"


# JSONata root selectors (Infinity's backend parser): rows are already flat lists.
ROWS = "$"
# The diagnosis row's comma-separated trace ids as variable rows (always an array).
TRACE_ID_ROWS = '[$split($[0].trace_ids, ",").{"text": $, "value": $}]'
