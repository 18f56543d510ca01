"""Hostile configuration (issue 11, item 10): a rule pack or settings file nested a thousand
levels deep is bad input naming the file (exit 2), never a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest
from opdiag.cli.main import main
from opdiag.diagnosis.rules import load_rule_pack
from opdiag.errors import RulePackError

DEPTH = 1000


def _deep_flow(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def _deep_block(depth: int) -> str:
    return "".join(f"{'  ' * level}k:\n" for level in range(depth)) + "  " * depth + "v\n"


@pytest.fixture(params=["flow", "block"])
def deep_pack(request, tmp_path: Path) -> Path:
    path = tmp_path / "deep.yaml"
    if request.param == "flow":
        path.write_text(f"rules:\n- id: x\n  when: {_deep_flow(DEPTH)}\n", encoding="utf-8")
    else:
        path.write_text("rules:\n- id: x\n  when:\n" + _deep_block(DEPTH), encoding="utf-8")
    return path


def test_a_deep_rule_pack_is_a_rule_pack_error_naming_the_file(deep_pack):
    with pytest.raises(RulePackError) as info:
        load_rule_pack(deep_pack)
    assert str(deep_pack) in info.value.message
    assert "deep" in info.value.message


def test_cli_exits_2_naming_a_deep_rule_pack(capsys, demo_traces, deep_pack):
    status = main(["diagnose", "x", "--traces", str(demo_traces), "--rules", str(deep_pack)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert str(deep_pack) in err
    assert "RecursionError" not in err and "internal error" not in err


def test_cli_exits_2_naming_a_deep_settings_file(capsys, demo_traces, tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text(f"server: {_deep_flow(DEPTH)}\n", encoding="utf-8")
    status = main(["operations", "--traces", str(demo_traces), "--config", str(config)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert str(config) in err
    assert "RecursionError" not in err and "internal error" not in err
