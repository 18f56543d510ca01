"""Every PromQL expression of the generated dashboards parses with promtool (variables
substituted with realistic values) and names only metrics KTRDR emits."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards import lint
from opdiag_dashboards.metrics import SERIES
from opdiag_dashboards.promql_scan import metric_names
from opdiag_dashboards.render import render_dashboards

# Realistic values Grafana would put in place of each variable.
SUBSTITUTIONS = {
    "$__rate_interval": "1m",
    "$__range": "6h",
    "$__interval": "30s",
    "$__interval_ms": "30000",
    "$environment": ".*",
    "$job": "ktrdr-backend|ktrdr-workers",
    "$instance": "backend:8000|backtest-worker-1:5003",
    "$worker_job": "ktrdr-workers",
    "$worker_instance": "backtest-worker-1:5003|training-worker-2:5006",
    "$worker_type": "backtesting|training",
    "$operation_type": "backtesting",
}


def substitute(expr: str) -> str:
    for var in sorted(SUBSTITUTIONS, key=len, reverse=True):
        expr = expr.replace(var, SUBSTITUTIONS[var])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def all_expressions() -> list[tuple[str, str]]:
    out = []
    for name, dash in render_dashboards(Settings()).items():
        out += [(f"{name}: {where}", expr) for where, expr in lint.prom_exprs(dash)]
    return out


def test_there_are_expressions_for_every_prometheus_dashboard():
    where = {w.split(":")[0] for w, _ in all_expressions()}
    assert {
        "ktrdr-system-overview.json",
        "ktrdr-worker-status.json",
        "ktrdr-operations.json",
    } <= where


def test_every_metric_is_one_ktrdr_emits():
    for where, expr in all_expressions():
        unknown = metric_names(expr) - set(SERIES)
        assert not unknown, (where, unknown)


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "promtool is not installed: run `bash scripts/ensure-system-deps.sh` "
            "(Debian package prometheus); `make test` installs it"
        )
    return path


@pytest.mark.prometheus
def test_every_expression_parses_with_promtool(tmp_path: Path):
    promtool = _promtool()
    exprs = all_expressions()
    rules = [
        {"record": f"opdiag:dashboard_check:{i}", "expr": substitute(expr)}
        for i, (_, expr) in enumerate(exprs)
    ]
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


@pytest.mark.prometheus
def test_promtool_rejects_a_broken_expression(tmp_path: Path):
    """The check above would notice a bad expression (guards against a vacuous pass)."""
    promtool = _promtool()
    path = tmp_path / "bad.rules.yaml"
    bad = substitute('sum(rate(up{job=~"$job"}[$__rate_interval])')
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": bad}]}]})
    )
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert re.search(r"parse error|unclosed|unexpected", result.stdout + result.stderr)
