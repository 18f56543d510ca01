"""Every rule of the default pack against its vectors (tests/vectors/rules/<rule id>.yaml):
each must fire on at least one trace and stay silent on at least one other."""

from __future__ import annotations

from typing import Any

import pytest
from opdiag.diagnosis.rules import load_rules
from test_rules_support import load_vectors, run_case

RULES = load_rules()
VECTORS = load_vectors()
CASES = [
    pytest.param(rule_id, case, id=f"{rule_id}: {case['name']}")
    for rule_id, doc in VECTORS.items()
    for case in doc["cases"]
]


def test_every_rule_has_a_firing_and_a_silent_vector() -> None:
    missing = []
    for rule in RULES.rules:
        cases = VECTORS.get(rule.id, {}).get("cases", [])
        if not any(c["fires"] for c in cases) or not any(not c["fires"] for c in cases):
            missing.append(rule.id)
    assert missing == [], f"rules without a firing and a silent vector: {missing}"


def test_every_vector_names_a_rule_of_the_pack() -> None:
    assert sorted(set(VECTORS) - {r.id for r in RULES.rules}) == []


@pytest.mark.parametrize(("rule_id", "case"), CASES)
def test_vector(rule_id: str, case: dict[str, Any]) -> None:
    diagnosis = run_case(case, RULES)
    fired = [f for f in diagnosis.fired if f.rule_id == rule_id]
    assert bool(fired) is case["fires"], [f.rule_id for f in diagnosis.findings]
    if "verdict" in case:
        assert diagnosis.verdict == case["verdict"], diagnosis.summary
    if "status" in case:
        assert diagnosis.status == case["status"]
    if "summary" in case:  # the rule's own summary (the diagnosis's when the rule wins)
        assert fired[0].summary == case["summary"]
        if case.get("verdict") and fired[0].verdict == case["verdict"]:
            assert diagnosis.summary == case["summary"]
    if "span" in case:  # the span the finding points at
        assert (fired[0].service, fired[0].span_name) == tuple(case["span"])
    if "evidence" in case:
        evidence = fired[0].evidence
        assert {k: evidence.get(k) for k in case["evidence"]} == case["evidence"]
    if "command" in case:
        assert diagnosis.solution is not None
        assert case["command"] in diagnosis.solution.commands


def test_every_default_rule_has_steps_and_commands() -> None:
    for rule in RULES.rules:
        assert rule.solution.steps and rule.solution.commands, rule.id
        assert rule.description, rule.id


def test_no_summary_of_the_pack_has_a_hole_where_a_value_is_missing() -> None:
    """A value a summary may lack is said with its surrounding words or not at all: "the
    backtesting worker  at 127.0.0.1:5003" read as a name left out (mentions miss it)."""
    from opdiag.diagnosis.rules import load_rules
    from opdiag.diagnosis.templates import fill_line

    for rule in load_rules().rules:
        text = fill_line(rule.summary, {})
        assert "  " not in text and " )" not in text and "( " not in text, (rule.id, text)


def test_every_verdict_rules_summary_opens_with_its_verdict() -> None:
    """A summary starts with what the verdict says in words ("service unreachable: …"), as
    the list's rows are read down that column; a healthy one with what it is doing ("running:
    …") or "healthy:". Two IB Gateway summaries opened with "IB Gateway at …"."""
    from opdiag.diagnosis.templates import fill_line

    for rule in RULES.rules:
        if rule.verdict is None:
            continue
        text = fill_line(rule.summary, {})
        opening = ("healthy", "running") if rule.verdict == "healthy" else (
            rule.verdict.replace("_", " "),
        )
        assert text.startswith(opening), (rule.id, text)
