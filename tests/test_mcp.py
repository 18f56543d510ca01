"""``opdiag mcp`` through the MCP SDK's own client over stdio: the server is ``opdiag mcp`` in a
subprocess, exactly as an assistant starts it. Initialise, list the tools, call each one on the
demo and the real-KTRDR corpora and through a (replayed) Jaeger, and read the error answers
for an unknown id, bad arguments and a Jaeger that is down."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from opdiag.devtools.replay_jaeger import ReplayJaeger

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo" / "traces"
REAL = REPO / "tests" / "data" / "real-ktrdr" / "run1" / "traces"
SLOW = "op_training_20261124_081940_89c7eab4"
GOOD = "op_training_20261124_082320_b74390a7"
FAILED = "op_data_load_20261124_080330_1ed0b59b"
TOOLS = {"list_operations", "diagnose", "compare_operations", "execution_flow"}
MAX_ANSWER = 12_000  # characters: an assistant's context is not to be flooded

pytestmark = pytest.mark.xdist_group("mcp")


def server(*args: str) -> StdioServerParameters:
    """``opdiag mcp`` as the tests import it: the SDK would start it with a few variables of
    the environment only (no PYTHONPATH: an installed opdiag, not the one under test)."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "opdiag.cli.main", "mcp", *args],
        cwd=str(REPO),
        env=dict(os.environ),
    )


