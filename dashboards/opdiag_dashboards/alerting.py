"""The alert rules of ``alerts.py`` as files: a Prometheus rule file (for Prometheus +
Alertmanager users) and Grafana alerting provisioning (rule group, contact point,
notification policy) for Grafana users. Use one of the two, not both, or every alert pages
twice.

Grafana's alerting provisioning expands environment variables in most values (``$VAR``; a
literal ``$`` is ``$$``) but not in annotations, which keep alert templates such as
``{{ $labels.operation_type }}`` as they are; no value here needs either.
"""

from __future__ import annotations

from typing import Any

import yaml
from opdiag.settings import Settings

from opdiag_dashboards import datasources as ds
from opdiag_dashboards.alerts import TYPE_LABEL, AlertRule, alert_rules, dashboard_link, seconds

RULE_FILE = "prometheus/opdiag-alerts.yml"
GRAFANA_RULES_FILE = "alerting/opdiag-rules.yaml"
CONTACT_POINTS_FILE = "alerting/opdiag-contact-points.yaml"
POLICIES_FILE = "alerting/opdiag-policies.yaml"
GROUP = "opdiag-verdicts"
SOURCE_LABEL = ("source", "opdiag")
RECENT_OPERATIONS = "Recent Operations"
_QUERY, _CONDITION = "A", "C"
_EXPRESSIONS = "__expr__"

# How each system writes the texts' placeholders (Go templates of Prometheus and Grafana).
PROMETHEUS_TOKENS = {
    "type": "{{ $labels.operation_type }}",
    "verdict": "{{ $labels.verdict }}",
    "value": "{{ $value | humanize }}",
    "value_pct": "{{ $value | humanizePercentage }}",
    "value_duration": "{{ $value | humanizeDuration }}",
}
GRAFANA_TOKENS = {
    "type": "{{ $labels.operation_type }}",
    "verdict": "{{ $labels.verdict }}",
    "value": f"{{{{ humanize $values.{_QUERY}.Value }}}}",
    "value_pct": f"{{{{ humanizePercentage $values.{_QUERY}.Value }}}}",
    "value_duration": f"{{{{ humanizeDuration $values.{_QUERY}.Value }}}}",
}


def _labels(rule: AlertRule) -> dict[str, str]:
    return {"severity": rule.severity, SOURCE_LABEL[0]: SOURCE_LABEL[1], **dict(rule.static_labels)}


def _annotations(settings: Settings, rule: AlertRule, tokens: dict[str, str]) -> dict[str, str]:
    """summary, description and dashboard_url, with this system's placeholders."""
    static = dict(rule.static_labels)
    op_type = "$__all" if TYPE_LABEL in static else tokens["type"]
    verdict = rule.link_verdict.format(**tokens) if rule.link_verdict != "All" else "$__all"
    return {
        "summary": rule.summary.format(**tokens),
        "description": rule.description.format(**tokens),
        "dashboard_url": dashboard_link(settings, op_type, verdict),
    }


def prometheus_rules_doc(settings: Settings) -> dict[str, Any]:
    """The Prometheus rule file (``rule_files:``)."""
    return {
        "groups": [
            {
                "name": GROUP,
                "rules": [
                    {
                        "alert": rule.name,
                        "expr": rule.expr,
                        "for": rule.for_,
                        "labels": _labels(rule),
                        "annotations": _annotations(settings, rule, PROMETHEUS_TOKENS),
                    }
                    for rule in alert_rules(settings)
                ],
            }
        ]
    }


def panel_id(dashboard: dict[str, Any], title: str) -> int:
    """The id of the panel called ``title`` (alert rules point at it)."""
    for panel in dashboard.get("panels", []):
        if panel.get("title") == title:
            return int(panel["id"])
    raise ValueError(f"dashboard {dashboard.get('uid')} has no panel {title!r}")


