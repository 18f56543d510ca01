"""The real recording (run1) with its killed training stopped the other way: SIGTERM.

run1 SIGKILLed the training worker b969a633 (:5006) 26 s into op_training_…_fcc59c1d; the
operation stayed RUNNING until KTRDR's orphan detector failed it at 16:07:08. Stopped with
SIGTERM (``docker stop``, a deploy), KTRDR's WorkerAPIBase (M6 graceful shutdown, read at the
recorded commit) cancels the work, saves a training checkpoint and reports the operation
CANCELLED with ``PATCH /api/v1/operations/{id}/status`` before it exits. Workers' HTTP
clients are not traced, so the report is a one-span trace of the backend's, and the backend
records the status without a transition span; the orphan detector has nothing left to fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import real_variants as rv
from conftest import REAL_KTRDR
from opdiag.devtools.score_cases import diagnose_case

TRACES = REAL_KTRDR / "run1" / "traces"
KILLED = "op_training_20261204_160033_fcc59c1d"
WORKER = "ktrdr-training-worker-b969a633"
ROUTE = "/api/v1/operations/{operation_id}/status"
NOW = "2026-12-04T16:10:00Z"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("JAEGER_URL", "OPDIAG_JAEGER_URL", "OPDIAG_TRACES", "OPDIAG_CONFIG"):
        monkeypatch.delenv(var, raising=False)


def _report(at_ns: int, status: int, op_id: str = KILLED) -> dict[str, Any]:
    """The backend's FastAPI server span of a worker's status report (its own trace)."""
    target = f"/api/v1/operations/{op_id}/status"
    attrs = {
        "http.scheme": "http", "http.host": "127.0.0.1:8000", "http.flavor": "1.1",
        "http.target": target, "http.url": f"http://127.0.0.1:8000{target}",
        "http.method": "PATCH", "http.server_name": "127.0.0.1:8000",
        "http.user_agent": "python-httpx/0.28.1", "http.route": ROUTE,
        "http.status_code": status,
    }
    return {
        "traceId": "5d6e7f80a1b2c3d4e5f60718293a4b5c",
        "spanId": "7a1b2c3d4e5f6071",
        "name": f"PATCH {ROUTE}",
        "kind": rv.SERVER,
        "startTimeUnixNano": str(at_ns),
        "endTimeUnixNano": str(at_ns + 9_000_000),
        "attributes": [
            {"key": k, "value": {"intValue" if isinstance(v, int) else "stringValue": v}}
            for k, v in attrs.items()
        ],
        "events": [],
        "status": {},
    }


def _stopped(status: int = 200, op_id: str = KILLED) -> tuple[rv.Recording, int]:
    """run1 with the worker stopped by SIGTERM where it was killed: its report 50 ms after its
    last span, no orphan failure of the operation."""
    base = rv.load(TRACES)
    last = max(
        int(s["endTimeUnixNano"])
        for _, svc, s in rv.spans(base)
        if svc == WORKER and int(s["startTimeUnixNano"]) < rv.ns("2026-12-04T16:01:05Z")
    )
    cut = rv.without(
        base,
        lambda _svc, s: rv.is_orphan_close(_svc, s) and rv.attr(s, "operation.id") == KILLED,
    )
    return rv.added(cut, "ktrdr-api", [_report(last + 50_000_000, status, op_id)]), last


def _diagnose(recording: rv.Recording, tmp: Path, now: str = NOW) -> dict[str, Any]:
    root = tmp / "run"
    rv.write(recording, root / "traces")
    return diagnose_case(root, {"id": KILLED, "now": now}, tmp / "scratch")


def test_a_worker_stopped_with_sigterm_cancelled_its_operation(tmp_path: Path) -> None:
    recording, last_ns = _stopped()
    d = _diagnose(recording, tmp_path)
    assert (d["verdict"], d["status"], d["finished"]) == ("worker_lost", "cancelled", True)
    assert d["summary"].startswith(f"worker lost: {WORKER} at 127.0.0.1:5006 shut down (SIGTERM)")
    assert "cancelled the operation" in d["summary"], d["summary"]
    assert d["root_cause"]["span_name"] == f"PATCH {ROUTE}", d["root_cause"]
    # it ended with the report, not at the wall clock nor at a detector minutes later
    assert d["ended_at_ms"] <= (last_ns + 60_000_000) // 1_000_000 + 1
    steps = " ".join(d["solution"]["steps"])
    assert "checkpoint" in steps and f"ktrdr resume {KILLED}" in d["solution"]["commands"]
    also = [a["rule_id"] for f in d["findings"] for a in f["evidence"].get("also", ())]
    assert "worker-lost-then-cancelled" not in also  # it was not lost before the cancel


def test_the_listing_says_the_same(tmp_path: Path) -> None:
    import contextlib
    import io
    import json

    from opdiag.cli.main import main

    recording, _ = _stopped()
    rv.write(recording, tmp_path / "traces")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["operations", "--traces", str(tmp_path / "traces"), "--now", NOW,
                     "--format", "json"])
    assert code == 0
    (row,) = [r for r in json.loads(out.getvalue()) if r["operation_id"] == KILLED]
    assert (row["verdict"], row["status"]) == ("worker_lost", "cancelled")
    assert "shut down (SIGTERM)" in row["summary"] and row["duration_ms"] < 60_000


def test_without_the_report_the_same_loss_is_a_killed_worker(tmp_path: Path) -> None:
    """No report (SIGKILL): RUNNING, lost; a report the backend refused changes nothing."""
    recording, _ = _stopped(status=404)
    d = _diagnose(recording, tmp_path)
    assert (d["verdict"], d["status"]) == ("worker_lost", "running"), d["summary"]
    assert "SIGTERM" not in d["summary"]


def test_a_report_about_another_operation_is_not_this_ones(tmp_path: Path) -> None:
    recording, _ = _stopped(op_id="op_training_20261204_155512_6652e327")
    d = _diagnose(recording, tmp_path)
    assert d["status"] == "running" and "SIGTERM" not in d["summary"], d["summary"]
