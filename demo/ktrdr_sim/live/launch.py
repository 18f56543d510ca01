"""Start the whole live demo (``--role all``) as a child process group, and always stop it.

Used by the tests and scripts: free loopback ports outside the kernel's ephemeral range, a new
session so one signal reaches every role, and a bounded stop that escalates to SIGKILL.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

SERVICES = ("ib-host", "backend", "backtest-worker-1", "backtest-worker-2",
            "training-worker-1", "training-worker-2")


_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(x) for x in _EPHEMERAL.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default
    return low, high


def _own_slice(ports: range) -> range:
    """This process's share of ``ports`` when parallel test workers run (pytest-xdist's
    ``PYTEST_XDIST_WORKER=gw<i>`` of ``PYTEST_XDIST_WORKER_COUNT``): a port one worker chose
    and released for its demo, database or Jaeger was bound by the other's before it (a red
    CI run: "Address already in use"). Disjoint slices cannot collide. All of it otherwise."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        index, count = int(name.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    except (KeyError, ValueError):
        return ports
    if not 0 <= index < count:
        return ports
    size = len(ports) // count
    return ports[index * size:(index + 1) * size]


def free_ports(count: int) -> list[int]:
    """Free ports on 127.0.0.1, held together while chosen so they differ. Taken outside the
    kernel's ephemeral range: a port the OS handed out and released goes back to the pool
    its outgoing connections draw from, and one of them took a worker's port before the
    worker bound it ("Address already in use", a red CI run)."""
    low, high = _ephemeral_range()
    pools = [r for r in (range(_LOWEST, low), range(high + 1, 65536)) if len(r) > count * 4]
    pools = [part for r in pools if len(part := _own_slice(r)) > count * 4] or pools
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        for _ in range(count * 50):
            if len(socks) == count:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", rng.choice(rng.choice(pools)) if pools else 0))
            except OSError:
                s.close()
                continue
            socks.append(s)
        if len(socks) < count:
            raise RuntimeError(f"no {count} free ports on 127.0.0.1")
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@contextmanager
def demo(ports: Mapping[str, int], *, otlp_endpoint: str = "none", speedup: float = 100.0,
         mix: str = "", cycles: int = 1, health_interval_s: float = 50.0,
         log: Path | None = None, extra_env: Mapping[str, str] | None = None
         ) -> Iterator[subprocess.Popen[bytes]]:
    """Run every role on loopback until the block ends, whatever happens inside it."""
    cmd = [sys.executable, "-m", "ktrdr_sim.live", "--role", "all", "--bind", "127.0.0.1",
           "--otlp-endpoint", otlp_endpoint, "--speedup", str(speedup),
           "--cycles", str(cycles), "--gap-s", "1"]
    cmd += [f"--port={name}={port}" for name, port in ports.items()]
    if mix:
        cmd += ["--mix", mix]
    env = {**os.environ, "KTRDR_SIM_HEALTH_INTERVAL_S": str(health_interval_s),
           **(extra_env or {})}
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)
        if log is not None:
            out.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it does not end in time."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout_s)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    proc.wait()


def run_cycle(otlp_endpoint: str, log: Path, *, timeout_s: float,
              speedup: float = 100.0) -> None:
    """Every role on fresh loopback ports for one full cycle of the scenario mix, then
    stopped (each process flushes its spans on SIGTERM). ``RuntimeError`` with the log when
    the demo dies or the cycle does not end within ``timeout_s``."""
    ports = dict(zip(SERVICES, free_ports(len(SERVICES)), strict=True))
    with demo(ports, otlp_endpoint=otlp_endpoint, speedup=speedup, cycles=1, log=log) as proc:
        deadline = time.monotonic() + timeout_s
        while "cycle 1 done" not in log.read_text():
            if proc.poll() is not None:
                raise RuntimeError("the demo stopped:\n" + log.read_text())
            if time.monotonic() > deadline:
                raise RuntimeError("no full cycle:\n" + log.read_text())
            time.sleep(0.5)
