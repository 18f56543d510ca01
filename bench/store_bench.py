"""Benchmark of the watcher and the verdict store against a live Jaeger (not a test).

    python -m bench.store_bench                 # the live demo into the replay Jaeger (~3 min)
    python -m bench.store_bench --jaeger-url http://127.0.0.1:16686 \\
        --otlp-endpoint http://127.0.0.1:4318   # a real Jaeger (the demo exports into it)

One run measures both numbers of the verdict store's design:

1. the watcher's cost per pass, while the simulated KTRDR (every role a process, 100x faster
   than real time, the whole scenario mix) keeps sending spans: Jaeger calls (counted by the
   source's observer, i.e. every HTTP request opdiag makes) and wall time, for the first pass
   (everything in the window is new) and the following ones (only unfinished operations are
   judged again; the window search is repeated once its cache entry expired);
2. the latency of ``/api/v1/operations`` and ``/api/v1/verdict-counts`` served by
   ``opdiag serve`` from the store, against the same routes of an ``opdiag serve`` without a
   store (today's path: window search, grouping, cached diagnoses), both on the same Jaeger,
   warm (the default ``jaeger.search_ttl_s``: a dashboard refreshing) and cold (every request
   searches Jaeger, ``search_ttl_s = 0``).

Without ``--jaeger-url`` the spans go to the demo's OTLP sink, which feeds opdiag's replay
Jaeger (``ktrdr_sim.live.replay_sink``); it answers like Jaeger v2.20's query API.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from ktrdr_sim.live import launch
from ktrdr_sim.live.replay_sink import ReplaySink
from opdiag.api.server import ServerThread, build_server
from opdiag.devtools.replay_jaeger import ReplayJaeger
from opdiag.service import DiagnosisService
from opdiag.settings import Settings
from opdiag.sources.jaeger import JaegerSource
from opdiag.store.factory import open_store
from opdiag.timeutil import wall_clock_us
from opdiag.watcher import Watcher

CYCLE_TIMEOUT_S = 300.0


class CallCounter:
    """The JaegerSource observer: one call per HTTP request to Jaeger."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.seconds = 0.0

    def __call__(self, endpoint: str, seconds: float, outcome: str) -> None:
        self.calls[endpoint] += 1
        self.seconds += seconds

    def total(self) -> int:
        return sum(self.calls.values())


def _settings(jaeger_url: str, store: Path | None, *, ttl_s: float | None = None) -> Settings:
    data: dict[str, Any] = {
        "jaeger": {"url": jaeger_url},
        "server": {"port": 0, "threads": 4},
        "watcher": {"enabled": store is not None, "interval_s": 3600},
    }
    if ttl_s is not None:
        data["jaeger"]["search_ttl_s"] = ttl_s
    if store is not None:
        data["store"] = {"path": str(store)}
    return Settings.model_validate(data)


