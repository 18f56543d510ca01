"""``--role all``: every role as its own child process, on loopback, in this process group.

Children get their configuration through the environment (as in docker-compose), so the same
code path runs locally and in containers. Stopping the supervisor stops every child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ktrdr_sim.live.config import LiveConfig

# (child name, role, default port) in start order: KTRDR's ports.
CHILDREN: tuple[tuple[str, str, int], ...] = (
    ("ib-host", "ib-host", 5001),
    ("backend", "backend", 8000),
    ("backtest-worker-1", "backtest-worker", 5003),
    ("backtest-worker-2", "backtest-worker", 5004),
    ("training-worker-1", "training-worker", 5005),
    ("training-worker-2", "training-worker", 5006),
    ("driver", "driver", 0),
)


@dataclass(frozen=True, slots=True)
class Child:
    name: str
    role: str
    port: int


def plan(ports: Mapping[str, int]) -> list[Child]:
    """The children with their ports (``ports`` overrides KTRDR's defaults by child name)."""
    unknown = set(ports) - {name for name, _, _ in CHILDREN}
    if unknown:
        raise ValueError(f"unknown service(s) {sorted(unknown)}; known: "
                         f"{', '.join(n for n, _, _ in CHILDREN)}")
    return [Child(name, role, ports.get(name, port)) for name, role, port in CHILDREN]


def child_env(cfg: LiveConfig, child: Child, children: Sequence[Child],
              base: Mapping[str, str]) -> dict[str, str]:
    """The environment one child reads its configuration from."""
    port = {c.name: c.port for c in children}
    env = dict(base)
    env.update({
        "KTRDR_SIM_PORT": str(child.port),
        "KTRDR_SIM_BIND": cfg.bind,
        "KTRDR_SIM_PUBLIC_URL": f"http://127.0.0.1:{child.port}",
        "KTRDR_WORKER_PUBLIC_BASE_URL": f"http://127.0.0.1:{child.port}",
        "KTRDR_SIM_BACKEND_URL": f"http://127.0.0.1:{port['backend']}",
        "KTRDR_SIM_IB_URL": f"http://127.0.0.1:{port['ib-host']}",
        "KTRDR_OTEL_OTLP_ENDPOINT": cfg.otlp_endpoint,
        "KTRDR_SIM_SPEEDUP": str(cfg.speedup),
        "KTRDR_SIM_HEALTH_INTERVAL_S": str(cfg.health_interval_s),
        "KTRDR_SIM_RESTART_AFTER_S": str(cfg.restart_after_s),
        "KTRDR_SIM_MIX": cfg.mix,
        "KTRDR_SIM_CYCLES": str(cfg.cycles),
        "KTRDR_SIM_GAP_S": str(cfg.gap_s),
    })
    env.pop("KTRDR_WORKER_ID", None)
    if cfg.seed is not None:
        env["KTRDR_SIM_SEED"] = str(cfg.seed)
    return env


def run(cfg: LiveConfig, ports: Mapping[str, int], log: Callable[[str], None] = print) -> int:
    """Start every child; return when one of the services dies or on SIGTERM/SIGINT.

    The driver finishing its cycles is not an end: the services keep running (and being
    scraped) until the supervisor is stopped.
    """
    children = plan(ports)
    procs: list[tuple[Child, subprocess.Popen[bytes]]] = []
    stop = {"now": False}

    def on_signal(_signum: int, _frame: object) -> None:
        stop["now"] = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for child in children:
            cmd = [sys.executable, "-m", "ktrdr_sim.live", "--role", child.role]
            procs.append((child, subprocess.Popen(
                cmd, env=child_env(cfg, child, children, os.environ))))
        while not stop["now"]:
            for child, proc in procs:
                code = proc.poll()
                if code is not None and child.role != "driver":
                    log(f"ktrdr_sim.live: {child.name} exited with {code}")
                    return 1
                if code not in (None, 0):
                    log(f"ktrdr_sim.live: the driver exited with {code}")
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        for _, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
