"""Load benchmark of ``opdiag serve`` against a replayed Jaeger (not a test).

    python -m bench.load_bench            # full run (~2-3 min): 50 clients for 60 s
    python -m bench.load_bench --quick    # short run (~30 s)

It clones the demo corpus into ~200 recent operations (new trace ids, operation ids and
times inside Jaeger's lookback), loads them into the loopback ReplayJaeger with a realistic
per-request latency, starts ``opdiag serve --jaeger-url …`` as a subprocess and measures with a
bounded load generator (threads + httpx, bounded in count and time):

* ``/healthz`` — the floor;
* single diagnoses, cold (first request per id) and cached;
* the recent-operations list (cold: first request of a fresh server; then warm), compared
  with the time the replay Jaeger itself needs to answer the same searches;
* N concurrent clients for T seconds on a mixed workload: errors and server RSS growth.

It prints p50/p95, requests/s, Jaeger calls per request (from the replay server's call log)
and the ratios against the targets. The single-diagnosis rows separate the very first request
of a fresh server (nothing cached, not even the service list) from the following cold ones,
which may reuse the live window the server searched for an earlier diagnosis's baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from opdiag.devtools.replay_jaeger import ReplayJaeger
from opdiag.model import STATUS_ERROR, Span, Trace
from opdiag.operations import group_operations
from opdiag.settings import Settings, default_demo_traces
from opdiag.sources.readers import read_file

WINDOW_S = 5 * 3600  # clones spread over the last 5 h (Jaeger lookback is 6 h)
START_TIMEOUT_S = 120
REQUEST_TIMEOUT_S = 60


# ---------------------------------------------------------------- corpus


def _load_demo(directory: Path) -> list[Trace]:
    traces: list[Trace] = []
    for path in sorted(directory.iterdir()):
        if path.suffix in {".json", ".jsonl"}:
            traces.extend(read_file(path))
    return traces


def _new_id(seed: str, width: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:width]


def _tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if not isinstance(value, str):
        value = json.dumps(value, default=str)
    return {"key": key, "type": "string", "value": value}


class _Cloner:
    """Copies traces into legacy Jaeger JSON with new ids and shifted times."""

    def __init__(self, op_ids: Iterable[str]) -> None:
        ids = sorted(set(op_ids), key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(i) for i in ids)) if ids else None

    def _text(self, value: Any, suffix: str) -> Any:
        if isinstance(value, str) and self._pattern is not None:
            return self._pattern.sub(lambda m: f"{m.group(0)}_{suffix}", value)
        return value

    def trace(self, trace: Trace, k: int, shift_us: int) -> dict[str, Any]:
        suffix = f"b{k:03d}"
        tid = _new_id(f"{k}:{trace.trace_id}", 32)
        processes: dict[tuple[str, str], str] = {}
        proc_docs: dict[str, Any] = {}
        spans = []
        for span in trace.spans:
            resource = {key: self._text(v, suffix) for key, v in span.resource.items()}
            key = (span.service, json.dumps(resource, sort_keys=True, default=str))
            if key not in processes:
                pid = f"p{len(processes) + 1}"
                processes[key] = pid
                proc_docs[pid] = {
                    "serviceName": span.service,
                    "tags": [_tag(k2, v2) for k2, v2 in resource.items() if k2 != "service.name"],
                }
            spans.append(
                self._span(span, tid, k, shift_us=shift_us, suffix=suffix, pid=processes[key])
            )
        return {"traceID": tid, "spans": spans, "processes": proc_docs}

    def _span(
        self, span: Span, tid: str, k: int, *, shift_us: int, suffix: str, pid: str
    ) -> dict[str, Any]:
        tags = [_tag(key, self._text(v, suffix)) for key, v in span.attributes.items()]
        if span.kind != "internal" and "span.kind" not in span.attributes:
            tags.append(_tag("span.kind", span.kind))
        if span.status == STATUS_ERROR and "otel.status_code" not in span.attributes:
            tags.append(_tag("otel.status_code", "ERROR"))
            if span.status_message:
                tags.append(_tag("otel.status_description", span.status_message))
        refs = [
            {
                "refType": ref.ref_type,
                "traceID": _new_id(f"{k}:{ref.trace_id}", 32),
                "spanID": ref.span_id,
            }
            for ref in span.references
        ]
        logs = [
            {
                "timestamp": event.time_us + shift_us,
                "fields": [_tag("event", event.name)]
                + [_tag(key, self._text(v, suffix)) for key, v in event.attributes.items()],
            }
            for event in span.events
        ]
        return {
            "traceID": tid,
            "spanID": span.original_span_id or span.span_id,
            "operationName": span.name,
            "references": refs,
            "startTime": span.start_us + shift_us,
            "duration": span.duration_us,
            "tags": tags,
            "logs": logs,
            "processID": pid,
        }


@dataclass
class Corpus:
    document: dict[str, Any]
    operation_ids: list[str]
    traces: int
    operations: int


def build_corpus(target_ops: int, now_us: int, settings: Settings) -> Corpus:
    """Clone the demo corpus, operation by operation, until it holds ``target_ops``
    operations (failed dispatches without an id count too), all inside the lookback."""
    demo = _load_demo(default_demo_traces())
    if not demo:
        raise SystemExit(f"no demo traces in {default_demo_traces()}")
    groups = group_operations(demo, settings.diagnosis.noise_span_patterns)
    op_ids = [g.operation_id for g in groups if g.operation_id]
    rounds = math.ceil(target_ops / max(1, len(groups)))
    first = min(t.start_us for t in demo)
    span_us = max(t.end_us for t in demo) - first
    slot_us = max(0, (WINDOW_S * 1_000_000 - span_us) // max(1, rounds))
    cloner = _Cloner(op_ids)
    data: list[dict[str, Any]] = []
    ids: list[str] = []
    made = 0
    for k in range(rounds):
        # the newest round ends a minute before now; older rounds step back in time
        shift = (now_us - 60_000_000 - span_us - k * slot_us) - first
        done: set[str] = set()
        for group in groups:
            if made >= target_ops:
                break
            made += 1
            if group.operation_id:
                ids.append(f"{group.operation_id}_b{k:03d}")
            for trace in group.traces:
                if trace.trace_id not in done:
                    done.add(trace.trace_id)
                    data.append(cloner.trace(trace, k, shift))
    return Corpus(document={"data": data}, operation_ids=ids, traces=len(data), operations=made)


# ---------------------------------------------------------------- server


@dataclass
class Server:
    proc: subprocess.Popen[str]
    base: str
    banner: list[str]

    def rss_kb(self) -> int:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(match.group(1)) if match else 0

    def stop(self) -> int:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
        return self.proc.returncode


_SERVE = "import sys\nfrom opdiag.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"


def start_server(jaeger_url: str) -> Server:
    """``opdiag serve --jaeger-url URL --port 0`` as a subprocess; waits for its banner."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for var in ("OPDIAG_TRACES", "OPDIAG_AUTH_TOKEN", "JAEGER_URL"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "serve", "--jaeger-url", jaeger_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    banner: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip("\n"))
        if line.startswith("Stop with"):
            break
    match = re.search(r"(http://127\.0\.0\.1:\d+)/", "\n".join(banner))
    if not match:
        proc.kill()
        raise SystemExit("opdiag serve did not start:\n" + "\n".join(banner))
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
    return Server(proc=proc, base=match.group(1), banner=banner)