@contextmanager
def _live_demo(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    """The simulated KTRDR exporting spans; yields the Jaeger query URL to read them from."""
    with ExitStack() as stack:
        if args.jaeger_url:
            jaeger_url, otlp = args.jaeger_url, args.otlp_endpoint
        else:
            replay = stack.enter_context(ReplayJaeger([]))
            sink = ReplaySink(replay).start()
            stack.callback(sink.stop)
            jaeger_url, otlp = replay.url, sink.endpoint
        log = workdir / "demo.log"
        ports = dict(zip(launch.SERVICES, launch.free_ports(len(launch.SERVICES)), strict=True))
        stack.enter_context(launch.demo(ports, otlp_endpoint=otlp, speedup=args.speedup,
                                        cycles=args.cycles, log=log))
        deadline = time.monotonic() + CYCLE_TIMEOUT_S
        while "cycle 1 done" not in (log.read_text() if log.exists() else ""):
            if time.monotonic() > deadline:
                raise SystemExit("the demo did not finish a cycle:\n" + log.read_text()[-2000:])
            time.sleep(1)
        print(f"live demo: one cycle of every scenario done, still running ({jaeger_url})")
        yield jaeger_url


def measure_passes(jaeger_url: str, store_path: Path, passes: int, gap_s: float) -> None:
    """Watcher passes on their own service and source, every ``gap_s`` (longer than the
    search cache's TTL, as with the default 15 s interval and 10 s TTL)."""
    settings = _settings(jaeger_url, store_path)
    counter = CallCounter()
    source = JaegerSource(settings.jaeger, observer=counter)
    store = open_store(settings)
    try:
        watcher = Watcher(DiagnosisService(source, settings), store, settings)
        print(f"\nwatcher passes (every {gap_s:g} s; search cache TTL "
              f"{settings.jaeger.search_ttl_s:g} s)")
        print(f"{'pass':>4} {'jaeger calls':>12} {'jaeger s':>9} {'pass s':>7} {'ops':>5} "
              f"{'new verdicts':>12} {'followed':>8} {'unsettled':>9}")
        rows = []
        for number in range(1, passes + 1):
            before_calls, before_s = counter.total(), counter.seconds
            report = watcher.run_once(now_us=wall_clock_us())
            if report is None:
                raise SystemExit(f"pass {number} failed: {watcher.last_error}")
            calls = counter.total() - before_calls
            unsettled = sum(p.count for p in report.in_progress)
            rows.append((calls, report.seconds))
            print(f"{number:>4} {calls:>12} {counter.seconds - before_s:>9.3f} "
                  f"{report.seconds:>7.3f} {report.seen:>5} {len(report.new_verdicts):>12} "
                  f"{report.followed:>8} {unsettled:>9}")
            time.sleep(gap_s)
        steady = rows[1:]
        print(f"first pass: {rows[0][0]} Jaeger calls, {rows[0][1]:.3f} s; following passes: "
              f"median {statistics.median(c for c, _ in steady):g} calls, "
              f"{statistics.median(s for _, s in steady):.3f} s")
        print(f"calls by endpoint over all passes: {dict(counter.calls)}; operations in the "
              f"store: {len(store.operations(0, 2**62))}")
    finally:
        store.close()
        source.close()


def _latency(base: str, path: str, count: int) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=120, trust_env=False) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(path)
            out.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.text[:200]}")
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_routes(jaeger_url: str, store_path: Path, count: int) -> None:
    """The two routes from the store and without it, warm and cold."""
    now_ms = wall_clock_us() // 1000
    span = f"from={now_ms - 6 * 3_600_000}&to={now_ms}"
    paths = {
        "/api/v1/operations": f"/api/v1/operations?{span}&limit=200",
        "/api/v1/verdict-counts": f"/api/v1/verdict-counts?{span}&interval=300000",
    }
    setups = {
        "store": _settings(jaeger_url, store_path),
        "traces, warm": _settings(jaeger_url, None),
        "traces, cold": _settings(jaeger_url, None, ttl_s=0),
    }
    results: dict[tuple[str, str], list[float]] = {}
    rows_seen: dict[str, int] = {}
    for name, settings in setups.items():
        server, state = build_server(settings)
        running = ServerThread(server, state).start()
        try:
            if state.watcher is not None:  # bring the store up to date (the server's watcher)
                assert state.watcher.run_once() is not None, state.watcher.last_error
            for route, path in paths.items():
                _latency(running.url, path, 1)  # first request: caches, connection
                results[(name, route)] = _latency(running.url, path, count)
            listed = httpx.get(running.url + paths["/api/v1/operations"], timeout=120)
            rows_seen[name] = len(listed.json())
        finally:
            running.stop()
    print(f"\nroute latency, {count} sequential requests each (ms; rows listed: {rows_seen})")
    print(f"{'route':<24} {'source':<14} {'p50':>8} {'p95':>8} {'mean':>8} {'vs store':>9}")
    for route in paths:
        store_p50 = _pct(results[("store", route)], 0.5)
        for name in setups:
            values = results[(name, route)]
            p50 = _pct(values, 0.5)
            print(f"{route:<24} {name:<14} {p50 * 1000:>8.2f} {_pct(values, 0.95) * 1000:>8.2f} "
                  f"{statistics.fmean(values) * 1000:>8.2f} {p50 / store_p50:>8.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jaeger-url", help="a running Jaeger's query URL (default: replay)")
    parser.add_argument("--otlp-endpoint", default="http://127.0.0.1:4318",
                        help="where the demo exports when --jaeger-url is given")
    parser.add_argument("--speedup", type=float, default=100.0)
    parser.add_argument("--cycles", type=int, default=0, help="demo cycles (0: until the end)")
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--gap-s", type=float, default=11.0,
                        help="seconds between passes (default: just over the 10 s cache TTL)")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opdiag-store-bench-") as tmp:
        workdir = Path(tmp)
        with _live_demo(args, workdir) as jaeger_url:
            measure_passes(jaeger_url, workdir / "watcher.sqlite3", args.passes, args.gap_s)
            # The store the passes filled: it holds what the window showed over all of them.
            measure_routes(jaeger_url, workdir / "watcher.sqlite3", args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
