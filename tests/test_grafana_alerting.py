"""The generated Grafana alerting provisioning, checked against Grafana's file-provisioning
format (docs: "Create and manage alerting resources using file provisioning"; the fields
Grafana's ``AlertRuleGroupV1``/``AlertRuleV1``/``QueryV1`` read): apiVersion 1; rule groups
with orgId, name, folder, interval and rules (uid, title, condition, data, for, annotations,
labels); contact points with receivers; a notification policy. Every reference resolves: the
condition to a query, datasource uids to provisioned datasources, the dashboard and panel to
generated ones, the policy's receiver to the contact point."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from opdiag.settings import Settings
from opdiag_dashboards.alerting import (
    CONTACT_POINTS_FILE,
    GRAFANA_RULES_FILE,
    POLICIES_FILE,
    RULE_FILE,
)
from opdiag_dashboards.alerts import alert_rules
from opdiag_dashboards.provisioning import DATASOURCES_FILE, render_files

REPO = Path(__file__).resolve().parents[1]
PROVISIONING = REPO / "provisioning"
SETTINGS = Settings()
# Prometheus' duration syntax (model.ParseDuration), which Grafana uses for for/interval.
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
NO_DATA_STATES = {"NoData", "Alerting", "OK", "KeepLast"}
EXEC_ERR_STATES = {"Error", "Alerting", "OK", "KeepLast"}
UID = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")


def _doc(rel: str) -> dict[str, Any]:
    text = (PROVISIONING / rel).read_text(encoding="utf-8")
    assert text == render_files(SETTINGS)[rel], f"{rel} is not what the code generates"
    return yaml.safe_load(text)


def _expanded_by_grafana(value: str) -> bool:
    """Grafana expands $VAR/${VAR} in provisioning values (labels, settings...)."""
    return bool(re.search(r"\$(?!\$)", value.replace("$$", "")))


def test_rule_groups_have_grafanas_shape():
    doc = _doc(GRAFANA_RULES_FILE)
    assert doc["apiVersion"] == 1
    datasource_uids = {d["uid"] for d in _doc(DATASOURCES_FILE)["datasources"]}
    dashboards = {
        p.stem: yaml.safe_load(p.read_text()) for p in (PROVISIONING / "dashboards/json").glob(
            "*.json")
    }
    (group,) = doc["groups"]
    assert group["orgId"] == 1 and group["name"].strip()
    assert group["folder"] == SETTINGS.dashboards.folder == "KTRDR"
    assert DURATION.match(group["interval"])
    uids = [r["uid"] for r in group["rules"]]
    assert len(set(uids)) == len(uids) == len(alert_rules(SETTINGS))
    for rule in group["rules"]:
        title = rule["title"]
        assert UID.match(rule["uid"]), title
        assert {"uid", "title", "condition", "data", "for", "annotations", "labels"} <= set(rule)
        refs = [q["refId"] for q in rule["data"]]
        assert rule["condition"] in refs and len(set(refs)) == len(refs), title
        for query in rule["data"]:
            assert query["datasourceUid"] in datasource_uids | {"__expr__"}, title
            assert query["model"]["refId"] == query["refId"], title
            relative = query["relativeTimeRange"]
            assert relative["from"] >= relative["to"] >= 0, title
        prometheus = [q for q in rule["data"] if q["datasourceUid"] != "__expr__"]
        assert len(prometheus) == 1 and prometheus[0]["model"]["instant"] is True, title
        condition = next(q for q in rule["data"] if q["refId"] == rule["condition"])
        assert condition["model"]["type"] == "threshold"
        assert condition["model"]["expression"] == prometheus[0]["refId"]
        assert DURATION.match(rule["for"]), title
        assert rule["noDataState"] in NO_DATA_STATES and rule["execErrState"] in EXEC_ERR_STATES
        dashboard = dashboards[rule["dashboardUid"]]
        assert rule["panelId"] in {p["id"] for p in dashboard["panels"]}, title
        assert rule["labels"]["severity"] in ("critical", "warning")
        for value in [*rule["labels"].values(), rule["uid"], rule["title"], group["folder"]]:
            assert not _expanded_by_grafana(value), (title, value)
        for key in ("summary", "description", "dashboard_url"):
            text = rule["annotations"][key]
            assert text.count("{{") == text.count("}}"), (title, key)
            assert "${" not in text, (title, key)  # newer Grafanas expand ${VAR} there


def test_grafana_and_prometheus_evaluate_the_same_expressions():
    prometheus = {r["alert"]: r for r in yaml.safe_load(
        (PROVISIONING / RULE_FILE).read_text())["groups"][0]["rules"]}
    (group,) = _doc(GRAFANA_RULES_FILE)["groups"]
    for rule in group["rules"]:
        twin = prometheus[rule["title"]]
        query = next(q for q in rule["data"] if q["datasourceUid"] != "__expr__")
        assert query["model"]["expr"] == twin["expr"]
        assert rule["for"] == twin["for"] and rule["labels"] == twin["labels"]
        assert "$values.A.Value" in rule["annotations"]["summary"] or (
            "$value" not in twin["annotations"]["summary"])


def test_the_contact_point_and_the_policy():
    points = _doc(CONTACT_POINTS_FILE)
    assert points["apiVersion"] == 1
    (point,) = points["contactPoints"]
    assert point["orgId"] == 1 and point["name"] == SETTINGS.dashboards.alerts.contact_point
    (receiver,) = point["receivers"]
    assert UID.match(receiver["uid"]) and receiver["type"] == "email"
    assert receiver["settings"]["addresses"] == SETTINGS.dashboards.alerts.contact_email
    assert not _expanded_by_grafana(receiver["settings"]["addresses"])
    text = (PROVISIONING / CONTACT_POINTS_FILE).read_text()
    assert "Fill in the address" in text  # left for the user, and says so
    policies = _doc(POLICIES_FILE)
    assert policies["apiVersion"] == 1
    (policy,) = policies["policies"]
    assert policy["orgId"] == 1 and policy["receiver"] == point["name"]
    assert "operation_type" in policy["group_by"] and "alertname" in policy["group_by"]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        assert DURATION.match(policy[key]), key


def test_alert_settings_change_the_generated_rules():
    custom = Settings.model_validate({"dashboards": {"alerts": {
        "stuck_for": "1m", "opdiag_job_regex": "opdiag.*", "contact_point": "team-ktrdr"}}})
    files = render_files(custom)
    rules = yaml.safe_load(files[GRAFANA_RULES_FILE])["groups"][0]["rules"]
    stuck = next(r for r in rules if r["title"] == "OperationStuck")
    assert stuck["for"] == "1m" and 'job=~"opdiag.*"' in stuck["data"][0]["model"]["expr"]
    assert yaml.safe_load(files[POLICIES_FILE])["policies"][0]["receiver"] == "team-ktrdr"
