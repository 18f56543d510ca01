"""What a dashboard module returns, and the one place that turns it into a grafanalib Dashboard.

uid, tags, refresh, time, timezone, schemaVersion, annotations and the links to the other
dashboards are applied here to every dashboard alike (mixin ``defaults.libsonnet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grafanalib.core as G
from opdiag.settings import Settings

from opdiag_dashboards import links

SCHEMA_VERSION = 41


@dataclass
class Board:
    """A dashboard's own content: identity, panels (laid out) and variables."""

    uid: str
    title: str
    description: str
    panels: list[object]
    variables: list[G.Template]
    tags: list[str] = field(default_factory=list)
    # Annotation queries besides Grafana's built-in one (``annotations.py``).
    annotations: list[dict[str, object]] = field(default_factory=list)


def to_dashboard(board: Board, settings: Settings, others: dict[str, str]) -> G.Dashboard:
    """The grafanalib Dashboard with the house defaults; ``others`` maps title -> uid."""
    d = settings.dashboards
    tags = sorted({*d.tags, *board.tags})
    return G.Dashboard(
        title=board.title,
        uid=board.uid,
        description=board.description,
        tags=tags,
        panels=board.panels,
        templating=G.Templating(list=board.variables),
        links=links.dashboard_links(settings, {t: u for t, u in others.items() if u != board.uid}),
        refresh=d.refresh,
        time=G.Time(d.time_from, "now"),
        timezone=d.timezone,
        editable=False,
        graphTooltip=1,
        schemaVersion=SCHEMA_VERSION,
        version=1,
        annotations=G.Annotations(
            list=[
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *board.annotations,
            ]
        ),
    )
