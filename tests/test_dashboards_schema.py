"""Every generated dashboard, exactly as committed, validates against Grafana's JSON schema
(foundation-sdk, Draft 7), its panel options against the panel schemas, its units against
Grafana's unit list.

Relaxations of the schema, each one a documented false positive (reference README.txt and
research/grafana.md §5) - nothing else is relaxed:
1. MatcherConfig.options: typed object, but byName takes the field name as a string.
2. DynamicConfigValue.value: typed object, but override values are strings, numbers, arrays.
3. FieldConfig.links and Panel.links: typed DashboardLink, but they hold data links
   {title, url, targetBlank?, internal?{datasourceUid, datasourceName?, query}}.
4. Panel Options / FieldConfig.custom: "required" is stripped (Grafana fills defaults).
5. VariableModel.query: typed "string or object of objects", but a datasource's variable
   query object holds scalars too (Infinity stores {queryType: "infinity", query: "",
   refId, infinityQuery: {...}}); same class of defect as 1 and 2, so it is relaxed to
   "string or object".
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from opdiag.settings import Settings
from opdiag_dashboards.finalize import dumps
from opdiag_dashboards.render import render_dashboards

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "tests/data/reference/grafana/foundation-sdk-jsonschema"
COMMITTED = REPO / "provisioning/dashboards/json"
PANEL_SCHEMAS = {
    "table": "table",
    "timeseries": "timeseries",
    "stat": "stat",
    "state-timeline": "statetimeline",
    "text": "text",
    "bargauge": "bargauge",
    "gauge": "gauge",
    "piechart": "piechart",
}
DATA_LINK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "url"],
    "properties": {
        "title": {"type": "string"},
        "url": {"type": "string"},
        "targetBlank": {"type": "boolean"},
        "internal": {
            "type": "object",
            "additionalProperties": False,
            "required": ["datasourceUid", "query"],
            "properties": {
                "datasourceUid": {"type": "string"},
                "datasourceName": {"type": "string"},
                "query": {"type": "object"},
            },
        },
    },
}


def _load(name: str) -> dict[str, Any]:
    path = SCHEMAS / f"{name}.jsonschema.json"
    if not path.is_file():
        pytest.fail(f"Grafana schema {path} missing")
    return json.loads(path.read_text(encoding="utf-8"))


def _strip_required(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_strip_required(v) for v in node]
    return node


def relaxed_dashboard_schema(skip: int | None = None) -> dict[str, Any]:
    """The dashboard schema with relaxations 1, 2, 3 and 5 (all but ``skip``)."""
    schema = copy.deepcopy(_load("dashboard"))
    d = schema["definitions"]
    if skip != 1:
        d["MatcherConfig"]["properties"]["options"] = {}
    if skip != 2:
        d["DynamicConfigValue"]["properties"]["value"] = {}
    if skip != 3:
        d["DataLink"] = DATA_LINK
        links = {"type": "array", "items": {"$ref": "#/definitions/DataLink"}}
        d["FieldConfig"]["properties"]["links"] = links
        d["Panel"]["properties"]["links"] = links
    if skip != 5:
        d["VariableModel"]["properties"]["query"] = {
            "oneOf": [{"type": "string"}, {"type": "object"}]
        }
    return schema


def committed() -> dict[str, dict[str, Any]]:
    files = sorted(COMMITTED.glob("*.json"))
    assert files, f"no committed dashboards in {COMMITTED}"
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in files}


def _errors(validator: Draft7Validator, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}"
        for e in validator.iter_errors(instance)
    ]


@pytest.fixture(scope="module")
def dashboards() -> dict[str, dict[str, Any]]:
    return committed()


def test_committed_dashboards_validate_against_grafana_schema(dashboards):
    validator = Draft7Validator(relaxed_dashboard_schema())
    for name, dash in dashboards.items():
        assert _errors(validator, dash) == [], name


def test_simpod_variant_validates_too():
    validator = Draft7Validator(relaxed_dashboard_schema())
    for name, dash in render_dashboards(Settings(), "simpod").items():
        assert _errors(validator, dash) == [], name


@pytest.mark.parametrize("relaxation", [1, 2, 3, 5])
def test_every_relaxation_is_needed(relaxation):
    """Without any one relaxation the committed files fail: none of them is gratuitous."""
    validator = Draft7Validator(relaxed_dashboard_schema(skip=relaxation))
    assert any(_errors(validator, dash) for dash in committed().values())


def test_schema_version_is_modern(dashboards):
    for dash in dashboards.values():
        assert dash["schemaVersion"] in (41, 42)


def test_panel_options_and_custom_field_config_match_panel_schemas(dashboards):
    checked = 0
    for name, dash in dashboards.items():
        for panel in dash["panels"]:
            schema_name = PANEL_SCHEMAS.get(panel["type"])
            if schema_name is None:
                continue
            schema = _strip_required(_load(schema_name))  # relaxation 4
            defs = schema["definitions"]
            options = Draft7Validator({"definitions": defs, "$ref": "#/definitions/Options"})
            assert _errors(options, panel.get("options", {})) == [], (name, panel["title"])
            if "FieldConfig" in defs:
                custom = Draft7Validator({"definitions": defs, "$ref": "#/definitions/FieldConfig"})
                value = panel["fieldConfig"]["defaults"].get("custom", {})
                assert _errors(custom, value) == [], (name, panel["title"])
            checked += 1
    assert checked >= 30


def grafana_units() -> set[str]:
    return {
        d["const"]
        for d in _load("units")["definitions"].values()
        if isinstance(d, dict) and "const" in d
    }


def test_units_are_grafana_units(dashboards):
    units = grafana_units()
    for name, dash in dashboards.items():
        for panel in dash["panels"]:
            cfg = panel.get("fieldConfig", {})
            used = [cfg.get("defaults", {}).get("unit")] + [
                p["value"]
                for o in cfg.get("overrides", [])
                for p in o["properties"]
                if p["id"] == "unit"
            ]
            for unit in filter(None, used):
                assert unit in units, (name, panel["title"], unit)


def test_committed_files_are_clean_generator_output(dashboards):
    """No grafanalib leftovers: the files validate as committed, without a normaliser."""
    for name, dash in dashboards.items():
        text = dumps(dash)
        for legacy in ('"rows"', '"sharedCrosshair"', '"span"', '"useTags"', '"intervalFactor"'):
            assert legacy not in text, (name, legacy)
        assert "null" not in text.replace('"value": null', ""), name