# ---------------------------------------------------------------- load


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0
    jaeger_calls: int = 0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        return ordered[index]

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.wall_s if self.wall_s else float("nan")

    def line(self) -> str:
        calls = self.jaeger_calls / len(self.latencies) if self.latencies else 0.0
        return (
            f"{self.name:<34} n={len(self.latencies):>5}  p50={self.pct(0.5) * 1000:8.1f} ms"
            f"  p95={self.pct(0.95) * 1000:8.1f} ms  {self.rps:8.1f} req/s"
            f"  jaeger calls/req={calls:6.1f}  errors={self.errors}"
        )


def run_load(
    name: str,
    base: str,
    paths: Callable[[int], str],
    *,
    clients: int,
    count: int | None = None,
    seconds: float | None = None,
    replay: ReplayJaeger | None = None,
    expect: int = 200,
) -> Result:
    """``clients`` threads, each with one keep-alive httpx client, until ``count`` requests
    in total or ``seconds`` have passed (whichever is given; both bound the run)."""
    result = Result(name)
    lock = threading.Lock()
    issued = 0
    deadline = time.monotonic() + (seconds if seconds is not None else 3600)
    calls_before = len(replay.calls) if replay else 0

    def worker() -> None:
        nonlocal issued
        with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
            while time.monotonic() < deadline:
                with lock:
                    if count is not None and issued >= count:
                        return
                    n = issued
                    issued += 1
                started = time.perf_counter()
                try:
                    response = client.get(paths(n))
                    ok = response.status_code == expect
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    result.latencies.append(elapsed)
                    result.errors += 0 if ok else 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        for _ in range(clients):
            pool.submit(worker)
    result.wall_s = time.perf_counter() - started
    if replay:
        result.jaeger_calls = len(replay.calls) - calls_before
    return result