def with_client(params: StdioServerParameters, body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
            return await body(client)

    return asyncio.run(main())


async def call(client: Client, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
    """(is_error, the answer's JSON): a failure's text is JSON too, nothing before it."""
    result = await client.call_tool(tool, arguments)
    (content,) = result.content
    text = content.text
    assert len(text) <= MAX_ANSWER, (tool, len(text))
    return bool(result.is_error), json.loads(text)


def test_initialise_list_tools_and_call_each_on_the_demo():
    async def body(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {"info": client.server_info, "instructions": client.instructions}
        out["tools"] = {t.name: t for t in (await client.list_tools()).tools}
        out["slow"] = await call(client, "list_operations", verdict="slow")
        out["page"] = await call(client, "list_operations", limit=5)
        out["diagnose"] = await call(client, "diagnose", operation_id=SLOW)
        out["failed"] = await call(client, "diagnose", operation_id=FAILED)
        out["compare"] = await call(client, "compare_operations", operation_id=SLOW, against=GOOD)
        out["flow"] = await call(client, "execution_flow", operation_id=SLOW, limit=10)
        out["unknown"] = await call(client, "diagnose", operation_id="op_nope")
        out["bad_limit"] = await call(client, "list_operations", limit=0)
        out["bad_time"] = await call(client, "list_operations", since="yesterday-ish")
        out["missing"] = await call(client, "diagnose")
        out["wrong_type"] = await call(client, "list_operations", limit="ten")
        out["reversed"] = await call(client, "list_operations", since="now", until="now-1h")
        out["control"] = await call(client, "diagnose", operation_id="op\x01x")
        out["typo"] = await call(client, "list_operations", verdict="helthy")
        out["spaced"] = await call(client, "diagnose", operation_id=f" {SLOW} ")
        return out

    out = with_client(server("--traces", str(DEMO)), body)
    assert out["info"].name == "opdiag"
    assert "diagnose" in out["instructions"]
    assert set(out["tools"]) == TOOLS
    schema = out["tools"]["compare_operations"].input_schema
    assert set(schema["required"]) == {"operation_id", "against"}
    assert all(t.input_schema["additionalProperties"] is False for t in out["tools"].values())
    assert out["tools"]["diagnose"].description.startswith("Diagnose one operation id")
    for tool, argument in [("list_operations", "since"), ("list_operations", "now"),
                           ("execution_flow", "now")]:  # how a number is read is in the schema
        said = out["tools"][tool].input_schema["properties"][argument]["description"]
        assert "epoch seconds or epoch milliseconds" in said and "100000000000" in said

    error, slow = out["slow"]
    assert not error and slow["total"] == 1
    (row,) = slow["operations"]
    assert row["key"] == SLOW and row["verdict"] == "slow" and row["duration"] == "15m03s"
    assert row["severity"] == "warning"  # how bad, beside the verdict (as the pack rates slow)
    assert row["diagnosis_page"].split("?")[0].endswith(f"/operations/{SLOW}")
    error, page = out["page"]
    assert len(page["operations"]) == 5 and page["total"] > 5
    assert page["omitted"] == 0 and page["next_offset"] == 5  # the rest were not asked for

    error, d = out["diagnose"]
    assert not error and d["verdict"] == "slow"
    assert "after training.data_loading +12m02s" in d["summary"]
    assert d["comparison"]["phases"][0]["phase"] == "after training.data_loading"
    assert len(d["comparison"]["baseline_runs"]) == 3
    assert d["links"]["jaeger"].startswith("http://localhost:16686/trace/")
    assert "execution_flow" not in d  # the flow has its own tool

    error, failed = out["failed"]
    assert failed["verdict"] == "service_unreachable"
    assert failed["root_cause"]["service"] and failed["root_cause"]["span_id"]
    assert failed["solution"]["steps"]

    error, compared = out["compare"]
    assert not error and compared["against"]["key"] == GOOD
    top = compared["comparison"]["phases"][0]
    assert (top["phase"], top["status"]) == ("after training.data_loading", "slower")
    assert compared["comparison"]["headline"].endswith(f"vs {GOOD}")

    error, flow = out["flow"]
    assert not error and flow["noise_hidden"] > 300  # the CLI's polling, folded away
    assert 10 <= len(flow["steps"]) <= 20 and flow["omitted"] > 0
    # the time is a gap no span covers: no span is blamed for it (the one it follows took
    # seconds of fifteen minutes), the diagnosis's bottleneck says where the time went
    assert not [s for s in flow["steps"] if "root_cause" in s["marks"]]
    assert d["root_cause"] is None
    assert (d["bottleneck"]["kind"], d["bottleneck"]["after_span"]) == (
        "gap", "training.data_loading"
    )

    error, unknown = out["unknown"]
    assert error and unknown["kind"] == "not_found" and "op_nope" in unknown["error"]
    error, bad = out["bad_limit"]
    assert error and bad == {"error": "limit must be 1..200", "kind": "bad_input",
                             "field": "limit"}
    error, bad = out["bad_time"]
    assert error and bad["kind"] == "bad_input" and bad["field"] == "since"
    # arguments the SDK refuses against the tool's signature answer in the same form, and
    # the field is the tool's own argument
    for key, field in [
        ("missing", "operation_id"),
        ("wrong_type", "limit"),
        ("reversed", "since"),
        ("control", "operation_id"),
        ("typo", "verdict"),  # an unknown verdict, not "no such operations"
        ("spaced", "operation_id"),  # refused as the HTTP API refuses it, not "not found"
    ]:
        error, bad = out[key]
        assert error and bad["kind"] == "bad_input" and bad["field"] == field, (key, bad)


def test_real_ktrdr_corpus_over_stdio():
    async def body(client: Client) -> Any:
        listed = await call(client, "list_operations", verdict="worker_lost")
        long = await call(client, "diagnose", operation_id="op_training_20261204_155512_6652e327")
        lost = await call(client, "execution_flow", operation_id="1880c513804fedc10d7c942896c05f57")
        clocks = [
            await call(client, "list_operations", verdict="worker_lost", now=now)
            for now in ("2026-12-04T16:10:00Z", "1796400600", 1796400600, 1796400600000)
        ]
        return listed, long, lost, clocks

    (_, listed), (error, long), (flow_error, flow), clocks = with_client(
        server("--traces", str(REAL)), body
    )
    assert listed["total"] == len(listed["operations"])
    # epoch seconds, as text or a JSON number, are not read as ms (1970-01-21: two of the
    # lost workers read workers_busy); ms are told from seconds by magnitude
    assert [c for c in clocks if c != clocks[0]] == [] and clocks[0][1]["total"] == 6
    assert not error and long["verdict"] == "healthy"
    top = long["comparison"]["phases"][0]
    assert (top["phase"], top["kind"]) == ("after training.data_loading", "gap")
    assert long["comparison"]["baseline_runs"][0]["key"] == "op_training_20261204_154305_f6579e1a"
    # a 30-epoch v3_medium against a 10-epoch v3_minimal run: shown, not judged
    assert (long["comparison"]["status"], long["comparison"]["expected_ms"]) == (
        "not comparable", None,
    )
    assert not flow_error and flow["steps"]


def test_through_a_jaeger_and_when_it_is_down(tmp_path):
    config = tmp_path / "opdiag.yaml"  # the demo corpus is older than the default lookback
    config.write_text("jaeger:\n  lookback_s: 315360000\n  retries: 0\n")
    jaeger = ReplayJaeger(DEMO).start()
    refused = ReplayJaeger(DEMO, faults=["refuse"]).start()
    failing = ReplayJaeger(DEMO, faults=["http500"]).start()
    try:

        async def body(client: Client) -> Any:
            return await call(client, "diagnose", operation_id=FAILED, now="2026-11-24T11:03:00Z")

        error, d = with_client(server("--jaeger-url", jaeger.url, "--config", str(config)), body)
        assert not error and d["verdict"] == "service_unreachable", d
        for down in (refused, failing):
            args = ("--jaeger-url", down.url, "--config", str(config))
            error, answer = with_client(server(*args), body)
            assert error and answer["kind"] == "source_unavailable", answer
            assert answer["error"]
    finally:
        for replay in (jaeger, refused, failing):
            replay.stop()


def test_no_source_is_a_usage_error():
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "opdiag.cli.main", "mcp"],
        cwd=REPO,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "no trace source" in done.stderr and "Traceback" not in done.stderr


class RawSession:
    """``opdiag mcp`` spoken to line by line, past the handshake: what no client SDK sends
    (lines that are not JSON, params that are not an object)."""

    def __init__(self, *args: str) -> None:
        import queue
        import subprocess
        import threading

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opdiag.cli.main", "mcp", *args],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.send({"jsonrpc": "2.0", "id": "hello", "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}})
        assert self.reply()["id"] == "hello"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, message: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        self.proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        return json.loads(self.lines.get(timeout=60))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _call(ident: int, params: Any = None, **fields: Any) -> dict[str, Any]:
    message = {"jsonrpc": "2.0", "id": ident, "method": "tools/call", **fields}
    return message if params is None else {**message, "params": params}


