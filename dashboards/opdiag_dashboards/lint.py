"""A dashboard lint in the spirit of grafana/dashboard-linter, ported to Python.

Each rule is a function ``(dashboard, context) -> list[str]`` returning problems as
"<dashboard uid>: <panel>: <message>". Deliberate differences from dashboard-linter, with
reasons (like a mixin's `.lint` file):
- template-datasource / panel-datasource rules: not applied. Datasources are referenced by
  fixed, provisioned uids (SPEC), which is what those rules try to achieve with a variable.
- target-job / target-instance rules: generalised to "every job/instance/environment matcher
  is a template variable or a value from settings" (``settings_matchers``).
- target-counter-agg: a `_total` name that is a *gauge* in KTRDR's metric table
  (``ktrdr_workers_registered_total``) is read as a gauge and must NOT be in rate/increase.
  One allowance: the exact form of ``queries.promql.increase_in_range`` may read a counter
  outside increase() (``S offset $__range`` and ``last_over_time(S[$__range])``), because
  KTRDR's counters are born at their first increment and increase() alone misses it; the
  form is folded to ``increase(S[$__range])`` before the check (``promql_scan``).
  Likewise ``queries.promql.increase_in_interval``'s exact form (``S - last_over_time(
  S[$__range] offset $__interval)``, ``>= 0``, ``or S``), the per-graph-step count: rate()
  misses the same first increment, and increase() over a ``$__interval`` window holds one
  sample per step (no result) and loses the increments between steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opdiag_dashboards import promql_scan as scan
from opdiag_dashboards.metrics import SERIES

REACT_PANELS = frozenset(
    {
        "timeseries",
        "stat",
        "table",
        "state-timeline",
        "status-history",
        "traces",
        "text",
        "row",
        "bargauge",
        "gauge",
        "piechart",
        "barchart",
        "histogram",
        "heatmap",
        "logs",
        "nodeGraph",
    }
)
UNIT_PANELS = frozenset({"timeseries", "stat", "gauge", "bargauge"})
COUNTER_FUNCTIONS = ("rate", "irate", "increase")
# Label matchers with a literal value that are facts of HTTP/KTRDR semantics, not deployment.
SEMANTIC_MATCHERS = frozenset(
    {
        ("http_status_code", "=~", "5.."),
        ("http_status_code", "=~", "[45].."),
        ("status", "=", "completed"),
        ("status", "=", "failed"),
    }
)
_VAR_ONLY = re.compile(r"^\$(\w+|\{\w+(:\w+)?\})$")


@dataclass
class LintContext:
    """What the rules compare against."""

    datasources: dict[str, str]  # provisioned uid -> type
    units: set[str]
    settings_values: set[str]  # regexes/values settings allow in matchers
    dashboard_uids: set[str] = field(default_factory=set)


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dash.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def prom_exprs(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) of every PromQL expression: targets and label_values() variables."""
    for panel in panels(dash):
        for target in panel.get("targets", []):
            if "expr" in target:
                yield panel.get("title", "?"), target["expr"]
    for var in dash["templating"]["list"]:
        if var.get("datasource", {}).get("type") == "prometheus" and isinstance(var["query"], str):
            match = re.match(r"^label_values\((.*),\s*\w+\)$", var["query"])
            yield f"variable {var['name']}", match.group(1) if match else var["query"]


def _datasource_refs(node: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield where, value
            elif key == "datasourceUid":
                yield where, {"uid": value, "type": None}
            else:
                yield from _datasource_refs(value, where or str(node.get("title", "")))
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item, where)


def rule_datasources(dash: dict[str, Any], ctx: LintContext) -> list[str]:
    """Datasources are uid dicts, provisioned, with the provisioned type; never names."""
    problems = []
    for where, ref in _datasource_refs(dash):
        if not isinstance(ref, dict) or "uid" not in ref:
            problems.append(f"{where}: datasource {ref!r} is not a {{type, uid}} reference")
            continue
        if ref["uid"] == "-- Grafana --":
            continue
        if ref["uid"] not in ctx.datasources:
            problems.append(f"{where}: datasource uid {ref['uid']!r} is not provisioned")
        elif ref.get("type") not in (None, ctx.datasources[ref["uid"]]):
            problems.append(
                f"{where}: datasource {ref['uid']!r} has type {ref.get('type')!r}, "
                f"provisioned as {ctx.datasources[ref['uid']]!r}"
            )
    return problems


