"""``serve()``: waitress on loopback, the printed URLs, a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from api_support import XSS_OPERATION, write_xss_traces

# Generous bound for start-up, so a broken server fails the test instead of hanging it.
START_TIMEOUT_S = 120

SERVE = """
import sys
import threading
from opdiag.api.server import serve
from opdiag.settings import load_settings
sys.exit(serve(load_settings(overrides={"server": {"port": 0, "threads": 2}})))
"""


class Output:
    """stdout of the server read by a thread, so a server that never prints fails the test
    after START_TIMEOUT_S instead of hanging it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def _pump(self, stream: Iterable[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, prefix: str) -> list[str]:
        """Lines up to and including the first one starting with ``prefix`` (or EOF)."""
        got: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=START_TIMEOUT_S)
            except queue.Empty:
                pytest.fail(f"no {prefix!r} from opdiag serve; got {got}")
            if line is None:
                return got
            got.append(line)
            if line.startswith(prefix):
                return got


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_urls_answers_and_stops_cleanly(tmp_path: Path, sig: int):
    write_xss_traces(tmp_path / "traces")
    store = tmp_path / "state" / "verdicts.sqlite3"
    env = {**os.environ, "OPDIAG_TRACES": str(tmp_path / "traces"), "PYTHONUNBUFFERED": "1",
           "OPDIAG_STORE_PATH": str(store), "OPDIAG_WATCHER_INTERVAL_S": "0.2"}
    env.pop("JAEGER_URL", None)
    env.pop("OPDIAG_AUTH_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        output = Output(proc)
        banner = output.until("Stop with")
        text = "\n".join(banner)
        assert str(tmp_path / "traces") in banner[0]
        assert f"verdict store   sqlite {store} (watcher every 0.2 s)" in text
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\n", text)
        assert match, text
        base = f"http://127.0.0.1:{match.group(1)}"
        assert f"{base}/operations/{XSS_OPERATION}" in text
        for path in ("/api/v1/operations", "/metrics", "/healthz"):
            assert f"{base}{path}" in text
        with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.headers["server"] == "opdiag"  # waitress, not werkzeug
            assert client.get(f"/operations/{XSS_OPERATION}").status_code == 200
            too_big = client.post(
                "/simpod/query",
                content=b"{" + b" " * 1_000_001 + b"}",
                headers={"Content-Type": "application/json"},
            )
            assert too_big.status_code == 413
            assert too_big.json() == {"error": "request body too large", "field": "body"}
            # The watcher runs beside the server and reports its passes.
            deadline = time.monotonic() + START_TIMEOUT_S
            while "opdiag_watcher_last_success_timestamp_seconds 0.0" in client.get(
                "/metrics"
            ).text:
                assert time.monotonic() < deadline, "the watcher never finished a pass"
                time.sleep(0.1)
        proc.send_signal(sig)
        rest = output.until("opdiag stopped.")
        proc.wait(timeout=START_TIMEOUT_S)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert rest[-1:] == ["opdiag stopped."]
    assert "Traceback" not in err
    # Its verdicts outlive the process.
    from opdiag.settings import Settings
    from opdiag.store.factory import open_store

    kept = open_store(Settings.model_validate({"store": {"path": str(store)}}))
    try:
        assert [r.operation_id for r in kept.operations(0, 2**62)] == [XSS_OPERATION]
        assert kept.last_pass_ms() is not None
    finally:
        kept.close()


def test_serve_reports_a_busy_port(tmp_path: Path):
    import socket

    write_xss_traces(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        from opdiag.api.server import serve
        from opdiag.settings import Settings

        settings = Settings.model_validate(
            {"trace_paths": [str(tmp_path)], "server": {"port": port}}
        )
        assert serve(settings) == 2


def test_stopping_a_server_whose_loop_already_closed_its_trigger_still_closes_it(
    monkeypatch: pytest.MonkeyPatch,
):
    """A full run failed once at teardown: the loop thread was still alive but its trigger's
    descriptor was closed (EBADF from pull_trigger), so the server's sockets stayed open and
    the test errored. Nobody to wake: the sockets are closed directly."""
    from types import SimpleNamespace

    from opdiag.api import server as server_module

    closed: list[object] = []

    class ClosedTrigger:
        def pull_trigger(self, thunk: object) -> None:
            raise OSError(9, "Bad file descriptor")

    fake = SimpleNamespace(
        task_dispatcher=SimpleNamespace(shutdown=lambda: None),
        trigger=ClosedTrigger(),
        _map={"sockets": 1},
    )
    monkeypatch.setattr(server_module.wasyncore, "close_all", closed.append)
    server_module.stop_server(fake, loop_running=True)
    assert closed == [fake._map]
