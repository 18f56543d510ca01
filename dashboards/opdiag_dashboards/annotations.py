"""Dashboard annotations from opdiag: failed, refused, stuck and lost operations marked on
every time series of a dashboard, each with its verdict, summary and a link to its diagnosis.

One annotation query per dashboard, read from ``/api/v1/annotations`` (the verdict store when
``opdiag serve`` has one), through the same JSON datasource as the panels. It is shown in the
dashboard's controls (``hide: false``), so the toggle there turns the marks off and on.
"""

from __future__ import annotations

from opdiag.settings import Settings

from opdiag_dashboards import datasources as ds
from opdiag_dashboards import targets
from opdiag_dashboards.queries import opdiag as oq

NAME = "opdiag: failed, stuck and lost operations"
# Columns Grafana turns into annotation events (AnnotationRow fields), then the rest.
COLUMNS = ("time", "time_end", "title", "text", "tags", "verdict", "operation_type",
           "operation_id", "diagnosis_url")
# Grafana's annotation event field <- the row's column.
MAPPINGS = {"time": "time", "timeEnd": "time_end", "title": "title", "text": "text",
            "tags": "tags"}


def verdict_annotations(
    settings: Settings, json_datasource: str, *, by_type: bool
) -> dict[str, object]:
    """The annotation query of one dashboard (``by_type``: it has an operation type
    variable, and the marks follow it)."""
    url = oq.annotations(settings, by_type=by_type)
    if json_datasource == "simpod":
        target = targets.simpod(settings, url, ref_id="Anno")
    else:
        target = targets.infinity(
            settings, url, "annotations", COLUMNS, ref_id="Anno", fmt="dataframe"
        )
    return {
        "name": NAME,
        "datasource": ds.opdiag_ref(settings, json_datasource),
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "target": target,
        "mappings": {
            event: {"source": "field", "value": column} for event, column in MAPPINGS.items()
        },
    }