def test_protocol_errors_say_what_is_wrong():
    """A line that was not JSON got no answer at all (JSON-RPC 2.0: -32700, id null), nor did
    params that were not an object; missing params answered "Invalid request parameters" with
    empty data; an unknown argument was dropped without a word."""
    session = RawSession("--traces", str(DEMO))
    try:
        sent = [
            "this is not json",
            "[1, 2]",
            _call(1),  # no params
            _call(2, [1, 2]),
            _call(3, {}),
            _call(4, {"name": "list_operations", "arguments": {"verdcit": "failed", "bogus": 1}}),
        ]
        for line in sent:
            session.send(line)
        replies = [session.reply() for _ in sent]
        by_id = {r["id"]: r for r in replies if r["id"] is not None}
        unnamed = [r["error"] for r in replies if r["id"] is None]
        # what gets no reply (a notification, a response) is not answered: the next is ping's
        session.send({"jsonrpc": "2.0", "method": "notifications/x", "params": [1]})
        session.send({"jsonrpc": "2.0", "id": 99, "result": "x"})
        session.send({"jsonrpc": "2.0", "id": "last", "method": "ping"})
        last = session.reply()
    finally:
        session.close()
    assert last["id"] == "last" and "result" in last
    parse, batch = unnamed
    assert parse["code"] == -32700 and "not JSON" in parse["message"]
    assert batch["code"] == -32600 and "array" in batch["message"]
    missing, listed, empty = (by_id[i]["error"] for i in (1, 2, 3))
    assert missing["code"] == -32602 and "params missing" in missing["message"]
    assert listed["code"] == -32602 and listed["data"] == [
        {"field": "params", "problem": "must be an object, not an array"}
    ]
    assert empty["code"] == -32602 and {"field": "params.name", "problem": "Field required"} in (
        empty["data"]
    )
    unknown = by_id[4]["result"]
    assert unknown["isError"]
    body = json.loads(unknown["content"][0]["text"])
    assert body["kind"] == "bad_input" and body["field"] == "verdcit"
    assert "'verdcit', 'bogus'" in body["error"] and "verdict" in body["error"]


def test_requests_written_before_the_input_ends_are_all_answered() -> None:
    """A client that writes its requests and closes stdin (``opdiag mcp < requests``) gets
    every answer: the slow ones (a diagnosis with its baseline) came after the quick ones
    and were cancelled with the session when the input ended; 2 answers of 6 came back."""
    import subprocess

    calls = [
        ("diagnose", {"operation_id": SLOW}),
        ("list_operations", {"limit": 3}),
        ("compare_operations", {"operation_id": SLOW, "against": GOOD}),
        ("diagnose", {"operation_id": "op_nope"}),
    ]
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "script", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        *(
            {"jsonrpc": "2.0", "id": i, "method": "tools/call",
             "params": {"name": name, "arguments": arguments}}
            for i, (name, arguments) in enumerate(calls, start=2)
        ),
        {"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
    ]
    params = server("--traces", str(DEMO))
    done = subprocess.run(
        [params.command, *params.args],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True, text=True, timeout=120, env=params.env, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answers = {a["id"]: a for a in map(json.loads, done.stdout.splitlines())}
    assert sorted(answers) == [1, 2, 3, 4, 5, 9], done.stderr[-2000:]
    slow = json.loads(answers[2]["result"]["content"][0]["text"])
    assert slow["verdict"] == "slow"
    missing = json.loads(answers[5]["result"]["content"][0]["text"])
    assert missing["kind"] == "not_found"
