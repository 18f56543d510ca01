"""Field overrides for table columns: display names, units, links, colours, widths."""

from __future__ import annotations

from typing import Any


def by_name(
    field: str,
    *,
    display: str | None = None,
    unit: str | None = None,
    links: list[dict[str, object]] | None = None,
    mappings: list[dict[str, object]] | None = None,
    cell: str | None = None,
    width: int | None = None,
    hidden: bool = False,
) -> dict[str, Any]:
    """One override on the column ``field`` (matched by its name)."""
    props: list[dict[str, Any]] = []
    if display is not None:
        props.append({"id": "displayName", "value": display})
    if unit is not None:
        props.append({"id": "unit", "value": unit})
    if links is not None:
        props.append({"id": "links", "value": links})
    if mappings is not None:
        props.append({"id": "mappings", "value": mappings})
    if cell is not None:
        props.append({"id": "custom.cellOptions", "value": {"type": cell}})
    if width is not None:
        props.append({"id": "custom.width", "value": width})
    if hidden:
        props.append({"id": "custom.hidden", "value": True})
    return {"matcher": {"id": "byName", "options": field}, "properties": props}


def organize(
    exclude: list[str] | None = None, rename: dict[str, str] | None = None
) -> dict[str, Any]:
    """Grafana's `organize` transformation (hide and rename columns)."""
    return {
        "id": "organize",
        "options": {
            "excludeByName": {name: True for name in exclude or []},
            "renameByName": rename or {},
            "indexByName": {},
        },
    }


def select(kind: str, columns: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Show only ``columns`` of a row kind, in that order.

    Infinity already returns only its declared columns; simpod frames carry every column of
    the row model, so the same panel needs this to look the same with both datasources.
    """
    from opdiag.api.schemas import ROW_MODELS

    others = [name for name in ROW_MODELS[kind].model_fields if name not in columns]
    return {
        "id": "organize",
        "options": {
            "excludeByName": {name: True for name in others},
            "indexByName": {name: i for i, name in enumerate(columns)},
            "renameByName": {},
        },
    }


def partition(field: str) -> dict[str, Any]:
    """Split a long table (time, <field>, value) into one series per value of ``field``."""
    return {
        "id": "partitionByValues",
        "options": {"fields": [field], "keepFields": False, "naming": {"asLabels": True}},
    }
