"""The rule-pack additions for evidence outside an operation's traces and for what the real
KTRDR emits: ``neighbours``/``workers``/``operation.values`` sections, ``in``/``when``/``cause``
rule keys, attribute-to-attribute comparisons, ``{op:…}`` values and commands that are only
offered when every value they need is known."""

from __future__ import annotations

import pytest
from opdiag.diagnosis.conditions import Condition, check_operand, compare_attributes
from opdiag.diagnosis.rules import default_rule_pack, merge_packs, parse_rule_pack
from opdiag.diagnosis.templates import fill, fill_command, parse_template
from opdiag.errors import RulePackError

PACK = """\
pack: extra
operation:
  values:
    strategy: ["cli.args#kwargs.strategy"]
neighbours:
  before_s: 30
  max_traces: 10
  health_checks:
    - {service: my-api, span: GET, url: '/ping$'}
  spans:
    - {service: my-gateway, span: gw.connect}
workers:
  training: ["gpu-worker-*"]
rules:
  - id: gw-down
    description: the gateway refused its loop while our call timed out
    verdict: service_unreachable
    severity: critical
    priority: 95
    in: neighbours
    when:
      - {kind: client, exception: ReadTimeout}
    match:
      span: gw.connect
    summary: "gateway down ({matches|1} attempts)"
    solution:
      title: Start the gateway
      steps: ["start it"]
      commands: ["gw start {op:strategy}"]
"""


def refuse(text: str) -> RulePackError:
    with pytest.raises(RulePackError) as info:
        parse_rule_pack(text, "extra.yaml")
    return info.value


def test_a_pack_declares_neighbours_workers_and_values() -> None:
    pack = parse_rule_pack(PACK, "extra.yaml")
    spec = pack.neighbours
    assert spec is not None and spec.before_s == 30 and spec.max_traces == 10
    assert spec.health_checks[0].url.pattern == "/ping$"
    assert [(q.service, q.span) for q in spec.queries] == [
        ("my-api", "GET"),
        ("my-gateway", "gw.connect"),
    ]
    assert pack.values == {"strategy": ("cli.args#kwargs.strategy",)}
    rule = pack.rules[0]
    assert rule.scope == "neighbours" and len(rule.when) == 1 and rule.cause == "origin"


def test_a_user_pack_adds_to_the_default_neighbours_and_keeps_its_margins() -> None:
    user = parse_rule_pack(PACK.replace("  before_s: 30\n", ""), "extra.yaml")
    merged = merge_packs([default_rule_pack(), user])
    spec = merged.neighbours
    assert spec.before_s == 420  # the default pack's, not reset by a pack that sets none
    assert spec.max_traces == 10
    assert "gpu-worker-*" in spec.worker_globs("training")
    assert "ktrdr-training-worker-*" in spec.worker_globs("training")
    assert {q.span for q in spec.queries} >= {"GET", "ib.connect", "gw.connect"}


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("  before_s: 30", "  before_s: -1", "neighbours.before_s must be a number >= 0"),
        ("  max_traces: 10", "  max_traces: 0", "neighbours.max_traces must be >= 1"),
        (
            "  max_traces: 10",
            "  max_traces: 10\n  timeouts_to_lose: 0",
            "neighbours.timeouts_to_lose must be >= 1",
        ),
        ("url: '/ping$'", "url: '(['", "neighbours.health_checks.url: bad regex"),
        ("  spans:\n", "  spanz:\n", "neighbours: unknown field 'spanz'"),
        (
            "    - {service: my-gateway, span: gw.connect}",
            "    - {service: my-gateway}",
            "neighbours.spans: missing 'span'",
        ),
        ("    in: neighbours", "    in: elsewhere", "'in' must be one of neighbours, own"),
        (
            "      - {kind: client, exception: ReadTimeout}",
            "      - {within: [x]}",
            "when: 'within' cannot be used in a nested match",
        ),
        ('["cli.args#kwargs.strategy"]', '["cli args"]', "bad attribute key 'cli args'"),
        ("    priority: 95", "    priority: 95\n    cause: deepest", "'cause' must be one of"),
    ],
)
def test_bad_additions_are_refused_with_line_and_reason(old: str, new: str, reason: str) -> None:
    text = PACK.replace(old, new)
    assert text != PACK
    err = refuse(text)
    assert reason in str(err) and err.line is not None


