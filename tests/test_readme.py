"""The README's promises: the two set-up commands exist and CI runs the test one; every tour
command that reads the demo corpus works as printed."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from conftest import REPO_ROOT
from opdiag.cli.main import main

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def _commands(block: str) -> list[str]:
    """Lines of a block with continuations joined and comments dropped."""
    joined = block.replace("\\\n", " ")
    return [line.split("#", 1)[0].strip() for line in joined.splitlines() if line.strip()]


def test_set_up_is_exactly_make_run_and_make_test():
    set_up = README.split("## Set up on a fresh machine", 1)[1]
    assert _commands(_sh_blocks(set_up)[0]) == ["make run", "make test"]
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run: .*\n\t\$\(BIN\)/opdiag serve$", makefile, flags=re.M)
    assert re.search(r"^test: ", makefile, flags=re.M)
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = [ln for ln in ci.splitlines() if ln.strip() and not ln.startswith(("#", "set "))]
    assert steps[-1].strip() == "make test"
    assert [s for s in steps if "make" in s] == ["make test"]


TOUR = [
    cmd
    for block in _sh_blocks(README.split("## A short tour", 1)[1].split("## ", 1)[0])
    for cmd in _commands(block)
    if cmd.startswith("opdiag ") and ("demo/traces" in cmd or "tests/data/real-ktrdr" in cmd)
]


def test_the_tour_has_demo_commands():
    assert len(TOUR) >= 3


@pytest.mark.parametrize("command", TOUR)
def test_tour_command_runs_as_printed(command, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    argv = shlex.split(command)[1:]
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.strip()


def test_every_environment_variable_is_in_the_readme():
    from opdiag.settings import ENV_VARS

    listed = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?", README, flags=re.M))
    names = {name for pair in listed for name in pair if name}
    assert set(ENV_VARS) | {"OPDIAG_CONFIG", "OPDIAG_DEMO_TRACES", "CI"} <= names


def test_the_mcp_registration_example_is_opdiag_mcp():
    section = README.split("## For AI assistants", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```json\n(.*?)```", section, flags=re.S)
    entry = json.loads(block)["mcpServers"]["opdiag"]
    assert entry["command"] == "opdiag" and entry["args"][0] == "mcp"
    assert main([*entry["args"][:1], "--help"]) == 0
    assert (REPO_ROOT / "skills" / "ktrdr-observability" / "SKILL.md").is_file()
