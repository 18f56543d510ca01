"""The results are msgspec structs: ``to_dict()`` must still be the deep, independent copy
that ``dataclasses.asdict`` gave, and the JSON renderer (orjson, which does not know structs)
must write every nested result with its fields in order. On the API tests' hand-made
diagnoses: one failed (root cause, findings, flow, solution, links), one slow (bottleneck,
comparison with phases)."""

from __future__ import annotations

import json

from api_support import FAILED_ID, failed_diagnosis, make_settings, slow_diagnosis
from opdiag.diagnosis.result import Bottleneck, Diagnosis, Finding, Links, copied, plain
from opdiag.render.json_render import comparison_dict, render_json


def _failed() -> Diagnosis:
    d = failed_diagnosis(make_settings())
    assert d.root_cause is not None
    d.root_cause.evidence["nested"] = {"values": [1, (2, 3)]}  # a tuple inside: kept a tuple
    d.fired = [Finding("ib-connection-refused", "critical", "IB Gateway refused")]
    return d


def test_to_dict_is_the_nested_plain_form_in_field_order() -> None:
    d = _failed()
    out = d.to_dict()
    assert list(out)[:4] == ["operation_id", "trace_ids", "verdict", "summary"]
    assert "fired" not in out and out["key"] == d.operation_id == FAILED_ID
    assert out["root_cause"]["evidence"]["nested"] == {"values": [1, (2, 3)]}
    assert list(out["execution_flow"][0])[:3] == ["index", "trace_id", "span_id"]
    slow = slow_diagnosis(make_settings()).to_dict()
    assert slow["comparison"]["phases"][0]["status"] == "slower"
    assert out["links"]["traces"] == d.links.traces and out["links"]["traces"]
    assert plain((1, [Links()])) == (1, [{"jaeger": None, "grafana_explore": None,
                                           "diagnosis_page": None, "grafana_dashboard": None,
                                           "traces": {}}])


def test_to_dict_is_a_copy_the_caller_may_change() -> None:
    d = _failed()
    out = d.to_dict()
    out["root_cause"]["evidence"]["nested"]["values"].append(9)
    out["findings"][0]["evidence"]["note"] = "changed"
    out["trace_ids"].append("c" * 32)
    assert d.root_cause is not None
    assert d.root_cause.evidence["nested"] == {"values": [1, (2, 3)]}
    assert d.findings[0].evidence["note"] != "changed"
    assert len(d.trace_ids) == 1


def test_render_json_writes_every_nested_result_as_to_dict_does() -> None:
    for d in (_failed(), slow_diagnosis(make_settings())):
        rendered = json.loads(render_json(d))
        assert rendered == json.loads(json.dumps(d.to_dict()))
    slow = slow_diagnosis(make_settings())
    rendered = json.loads(render_json(slow))
    assert list(rendered["bottleneck"]) == list(Bottleneck.__struct_fields__)
    assert slow.comparison is not None
    both = comparison_dict(slow, copied(slow, operation_id="op_2"), slow.comparison)
    assert both["comparison"] == plain(slow.comparison)
    assert both["comparison"] is not slow.comparison


def test_a_copy_is_equal_and_independent_at_the_top() -> None:
    d = _failed()
    other = copied(d, verdict="slow")
    assert other.verdict == "slow" and d.verdict == "service_unreachable"
    assert copied(d) == d and copied(d) is not d
