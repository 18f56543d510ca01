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


# Found by fuzzing the settings: each is exit 2 naming the file or the setting, never
# "internal error".
@pytest.mark.parametrize(
    ("text", "env", "said"),
    [
        ("jaeger: {timeout_s: !!timestamp x}\n", {}, "a value YAML cannot read"),
        ("a: !!int abc\n", {}, "a value YAML cannot read"),
        ("jaeger: {deadline_s: " + "9" * 400 + "}\n", {}, "jaeger.deadline_s: should be a finite"),
        ("jaeger: {deadline_s: .inf}\n", {}, "jaeger.deadline_s: should be a finite number"),
        ("jaeger: {deadline_s: .nan}\n", {}, "jaeger.deadline_s: should be a finite number"),
        ("dashboards: {prometheus: {url: 'http://x'}}\n", {}, "dashboards.prometheus.uid: is"),
        ("server: 1e999\n", {"OPDIAG_MAX_TARGETS": "5"}, "invalid setting server: should be"),
        ("{}\n", {"OPDIAG_JAEGER_LOOKBACK": "9" * 400}, "longer than a century"),
        ("{}\n", {"OPDIAG_JAEGER_LOOKBACK": "1" + "0" * 400 + "d"}, "longer than a century"),
    ],
)
def test_settings_no_type_holds_are_named(
    capsys, demo_traces, tmp_path: Path, monkeypatch, text: str, env: dict, said: str
):
    path = tmp_path / "settings.yaml"
    path.write_text(text, encoding="utf-8")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["operations", "--traces", str(demo_traces), "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert said in err and "internal error" not in err


def test_a_settings_file_that_is_not_utf8_is_named(capsys, demo_traces, tmp_path: Path):
    path = tmp_path / "settings.yaml"
    path.write_bytes(b"\x80abc: 1\n")
    code = main(["operations", "--traces", str(demo_traces), "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "not UTF-8" in err and str(path) in err
