"""Score opdiag against a recording with expected diagnoses (``cases.yaml`` beside ``traces/``,
the format of ``tests/data/real-ktrdr/run1``): each case through ``opdiag diagnose``, each key
checked, totals per key printed.

    python -m opdiag.devtools.score_cases tests/data/real-ktrdr/run1 [--json]

Exit status 0 when every case passes every key, 1 otherwise, 2 for a bad directory.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

KEYS = ("verdict", "root_cause", "mentions", "bottleneck")
# The header: root_cause is "null when there is no root cause (healthy, cancelled)"; for
# other verdicts a null root_cause is not judged (a lost worker is no span).
NO_ROOT_CAUSE = ("healthy", "cancelled")


def check_case(d: dict[str, Any], case: dict[str, Any]) -> dict[str, bool]:
    """Each judged key of ``case`` (see the header of cases.yaml) against a diagnosis as
    ``opdiag diagnose --format json`` prints it; keys the case does not judge are absent."""
    out = {"verdict": d["verdict"] in [case["verdict"], *(case.get("also_acceptable") or [])]}
    cause = case.get("root_cause")
    if cause:
        rc = d.get("root_cause") or {}
        out["root_cause"] = fnmatchcase(rc.get("service", ""), cause["service"]) and (
            rc.get("span_name") == cause["span"]
        )
    elif case["verdict"] in NO_ROOT_CAUSE:
        out["root_cause"] = d.get("root_cause") is None
    if case.get("mentions"):
        summary = d["summary"].lower()
        out["mentions"] = all(str(w).lower() in summary for w in case["mentions"])
    wanted = case.get("bottleneck")
    if wanted:
        b = d.get("bottleneck") or {}
        if "span" in wanted:
            out["bottleneck"] = (b.get("kind"), b.get("span_name")) == ("span", wanted["span"])
        else:
            out["bottleneck"] = (b.get("kind"), b.get("after_span_name")) == (
                "gap",
                wanted["gap_after"],
            )
    return out


def sequence_of(name: str) -> int:
    """``20261204T154141_00000_grpc_ktrdr-api.json`` -> 0 (the recorder's file order)."""
    return int(name.split("_")[1])


def snapshot(traces: Path, upto: int | None, into: Path) -> Path:
    """The directory as it was at file ``upto`` (links to the first files), or all of it."""
    if upto is None:
        return traces
    into.mkdir(parents=True, exist_ok=True)
    for file in sorted(traces.iterdir()):
        if file.suffix == ".json" and sequence_of(file.name) <= upto:
            os.symlink(file.resolve(), into / file.name)
    return into


def diagnose_case(run: Path, case: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """``opdiag diagnose ID --traces <snapshot> --now NOW --format json``, in process."""
    from opdiag.cli.main import main

    source = snapshot(run / "traces", case.get("upto"), scratch)
    out, err = io.StringIO(), io.StringIO()
    argv = ["diagnose", str(case["id"]), "--traces", str(source), "--now", str(case["now"])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--format", "json"])
    if code != 0:
        raise RuntimeError(f"opdiag diagnose {case['id']} exited {code}: {err.getvalue()}")
    return json.loads(out.getvalue())


def score(run: Path) -> tuple[list[dict[str, Any]], dict[str, list[int]]]:
    """Per-case results and, per key, [passed, judged]."""
    cases = yaml.safe_load((run / "cases.yaml").read_text(encoding="utf-8"))
    totals = {k: [0, 0] for k in KEYS}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(cases):
            d = diagnose_case(run, case, Path(tmp) / f"case{i}")
            checks = check_case(d, case)
            for key, ok in checks.items():
                totals[key][0] += ok
                totals[key][1] += 1
            rows.append(
                {
                    "id": case["id"],
                    "upto": case.get("upto"),
                    "verdict": d["verdict"],
                    "summary": d["summary"],
                    "checks": checks,
                }
            )
    return rows, totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opdiag.devtools.score_cases")
    parser.add_argument("run", type=Path, help="directory holding cases.yaml and traces/")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not (args.run / "cases.yaml").is_file() or not (args.run / "traces").is_dir():
        print(f"{args.run}: needs cases.yaml and traces/", file=sys.stderr)
        return 2
    rows, totals = score(args.run)
    if args.json:
        print(json.dumps({"cases": rows, "totals": totals}, indent=2))
    else:
        for row in rows:
            bad = [k for k, ok in row["checks"].items() if not ok]
            mark = "ok " if not bad else "BAD"
            print(
                f"{mark} {row['id'][:40]:40} {row['upto'] or '':>5} {row['verdict']:20} "
                f"{'missed: ' + ','.join(bad) if bad else ''}"
            )
        print("  ".join(f"{k} {p}/{n}" for k, (p, n) in totals.items()))
    return 0 if all(p == n for p, n in totals.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