def test_neighbour_scope_needs_a_match() -> None:
    text = PACK.replace("    match:\n      span: gw.connect\n", "    facts: {status: failed}\n")
    assert "'in: neighbours' needs a 'match'" in str(refuse(text))


def test_attribute_comparisons_only_in_span_attributes() -> None:
    text = PACK.replace(
        "      span: gw.connect\n", "      span: gw.connect\n      duration_ms: {gt_attr: x}\n"
    )
    assert "compares span attributes only" in str(refuse(text))


def test_attribute_comparison_orders_dates_and_numbers_not_mixtures() -> None:
    cond = Condition("a", "gt_attr", check_operand("gt_attr", "b"))
    assert compare_attributes(cond, {"a": "2023-06-30", "b": "2023-01-01"})
    assert not compare_attributes(cond, {"a": "2023-01-01", "b": "2023-06-30"})
    assert compare_attributes(cond, {"a": "2023-06-30T10:00:00Z", "b": "2023-06-30T09:00:00+00:00"})
    assert compare_attributes(cond, {"a": "10", "b": 9})
    assert not compare_attributes(cond, {"a": "None", "b": "2023-01-01"})
    assert not compare_attributes(cond, {"a": "2023-06-30"})
    assert not compare_attributes(cond, {"a": True, "b": False})
    with pytest.raises(ValueError, match="needs the key of another attribute"):
        check_operand("lt_attr", 3)


def test_operation_values_and_commands_that_need_them() -> None:
    template = parse_template("ktrdr train {op:strategy} --start {attr:data.start_date}")
    assert template.keys == ("op:strategy", "data.start_date")
    assert fill_command(template, {"op:strategy": "v3", "data.start_date": "2023-01-01"}) == (
        "ktrdr train v3 --start 2023-01-01"
    )
    assert fill_command(template, {"op:strategy": "v3"}) is None  # never "--start n/a"
    with_default = parse_template("ktrdr ops {op:strategy|--all}")
    assert fill_command(with_default, {}) == "ktrdr ops --all"
    assert fill(template, {}) == "ktrdr train n/a --start n/a"  # prose keeps n/a
    with pytest.raises(ValueError, match="bad operation value name"):
        parse_template("{op:not a name}")


def test_the_default_pack_never_pastes_a_made_up_value() -> None:
    """No command of the default pack holds a fixed worker name or a placeholder word."""
    pack = default_rule_pack()
    for rule in pack.rules:
        for command in rule.solution.commands:
            text = "".join(p if isinstance(p, str) else "{}" for p in command.parts)
            for word in (
                "backtest-worker-1",
                "training-worker-1",
                "SYMBOL",
                "TIMEFRAME",
                "<strategy>",
            ):
                assert word not in text, (rule.id, text)


def test_a_key_with_a_hash_reads_a_field_of_a_json_text() -> None:
    """``cli.args#kwargs.start_date``: KTRDR's CLI writes its arguments as one JSON text."""
    from opdiag.diagnosis.conditions import attribute, missing

    attrs = {"cli.args": '{"kwargs": {"start_date": "2024-06-30", "n": 3}}', "plain": 1}
    assert attribute(attrs, "cli.args#kwargs.start_date") == "2024-06-30"
    assert attribute(attrs, "cli.args#kwargs.n") == 3
    assert attribute(attrs, "plain") == 1
    for absent in ("cli.args#kwargs.end_date", "cli.args#kwargs.n.deeper", "other#a", "nope"):
        assert attribute(attrs, absent) is missing()
    assert attribute({"cli.args": "{not json"}, "cli.args#a") is missing()
    assert attribute({"cli.args": "[" * 100_000}, "cli.args#a") is missing()  # over the cap
    assert attribute({"cli.args": {"a": {"b": 2}}}, "cli.args#a.b") == 2  # already a mapping
