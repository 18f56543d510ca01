"""``python -m ktrdr_sim.live --role ROLE``: one simulated KTRDR process, or all of them.

Roles: ``backend`` (ktrdr-api, :8000), ``backtest-worker`` (:5003), ``training-worker``
(:5005), ``ib-host`` (:5001), ``driver`` (the CLI running the scenario mix), ``all`` (every
role as a child process on loopback). Configuration comes from the environment
(``KTRDR_SIM_*``, ``KTRDR_OTEL_OTLP_ENDPOINT``/``OTEL_EXPORTER_OTLP_ENDPOINT``,
``KTRDR_WORKER_ID``, ``KTRDR_WORKER_PUBLIC_BASE_URL``), flags override it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from ktrdr_sim.live import backend, driver, ibhost, supervisor, worker
from ktrdr_sim.live.config import ROLES, WORKER_TYPES, LiveConfig, from_env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ktrdr_sim.live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", choices=ROLES, default="all")
    p.add_argument("--otlp-endpoint", help="OTLP/HTTP base URL, or `none` to export nothing")
    p.add_argument("--port", action="append", default=[], metavar="[NAME=]PORT",
                   help="this role's port; with --role all, NAME=PORT per service "
                        f"({', '.join(n for n, _, _ in supervisor.CHILDREN[:-1])})")
    p.add_argument("--bind", help="address to listen on")
    p.add_argument("--speedup", type=float, help="compress KTRDR time N times")
    p.add_argument("--mix", help="scenario weights name=N,… (driver)")
    p.add_argument("--cycles", type=int, help="cycles of the mix, 0 = forever (driver)")
    p.add_argument("--gap-s", type=float, help="pause between scenarios, KTRDR seconds")
    p.add_argument("--seed", type=int)
    return p


def _ports(args: argparse.Namespace) -> tuple[int | None, dict[str, int]]:
    single: int | None = None
    named: dict[str, int] = {}
    for item in args.port:
        name, sep, port = item.rpartition("=")
        if not port.isdigit():
            raise SystemExit(f"--port expects [NAME=]PORT, got {item!r}")
        if sep:
            named[name] = int(port)
        else:
            single = int(port)
    return single, named


def _wait_for_signal(stopping: threading.Event) -> None:
    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    stopping.wait()


def serve_role(cfg: LiveConfig) -> int:
    """Run one service role until SIGTERM/SIGINT."""
    runners = {"backend": backend.run, "backtest-worker": worker.run,
               "training-worker": worker.run, "ib-host": ibhost.run}
    try:
        service = runners[cfg.role](cfg)
    except OSError as exc:
        print(f"ktrdr_sim.live {cfg.role}: cannot listen on {cfg.bind}:{cfg.port}: {exc}",
              file=sys.stderr)
        return 2
    print(f"ktrdr_sim.live {cfg.role}: {service.node.service_name} on :{cfg.port}", flush=True)
    try:
        _wait_for_signal(service.node.stopping)
    finally:
        service.app.stop()
        service.node.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    single, named = _ports(args)
    try:
        cfg = from_env(args.role, otlp_endpoint=args.otlp_endpoint, port=single,
                       bind=args.bind, speedup=args.speedup, mix=args.mix, cycles=args.cycles,
                       gap_s=args.gap_s, seed=args.seed)
        if cfg.mix:
            driver.parse_mix(cfg.mix)
        if cfg.role == "all":
            return supervisor.run(cfg, named)
    except ValueError as exc:
        print(f"ktrdr_sim.live: {exc}", file=sys.stderr)
        return 2
    if cfg.role == "driver":
        the_driver = driver.Driver(cfg)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, lambda _n, _f: the_driver.node.stopping.set())
        return driver.run(the_driver, _log)
    if cfg.role in WORKER_TYPES and not os.environ.get(worker.CHILD_ENV):
        return worker.keep(cfg, _log)
    return serve_role(cfg)


def _log(message: str) -> None:
    print(message, flush=True)
