"""Hostile rule packs (found by fuzzing): explicit YAML tags the text does not fit, neighbour
margins no clock holds, and regexes that backtrack for ever are refused with the file, the
line and the reason, before any trace is read (or, past the probe, give up as no match); the
regexes KTRDR's pack uses behave as ``re``'s."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opdiag.cli.main import main
from opdiag.diagnosis import patterns
from opdiag.diagnosis.patterns import Pattern, compile_pattern
from opdiag.diagnosis.rules import DEFAULT_PACK, load_rule_pack
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

# Patterns that backtrack for ever in Python's ``re`` on a text they do not match (the
# first hung ``opdiag operations`` through an ``exception_message``; found by fuzzing).
RUNAWAY = [
    r"(\w+\s?)+$",
    r"(a|aa)+$",
    r"(.|.)*!",
    r".*.*.*.*.*.*.*.*.*.*.*.*!",
    r"(a+)+b",
    r"(a*)*b",
    r"^(?:\w+_)+$",
    r"(?:a+a)+$",
    r"x{2,}(y{2,3})+$",
    r"(\d+\.?)+x",
]
HOSTILE_TEXTS = ["a" * 10_000 + "!", "a " * 5_000 + ".", "y" * 10_000, "1." * 5_000]


@pytest.mark.parametrize("pattern", RUNAWAY)
def test_a_pattern_that_backtracks_is_refused_or_cannot_run_away(pattern: str) -> None:
    """Either the pack refuses it (it is slow on a probe text), or its searches end at once
    or give up (``SEARCH_TIMEOUT_S``) on the longest texts a rule searches."""
    started = time.monotonic()
    try:
        compiled = compile_pattern(pattern)
    except ValueError as exc:
        assert "takes more than" in str(exc)
    else:
        for text in HOSTILE_TEXTS:
            compiled.search(text)
    assert time.monotonic() - started < 30  # a hang guard, not a timing


def test_an_exponential_pattern_is_refused_when_the_pack_loads() -> None:
    with pytest.raises(ValueError, match="takes more than"):
        compile_pattern(r"(a|aa)+$")


def test_a_search_that_runs_away_gives_up_as_no_match() -> None:
    runaway = Pattern(r"(a|aa)+$")  # not probed: as a pack cached before a change would be
    started = time.monotonic()
    assert runaway.search("a" * 60 + "!") is None
    assert runaway.match("a" * 60 + "!") is None
    assert time.monotonic() - started < 30  # a hang guard, not a timing
    assert runaway.search("aaa") is not None


@pytest.mark.parametrize(
    "pattern",
    [
        r"(ab)+",
        r"(an? )?(ib )?connection",
        r"(a{2})+$",
        r"^op_(?:[a-z0-9]+_)*?(?P<type>training|backtesting)_\d{8}$",
        r"(?:\d+\.)+\d+",
        r"\w+(-\w+)*",
        r"(?i)host service (timeout|error)|symbol \S+ not found|\bIB\b",
        r"/api/v1/operations/[^/?]+(/[a-z_]+)?([?#].*)?$",
    ],
)
def test_patterns_packs_use_load_and_match_as_re_does(pattern: str) -> None:
    compiled = compile_pattern(pattern)
    assert compiled.pattern == pattern
    texts = ["", "abab", "an ib connection", "op_training_20261204", "1.2.3", "a-b-c"]
    for text in [*texts, "Host service timeout", "/api/v1/operations/op_1/cancel"]:
        assert bool(compiled.search(text)) == bool(re.search(pattern, text)), text


def test_a_pattern_compares_hashes_and_pickles_as_its_text() -> None:
    a, b = compile_pattern(r"^op_(?P<type>\w+)$"), compile_pattern(r"^op_(?P<type>\w+)$")
    assert a == b and hash(a) == hash(b) and a != compile_pattern("x")
    again = pickle.loads(pickle.dumps(a))
    assert again == a and again.groupindex == {"type": 1}
    assert again.match("op_training").group("type") == "training"


def test_bad_and_overlong_regexes_are_named() -> None:
    with pytest.raises(ValueError, match="bad regex"):
        compile_pattern("(unclosed")
    with pytest.raises(ValueError, match="bad regex"):
        compile_pattern("a{4294967296}")
    with pytest.raises(ValueError, match="longer than"):
        compile_pattern("a" * 5000)


@pytest.mark.parametrize(
    "text",
    [
        "match: {span: x, exception_message: '(a|aa)+$'}",
        "match: {span: x, attributes: {a: {regex: '(a|aa)+$'}}}",
    ],
)
def test_a_pack_with_a_runaway_regex_is_refused_at_once(tmp_path: Path, text: str) -> None:
    pack = GOOD_RULE.replace(
        'match:\n      span: "my.*"\n      attributes:\n        my.count: {gt: 3}', text
    )
    assert pack != GOOD_RULE
    started = time.monotonic()
    err = refuse(tmp_path, pack)
    assert "takes more than" in str(err) and err.line == line_of(pack, "(a|aa)+$")
    assert time.monotonic() - started < 60  # a hang guard, not a timing


def test_the_health_check_url_and_the_id_pattern_are_checked_too(tmp_path: Path) -> None:
    url = GOOD_RULE + (
        "neighbours:\n  health_checks:\n    - {service: s, span: GET, url: '(a|aa)+$'}\n"
    )
    assert "takes more than" in str(refuse(tmp_path, url))
    ident = GOOD_RULE + "operation:\n  id_pattern: '^(?P<type>(a|aa)+)$'\n"
    assert "takes more than" in str(refuse(tmp_path, ident))


def test_operations_with_the_fuzzed_runaway_packs_finish(
    tmp_path: Path, demo_traces: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The packs that hung ``opdiag operations`` for good: refused, or run to the end."""
    for pattern in [r"(\w+\s?)+$", r"(.|.)*!", r".*.*.*.*.*.*.*.*.*.*.*.*!", r"(.+)+x"]:
        pack = GOOD_RULE.replace('span: "my.*"', f"exception_message: '{pattern}'")
        path = write(tmp_path, pack)
        started = time.monotonic()
        code = main(["operations", "--traces", str(demo_traces), "--rules", str(path),
                     "--now", "2026-11-24T08:46:00Z"])
        err = capsys.readouterr().err
        assert code in (0, 2) and "internal error" not in err, err
        assert time.monotonic() - started < 120  # a hang guard, not a timing


