"""The assistant skill (skills/ktrdr-observability/SKILL.md) shows only commands that work: every
line of its ``sh`` blocks and every inline ``opdiag …`` command runs, in bash, against the demo
corpus and the real-KTRDR corpus, with a (replayed) Jaeger behind ``$JAEGER_URL`` for the
fallback; its MCP configuration starts a server the SDK's client can talk to."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from opdiag.devtools.replay_jaeger import ReplayJaeger

REPO = Path(__file__).resolve().parents[1]
SKILL = REPO / "skills" / "ktrdr-observability" / "SKILL.md"
DEMO = REPO / "demo" / "traces"
REAL = REPO / "tests" / "data" / "real-ktrdr" / "run1" / "traces"
BIN = Path(sys.executable).parent
# The one line that sets the environment up; the test provides that environment itself.
SETUP_LINE = re.compile(r"^export JAEGER_URL=")

pytestmark = pytest.mark.xdist_group("skill")


@dataclass(frozen=True)
class Case:
    corpus: Path
    op_id: str  # $OP_ID
    good_id: str  # $GOOD_ID
    trace_id: str  # $TRACE_ID: a trace of its own (a dispatch that never became an operation)
    verdict: str  # what ``opdiag diagnose $OP_ID`` must say
    trace_verdict: str  # what ``opdiag diagnose $TRACE_ID`` must say


CASES = {
    "demo-slow": Case(DEMO, "op_training_20261124_081940_89c7eab4",
                      "op_training_20261124_082320_b74390a7",
                      "205e24e4f7de1cec2b57209a78685357", "slow", "workers_busy"),
    "demo-failed": Case(DEMO, "op_data_load_20261124_080330_1ed0b59b",
                        "op_data_load_20261124_081140_563f22d5",
                        "cf4bba3fefc089ff904d28df45294c72", "service_unreachable", "no_workers"),
    "real-ktrdr": Case(REAL, "op_training_20261204_155512_6652e327",
                       "op_training_20261204_154305_f6579e1a",
                       "00c1cc50b6463135decf4ee498c45941", "healthy", "workers_busy"),
}


def skill_text() -> str:
    return SKILL.read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", skill_text(), flags=re.S | re.M)


def commands() -> list[str]:
    """Every command the skill shows: ``sh`` block lines, then inline ``opdiag …`` spans."""
    lines = [line for block in blocks("sh") for line in block.splitlines() if line.strip()]
    inline = re.findall(r"`(opdiag [^`]+)`", skill_text())
    out = [c for c in lines if not SETUP_LINE.match(c)]
    return out + [c for c in inline if c not in out]


def test_the_skill_has_a_front_matter_and_shows_commands():
    head = skill_text().split("---\n")
    assert head[0] == "" and "name: ktrdr-observability\n" in head[1]
    assert "description: Use when" in head[1]
    shown = commands()
    assert any(c.startswith("opdiag diagnose $OP_ID") for c in shown)
    assert any(c.startswith("opdiag compare $OP_ID $GOOD_ID") for c in shown)
    assert any(c.startswith("curl ") for c in shown)
    assert len(shown) >= 8
    setup = [line for block in blocks("sh") for line in block.splitlines()
             if SETUP_LINE.match(line)]
    assert setup == ["export JAEGER_URL=http://localhost:16686"]


@pytest.fixture(scope="module")
def jaegers():
    servers = {path: ReplayJaeger(path).start() for path in (DEMO, REAL)}
    yield {path: server.url for path, server in servers.items()}
    for server in servers.values():
        server.stop()


def environment(case: Case, jaeger_url: str) -> dict[str, str]:
    return {
        "PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "OPDIAG_TRACES": str(case.corpus),  # opdiag reads the corpus; curl reads the Jaeger
        "JAEGER_URL": jaeger_url,
        "OP_ID": case.op_id,
        "GOOD_ID": case.good_id,
        "TRACE_ID": case.trace_id,
    }


@pytest.mark.parametrize("name", list(CASES))
def test_every_command_runs(name, jaegers):
    case = CASES[name]
    env = environment(case, jaegers[case.corpus])
    for command in commands():
        done = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; {command}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert done.stdout.strip(), command
        assert "Traceback" not in done.stderr, command
        out = done.stdout
        if command == "opdiag diagnose $OP_ID":
            assert f"(verdict {case.verdict}," in out, out[:500]
            assert "**What changed since the last good runs**" in out
        elif command == "opdiag diagnose $TRACE_ID":
            assert f"(verdict {case.trace_verdict}," in out, out[:500]
        elif command.startswith("opdiag compare"):
            assert f"Comparison of {case.op_id} with {case.good_id}" in out
        elif command.startswith("opdiag diagnose $OP_ID --format json | jq '{"):
            assert json.loads(out)["verdict"] == case.verdict
        elif command.startswith("curl "):
            assert json.loads(out)[0]["span"], out[:300]
        elif command.startswith("opdiag operations --format json"):
            assert any(line.split(" ")[1] != "healthy" for line in out.splitlines())


def test_the_mcp_configuration_starts_a_server(jaegers, tmp_path):
    (block,) = blocks("json")
    entry = json.loads(block)["mcpServers"]["opdiag"]
    assert entry["command"] == "opdiag" and entry["args"][0] == "mcp"
    args = list(entry["args"])
    args[args.index("--jaeger-url") + 1] = jaegers[DEMO]
    config = tmp_path / "opdiag.yaml"  # the recorded demo is older than the default lookback
    config.write_text("jaeger:\n  lookback_s: 315360000\n")
    params = StdioServerParameters(
        command=str(BIN / "opdiag"),
        args=args,
        env={"PATH": f"{BIN}{os.pathsep}/usr/bin:/bin", "OPDIAG_CONFIG": str(config)},
        cwd=str(REPO),
    )

    async def main() -> tuple[set[str], str]:
        async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool(
                "diagnose", {"operation_id": CASES["demo-failed"].op_id}
            )
            return names, result.content[0].text

    names, text = asyncio.run(main())
    named = set(re.findall(r"`(\w+)`", skill_text().split("Its tools:")[1].split("\n\n")[0]))
    assert names == {"list_operations", "diagnose", "compare_operations", "execution_flow"}
    assert names <= named  # the skill names every tool
    assert json.loads(text)["verdict"] == "service_unreachable"
