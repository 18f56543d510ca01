"""The generated Prometheus rule file: ``promtool check rules``, and ``promtool test rules``
cases in which every rule fires and does not fire, with the labels and the rendered texts
(summary, description, link to the Operations dashboard) an on-call engineer receives."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards.alerting import RULE_FILE, prometheus_rules_doc
from opdiag_dashboards.alerts import alert_rules

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[1]
SETTINGS = Settings()
RULES = {r["alert"]: r for r in prometheus_rules_doc(SETTINGS)["groups"][0]["rules"]}
JOB = 'job="opdiag", instance="opdiag:8080"'


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed: run `bash scripts/ensure-system-deps.sh` "
                    "(Debian package prometheus); `make test` installs it")
    return found


def _render(text: str, labels: dict[str, str], value: str) -> str:
    """The Prometheus templates these rules use, filled in as Prometheus does."""
    out = text
    for name, label_value in labels.items():
        out = out.replace(f"{{{{ $labels.{name} }}}}", label_value)
    for fn in ("humanize", "humanizePercentage", "humanizeDuration"):
        out = out.replace(f"{{{{ $value | {fn} }}}}", value)
    assert "{{" not in out, out
    return out


def _alert(name: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    rule = RULES[name]
    return {
        "exp_labels": {**rule["labels"], **labels},
        "exp_annotations": {k: _render(v, labels, value) for k, v in rule["annotations"].items()},
    }


def _finished(op_type: str, verdict: str, values: str) -> dict[str, str]:
    return {
        "series": f'opdiag_operations_finished_total{{{JOB}, operation_type="{op_type}", '
        f'verdict="{verdict}"}}',
        "values": values,
    }


def _gauge(op_type: str, state: str, values: str) -> dict[str, str]:
    return {
        "series": f'opdiag_operations_in_progress{{{JOB}, operation_type="{op_type}", '
        f'state="{state}"}}',
        "values": values,
    }


# (name, input series, [(eval time, alert name, expected alerts)]); an empty list means the
# rule must not fire at that time.
CASES: list[tuple[str, list[dict[str, str]], list[tuple[str, str, list[dict[str, Any]]]]]] = [
    (
        "a training operation stuck for longer than stuck_for",
        [_gauge("training", "stuck", "0 0 1x20"), _gauge("training", "running", "1x22"),
         _gauge("backtesting", "stuck", "0x22")],
        [
            ("4m", "OperationStuck", []),  # pending, not yet 5m
            ("9m", "OperationStuck", [_alert("OperationStuck", {"operation_type": "training"},
                                             "1")]),
        ],
    ),
    (
        "running operations only",
        [_gauge("training", "running", "3x20"), _gauge("training", "stuck", "0x20")],
        [("15m", "OperationStuck", []), ("15m", "OperationWorkerLost", [])],
    ),
    (
        "a worker lost while its operation runs",
        [_gauge("backtesting", "lost", "0 1x10")],
        [
            ("1m", "OperationWorkerLost", []),
            ("4m", "OperationWorkerLost", [
                _alert("OperationWorkerLost", {"operation_type": "backtesting"}, "1")]),
        ],
    ),
    (
        "an operation that ended with worker_lost",
        [_finished("training", "worker_lost", "0 0 1x30")],
        [("5m", "OperationWorkerLost", [
            _alert("OperationWorkerLost", {"operation_type": "training"}, "1")])],
    ),
    (
        "operations refused for want of (capable) workers",
        [_finished("backtesting", "no_workers", "0 0 1x20"),
         _finished("training", "no_capable_workers", "0 0 0 1x20"),
         _finished("training", "workers_busy", "0 5x20")],
        [
            ("1m", "OperationNoWorkers", []),
            ("5m", "OperationNoWorkers", [
                _alert("OperationNoWorkers",
                       {"operation_type": "backtesting", "verdict": "no_workers"}, "1"),
                _alert("OperationNoWorkers",
                       {"operation_type": "training", "verdict": "no_capable_workers"}, "1"),
            ]),
            # Long after the last refusal (the window is 15m) the alert resolves.
            ("40m", "OperationNoWorkers", []),
        ],
    ),
    (
        "four of five training runs failed",
        [_finished("training", "failed", "0+1x4 4x30"),
         _finished("training", "healthy", "0+0x3 1x31"),
         _finished("backtesting", "failed", "0+1x2 2x30"),  # 2 of 2: too few to page
         _finished("backtesting", "healthy", "0x33")],
        [("10m", "OperationFailureRate", [
            _alert("OperationFailureRate", {"operation_type": "training"}, "80%")])],
    ),
    (
        "a few failures among many healthy runs",
        [_finished("data_load", "service_unreachable", "0 0+1x3 3x30"),
         _finished("data_load", "healthy", "0 0+10x3 30x30")],
        [("10m", "OperationFailureRate", [])],
    ),
    (
        "busy workers refuse operations for longer than busy_for",
        [_finished("training", "workers_busy", "0+1x40"),
         _finished("backtesting", "workers_busy", "0+1x5 5x40")],
        [
            ("10m", "OperationWorkersBusy", []),
            ("20m", "OperationWorkersBusy", [
                _alert("OperationWorkersBusy", {"operation_type": "training"}, "")]),
        ],
    ),
    (
        "slow runs",
        [_finished("training", "slow", "0 0 1 3 3x20"), _finished("backtesting", "slow",
                                                                  "0 0 1x20")],
        [
            ("2m", "OperationsSlow", []),
            ("10m", "OperationsSlow", [
                _alert("OperationsSlow", {"operation_type": "training"}, "3")]),
        ],
    ),
    (
        "the watcher stops finishing passes",
        [{"series": f"opdiag_watcher_last_success_timestamp_seconds{{{JOB}}}",
          "values": "0+60x4 240x20"}],
        [
            ("4m", "OpdiagWatcherStale", []),
            ("11m", "OpdiagWatcherStale", []),  # stale since 10m: pending for 2m
            ("12m", "OpdiagWatcherStale", [
                _alert("OpdiagWatcherStale", {"job": "opdiag"}, "8m 0s")]),
        ],
    ),
    (
        "opdiag stops answering its scrapes",
        [{"series": f"up{{{JOB}}}", "values": "1x5 0x20"}],
        [
            ("4m", "OpdiagDown", []),
            ("9m", "OpdiagDown", []),  # down since 6m: pending for 5m
            ("12m", "OpdiagDown", [
                _alert("OpdiagDown", {"job": "opdiag", "instance": "opdiag:8080"}, "0")]),
        ],
    ),
    (
        "opdiag is not scraped at all",
        [{"series": 'up{job="ktrdr-api", instance="api:8000"}', "values": "1x20"}],
        [("6m", "OpdiagDown", [_alert("OpdiagDown", {}, "1")])],
    ),
]


def _test_file(tmp: Path) -> Path:
    rules = tmp / "opdiag-alerts.yml"
    rules.write_text((REPO / "provisioning" / RULE_FILE).read_text(encoding="utf-8"))
    tests = []
    for name, series, checks in CASES:
        tests.append({
            "name": name,
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": at, "alertname": alert, "exp_alerts": expected}
                for at, alert, expected in checks
            ],
        })
    path = tmp / "opdiag-alerts.test.yml"
    path.write_text(yaml.safe_dump(
        {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests},
        sort_keys=False))
    return path


def test_the_committed_rule_file_is_the_generated_one_and_promtool_accepts_it():
    committed = REPO / "provisioning" / RULE_FILE
    assert yaml.safe_load(committed.read_text()) == prometheus_rules_doc(SETTINGS)
    result = subprocess.run([_promtool(), "check", "rules", str(committed)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules(SETTINGS))} rules found" in result.stdout


def test_every_rule_fires_and_stays_quiet_where_it_should(tmp_path: Path):
    fired = {alert for _, _, checks in CASES for _, alert, expected in checks if expected}
    quiet = {alert for _, _, checks in CASES for _, alert, expected in checks if not expected}
    assert fired == quiet == set(RULES)
    result = subprocess.run([_promtool(), "test", "rules", str(_test_file(tmp_path))],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_names_the_operation_type_and_links_the_dashboard():
    operations = SETTINGS.dashboards.operations_uid
    for name, rule in RULES.items():
        assert "operation_type" in rule["expr"] or rule["labels"].get("operation_type"), name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["dashboard_url"].startswith(
            f"{SETTINGS.links.grafana_url}/d/{operations}?var-operation_type="), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