def _grafana_rule(
    settings: Settings, rule: AlertRule, operations: dict[str, Any]
) -> dict[str, Any]:
    prometheus = settings.dashboards.prometheus.uid
    # Instant queries: the range only bounds what the datasource may be asked for; the
    # rules' own windows are inside the expressions.
    lookback = max(600, *(seconds(w) for w in _windows(settings)))
    return {
        "uid": rule.uid,
        "title": rule.name,
        "condition": _CONDITION,
        "data": [
            {
                "refId": _QUERY,
                "relativeTimeRange": {"from": lookback, "to": 0},
                "datasourceUid": prometheus,
                "model": {
                    "refId": _QUERY,
                    "datasource": {"type": ds.PROMETHEUS_TYPE, "uid": prometheus},
                    "expr": rule.expr,
                    "instant": True,
                    "range": False,
                    "intervalMs": 1000,
                    "maxDataPoints": 43200,
                },
            },
            {
                "refId": _CONDITION,
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": _EXPRESSIONS,
                "model": {
                    "refId": _CONDITION,
                    "datasource": {"type": _EXPRESSIONS, "uid": _EXPRESSIONS},
                    "type": "threshold",
                    "expression": _QUERY,
                    "conditions": [{"type": "query", "evaluator": {"type": "gt", "params": [0]}}],
                },
            },
        ],
        # The expressions keep only what fires: no series is the normal, healthy state.
        "noDataState": "OK",
        "execErrState": "Error",
        "for": rule.for_,
        "dashboardUid": settings.dashboards.operations_uid,
        "panelId": panel_id(operations, RECENT_OPERATIONS),
        "annotations": _annotations(settings, rule, GRAFANA_TOKENS),
        "labels": _labels(rule),
        "isPaused": False,
    }


def _windows(settings: Settings) -> list[str]:
    a = settings.dashboards.alerts
    return [a.refused_window, a.failure_window, a.busy_window, a.slow_window]


def grafana_rules_doc(settings: Settings, operations: dict[str, Any]) -> dict[str, Any]:
    """The rule group, in the dashboards' folder (``operations``: the Operations dashboard's
    JSON, whose Recent Operations panel the rules link to)."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": settings.dashboards.folder,
                "interval": settings.dashboards.alerts.evaluation_interval,
                "rules": [_grafana_rule(settings, r, operations) for r in alert_rules(settings)],
            }
        ],
    }


def contact_points_doc(settings: Settings) -> dict[str, Any]:
    """The contact point the rules notify (an e-mail address to fill in)."""
    a = settings.dashboards.alerts
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": a.contact_point,
                "receivers": [
                    {
                        "uid": f"{a.contact_point}-email",
                        "type": "email",
                        "settings": {"addresses": a.contact_email, "singleEmail": True},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
    }


def policies_doc(settings: Settings) -> dict[str, Any]:
    """The notification policy tree: every alert of the organisation to the contact point,
    grouped per rule and operation type. (Provisioning a tree replaces the organisation's
    own: delete this file to keep yours and route ``source=opdiag`` there instead.)"""
    return {
        "apiVersion": 1,
        "policies": [
            {
                "orgId": 1,
                "receiver": settings.dashboards.alerts.contact_point,
                "group_by": ["grafana_folder", "alertname", TYPE_LABEL],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ],
    }


CONTACT_POINT_NOTE = (
    "# Fill in the address (dashboards.alerts.contact_email) or change the receiver's type:\n"
    "# Grafana sends every opdiag alert here (see opdiag-policies.yaml).\n"
)


def alert_files(
    settings: Settings, operations: dict[str, Any], header: str
) -> dict[str, str]:
    """Relative path -> text of every alerting file."""

    def dump(doc: dict[str, Any]) -> str:
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)

    return {
        RULE_FILE: header + dump(prometheus_rules_doc(settings)),
        GRAFANA_RULES_FILE: header + dump(grafana_rules_doc(settings, operations)),
        CONTACT_POINTS_FILE: header + CONTACT_POINT_NOTE + dump(contact_points_doc(settings)),
        POLICIES_FILE: header + dump(policies_doc(settings)),
    }
