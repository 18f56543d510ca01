"""Compiled rule packs on disk (``opdiag.diagnosis.pack_cache``): a pack compiled once is not
parsed again, any change to the file gives a new entry, a broken entry or directory only
costs the parse, and a diagnosis with a warm cache never imports PyYAML."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opdiag.diagnosis import pack_cache, pack_yaml
from opdiag.diagnosis.rules import DEFAULT_PACK, load_rules
from opdiag.errors import RulePackError

EXTRA = """\
pack: extra
rules:
  - id: extra-rule
    description: an extra rule
    verdict: failed
    severity: error
    priority: 5
    match: {span: extra.thing}
    summary: "extra: {span.name}"
    solution: {title: Look, steps: [Look at it]}
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPDIAG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "rule-packs"


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every pack actually parsed from YAML."""
    seen: list[str] = []
    real = pack_yaml.load_rule_pack

    def counting(path: str | os.PathLike[str]) -> object:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(pack_yaml, "load_rule_pack", counting)
    return seen


def test_a_pack_is_parsed_once_then_read_compiled(cache: Path, parses: list[str], tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA, encoding="utf-8")
    first = load_rules([extra])
    assert parses == [str(DEFAULT_PACK), str(extra)]
    assert len(list(cache.glob("*.pickle"))) == 2
    second = load_rules([extra])
    assert parses == [str(DEFAULT_PACK), str(extra)]  # nothing parsed again
    assert [r.id for r in second.rules] == [r.id for r in first.rules]
    assert second.rules == first.rules
    assert second.sources == first.sources
    assert second.get("extra-rule") is not None


def test_an_edited_pack_is_compiled_again(cache: Path, parses: list[str], tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA, encoding="utf-8")
    load_rules([extra])
    extra.write_text(EXTRA.replace("priority: 5", "priority: 6"), encoding="utf-8")
    rules = load_rules([extra])
    assert parses.count(str(extra)) == 2
    found = rules.get("extra-rule")
    assert found is not None and found.priority == 6


def test_a_corrupt_entry_is_parsed_over(cache: Path, parses: list[str]):
    load_rules()
    (entry,) = cache.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    rules = load_rules()
    assert parses == [str(DEFAULT_PACK), str(DEFAULT_PACK)]
    assert rules.rules
    assert entry.read_bytes() != b"not a pickle"  # rewritten


def test_an_invalid_pack_is_never_cached(cache: Path, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXTRA.replace("verdict: failed", "verdict: nonsense"), encoding="utf-8")
    for _ in range(2):
        with pytest.raises(RulePackError) as err:
            load_rules([bad])
        assert "bad.yaml" in str(err.value)
    assert len(list(cache.glob("*.pickle"))) == 1  # the default pack only


def test_off_and_unwritable_directories_only_cost_the_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]
):
    monkeypatch.setenv("OPDIAG_CACHE_DIR", "off")
    assert pack_cache.cache_dir() is None
    load_rules()
    load_rules()
    assert parses == [str(DEFAULT_PACK)] * 2
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("OPDIAG_CACHE_DIR", str(blocker))  # cannot hold a directory
    assert load_rules().rules


def test_a_diagnosis_with_a_warm_cache_does_not_import_yaml(tmp_path: Path):
    traces = tmp_path / "one.json"
    traces.write_text(
        '{"data":[{"traceID":"1","processes":{"p1":{"serviceName":"ktrdr-cli"}},'
        '"spans":[{"traceID":"1","spanID":"1","operationName":"cli.backtest",'
        '"startTime":1763806500000000,"duration":1000,"processID":"p1","tags":['
        '{"key":"operation.id","type":"string","value":"op_x"}]}]}]}',
        encoding="utf-8",
    )
    code = (
        "import sys\n"
        "from opdiag.cli.main import main\n"
        f"status = main(['diagnose', 'op_x', '--traces', {str(traces)!r}, '--format', 'json'])\n"
        "print(status, 'yaml' in sys.modules)\n"
    )
    env = {**os.environ, "OPDIAG_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        ).stdout.splitlines()[-1]
        for _ in range(2)
    ]
    assert runs == ["0 True", "0 False"]
