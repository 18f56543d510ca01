"""Rule pack loading: bad packs are refused with file:line and reason; user packs override."""

from __future__ import annotations

from pathlib import Path

import pytest
from opdiag.diagnosis.rules import default_rule_pack, load_rule_pack, load_rules
from opdiag.errors import RulePackError

GOOD_RULE = """\
pack: user
rules:
  - id: my-rule
    description: a user rule
    verdict: failed
    severity: error
    priority: 5
    match:
      span: "my.*"
      attributes:
        my.count: {gt: 3}
    summary: "failed: {attr:my.count} in {span.name}"
    solution:
      title: Fix it
      steps: ["do the thing"]
      commands: ["make fix"]
"""


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refuse(tmp_path: Path, text: str) -> RulePackError:
    path = write(tmp_path, text)
    with pytest.raises(RulePackError) as info:
        load_rule_pack(path)
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "needle", "reason"),
    [
        (
            "{gt: 3}",
            "{gtt: 3}",
            "gtt",
            "rule 'my-rule': match.attributes.my.count: unknown operator 'gtt'",
        ),
        (
            "verdict: failed",
            "verdict: kaputt",
            "kaputt",
            "rule 'my-rule': unknown verdict 'kaputt'",
        ),
        ('"my.*"', '"my.*"\n      exception_message: "([a-"', "([a-", "bad regex"),
        ("{attr:my.count} in", "{bogus} in", "{bogus}", "unknown placeholder '{bogus}'"),
        ("{attr:my.count} in", "{0.__init__} in", "__init__", "unknown placeholder"),
        ("{gt: 3}", "{gt: three}", "three", "needs a number"),
        ("severity: error", "severity: fatal", "fatal", "unknown severity 'fatal'"),
        (
            "    priority: 5\n",
            "    priority: 5\n    colour: red\n",
            "colour",
            "unknown field 'colour'",
        ),
        ('span: "my.*"', "kind: sever", "kind: sever", "unknown span kind 'sever'"),
        ('span: "my.*"', 'http_status: "6xx"', "6xx", "bad status"),
        ("{gt: 3}", "{regex: '(unclosed'}", "unclosed", "bad regex"),
        # a bad nested ``without_descendant`` / ``without_child`` match
        (
            'span: "my.*"',
            'span: "my.*"\n      without_descendant:\n        kind: client\n        colour: red',
            "colour",
            "rule 'my-rule': match.without_descendant: unknown field 'colour'",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_descendant: {kind: clint}',
            "clint",
            "match.without_descendant.kind: unknown span kind 'clint'",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_child:\n        within: "data.*"',
            "within",
            "match.without_child: 'within' cannot be used in a nested match",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_child:\n        kind: client\n        bottleneck: true',
            "bottleneck",
            "match.without_child: 'bottleneck' cannot be used in a nested match",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_descendant:\n        without_child: {kind: client}',
            "without_child",
            "match.without_descendant: 'without_child' cannot be used in a nested match",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_descendant: {}',
            "without_descendant",
            "match.without_descendant needs at least one condition",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_descendant: client',
            "without_descendant",
            "match.without_descendant must be a mapping",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_descendant:\n        attributes:\n'
            "          http.url: {regexx: ':5001'}",
            "regexx",
            "match.without_descendant.attributes.http.url: unknown operator 'regexx'",
        ),
        (
            'span: "my.*"',
            'span: "my.*"\n      without_child:\n        http_status: "6xx"',
            "6xx",
            "match.without_child.http_status: bad status",
        ),
    ],
)
def test_bad_rule_is_refused_with_line_and_reason(
    tmp_path: Path, old: str, new: str, needle: str, reason: str
) -> None:
    text = GOOD_RULE.replace(old, new)
    assert text != GOOD_RULE
    err = refuse(tmp_path, text)
    assert f"rules.yaml:{line_of(text, needle)}: " in str(err)
    assert reason in str(err)
    assert err.line == line_of(text, needle)


