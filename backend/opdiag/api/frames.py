"""Rows → Grafana data frames for the simpod datasource: one field per model column with an
explicit type, and the data links a table panel needs attached as field config."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from opdiag.api.schemas import Row
from opdiag.settings import LinkSettings

# Columns that hold epoch milliseconds (``*_ms`` columns are durations or offsets).
TIME_FIELDS = frozenset({"time", "time_end"})
URL_FIELDS = frozenset({"diagnosis_url", "jaeger_url", "explore_url"})
_NUMBER = frozenset({int, float})


def field_type(model: type[Row], name: str) -> str:
    """Grafana's field type for a model column: time, number, boolean or string."""
    if name in TIME_FIELDS:
        return "time"
    annotation = model.model_fields[name].annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0] if args else str
    if annotation is bool:
        return "boolean"
    if annotation in _NUMBER:
        return "number"
    return "string"


def field_links(model: type[Row], name: str, links: LinkSettings) -> list[dict[str, Any]]:
    """Data links for one column; Grafana interpolates ``${…}`` when the cell is clicked.
    Values go into URLs percent-encoded; the page link is the row's own ``diagnosis_url``
    when the model has one, else the configured public URL."""
    if name in ("operation_id", "trace_id"):
        if "diagnosis_url" in model.model_fields:
            page = "${__data.fields.diagnosis_url}"
        else:
            page = f"{links.opdiag_url.rstrip('/')}/operations/${{__value.raw:percentencode}}"
        page_link = {"title": "opdiag diagnosis page", "url": page, "targetBlank": True}
    if name == "operation_id":
        dashboard = quote(links.diagnosis_dashboard_uid, safe="")
        return [
            {
                "title": "Operation diagnosis dashboard",
                "url": f"/d/{dashboard}?var-operation_id=${{__value.raw:percentencode}}"
                "&${__url_time_range}",
            },
            page_link,
        ]
    if name == "trace_id":
        return [
            {
                "title": "Trace in Jaeger",
                "url": "",
                "internal": {
                    "datasourceUid": links.jaeger_datasource_uid,
                    "datasourceName": "Jaeger",
                    "query": {"query": "${__value.raw}"},
                },
            },
            page_link,
        ]
    if name in URL_FIELDS:
        return [{"title": "Open", "url": "${__value.raw}", "targetBlank": True}]
    return []


def _config(model: type[Row], name: str, links: LinkSettings) -> dict[str, Any]:
    config: dict[str, Any] = {}
    description = model.model_fields[name].description
    if description:
        config["description"] = description
    if name.endswith("_ms") and name not in TIME_FIELDS:
        config["unit"] = "ms"
    if name == "bottleneck_share":
        config["unit"] = "percentunit"
    found = field_links(model, name, links)
    if found:
        config["links"] = found
    return config


def to_frame(
    model: type[Row], rows: Sequence[Row], *, ref_id: str, name: str, links: LinkSettings
) -> dict[str, Any]:
    """A column-oriented frame (``fields`` with equal-length ``values``)."""
    dumped = [row.model_dump(mode="json") for row in rows]
    fields = []
    for column in model.model_fields:
        fields.append(
            {
                "name": column,
                "type": field_type(model, column),
                "values": [item[column] for item in dumped],
                "config": _config(model, column, links),
            }
        )
    meta = {"preferredVisualisationType": "table"}
    return {"refId": ref_id, "name": name, "fields": fields, "meta": meta}
