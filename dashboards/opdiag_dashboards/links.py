"""Data links and dashboard links, built in one place from settings.

- an operation id opens the Operation Diagnosis dashboard with the same time range, and the
  opdiag HTML page;
- a trace id opens the trace in Explore through the Jaeger datasource (internal link), and the
  opdiag HTML page (which accepts a trace id as well).
"""

from __future__ import annotations

import grafanalib.core as G
from opdiag.settings import Settings

from opdiag_dashboards.queries import selectors as sel

VALUE = "${__value.raw}"
# The cell's value as one URL component: Grafana's percentencode format, so an id holding
# ``/``, ``&``, ``#`` or a space stays one value.
ENCODED = "${__value.raw:percentencode}"
# The row's own link to opdiag's page: built by the server from its configured public URL
# (OPDIAG_PUBLIC_URL), so the dashboards need not know where opdiag is.
ROW_PAGE = "${__data.fields.diagnosis_url}"
ROW_PAGE_COLUMN = "diagnosis_url"


def encoded(variable: str) -> str:
    """A dashboard variable as one URL component."""
    return f"${{{variable}:percentencode}}"


def dashboard_url(uid: str) -> str:
    """Grafana's short dashboard URL (relative: Grafana prepends its sub-path)."""
    return f"/d/{uid}"


def opdiag_page(settings: Settings, ident: str) -> str:
    """The opdiag HTML diagnosis page as the browser sees it (``ident`` already encoded),
    searched over the dashboard's time range (Grafana's ``from=…&to=…``)."""
    base = settings.links.opdiag_url.rstrip("/")
    return f"{base}/operations/{ident}?${{__url_time_range}}"


def diagnose_operation(settings: Settings) -> dict[str, object]:
    """Drill down from an operation id cell, keeping the time range."""
    uid = settings.links.diagnosis_dashboard_uid
    return {
        "title": "Diagnose operation ${__value.raw}",
        "url": f"{dashboard_url(uid)}?var-{sel.OPERATION_ID}={ENCODED}&${{__url_time_range}}",
    }


def row_page_link() -> dict[str, object]:
    """The opdiag page of the row's operation, from the row's ``diagnosis_url`` (the panel
    keeps that column, hidden: ``fields.by_name(ROW_PAGE_COLUMN, hidden=True)``)."""
    return {"title": "opdiag diagnosis page", "url": ROW_PAGE, "targetBlank": True}


def opdiag_page_link(settings: Settings) -> dict[str, object]:
    """The opdiag page of the id in the cell, for rows without a ``diagnosis_url``."""
    return {
        "title": "opdiag diagnosis page",
        "url": opdiag_page(settings, ENCODED),
        "targetBlank": True,
    }


def selected_operation_page(settings: Settings) -> dict[str, object]:
    """Panel header link: the opdiag page of the dashboard's selected operation."""
    return {
        "title": "opdiag diagnosis page",
        "url": opdiag_page(settings, encoded(sel.OPERATION_ID)),
        "targetBlank": True,
    }


def explore_trace(settings: Settings) -> dict[str, object]:
    """The trace in the cell, in Explore via the Jaeger datasource."""
    return {
        "title": "Trace in Explore (Jaeger)",
        "url": "",
        "internal": {
            "datasourceUid": settings.links.jaeger_datasource_uid,
            "datasourceName": settings.dashboards.jaeger.name,
            "query": {"query": VALUE},
        },
    }


def operation_id_links(settings: Settings) -> list[dict[str, object]]:
    """Links of every operation id cell (its rows carry ``diagnosis_url``)."""
    return [diagnose_operation(settings), row_page_link()]


def trace_id_links(settings: Settings, *, row_page: bool = False) -> list[dict[str, object]]:
    """Links of every trace id cell; ``row_page`` when the row carries ``diagnosis_url``."""
    page = row_page_link() if row_page else opdiag_page_link(settings)
    return [explore_trace(settings), page]


def url_link(title: str) -> dict[str, object]:
    """Open the URL held in the cell (opdiag's diagnosis_url / jaeger_url columns)."""
    return {"title": title, "url": VALUE, "targetBlank": True}


def dashboard_links(settings: Settings, board_uids: dict[str, str]) -> list[G.DashboardLink]:
    """Links from every dashboard to the others, keeping the time range."""
    return [
        G.DashboardLink(
            title=title, uri=dashboard_url(uid), type="link", keepTime=True, icon="dashboard"
        )
        for title, uid in board_uids.items()
    ]