def test_not_yaml_is_refused_with_a_line(tmp_path: Path) -> None:
    text = "pack: x\nrules:\n  - id: [unclosed\n"
    err = refuse(tmp_path, text)
    assert "rules.yaml:" in str(err) and "not valid YAML" in str(err)
    assert err.line is not None


def test_duplicate_rule_id_is_refused_at_the_second(tmp_path: Path) -> None:
    second = GOOD_RULE.split("rules:\n", 1)[1]
    text = GOOD_RULE + second
    err = refuse(tmp_path, text)
    second_line = [i for i, ln in enumerate(text.splitlines(), 1) if "- id: my-rule" in ln][1]
    assert f"rules.yaml:{second_line}: rule 'my-rule': duplicate rule id (first at line 3)" in str(
        err
    )


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("    priority: 5\n", "    priority: 5\n    priority: 6\n")
    err = refuse(tmp_path, text)
    assert "duplicate key 'priority'" in str(err)
    assert err.line == line_of(text, "priority: 6")


def test_missing_solution_and_empty_pack_are_refused(tmp_path: Path) -> None:
    text = GOOD_RULE.split("    solution:", maxsplit=1)[0]
    assert "missing 'solution'" in str(refuse(tmp_path, text))
    assert "empty" in str(refuse(tmp_path, ""))
    assert "no 'rules'" in str(refuse(tmp_path, "pack: x\n"))


def test_rule_without_match_or_facts_is_refused(tmp_path: Path) -> None:
    text = GOOD_RULE.replace(
        '    match:\n      span: "my.*"\n      attributes:\n        my.count: {gt: 3}\n', ""
    )
    assert "needs 'match'" in str(refuse(tmp_path, text))


