"""Datasource references by fixed uid (never by name): what every panel and target stores."""

from __future__ import annotations

from opdiag.settings import Settings

PROMETHEUS_TYPE = "prometheus"
JAEGER_TYPE = "jaeger"
INFINITY_TYPE = "yesoreyeram-infinity-datasource"
SIMPOD_TYPE = "simpod-json-datasource"
JSON_DATASOURCE_TYPES = {"infinity": INFINITY_TYPE, "simpod": SIMPOD_TYPE}


def prometheus_ref(settings: Settings) -> dict[str, str]:
    """The provisioned Prometheus datasource."""
    return {"type": PROMETHEUS_TYPE, "uid": settings.dashboards.prometheus.uid}


def jaeger_ref(settings: Settings) -> dict[str, str]:
    """The provisioned Jaeger datasource (same uid the backend uses for Explore links)."""
    return {"type": JAEGER_TYPE, "uid": settings.links.jaeger_datasource_uid}


def opdiag_ref(settings: Settings, json_datasource: str) -> dict[str, str]:
    """The datasource that reads opdiag: Infinity (default) or the simpod JSON plugin."""
    return {"type": JSON_DATASOURCE_TYPES[json_datasource], "uid": settings.dashboards.opdiag.uid}
