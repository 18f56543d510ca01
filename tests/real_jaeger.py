"""A real Jaeger (v2 all-in-one, the pinned build in ``.tools/bin/jaeger``) for tests.

``make test`` builds the binary (``scripts/build-jaeger.sh``). ``RealJaeger`` runs it with a
config of ours: in-memory storage, every listener on 127.0.0.1 on a free port (OTLP gRPC and
HTTP receivers, the query service's HTTP and gRPC ports, the health check), no self-metrics
port. It waits until Jaeger answers, and ``stop()`` ends it whatever happened (a parent-death
signal also ends it if the test process dies). ``send_otlp_json`` posts recorded OTLP-JSON
export requests to ``/v1/traces`` as they are, as an SDK's OTLP/HTTP exporter would.

Without the binary the tests that need it skip with one line naming the reason; under
``CI=true`` they fail instead, since CI must run them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from ktrdr_sim.live.launch import free_ports

REPO_ROOT = Path(__file__).resolve().parents[1]
JAEGER_BIN = REPO_ROOT / ".tools" / "bin" / "jaeger"
REAL_RUN1 = REPO_ROOT / "tests" / "data" / "real-ktrdr" / "run1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
MAX_TRACES = 100_000

_CONFIG = """\
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: []
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{health}
  jaeger_query:
    # v2 traces its own queries by default, to OTLP on localhost:4317: not ours, and its
    # exporter then holds the shutdown for 10 s.
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_http}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: {max_traces}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
      http:
        endpoint: 127.0.0.1:{otlp_http}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"""
_PORTS = ("health", "query_http", "query_grpc", "otlp_grpc", "otlp_http")


def unavailable_reason() -> str | None:
    """Why no real Jaeger can run here, or None when the binary is built."""
    if JAEGER_BIN.is_file() and os.access(JAEGER_BIN, os.X_OK):
        return None
    where = JAEGER_BIN.relative_to(REPO_ROOT)
    return f"no real Jaeger: {where} is not built (make jaeger; it needs Go)"


def require_jaeger() -> Path:
    """The binary, or a skip (a failure under ``CI=true``) with one line saying why."""
    reason = unavailable_reason()
    if reason is None:
        return JAEGER_BIN
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _death_signal_prefix() -> list[str]:
    """``setpriv --pdeathsig`` ends Jaeger when the test process dies without cleaning up."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "SIGTERM", "--"] if setpriv else []


class RealJaeger:
    """One Jaeger all-in-one process with in-memory storage on free loopback ports."""

    def __init__(self, workdir: Path, binary: Path = JAEGER_BIN) -> None:
        self.workdir = workdir
        self.binary = binary
        self.ports: dict[str, int] = {}
        self.log_path = workdir / "jaeger.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def query_url(self) -> str:
        """The query service (UI port: ``/api/v3`` and the legacy ``/api``)."""
        return f"http://127.0.0.1:{self.ports['query_http']}"

    @property
    def otlp_http_url(self) -> str:
        """OTLP/HTTP base URL (exporters append ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.ports['otlp_http']}"

    def start(self, attempts: int = 3) -> RealJaeger:
        """Start on fresh free ports; retried when a port was taken in between."""
        for attempt in range(attempts):
            self.ports = dict(zip(_PORTS, free_ports(len(_PORTS)), strict=True))
            config = self.workdir / "jaeger.yaml"
            config.write_text(_CONFIG.format(max_traces=MAX_TRACES, **self.ports))
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    [*_death_signal_prefix(), str(self.binary), "--config", str(config)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.workdir,
                )
            try:
                self._wait_ready()
                return self
            except RuntimeError:
                self.stop()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_ready(self) -> None:
        """Health check green, the query API answering and both receivers listening."""
        deadline = time.monotonic() + START_TIMEOUT_S
        health = f"http://127.0.0.1:{self.ports['health']}/status"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    raise RuntimeError(f"Jaeger exited at start:\n{self.log_tail()}")
                try:
                    ok = client.get(health).status_code == 200
                    ok = ok and client.get(f"{self.query_url}/api/services").status_code == 200
                    ok = ok and all(
                        _listening(self.ports[name]) for name in ("otlp_grpc", "otlp_http")
                    )
                except httpx.HTTPError:
                    ok = False
                if ok:
                    return
                time.sleep(0.1)
        raise RuntimeError(f"Jaeger not ready within {START_TIMEOUT_S:g}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> RealJaeger:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def send_otlp_json(otlp_http_url: str, bodies: Iterable[bytes]) -> int:
    """POST each OTLP-JSON export request to ``/v1/traces``; the count sent. Any answer but
    200 (or a partial success that rejected spans) fails the test, naming the body."""
    sent = 0
    with httpx.Client(base_url=otlp_http_url, timeout=30.0) as client:
        for body in bodies:
            reply = client.post(
                "/v1/traces", content=body, headers={"Content-Type": "application/json"}
            )
            assert reply.status_code == 200, f"body {sent}: HTTP {reply.status_code} {reply.text}"
            rejected = (reply.json().get("partialSuccess") or {}).get("rejectedSpans")
            assert not rejected, f"body {sent}: Jaeger rejected {rejected} spans"
            sent += 1
    return sent


def send_otlp_files(otlp_http_url: str, paths: Iterable[Path]) -> int:
    """``send_otlp_json`` of recorded export-request files, in the given order."""
    return send_otlp_json(otlp_http_url, (p.read_bytes() for p in paths))
