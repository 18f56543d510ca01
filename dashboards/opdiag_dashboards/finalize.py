"""Turn grafanalib 0.7.1 output into clean modern dashboard JSON, in one place.

grafanalib emits obsolete keys (``rows``, ``style``, panel ``span``/``height``...), ``null``s
that Grafana's schema rejects, legacy Prometheus target keys, Table value mappings at the
panel's top level (ignored by Grafana: fixed on grafanalib main, not in 0.7.1) and the legacy
table ``displayMode``. Cleaning here lets the committed files validate against Grafana's
dashboard schema as they are.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib._gen import DashboardEncoder

_DASHBOARD_OBSOLETE = (
    "__inputs",
    "rows",
    "style",
    "hideControls",
    "sharedCrosshair",
    "gnetId",
    "id",
)
_PANEL_OBSOLETE = (
    "editable",
    "error",
    "height",
    "minSpan",
    "span",
    "cacheTimeout",
    "maxDataPoints",
)
_TABLE_OBSOLETE = ("color", "columns", "fontSize")
_PROM_TARGET_OBSOLETE = ("metric", "query", "step", "target", "intervalFactor", "interval")
_TEMPLATE_OBSOLETE = ("useTags", "tagsQuery", "tagValuesQuery")
_INTERVAL_ONLY = ("auto", "auto_count", "auto_min")


def _drop_nulls(node: Any) -> Any:
    """Remove None values, except a threshold step's base ``value`` (null means -inf)."""
    if isinstance(node, dict):
        is_step = "color" in node and "value" in node and len(node) == 2
        return {
            k: _drop_nulls(v)
            for k, v in node.items()
            if v is not None or (is_step and k == "value")
        }
    if isinstance(node, list):
        return [_drop_nulls(v) for v in node]
    return node


def _clean_target(target: dict[str, Any]) -> dict[str, Any]:
    if "expr" in target:  # Prometheus: drop grafanalib's legacy keys
        for key in _PROM_TARGET_OBSOLETE:
            target.pop(key, None)
        if target.get("hide") is False:
            del target["hide"]
    return target


def _clean_panel(panel: dict[str, Any]) -> dict[str, Any]:
    for key in _PANEL_OBSOLETE:
        panel.pop(key, None)
    if panel.get("hideTimeOverride") is False:
        del panel["hideTimeOverride"]
    if panel.get("type") == "table":
        for key in _TABLE_OBSOLETE:
            panel.pop(key, None)
        defaults = panel["fieldConfig"]["defaults"]
        defaults["mappings"] = panel.pop("mappings", [])
        custom = defaults.setdefault("custom", {})
        custom.pop("displayMode", None)  # legacy; Grafana's default cell type is "auto"
        custom.setdefault("inspect", False)
        panel["options"].setdefault("frameIndex", 0)
        panel["options"].setdefault("cellHeight", "sm")
    panel["targets"] = [_clean_target(t) for t in panel.get("targets", [])]
    return panel


def _clean_variable(var: dict[str, Any]) -> dict[str, Any]:
    for key in _TEMPLATE_OBSOLETE:
        var.pop(key, None)
    if var.get("type") != "interval":
        for key in _INTERVAL_ONLY:
            var.pop(key, None)
    current = var.get("current") or {}
    current.pop("tags", None)
    if current.get("value") == "$__all":
        current.update({"selected": True, "text": "All", "value": "$__all"})
    elif current.get("value") is None:
        current.update({"selected": False, "text": "", "value": ""})
    var["current"] = current
    if var.get("type") == "query" and isinstance(var.get("query"), str):
        var["definition"] = var["query"]
    return var


def clean_dashboard(raw: dict[str, Any]) -> dict[str, Any]:
    """A cleaned deep copy of a dashboard's JSON model."""
    dash: dict[str, Any] = json.loads(json.dumps(raw, cls=DashboardEncoder))
    for key in _DASHBOARD_OBSOLETE:
        dash.pop(key, None)
    dash.get("timepicker", {}).pop("time_options", None)
    dash = _drop_nulls(dash)
    dash["panels"] = [_clean_panel(p) for p in dash.get("panels", [])]
    dash["templating"]["list"] = [_clean_variable(v) for v in dash["templating"]["list"]]
    return dash


def dumps(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