def _cache_hits(client: httpx.Client) -> float:
    """opdiag's own count of diagnosis-cache hits, from its /metrics."""
    text = client.get("/metrics").text
    match = re.search(r'^opdiag_cache_lookups_total\{result="hit"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def split_cacheable(base: str, ids: list[str]) -> tuple[list[str], list[str]]:
    """Ask for each (already diagnosed) id once more and read the server's cache-hit counter:
    finished operations come from the cache, unfinished ones are recomputed by design."""
    cached, recomputed = [], []
    with httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        for ident in ids:
            before = _cache_hits(client)
            client.get(f"/api/v1/operations/{quote(ident, safe='')}")
            (cached if _cache_hits(client) > before else recomputed).append(ident)
    return cached, recomputed


def replay_search_time(replay: ReplayJaeger, calls: list[Any], concurrency: int) -> float:
    """Wall time for the replay Jaeger to answer exactly ``calls`` at the client's
    concurrency: the floor any Jaeger-backed list can reach."""
    urls = []
    for _, path, query in calls:
        params = [(k, v) for k, values in query.items() for v in values]
        urls.append((path, params))
    started = time.perf_counter()
    with (
        httpx.Client(base_url=replay.url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client,
        ThreadPoolExecutor(max_workers=concurrency) as pool,
    ):
        list(pool.map(lambda item: client.get(item[0], params=item[1]), urls))
    return time.perf_counter() - started


# ---------------------------------------------------------------- main


def _ratio(label: str, value: float, floor: float, limit: float) -> str:
    ratio = value / floor if floor else float("inf")
    verdict = "PASS" if ratio <= limit else "FAIL"
    return (
        f"{label:<58} {value * 1000:9.1f} ms / {floor * 1000:8.1f} ms = {ratio:5.2f}x"
        f" (target <= {limit:g}x)  {verdict}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short run (~30 s)")
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=30.0, help="replay Jaeger latency")
    parser.add_argument("--clients", type=int, default=None, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=None, help="concurrency run length")
    args = parser.parse_args(argv)
    clients = args.clients or (10 if args.quick else 50)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    samples = 100 if args.quick else 400
    settings = Settings()

    now_us = time.time_ns() // 1000
    corpus = build_corpus(args.operations, now_us, settings)
    print(
        f"corpus: {corpus.operations} operations ({len(corpus.operation_ids)} with an "
        f"operation id) in {corpus.traces} traces, cloned from {default_demo_traces()}"
    )
    replay = ReplayJaeger([corpus.document], latency_s=args.latency_ms / 1000.0).start()
    print(f"replay Jaeger at {replay.url}, latency {args.latency_ms:g} ms per request")
    results: list[Result] = []
    ratios: list[str] = []
    try:
        # ---- server 1: floor, single diagnoses cold and cached
        server = start_server(replay.url)
        print(f"opdiag serve at {server.base} (pid {server.proc.pid})")
        ids = corpus.operation_ids
        cold_ids = ids[: min(len(ids), 20 if args.quick else 60)]
        run_load("warm-up /healthz", server.base, lambda n: "/healthz", clients=1, count=200)
        # The very first diagnosis finds nothing cached (not even the service list); the
        # following cold ones (first request per id) may reuse the shared live window.
        first_single = run_load(
            "single diagnosis, first on a fresh server",
            server.base,
            lambda n: f"/api/v1/operations/{quote(cold_ids[0], safe='')}",
            clients=1,
            count=1,
            replay=replay,
        )
        cold_single = run_load(
            "single diagnosis, cold",
            server.base,
            lambda n: f"/api/v1/operations/{quote(cold_ids[n + 1], safe='')}",
            clients=1,
            count=len(cold_ids) - 1,
            replay=replay,
        )
        # Finished operations are cached; unfinished ones (stuck, running) are recomputed
        # on every request by design, because their verdict depends on "now".
        cached_ids, recomputed_ids = split_cacheable(server.base, cold_ids)
        if not cached_ids:
            raise SystemExit("no finished operation among the sampled ids")
        healthz = run_load("/healthz", server.base, lambda n: "/healthz", clients=1, count=samples)
        cached_single = run_load(
            f"single diagnosis, cached ({len(cached_ids)} ids)",
            server.base,
            lambda n: f"/api/v1/operations/{quote(cached_ids[n % len(cached_ids)], safe='')}",
            clients=1,
            count=samples,
            replay=replay,
        )
        healthz_again = run_load(
            "/healthz (again)", server.base, lambda n: "/healthz", clients=1, count=samples
        )
        unfinished = run_load(
            f"single diagnosis, unfinished ({len(recomputed_ids)} ids)",
            server.base,
            lambda n: (
                f"/api/v1/operations/{quote(recomputed_ids[n % len(recomputed_ids)], safe='')}"
            ),
            clients=1,
            count=min(samples, 50) if recomputed_ids else 0,
            replay=replay,
        )
        server.stop()
        results += [healthz, first_single, cold_single, cached_single, healthz_again, unfinished]
        floor = (healthz.pct(0.95) + healthz_again.pct(0.95)) / 2
        ratios.append(
            _ratio(
                "cached single diagnosis p95 vs /healthz p95",
                cached_single.pct(0.95),
                floor,
                3.0,
            )
        )

        # ---- server 2: the list, cold then warm, then concurrency
        server = start_server(replay.url)
        list_path = "/api/v1/operations?from=now-6h&to=now&limit=200"
        calls_before = len(replay.calls)
        cold_list = run_load(
            "operations list (200), cold",
            server.base,
            lambda n: list_path,
            clients=1,
            count=1,
            replay=replay,
        )
        list_calls = replay.calls[calls_before:]
        with httpx.Client(base_url=server.base, timeout=REQUEST_TIMEOUT_S, trust_env=False) as c:
            rows = c.get(list_path).json()
        warm_list = run_load(
            "operations list (200), warm",
            server.base,
            lambda n: list_path,
            clients=1,
            count=10 if args.quick else 30,
            replay=replay,
        )
        search_floor = min(
            replay_search_time(replay, list_calls, settings.jaeger.concurrency) for _ in range(3)
        )
        results += [cold_list, warm_list]
        print(f"list answered {len(rows)} rows; the cold list made {len(list_calls)} Jaeger calls")
        ratios.append(
            _ratio(
                "cold 200-operation list vs replay Jaeger answering its searches",
                cold_list.pct(0.5),
                search_floor,
                3.0,
            )
        )

        mix = [
            list_path,
            "/healthz",
            *(f"/api/v1/operations/{quote(i, safe='')}" for i in ids[:40]),
            *(f"/api/v1/operations/{quote(i, safe='')}/flow" for i in ids[:10]),
            *(f"/operations/{quote(i, safe='')}" for i in ids[:10]),
        ]
        rss: list[tuple[float, int]] = [(0.0, server.rss_kb())]
        stop_sampling = threading.Event()
        t0 = time.monotonic()

        def sample_rss() -> None:
            while not stop_sampling.wait(1.0):
                rss.append((time.monotonic() - t0, server.rss_kb()))

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        concurrent = run_load(
            f"{clients} clients x {seconds:g} s, mixed",
            server.base,
            lambda n: mix[n % len(mix)],
            clients=clients,
            seconds=seconds,
            replay=replay,
        )
        stop_sampling.set()
        sampler.join()
        rss.append((time.monotonic() - t0, server.rss_kb()))
        exit_code = server.stop()
        results.append(concurrent)
    finally:
        replay.stop()

    print()
    for result in results:
        print(result.line())
    print()
    third = [kb for t, kb in rss if t >= seconds / 3] or [rss[-1][1]]
    start_kb, third_kb, end_kb = rss[0][1], third[0], rss[-1][1]
    peak_kb = max(kb for _, kb in rss)
    growth = (end_kb - third_kb) / third_kb if third_kb else 0.0
    print(
        f"server RSS: start {start_kb / 1024:.1f} MiB, after 1/3 {third_kb / 1024:.1f} MiB, "
        f"end {end_kb / 1024:.1f} MiB, peak {peak_kb / 1024:.1f} MiB "
        f"(growth over the last 2/3: {growth * 100:+.1f} %)"
    )
    timeline = [f"{t:4.0f}s {kb / 1024:6.1f}" for t, kb in rss[:: max(1, len(rss) // 12)]]
    print("server RSS timeline (MiB): " + ", ".join(timeline))
    print(f"server exit status after SIGTERM: {exit_code}")
    print()
    for line in ratios:
        print(line)
    bounded = growth <= 0.10
    print(
        f"{'no error under ' + str(clients) + ' clients for ' + format(seconds, 'g') + ' s':<58}"
        f" errors={concurrent.errors}  {'PASS' if concurrent.errors == 0 else 'FAIL'}"
    )
    print(
        f"{'no unbounded memory growth (last 2/3 of the run <= +10 %)':<58}"
        f" {growth * 100:+.1f} %  {'PASS' if bounded else 'FAIL'}"
    )
    failed = any(line.endswith("FAIL") for line in ratios) or concurrent.errors or not bounded
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
