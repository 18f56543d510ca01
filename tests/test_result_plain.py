"""The results are msgspec structs: ``to_dict()`` must still be the deep, independent copy
that ``dataclasses.asdict`` gave, and the JSON renderer (orjson, which does not know structs)
must write every nested result with its fields in order."""

from __future__ import annotations

import json

from opdiag.diagnosis.result import (
    BaselineRun,
    Bottleneck,
    Comparison,
    Diagnosis,
    Finding,
    FlowStep,
    Links,
    PhaseChange,
    RootCause,
    Solution,
    copied,
    plain,
)
from opdiag.render.json_render import comparison_dict, render_json


def _diagnosis() -> Diagnosis:
    step = FlowStep(0, "a" * 32, "b" * 16, None, "ktrdr-api", "POST /x", 0.0, 5.0, 5.0, 0,
                    True, True, root_cause=True)
    return Diagnosis(
        operation_id="op_training_20251122_101500_1a2b3c4d",
        trace_ids=["a" * 32],
        verdict="failed",
        summary="failed: boom",
        root_cause=RootCause("a" * 32, "b" * 16, "ktrdr-api", "POST /x",
                             {"nested": {"values": [1, (2, 3)]}}, "ValueError", "boom"),
        bottleneck=Bottleneck("a" * 32, "b" * 16, "ktrdr-api", "POST /x", 5.0, 1.0, 5.0),
        findings=[Finding("rule-a", "error", "boom", "failed", evidence={"k": ["v"]})],
        execution_flow=[step],
        solution=Solution("Fix it", ["step one"], ["cmd"], "rule-a"),
        links=Links(jaeger="http://jaeger/x", traces={"a" * 32: "http://jaeger/t"}),
        comparison=Comparison(
            runs=[BaselineRun("op_1", 1, 2.0)],
            wanted_runs=5,
            this_ms=5.0,
            phases=[PhaseChange("p", "span", 5.0, 2.0, 3.0, 150.0, "slower")],
        ),
        fired=[Finding("rule-a", "error", "boom")],
    )


def test_to_dict_is_the_nested_plain_form_in_field_order() -> None:
    d = _diagnosis()
    out = d.to_dict()
    assert list(out)[:4] == ["operation_id", "trace_ids", "verdict", "summary"]
    assert "fired" not in out and out["key"] == d.operation_id
    assert out["root_cause"]["evidence"] == {"nested": {"values": [1, (2, 3)]}}
    assert list(out["execution_flow"][0])[:3] == ["index", "trace_id", "span_id"]
    assert out["comparison"]["phases"][0]["status"] == "slower"
    assert out["links"]["traces"] == {"a" * 32: "http://jaeger/t"}
    assert plain((1, [Links()])) == (1, [{"jaeger": None, "grafana_explore": None,
                                           "diagnosis_page": None, "grafana_dashboard": None,
                                           "traces": {}}])


def test_to_dict_is_a_copy_the_caller_may_change() -> None:
    d = _diagnosis()
    out = d.to_dict()
    out["root_cause"]["evidence"]["nested"]["values"].append(9)
    out["findings"][0]["evidence"]["k"].append("w")
    out["trace_ids"].append("c" * 32)
    assert d.root_cause is not None
    assert d.root_cause.evidence == {"nested": {"values": [1, (2, 3)]}}
    assert d.findings[0].evidence == {"k": ["v"]}
    assert d.trace_ids == ["a" * 32]


def test_render_json_writes_every_nested_result_as_to_dict_does() -> None:
    d = _diagnosis()
    rendered = json.loads(render_json(d))
    assert rendered == json.loads(json.dumps(d.to_dict()))
    assert list(rendered["bottleneck"]) == list(Bottleneck.__struct_fields__)
    both = comparison_dict(d, copied(d, operation_id="op_2"), d.comparison)
    assert both["comparison"] == plain(d.comparison)
    assert both["comparison"] is not d.comparison


def test_a_copy_is_equal_and_independent_at_the_top() -> None:
    d = _diagnosis()
    other = copied(d, verdict="slow")
    assert other.verdict == "slow" and d.verdict == "failed"
    assert copied(d) == d and copied(d) is not d