def test_slow_cannot_be_combined_with_span_conditions(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("    match:\n", "    facts: {slow: true}\n    match:\n")
    assert "'slow' cannot be combined" in str(refuse(tmp_path, text))


def test_unreadable_pack(tmp_path: Path) -> None:
    with pytest.raises(RulePackError, match="cannot read"):
        load_rule_pack(tmp_path / "nope.yaml")


def test_literal_braces_are_allowed_and_lone_braces_are_not(tmp_path: Path) -> None:
    ok = GOOD_RULE.replace('commands: ["make fix"]', "commands: [\"jq '{{a: .b}}'\"]")
    load_rule_pack(write(tmp_path, ok))
    bad = GOOD_RULE.replace('commands: ["make fix"]', "commands: [\"jq '{a: .b'\"]")
    assert "unknown placeholder" in str(refuse(tmp_path, bad)) or "unbalanced" in str(
        refuse(tmp_path, bad)
    )


def test_default_pack_loads_and_covers_both_dialects() -> None:
    pack = default_rule_pack()
    names = {p for r in pack.rules if r.match and r.match.names for p in r.match.names.patterns}
    assert {"workers.select", "worker_registry.select_worker"} <= names
    assert pack.id_pattern is not None
    assert pack.id_pattern.match("op_training_20251113_123456_1a2b3c4d").group("type") == "training"
    assert pack.id_pattern.match("op_training_20251113_123456_abc123") is None


def test_user_pack_overrides_by_id_and_adds_verdicts(tmp_path: Path) -> None:
    user = write(
        tmp_path,
        """\
pack: mine
verdicts:
  quota_exceeded: the account ran out of quota
rules:
  - id: no-workers
    description: replaced
    verdict: no_workers
    severity: info
    match: {span: workers.select, attributes: {worker.total_workers: {eq: 0}}}
    summary: "mine: none"
    solution: {title: t, steps: [s]}
  - id: quota
    description: new code
    verdict: quota_exceeded
    severity: error
    priority: 200
    match: {exception: QuotaError}
    summary: "quota exceeded"
    solution: {title: t, steps: [s]}
""",
        "user.yaml",
    )
    rules = load_rules([user])
    default_ids = [r.id for r in default_rule_pack().rules]
    ids = [r.id for r in rules.rules]
    assert ids[: len(default_ids)] == default_ids  # overridden in place
    assert ids[-1] == "quota"
    replaced = rules.get("no-workers")
    assert replaced is not None and replaced.description == "replaced"
    assert "quota_exceeded" in rules.verdicts


def test_new_verdict_must_be_declared(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("verdict: failed", "verdict: quota_exceeded")
    assert "declare new codes" in str(refuse(tmp_path, text))


def test_bad_user_pack_refuses_the_whole_set(tmp_path: Path) -> None:
    bad = write(tmp_path, GOOD_RULE.replace("{gt: 3}", "{gtt: 3}"))
    with pytest.raises(RulePackError, match=r"rules.yaml:\d+: rule 'my-rule'"):
        load_rules([bad])


def test_fact_values_are_type_checked(tmp_path: Path) -> None:
    text = GOOD_RULE.replace("    match:\n", "    facts: {stuck: 3}\n    match:\n")
    err = refuse(tmp_path, text)
    assert "facts.stuck: 3 is not a bool" in str(err)
    assert err.line == line_of(text, "stuck: 3")
    unknown = GOOD_RULE.replace("    match:\n", "    facts: {stuk: true}\n    match:\n")
    assert "unknown fact 'stuk'" in str(refuse(tmp_path, unknown))


def test_nested_without_matches_load(tmp_path: Path) -> None:
    text = GOOD_RULE.replace(
        'span: "my.*"',
        'span: "my.*"\n      without_descendant: {kind: client, service: "ktrdr-*"}'
        '\n      without_child:\n        span: "x.*"\n        error: true',
    )
    rule = load_rule_pack(write(tmp_path, text)).rules[0]
    assert rule.match is not None
    below, child = rule.match.without_descendant, rule.match.without_child
    assert below is not None and below.kinds == frozenset({"client"})
    assert below.services is not None and below.services("ktrdr-api")
    assert child is not None and child.error is True and child.names is not None


def test_default_pack_uses_without_descendant_for_rule_16() -> None:
    rule = next(r for r in default_rule_pack().rules if r.id == "host-call-not-attempted")
    assert rule.match is not None and rule.match.without_descendant is not None
    assert rule.match.without_descendant.kinds == frozenset({"client"})


def test_out_of_and_only_errors_load_and_are_checked(tmp_path: Path) -> None:
    """``out_of`` (the whole a rule's matches are part of) and ``only_errors`` count the
    operation's spans one by one: they need a ``match`` each span decides alone, on the
    operation's own spans; ``{out_of}`` needs ``out_of``."""
    counted = GOOD_RULE.replace(
        "    summary:",
        "    out_of: {span: \"my.*\"}\n    only_errors: true\n    summary:",
    ).replace("failed: {attr:my.count}", "failed: {matches} of {out_of}")
    rule = load_rule_pack(write(tmp_path, counted)).rules[0]
    assert rule.out_of is not None and rule.out_of.names is not None and rule.only_errors
    assert "out_of" in rule.template_keys
    assert rule.portion == "some"
    every = counted.replace("    only_errors: true\n", "    only_errors: true\n    portion: all\n")
    assert load_rule_pack(write(tmp_path, every)).rules[0].portion == "all"
    refused = [
        (counted.replace("      span: \"my.*\"\n      attributes", "      error_origin: true\n"
                         "      attributes"), "out_of", "needs a 'match' that each span decides"),
        (counted.replace("    only_errors: true\n", "    only_errors: true\n    in: neighbours\n"),
         "out_of", "'out_of' cannot be used with 'in: neighbours'"),
        (counted.replace("{span: \"my.*\"}", "{span: \"my.*\", within: \"x\"}"),
         "out_of", "out_of: 'within' cannot be used in a nested match"),
        (counted.replace("    out_of: {span: \"my.*\"}\n", ""),
         "- id: my-rule", "the placeholder '{out_of}' needs 'out_of'"),
        (every.replace("portion: all", "portion: most"),
         "portion", "'portion' must be one of some, all"),
        (every.replace("    out_of: {span: \"my.*\"}\n", "").replace("{out_of}", "{matches}"),
         "portion", "'portion' needs 'out_of'"),
    ]
    for text, needle, reason in refused:
        err = refuse(tmp_path, text)
        assert reason in str(err), str(err)
        assert err.line == line_of(text, needle), (str(err), reason)


def test_a_match_on_the_span_status_loads_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    """``status`` matches the span's status as set (unset, ok, error), in any case; another
    word is refused with its line."""
    text = GOOD_RULE.replace(
        '      span: "my.*"\n', '      span: "my.*"\n      status: [Unset, ok]\n'
    )
    rule = load_rule_pack(write(tmp_path, text)).rules[0]
    assert rule.match is not None and rule.match.statuses == frozenset({"unset", "ok"})
    bad = text.replace("[Unset, ok]", "done")
    err = refuse(tmp_path, bad)
    assert "unknown span status 'done' (unset, ok or error)" in str(err), str(err)
    assert err.line == line_of(bad, "status: done")


def test_a_rule_with_cause_none_leaves_its_verdict_without_a_root_cause(tmp_path: Path) -> None:
    """``cause: none``: the verdict has no root cause (a user's cancel: nothing broke); the
    finding still names the span. The default (``origin``) points at it; a word outside
    origin, matched, none is refused with its line."""
    from opdiag.diagnosis.rules import merge_packs
    from test_rules_support import run_case

    case = {"spans": [{"name": "my.thing", "attrs": {"my.count": 5}}]}
    text = GOOD_RULE.replace("priority: 5", "priority: 900")
    user = load_rule_pack(write(tmp_path, text))
    blamed = run_case(case, merge_packs([default_rule_pack(), user]))
    assert (blamed.verdict, blamed.root_cause and blamed.root_cause.span_name) == (
        "failed", "my.thing")
    none = text.replace("    severity: error\n", "    severity: error\n    cause: none\n")
    pack = load_rule_pack(write(tmp_path, none))
    assert pack.rules[0].cause == "none"
    d = run_case(case, merge_packs([default_rule_pack(), pack]))
    assert d.verdict == "failed" and d.root_cause is None
    assert [f.span_name for f in d.findings if f.rule_id == "my-rule"] == ["my.thing"]
    bad = none.replace("cause: none", "cause: nobody")
    err = refuse(tmp_path, bad)
    assert "'cause' must be one of matched, none, origin" in str(err)
    assert err.line == line_of(bad, "cause: nobody")


def test_a_rule_with_bottleneck_none_names_no_bottleneck(tmp_path: Path) -> None:
    """``bottleneck: none``: the deciding rule says its verdict's time was no work (the
    process that ran it died with it); the default names one. Another word is refused with
    its line."""
    from opdiag.diagnosis.rules import merge_packs
    from test_rules_support import run_case

    case = {"spans": [{"name": "my.thing", "dur": 900, "attrs": {"my.count": 5}}]}
    text = GOOD_RULE.replace("priority: 5", "priority: 900")
    user = load_rule_pack(write(tmp_path, text))
    named = run_case(case, merge_packs([default_rule_pack(), user]))
    assert named.bottleneck is not None and named.bottleneck.span_name == "my.thing"
    none = text.replace("    severity: error\n", "    severity: error\n    bottleneck: none\n")
    pack = load_rule_pack(write(tmp_path, none))
    assert pack.rules[0].bottleneck == "none"
    d = run_case(case, merge_packs([default_rule_pack(), pack]))
    assert d.verdict == named.verdict and d.bottleneck is None
    bad = none.replace("bottleneck: none", "bottleneck: hidden")
    err = refuse(tmp_path, bad)
    assert "'bottleneck' must be one of named, none" in str(err), str(err)
    assert err.line == line_of(bad, "bottleneck: hidden")