def _patterns(obj: object, seen: set[int] | None = None) -> list[Pattern]:
    """Every pattern held anywhere in a pack (conditions, matches, health checks, ids)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, Pattern):
        return [obj]
    if isinstance(obj, dict):
        return [p for v in obj.values() for p in _patterns(v, seen)]
    if isinstance(obj, list | tuple):
        return [p for v in obj for p in _patterns(v, seen)]
    fields = getattr(obj, "__struct_fields__", None) or getattr(obj, "__dataclass_fields__", {})
    return [p for name in fields for p in _patterns(getattr(obj, name), seen)]


def test_the_bundled_packs_patterns_stay_on_re_and_end_on_every_probe(tmp_path: Path) -> None:
    """The bundled pack's regexes run on ``re`` without a time limit: each must end at once on
    the texts built to make engines backtrack (in a child process: a hang fails, not hangs)."""
    found = _patterns(load_rule_pack(DEFAULT_PACK))
    assert len(found) > 10 and all(p.vetted for p in found)
    texts = [*HOSTILE_TEXTS, *(t * 25 for t in patterns._PROBES)]
    script = (
        "import re, sys, json\n"
        "pats, texts = json.load(sys.stdin)\n"
        "for p in pats:\n"
        "    rx = re.compile(p)\n"
        "    for t in texts:\n"
        "        rx.search(t); rx.match(t)\n"
        "print('done')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        input=json.dumps([[p.pattern for p in found], texts]),
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard, not a timing
    )
    assert out.stdout.strip() == "done", out.stderr
    copy = write(tmp_path, DEFAULT_PACK.read_text(encoding="utf-8"), "ktrdr.yaml")
    assert not any(p.vetted for p in _patterns(load_rule_pack(copy)))  # only the bundled file


def test_a_status_request_needs_a_status_ktrdr_has(tmp_path: Path) -> None:
    """``operation.status_requests`` sets an operation's status: one KTRDR names, or the
    pack is refused at the line that says otherwise."""
    pack = GOOD_RULE + (
        "operation:\n  status_requests:\n    - {span: 'PATCH /x/*/status', status: stopped}\n"
    )
    err = refuse(tmp_path, pack)
    assert "'stopped' is none of" in str(err) and err.line == line_of(pack, "stopped")
    missing = GOOD_RULE + "operation:\n  status_requests:\n    - {span: 'PATCH /x/*/status'}\n"
    assert "missing 'status'" in str(refuse(tmp_path, missing))


def test_a_follower_needs_its_fields_a_known_status_and_a_readable_flag(tmp_path: Path) -> None:
    """``operation.followers`` says an operation's status from how a command following it
    ended: a status KTRDR names, an attribute key (or key#path) for its flag, a span and
    the polls; the pack is refused at the line that says otherwise."""
    entry = "    - {span: cli.x, flag: 'cli.args#kwargs.follow', polls: 'GET /ops/*', status: %s}\n"
    pack = GOOD_RULE + "operation:\n  followers:\n" + entry % "finished"
    err = refuse(tmp_path, pack)
    assert "'finished' is none of" in str(err) and err.line == line_of(pack, "finished")
    missing = GOOD_RULE + "operation:\n  followers:\n    - {span: cli.x, status: completed}\n"
    assert "missing 'flag'" in str(refuse(tmp_path, missing))
    bad_flag = GOOD_RULE + (
        "operation:\n  followers:\n"
        "    - {span: cli.x, flag: 'a b', polls: 'GET /ops/*', status: completed}\n"
    )
    assert "bad attribute key 'a b'" in str(refuse(tmp_path, bad_flag))
    unknown = GOOD_RULE + (
        "operation:\n  followers:\n"
        "    - {span: cli.x, flag: f, polls: 'GET /ops/*', status: completed, after: 3}\n"
    )
    assert "unknown field 'after'" in str(refuse(tmp_path, unknown))
    good = GOOD_RULE + "operation:\n  followers:\n" + entry % "completed"
    loaded = load_rule_pack(write(tmp_path, good, "good.yaml"))
    assert [(f.flag, f.status, f.unless) for f in loaded.followers] == [
        ("cli.args#kwargs.follow", "completed", None)
    ]
