"""The dashboard lint (opdiag_dashboards.lint) passes on every generated dashboard, and each
rule catches the bug it exists for (KTRDR's own dashboards are the negative examples)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from opdiag.settings import Settings
from opdiag_dashboards import lint
from opdiag_dashboards.lint import LintContext
from opdiag_dashboards.provisioning import datasources_doc
from opdiag_dashboards.queries.promql import increase_in_interval, increase_in_range
from opdiag_dashboards.render import render_dashboards

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests/data/reference"
UNITS = REFERENCE / "grafana/foundation-sdk-jsonschema/units.jsonschema.json"
KTRDR = REFERENCE / "ktrdr"


def _units() -> set[str]:
    defs = json.loads(UNITS.read_text(encoding="utf-8"))["definitions"]
    return {d["const"] for d in defs.values() if "const" in d}


def context(settings: Settings, json_datasource: str = "infinity") -> LintContext:
    provisioned = datasources_doc(settings, json_datasource)["datasources"]
    d = settings.dashboards
    return LintContext(
        datasources={ds["uid"]: ds["type"] for ds in provisioned},
        units=_units(),
        settings_values={d.service_job_regex, d.worker_job_regex},
    )


@pytest.fixture(scope="module", params=["infinity", "simpod"])
def generated(request) -> tuple[dict[str, dict[str, Any]], LintContext]:
    settings = Settings()
    return render_dashboards(settings, request.param), context(settings, request.param)


def test_generated_dashboards_pass_the_lint(generated):
    dashboards, ctx = generated
    problems = [p for dash in dashboards.values() for p in lint.lint(dash, ctx)]
    assert problems == []


def test_dashboard_uids_and_titles(generated):
    dashboards, _ = generated
    uids = {d["uid"]: d["title"] for d in dashboards.values()}
    assert uids == {
        "ktrdr-system-overview": "KTRDR System Overview",
        "ktrdr-worker-status": "KTRDR Worker Status",
        "ktrdr-operations": "KTRDR Operations Dashboard",
        "opdiag-operation-diagnosis": "Operation Diagnosis",
    }
    assert all(len(uid) <= 40 for uid in uids)


def test_no_matcher_is_hard_coded():
    """Every job/instance/environment matcher comes from a variable or from settings: with
    other settings, the settings' values (and only those) appear in the JSON."""
    custom = Settings.model_validate(
        {"dashboards": {"service_job_regex": "acme-.*", "worker_job_regex": "acme-w.*"}}
    )
    text = json.dumps(list(render_dashboards(custom).values()))
    assert "acme-.*" in text and "acme-w.*" in text
    assert "ktrdr-" not in re.sub(r'"(uid|url|title|description)": "[^"]*"', "", text)
    for dash in render_dashboards(custom).values():
        for where, expr in lint.prom_exprs(dash):
            assert 'job="' not in expr and 'instance="' not in expr, (where, expr)
            assert "500" not in expr, (where, expr)


def _ktrdr(name: str) -> dict[str, Any]:
    dash = json.loads((KTRDR / name).read_text(encoding="utf-8"))
    dash.setdefault("templating", {"list": []})
    return dash


def _ktrdr_context() -> LintContext:
    provisioned = yaml.safe_load((KTRDR / "datasources.yml").read_text(encoding="utf-8"))
    return LintContext(
        datasources={d["uid"]: d["type"] for d in provisioned["datasources"]},
        units=_units(),
        settings_values=set(),
    )


def test_lint_catches_ktrdr_bugs():
    """KTRDR's dashboards: 5m rate windows, lifetime counters, literal job regexes."""
    problems = []
    for name in ("system-overview.json", "worker-status.json", "operations.json"):
        problems += lint.lint(_ktrdr(name), _ktrdr_context())
    text = "\n".join(problems)
    assert "use $__rate_interval" in text
    assert "counter ktrdr_operations_total outside rate/irate/increase" in text
    assert "hard-coded matcher job=~'backend|ktrdr-workers'" in text
    assert "hard-coded matcher instance=~'.*:500[35]'" in text


def _mutate(path_fn) -> list[str]:
    settings = Settings()
    dash = copy.deepcopy(render_dashboards(settings)["ktrdr-operations.json"])
    path_fn(dash)
    return lint.lint(dash, context(settings))


