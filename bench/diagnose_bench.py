"""How ``opdiag diagnose`` scales against the jq recipe people use instead.

For each size the generated KTRDR trace (``bench.gen_traces``) is diagnosed by
``opdiag diagnose <op-id> --traces <file> --format json`` and sorted by
``jq '.data[0].spans | sort_by(.duration)' <file>``, each as its own child process, measured
from process start to the last byte of output: wall time (median of ``--repeat`` runs) and
peak RSS of that child alone (``os.wait4`` rusage ``ru_maxrss``); its CPU seconds are shown
too, as they vary less than wall time on a busy machine.

    python -m bench.diagnose_bench [--sizes 1000 10000 100000] [--repeat 3] [--dir DIR]

This is a harness, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.gen_traces import OPERATION_ID, write

REPO = Path(__file__).resolve().parents[1]
JQ_FILTER = ".data[0].spans | sort_by(.duration)"


@dataclass
class Run:
    """One child process: wall and CPU seconds, peak RSS in MB, exit status, stderr tail."""

    wall_s: float
    cpu_s: float
    peak_mb: float
    status: int
    stderr: str


@dataclass
class Result:
    spans: int
    tool: str
    wall_s: float
    peak_mb: float
    note: str = ""
    cpu_s: float = math.nan


def measure(argv: list[str], stdout_path: Path) -> Run:
    """Run ``argv`` once; wall time from spawn to exit, peak RSS of that child only."""
    with stdout_path.open("wb") as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read()[-2000:].decode("utf-8", "replace").strip()
    cpu = usage.ru_utime + usage.ru_stime
    return Run(wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode, tail)


def opdiag_command() -> list[str] | None:
    """The venv's ``opdiag`` script, or the interpreter running ``opdiag.cli.main``."""
    script = Path(sys.executable).with_name("opdiag")
    if script.exists():
        return [str(script)]
    found = shutil.which("opdiag")
    return [found] if found else None


def bench_opdiag(
    path: Path, spans: int, repeat: int, scratch: Path, cmd: list[str] | None
) -> Result:
    if cmd is None:
        return Result(spans, "opdiag", math.nan, math.nan, "opdiag is not installed")
    argv = [*cmd, "diagnose", OPERATION_ID, "--traces", str(path), "--format", "json"]
    runs: list[Run] = []
    verdict = ""
    for _ in range(repeat):
        out = scratch / "opdiag.json"
        try:
            run = measure(argv, out)
        except OSError as exc:
            return Result(spans, "opdiag", math.nan, math.nan, f"cannot start opdiag: {exc}")
        if run.status != 0:
            reason = run.stderr.splitlines()[-1] if run.stderr else f"exit {run.status}"
            if any(m in run.stderr for m in ("invalid choice", "No module named", "Errno 2")):
                reason = f"`opdiag diagnose` is not available yet ({reason})"
            return Result(spans, "opdiag", math.nan, math.nan, reason[:160])
        try:
            verdict = str(orjson.loads(out.read_bytes()).get("verdict", "?"))
        except orjson.JSONDecodeError:
            return Result(spans, "opdiag", math.nan, math.nan, "output is not JSON")
        runs.append(run)
    return _summarise(spans, "opdiag", runs, f"verdict {verdict}")


def bench_jq(path: Path, spans: int, repeat: int, scratch: Path) -> Result:
    jq = shutil.which("jq") or ("/usr/bin/jq" if Path("/usr/bin/jq").exists() else None)
    if jq is None:
        return Result(spans, "jq", math.nan, math.nan, "jq is not installed")
    runs = []
    for _ in range(repeat):
        run = measure([jq, JQ_FILTER, str(path)], scratch / "jq.json")
        if run.status != 0:
            return Result(spans, "jq", math.nan, math.nan, f"jq failed: {run.stderr[:120]}")
        runs.append(run)
    return _summarise(spans, "jq", runs, "")


def _summarise(spans: int, tool: str, runs: list[Run], note: str) -> Result:
    return Result(
        spans,
        tool,
        statistics.median(r.wall_s for r in runs),
        statistics.median(r.peak_mb for r in runs),
        note,
        statistics.median(r.cpu_s for r in runs),
    )


def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def _growth(results: list[Result], tool: str) -> dict[int, str]:
    """Time growth per 10× spans between consecutive sizes (1.0 = flat, 10.0 = linear)."""
    rows = [r for r in results if r.tool == tool]
    out: dict[int, str] = {}
    for prev, cur in itertools.pairwise(rows):
        if math.isnan(prev.wall_s) or math.isnan(cur.wall_s) or cur.spans <= prev.spans:
            continue
        decades = math.log10(cur.spans / prev.spans)
        out[cur.spans] = f"{(cur.wall_s / prev.wall_s) ** (1 / decades):.2f}x"
    return out


def report(results: list[Result]) -> str:
    growth = {tool: _growth(results, tool) for tool in ("opdiag", "jq")}
    lines = [
        f"{'spans':>8}  {'tool':<7} {'wall s':>8} {'cpu s':>7} {'spans/s':>10} {'peak MB':>8} "
        f"{'x10 growth':>10}  note",
    ]
    for r in results:
        rate = r.spans / r.wall_s if r.wall_s and not math.isnan(r.wall_s) else math.nan
        lines.append(
            f"{r.spans:>8}  {r.tool:<7} {_fmt(r.wall_s, '.3f'):>8} {_fmt(r.cpu_s, '.3f'):>7} "
            f"{_fmt(rate, ',.0f'):>10} "
            f"{_fmt(r.peak_mb, '.1f'):>8} {growth[r.tool].get(r.spans, '-'):>10}  {r.note}"
        )
    lines.append("")
    lines.append(
        f"{'spans':>8}  {'time opdiag/jq':>14} {'cpu opdiag/jq':>13} {'memory opdiag/jq':>17}"
    )
    by_size: dict[int, dict[str, Result]] = {}
    for r in results:
        by_size.setdefault(r.spans, {})[r.tool] = r
    for spans, tools in by_size.items():
        o, j = tools.get("opdiag"), tools.get("jq")
        if o is None or j is None:
            continue
        lines.append(
            f"{spans:>8}  {_fmt(o.wall_s / j.wall_s, '.2f'):>14} "
            f"{_fmt(o.cpu_s / j.cpu_s, '.2f'):>13} {_fmt(o.peak_mb / j.peak_mb, '.2f'):>17}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="opdiag diagnose vs jq on generated traces")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and size (median)")
    parser.add_argument("--dir", type=Path, default=None, help="where the trace files go")
    parser.add_argument(
        "--opdiag", default=None, help="opdiag command to run (default: the venv's script)"
    )
    args = parser.parse_args(argv)
    cmd = args.opdiag.split() if args.opdiag else opdiag_command()
    if args.repeat < 1 or any(n < 20 for n in args.sizes):
        parser.error("--repeat must be >= 1 and every size >= 20 spans")
    work = args.dir or Path(tempfile.mkdtemp(prefix="opdiag-bench-"))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="opdiag-bench-out-") as tmp:
        scratch = Path(tmp)
        for n in sorted(args.sizes):
            path = work / f"ktrdr-{n}.json"
            spans = write(path, n)
            print(f"# {spans} spans, {path.stat().st_size / 1e6:.1f} MB: {path}", flush=True)
            results.append(bench_opdiag(path, spans, args.repeat, scratch, cmd))
            results.append(bench_jq(path, spans, args.repeat, scratch))
    print()
    print(report(results))
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
