"""Query targets: Prometheus via grafanalib, opdiag via Infinity or simpod, Jaeger by trace id.

The opdiag target is built from the REST URL of ``queries.opdiag`` and the row kind whose
model (``opdiag.api.schemas``) gives the Infinity columns; the simpod variant posts the same
row kind with the URL's parameters as its payload.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

import grafanalib.core as G
from opdiag.settings import Settings

from opdiag_dashboards import datasources as ds
from opdiag_dashboards.columns import kind_columns
from opdiag_dashboards.queries import opdiag as q

# REST path (after /api/v1) -> simpod target (row kind); `<id>` is the operation id segment.
_SIMPOD_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/api/v1/operations$"), "operations"),
    (re.compile(r"^/api/v1/operations/(?P<id>[^/]+)$"), "diagnosis"),
    (re.compile(r"^/api/v1/operations/(?P<id>[^/]+)/flow$"), "flow"),
    (re.compile(r"^/api/v1/operations/(?P<id>[^/]+)/findings$"), "findings"),
    (re.compile(r"^/api/v1/operations/(?P<id>[^/]+)/solution$"), "solution"),
    (re.compile(r"^/api/v1/operations/(?P<id>[^/]+)/comparison$"), "comparison"),
    (re.compile(r"^/api/v1/verdict-counts$"), "verdict_counts"),
    (re.compile(r"^/api/v1/annotations$"), "annotations"),
)
# simpod sends the time range itself; these URL parameters are not part of the payload.
_RANGE_PARAMS = {"from", "to"}


def prometheus(
    settings: Settings,
    expr: str,
    legend: str = "",
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> G.Target:
    """A Prometheus target (full resolution: intervalFactor 1)."""
    return G.Target(
        expr=expr,
        legendFormat=legend,
        refId=ref_id,
        instant=instant,
        format="table" if table else "time_series",
        intervalFactor=1,
        datasource=ds.prometheus_ref(settings),
    )


def infinity(
    settings: Settings,
    url: str,
    kind: str,
    columns: Iterable[str] | None = None,
    *,
    ref_id: str = "A",
    root_selector: str = q.ROWS,
    fmt: str = "table",
) -> dict[str, object]:
    """An Infinity JSON query (backend parser: root_selector is JSONata)."""
    return {
        "refId": ref_id,
        "datasource": ds.opdiag_ref(settings, "infinity"),
        "type": "json",
        "source": "url",
        "format": fmt,
        "parser": "backend",
        "url": url,
        "url_options": {"method": "GET", "data": ""},
        "root_selector": root_selector,
        "columns": kind_columns(kind, columns),
        "filters": [],
    }


def simpod_request(url: str) -> tuple[str, dict[str, str]]:
    """The simpod row kind and payload equivalent to a REST URL."""
    parts = urlsplit(url)
    for pattern, kind in _SIMPOD_ROUTES:
        match = pattern.match(parts.path)
        if match:
            payload = {k: v for k, v in parse_qsl(parts.query) if k not in _RANGE_PARAMS}
            if "id" in match.groupdict():
                payload["operation_id"] = match["id"]
            return kind, payload
    raise ValueError(f"no simpod row kind serves {parts.path}")


def simpod(settings: Settings, url: str, *, ref_id: str = "A") -> dict[str, object]:
    """A simpod JSON datasource target (code mode, payload as an interpolated JSON string)."""
    kind, payload = simpod_request(url)
    return {
        "refId": ref_id,
        "datasource": ds.opdiag_ref(settings, "simpod"),
        "target": kind,
        "payload": json.dumps(payload, sort_keys=True),
        "editorMode": "code",
    }


def opdiag(
    settings: Settings,
    json_datasource: str,
    url: str,
    kind: str,
    columns: Iterable[str] | None = None,
    *,
    ref_id: str = "A",
    fmt: str = "table",
) -> dict[str, object]:
    """The opdiag target for the chosen JSON datasource."""
    if json_datasource == "simpod":
        return simpod(settings, url, ref_id=ref_id)
    return infinity(settings, url, kind, columns, ref_id=ref_id, fmt=fmt)


def jaeger_trace(settings: Settings, trace_id: str, ref_id: str = "A") -> dict[str, object]:
    """Jaeger trace lookup by id (no queryType means "trace id")."""
    return {"refId": ref_id, "datasource": ds.jaeger_ref(settings), "query": trace_id}