def _first(dash: dict[str, Any], panel_type: str) -> dict[str, Any]:
    return next(p for p in dash["panels"] if p["type"] == panel_type)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda d: _first(d, "stat").update(datasource="Prometheus"), "is not a {type, uid}"),
        (
            lambda d: _first(d, "stat").update(datasource={"type": "prometheus", "uid": "x"}),
            "is not provisioned",
        ),
        (
            lambda d: _first(d, "stat").update(datasource={"type": "jaeger", "uid": "prometheus"}),
            "provisioned as",
        ),
        (lambda d: _first(d, "stat").update(type="graph"), "not a React-era panel"),
        (lambda d: _first(d, "stat").update(description=""), "needs a title and a description"),
        (lambda d: d["panels"][1].update(title=d["panels"][0]["title"]), "duplicate panel title"),
        (lambda d: d["panels"][1].update(id=d["panels"][0]["id"]), "not unique"),
        (lambda d: _first(d, "timeseries")["fieldConfig"]["defaults"].pop("unit"), "no unit"),
        (
            lambda d: _first(d, "timeseries")["fieldConfig"]["defaults"].update(unit="furlongs"),
            "unknown unit",
        ),
        (lambda d: d["panels"][1]["gridPos"].update(x=20), "outside the 24-column grid"),
        (lambda d: d["panels"][1]["gridPos"].update(x=0), "overlaps"),
        (lambda d: d["templating"]["list"][0].update(refresh=1), "refresh=2"),
        (
            lambda d: d["templating"]["list"].append(
                {**d["templating"]["list"][0], "name": "unused"}
            ),
            "never used",
        ),
        (
            lambda d: _first(d, "timeseries")["targets"][0].update(
                expr="sum(rate(ktrdr_operations_total[5m]))"
            ),
            "use $__rate_interval",
        ),
        (
            lambda d: _first(d, "stat")["targets"][0].update(expr="sum(ktrdr_operations_total)"),
            "outside rate/irate/increase",
        ),
        (
            lambda d: _first(d, "stat")["targets"][0].update(
                expr="sum(rate(ktrdr_workers_registered_total[$__rate_interval]))"
            ),
            "gauge",
        ),
        (
            lambda d: _first(d, "stat")["targets"][0].update(expr="sum(ktrdr_made_up)"),
            "not emitted by KTRDR",
        ),
        (
            lambda d: _first(d, "stat")["targets"][0].update(expr='up{job="ktrdr-backend"}'),
            "hard-coded matcher",
        ),
    ],
)
def test_each_rule_catches_its_bug(mutation, expected):
    assert any(expected in p for p in _mutate(mutation)), expected


_OPS = 'ktrdr_operations_total{job=~"$job"}'


@pytest.mark.parametrize(
    "expr",
    [
        f"sum({_OPS} offset $__range)",
        f"sum(last_over_time({_OPS}[$__range]))",
        # increase_in_range's shape, but the guard reads another selector
        f"sum((increase({_OPS}[$__range]) and {_OPS} offset $__range) or "
        f'(last_over_time(ktrdr_operations_total{{job=~".*"}}[$__range]) unless {_OPS} offset '
        "$__range))",
        # the shape with a window other than the dashboard range
        f"sum((increase({_OPS}[$__rate_interval]) and {_OPS} offset $__rate_interval) or "
        f"(last_over_time({_OPS}[$__rate_interval]) unless {_OPS} offset $__rate_interval))",
        # increase_in_interval's shape, but the fallback reads another selector
        f"sum((({_OPS} - last_over_time({_OPS}[$__range] offset $__interval)) >= 0) or "
        'ktrdr_operations_total{job=~".*"})',
        # ... or the fallback is shifted in time
        f"sum((({_OPS} - last_over_time({_OPS}[$__range] offset $__interval)) >= 0) or "
        f"{_OPS} offset $__interval)",
        # a plain difference of instant values
        f"sum(({_OPS} - {_OPS} offset $__interval) >= 0)",
    ],
)
def test_raw_counters_are_allowed_only_in_increase_in_range(expr):
    """The lint's one allowance (a counter outside increase()) is exactly the helper's form."""
    problems = _mutate(lambda d: _first(d, "stat")["targets"][0].update(expr=expr))
    assert any("outside rate/irate/increase" in p for p in problems), problems


@pytest.mark.parametrize("helper", [increase_in_range, increase_in_interval])
def test_increase_in_range_passes_the_counter_rule(helper):
    expr = f"sum({helper(_OPS)})"
    problems = _mutate(lambda d: _first(d, "stat")["targets"][0].update(expr=expr))
    assert not any("outside rate/irate/increase" in p for p in problems), problems
