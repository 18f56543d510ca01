"""Hostile rule packs (found by fuzzing): explicit YAML tags the text does not fit, neighbour
margins no clock holds, and regexes that backtrack for ever are refused with the file, the
line and the reason, before any trace is read; the regexes KTRDR's pack uses stay allowed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opdiag.diagnosis.patterns import compile_pattern
from opdiag.diagnosis.rules import load_rule_pack
from opdiag.errors import RulePackError
from test_rules_pack import GOOD_RULE, line_of, refuse, write


@pytest.mark.parametrize(
    ("old", "new", "needle", "reason"),
    [
        ("priority: 5", "priority: !!int zz", "zz", "'zz' is not a valid int"),
        ("severity: error", "severity: !!binary a", "binary", "'a' is not a valid binary"),
        ("my.count: {gt: 3}", "my.count: !!bool maybe", "maybe", "'maybe' is not a valid bool"),
        ("my.count: {gt: 3}", "my.count: !!timestamp x", "timestamp", "not a valid timestamp"),
        ("my.count: {gt: 3}", f"my.count: {{gt: {10**400}}}", "gt", "a number a float holds"),
    ],
)
def test_values_the_yaml_cannot_be_are_refused_with_their_line(
    tmp_path: Path, old: str, new: str, needle: str, reason: str
) -> None:
    text = GOOD_RULE.replace(old, new)
    assert text != GOOD_RULE
    err = refuse(tmp_path, text)
    assert reason in str(err)
    assert err.line == line_of(text, needle)


def _neighbours(key: str, value: str) -> str:
    return GOOD_RULE + f"neighbours:\n  {key}: {value}\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("before_s", ".nan"),
        ("before_s", ".inf"),
        ("after_s", "-1"),
        ("settle_s", str(10**400)),
        ("after_s", "3000000"),
        ("max_traces", "0"),
        ("max_traces", str(10**12)),
        ("timeouts_to_lose", "1.5"),
        ("timeouts_to_lose", "true"),
    ],
)
def test_neighbour_margins_no_clock_holds_are_refused(
    tmp_path: Path, key: str, value: str
) -> None:
    text = _neighbours(key, value)
    err = refuse(tmp_path, text)
    assert f"neighbours.{key} must be" in str(err)
    assert err.line == line_of(text, f"{key}:")


def test_margins_a_pack_may_set_still_load(tmp_path: Path) -> None:
    for key, value in [("before_s", "0"), ("after_s", "2678400"), ("max_traces", "100000")]:
        pack = load_rule_pack(write(tmp_path, _neighbours(key, value)))
        assert dict(pack.neighbours.margins)[key] == float(value)


# ------------------------------------------------------------------------------ regexes


@pytest.mark.parametrize(
    "pattern",
    [
        r"(\w+\s?)+$",
        r"(a+)+b",
        r"(a*)*b",
        r"^(?:\w+_)+$",  # \w takes "_" too: every split of "a_b_c" is tried
        r"(?:a+a)+$",
        r"x{2,}(y{2,3})+$",
        r"(?=(a+)+)b",
        r"(?>(a+)+)b",
        r"(a|(b+)+)c",
    ],
)
def test_a_repetition_inside_a_repetition_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="repeats a repetition"):
        compile_pattern(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(ab)+",
        r"(an? )?(ib )?connection",
        r"(a{2})+$",
        r"^op_(?:[a-z0-9]+_)*?(?P<type>training|backtesting)_\d{8}$",
        r"(?:\d+\.)+\d+",
        r"(?:[^,]+,)+",
        r"(?:\w+\s)+$",
        r"(?i)host service (timeout|error)|symbol \S+ not found|\bIB\b",
        r"/api/v1/operations/[^/?]+(/[a-z_]+)?([?#].*)?$",
    ],
)
def test_repetitions_with_one_way_to_end_are_allowed(pattern: str) -> None:
    assert compile_pattern(pattern).pattern == pattern


def test_bad_and_overlong_regexes_are_named() -> None:
    with pytest.raises(ValueError, match="bad regex"):
        compile_pattern("(unclosed")
    with pytest.raises(ValueError, match="longer than"):
        compile_pattern("a" * 5000)


@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("exception_message", "match: {span: x, exception_message: '(\\w+\\s?)+$'}"),
        ("regex", "match: {span: x, attributes: {a: {regex: '(a+)+$'}}}"),
    ],
)
def test_a_pack_with_a_catastrophic_regex_is_refused_at_once(
    tmp_path: Path, where: str, text: str
) -> None:
    """The rule that hung ``operations`` for good (a 40-character message ending in '.')."""
    pack = GOOD_RULE.replace(
        'match:\n      span: "my.*"\n      attributes:\n        my.count: {gt: 3}', text
    )
    assert pack != GOOD_RULE
    started = time.monotonic()
    with pytest.raises(RulePackError, match="repeats a repetition"):
        load_rule_pack(write(tmp_path, pack))
    assert time.monotonic() - started < 60  # a hang guard, not a timing


def test_the_health_check_url_and_the_id_pattern_are_checked_too(tmp_path: Path) -> None:
    url = GOOD_RULE + (
        "neighbours:\n  health_checks:\n    - {service: s, span: GET, url: '(/x+)+$'}\n"
    )
    assert "repeats a repetition" in str(refuse(tmp_path, url))
    ident = GOOD_RULE + "operation:\n  id_pattern: '^(?P<type>(a+)+)$'\n"
    assert "repeats a repetition" in str(refuse(tmp_path, ident))
