"""The real KTRDR, recorded (tests/data/real-ktrdr): every case of ``cases.yaml`` through
``opdiag diagnose``, checked key by key as the file's header defines them.

``upto: N`` is the directory as it was while the operation ran: the files whose sequence number
(the 5 digits after the timestamp) is at most N. ``now`` is the clock judged by. A verdict may
be any of ``[verdict] + also_acceptable``; the root cause is a service glob and a span name;
every word of ``mentions`` must be in the summary; the bottleneck is a span (``span``) or time
no span covers after a span (``gap_after``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REAL_KTRDR
from opdiag.cli.main import main

RUNS = sorted(p for p in REAL_KTRDR.iterdir() if (p / "cases.yaml").is_file())


def _cases() -> list[Any]:
    out = []
    for run in RUNS:
        for i, case in enumerate(yaml.safe_load((run / "cases.yaml").read_text("utf-8"))):
            label = f"{run.name}-{i:02d}-{case['id'][:24]}-{case.get('upto') or 'all'}"
            out.append(pytest.param(run, case, id=label))
    return out


def _sequence(name: str) -> int:
    """``20261204T154141_00000_grpc_ktrdr-api.json`` -> 0."""
    return int(name.split("_")[1])


def _snapshot(run: Path, upto: int | None, tmp_path: Path) -> Path:
    traces = run / "traces"
    if upto is None:
        return traces
    snap = tmp_path / "snapshot"
    snap.mkdir()
    for file in sorted(traces.iterdir()):
        if file.suffix == ".json" and _sequence(file.name) <= upto:
            os.symlink(file, snap / file.name)
    return snap


def diagnose(run: Path, case: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    source = _snapshot(run, case.get("upto"), tmp_path)
    out, err = io.StringIO(), io.StringIO()
    argv = ["diagnose", case["id"], "--traces", str(source), "--now", str(case["now"])]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--format", "json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def test_the_recordings_are_here() -> None:
    assert RUNS, f"no recorded run with a cases.yaml under {REAL_KTRDR}"


@pytest.mark.parametrize(("run", "case"), _cases())
def test_real_case(run: Path, case: dict[str, Any], tmp_path: Path) -> None:
    d = diagnose(run, case, tmp_path)
    truth = case["truth"]
    allowed = [case["verdict"], *(case.get("also_acceptable") or [])]
    assert d["verdict"] in allowed, (d["summary"], truth)
    expected_cause = case.get("root_cause")
    if expected_cause:
        rc = d["root_cause"]
        assert rc is not None, (d["summary"], truth)
        assert fnmatchcase(rc["service"], expected_cause["service"]), (rc, truth)
        assert rc["span_name"] == expected_cause["span"], (rc, truth)
    for word in case.get("mentions") or []:
        assert word.lower() in d["summary"].lower(), (word, d["summary"], truth)
    bottleneck = case.get("bottleneck")
    if bottleneck:
        b = d["bottleneck"]
        assert b is not None, truth
        if "span" in bottleneck:
            assert (b["kind"], b["span_name"]) == ("span", bottleneck["span"]), (b, truth)
        else:
            assert (b["kind"], b["after_span_name"]) == ("gap", bottleneck["gap_after"]), (b, truth)