def rule_panels(dash: dict[str, Any], ctx: LintContext) -> list[str]:
    """React panels, title + description, units from Grafana's list, unique titles/ids."""
    problems = []
    titles: set[str] = set()
    ids: set[int] = set()
    for panel in panels(dash):
        title = panel.get("title", "")
        if panel["type"] not in REACT_PANELS:
            problems.append(f"{title}: panel type {panel['type']!r} is not a React-era panel")
        if panel["type"] == "row":
            continue
        if not title or not panel.get("description"):
            problems.append(f"{title or panel.get('id')}: panel needs a title and a description")
        if title in titles:
            problems.append(f"{title}: duplicate panel title")
        titles.add(title)
        if panel.get("id") in ids or not isinstance(panel.get("id"), int):
            problems.append(f"{title}: panel id {panel.get('id')!r} missing or not unique")
        ids.add(panel.get("id"))
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        units = [defaults.get("unit")] + [
            p["value"]
            for o in panel.get("fieldConfig", {}).get("overrides", [])
            for p in o["properties"]
            if p["id"] == "unit"
        ]
        if panel["type"] in UNIT_PANELS and not defaults.get("unit"):
            problems.append(f"{title}: no unit set")
        problems += [f"{title}: unknown unit {u!r}" for u in units if u and u not in ctx.units]
        if panel["type"] not in ("text", "row") and not panel.get("targets"):
            problems.append(f"{title}: panel has no targets")
        ref_ids = [t.get("refId") for t in panel.get("targets", [])]
        if len(ref_ids) != len(set(ref_ids)) or None in ref_ids:
            problems.append(f"{title}: refIds missing or not unique: {ref_ids}")
    return problems


def rule_layout(dash: dict[str, Any], ctx: LintContext) -> list[str]:
    """gridPos inside 24 columns, and no two panels overlap."""
    problems = []
    cells: dict[tuple[int, int], str] = {}
    for panel in dash.get("panels", []):
        pos = panel.get("gridPos") or {}
        title = panel.get("title", "?")
        if not pos or pos["x"] < 0 or pos["w"] < 1 or pos["x"] + pos["w"] > 24:
            problems.append(f"{title}: gridPos {pos} outside the 24-column grid")
            continue
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                if (x, y) in cells:
                    problems.append(f"{title}: overlaps {cells[(x, y)]} at x={x} y={y}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
    return problems


def rule_variables(dash: dict[str, Any], ctx: LintContext) -> list[str]:
    """Query variables refresh on time change (2) and every variable is used."""
    problems = []
    variables = dash["templating"]["list"]
    for var in variables:
        name = var["name"]
        if var["type"] == "query" and var.get("refresh") != 2:
            problems.append(f"variable {name}: query variables must have refresh=2")
        rest = {
            "panels": dash.get("panels", []),
            "links": dash.get("links", []),
            "other": [v for v in variables if v is not var],
        }
        used = re.compile(rf"\$(?:{name}\b|\{{{name}[}}:])|var-{name}=")
        if not used.search(str(rest)):
            problems.append(f"variable {name}: defined but never used")
    return problems


def rule_promql(dash: dict[str, Any], ctx: LintContext) -> list[str]:
    """$__rate_interval in rate/irate, counters only in rate/irate/increase, known metrics,
    and job/instance/environment matchers only from variables or settings."""
    problems = []
    for where, expr in prom_exprs(dash):
        for function in ("rate", "irate"):
            for arg in scan.calls(expr, function):
                bad = [r for r in scan.ranges(arg) if r != "$__rate_interval"]
                if bad:
                    problems.append(f"{where}: {function}() over {bad}, use $__rate_interval")
        for arg in scan.calls(expr, "increase"):
            bad = [r for r in scan.ranges(arg) if r not in ("$__rate_interval", "$__range")]
            if bad:
                problems.append(f"{where}: increase() over {bad}: use $__range/$__rate_interval")
        for name in scan.metric_names(expr):
            if name not in SERIES:
                problems.append(f"{where}: metric {name!r} is not emitted by KTRDR")
        folded = scan.fold_increase_in_range(expr)
        for name in scan.selector_names_outside(folded, COUNTER_FUNCTIONS):
            metric = SERIES.get(name)
            if metric and metric.type == "counter":
                problems.append(f"{where}: counter {name} outside rate/irate/increase")
        for function in COUNTER_FUNCTIONS:
            for arg in scan.calls(expr, function):
                for name in scan.metric_names(arg):
                    metric = SERIES.get(name)
                    if metric and metric.type == "gauge":
                        problems.append(f"{where}: gauge {name} inside {function}()")
        for label, op, value in scan.matchers(expr):
            if _VAR_ONLY.match(value) or value in ctx.settings_values:
                continue
            if (label, op, value) not in SEMANTIC_MATCHERS:
                problems.append(f"{where}: hard-coded matcher {label}{op}{value!r}")
    return problems


RULES: tuple[Callable[[dict[str, Any], LintContext], list[str]], ...] = (
    rule_datasources,
    rule_panels,
    rule_layout,
    rule_variables,
    rule_promql,
)


def lint(dash: dict[str, Any], ctx: LintContext) -> list[str]:
    """Every problem of one dashboard, prefixed with its uid."""
    return [f"{dash.get('uid')}: {p}" for rule in RULES for p in rule(dash, ctx)]
