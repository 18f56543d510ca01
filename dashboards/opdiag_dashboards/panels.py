"""House panel helpers (React-era panels only) and the grid layout.

Every helper takes a title, a description and its targets; boards only assemble them. Panel
ids and grid positions are given by :func:`layout`, so they are stable and never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attr
import grafanalib.core as G

GREEN = [{"color": "green", "value": None}]


def steps(base: str, *more: tuple[float, str]) -> list[dict[str, object]]:
    """Threshold steps: the base colour, then (value, colour) pairs."""
    return [{"color": base, "value": None}] + [{"color": c, "value": v} for v, c in more]


def stat(
    title: str,
    description: str,
    targets: Sequence[object],
    *,
    unit: str = "none",
    thresholds: list[dict[str, object]] | None = None,
    no_value: str = "0",
    graph: bool = False,
    mappings: list[dict[str, object]] | None = None,
    fields: str = "",
    text_mode: str = "auto",
    color_mode: str = "value",
    decimals: int | None = None,
) -> G.Stat:
    """A stat panel with explicit thresholds (grafanalib's default emits invalid steps)."""
    return G.Stat(
        title=title,
        description=description,
        targets=list(targets),
        format=unit,
        thresholds=thresholds or GREEN,
        noValue=no_value,
        graphMode="area" if graph else "none",
        reduceCalc="lastNotNull",
        mappings=mappings or [],
        fields=fields,
        textMode=text_mode,
        colorMode=color_mode,
        decimals=decimals,
    )


def timeseries(
    title: str,
    description: str,
    targets: Sequence[object],
    *,
    unit: str,
    bars: bool = False,
    stacked: bool = False,
    overrides: list[dict[str, object]] | None = None,
    thresholds: list[dict[str, object]] | None = None,
    transformations: list[dict[str, object]] | None = None,
    display_name: str | None = None,
) -> G.TimeSeries:
    """A time series panel; bars for counts per interval."""
    extra = {"fieldConfig": {"defaults": {"displayName": display_name}}} if display_name else {}
    return G.TimeSeries(
        title=title,
        description=description,
        targets=list(targets),
        unit=unit,
        drawStyle="bars" if bars else "line",
        fillOpacity=80 if bars else 10,
        lineInterpolation="smooth",
        showPoints="never",
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none", "group": "A"},
        tooltipMode="multi",
        tooltipSort="desc",
        legendDisplayMode="list",
        legendPlacement="bottom",
        overrides=overrides or [],
        thresholds=thresholds or GREEN,
        transformations=transformations or [],
        extraJson=extra,
    )


def table(
    title: str,
    description: str,
    targets: Sequence[object],
    *,
    overrides: list[dict[str, object]] | None = None,
    transformations: list[dict[str, object]] | None = None,
    mappings: list[dict[str, object]] | None = None,
    sort_by: str | None = None,
    descending: bool = True,
    thresholds: list[dict[str, object]] | None = None,
    unit: str = "none",
) -> G.Table:
    """A table (mappings are moved into fieldConfig by the finaliser: grafanalib 0.7.1 bug)."""
    return G.Table(
        title=title,
        description=description,
        targets=list(targets),
        overrides=overrides or [],
        transformations=transformations or [],
        mappings=mappings or [],
        sortBy=[G.TableSortByField(displayName=sort_by, desc=descending)] if sort_by else [],
        thresholds=thresholds or GREEN,
        unit=unit,
    )


def state_timeline(
    title: str,
    description: str,
    targets: Sequence[object],
    *,
    mappings: list[dict[str, object]],
    thresholds: list[dict[str, object]],
) -> G.StateTimeline:
    """A state timeline coloured by thresholds, one lane per series."""
    return G.StateTimeline(
        title=title,
        description=description,
        targets=list(targets),
        mappings=mappings,
        thresholds=thresholds,
        colorMode="thresholds",
        alignValue="center",
        legendDisplayMode="list",
        legendPlacement="bottom",
    )


@attr.s
class RawPanel:
    """A panel type grafanalib 0.7.1 lacks (e.g. `traces`), kept as a dict.

    Same ``id``/``gridPos`` attributes as grafanalib panels so :func:`layout` can place it.
    """

    data: dict[str, Any] = attr.ib()
    id: int | None = attr.ib(default=None)
    gridPos: G.GridPos | None = attr.ib(default=None)

    def to_json_data(self) -> dict[str, Any]:
        """The dict with id and grid position filled in."""
        out = dict(self.data)
        out["id"] = self.id
        out["gridPos"] = self.gridPos
        return out


def traces(
    title: str, description: str, target: dict[str, object], *, repeat: str | None = None
) -> RawPanel:
    """Grafana's trace view of one trace (repeated per value of ``repeat``)."""
    data: dict[str, Any] = {
        "type": "traces",
        "title": title,
        "description": description,
        "datasource": target["datasource"],
        "targets": [target],
        "options": {},
        "fieldConfig": {"defaults": {}, "overrides": []},
    }
    if repeat:
        data.update({"repeat": repeat, "repeatDirection": "v"})
    return RawPanel(data)


# A cell of the layout: a panel and its width and height in grid units.
Cell = tuple[object, int, int]


def layout(rows: Sequence[Sequence[Cell]]) -> list[object]:
    """Place rows of panels on the 24-column grid; ids 1..n in reading order."""
    placed: list[object] = []
    y = 0
    for row in rows:
        x = 0
        height = 0
        for panel, w, h in row:
            if x + w > 24:
                raise ValueError(f"row overflows 24 columns at {getattr(panel, 'title', panel)}")
            pos = G.GridPos(h=h, w=w, x=x, y=y)
            placed.append(attr.evolve(panel, id=len(placed) + 1, gridPos=pos))
            x += w
            height = max(height, h)
        y += height
    return placed
